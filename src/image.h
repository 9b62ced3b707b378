/* image.h - internal helpers of image.c: decoder output to 8-bit pixels, Python-style number
 * and JSON-string formatting for the infotext. */
#ifndef SDC_IMAGE_H
#define SDC_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "sdc.h"

/* x [3, h, w] decoder output in about [-1, 1] -> out [h, w, 3] bytes:
 * round(clamp(x / 2 + 0.5, 0, 1) * 255), computed in float32, ties to even (numpy's round). */
void sdc_image_to_u8(const float *chw, int w, int h, uint8_t *out);

/* Python's str() of a float that came from the user as f, except that integral values print
 * without ".0" (A1111's infotext shows "CFG scale: 7"): the shortest decimal that reads back
 * as f, in repr's notation ("7.5", "0.0001", "1e-05"). */
void sdc_py_float_str(float f, char *buf, size_t len);

/* A1111's infotext quote(): the text itself, or json.dumps(text, ensure_ascii=False) when it
 * holds ',', ':' or '\n'. Appends to out (a growing buffer: *used bytes of *cap). */
typedef struct sdc_strbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sdc_strbuf;
void sdc_strbuf_put(sdc_strbuf *b, const char *s, size_t n);
void sdc_strbuf_printf(sdc_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sdc_infotext_quote(sdc_strbuf *b, const char *value);

#endif
