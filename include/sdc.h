/* sdc.h - Stable Diffusion 1.5 in C: the only public header.
 *
 * Usage (inspecting a model file):
 *
 *     char err[512];
 *     sdc_model *m;
 *     if (sdc_model_open("v1-5-pruned-emaonly-Q8_0.gguf", &m, err, sizeof err) != SDC_OK) {
 *         fprintf(stderr, "%s\n", err);
 *         return 1;
 *     }
 *     if (sdc_model_check(m, err, sizeof err) != SDC_OK) fprintf(stderr, "%s\n", err);
 *     printf("%s, %s, %d tensors\n", sdc_model_format(m), sdc_model_arch_name(m),
 *            sdc_model_tensor_count(m));
 *     sdc_model_free(m);
 *
 * Conventions: every fallible function returns an sdc_status and, on failure, writes one
 * line into the caller's (err, errlen) buffer. The library keeps no global state, never
 * prints unless given a callback, and never exits. Shapes are given outermost first
 * (PyTorch order: a conv kernel is [out, in, kh, kw]).
 */
#ifndef SDC_H
#define SDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sdc_status {
    SDC_OK = 0,
    SDC_E_INVALID = 1,     /* a bad argument or option value */
    SDC_E_IO = 2,          /* a file could not be opened, read or written */
    SDC_E_FORMAT = 3,      /* a file is malformed (truncated, bad magic, bad header...) */
    SDC_E_UNSUPPORTED = 4, /* well-formed but not something sdc handles (SDXL, a LoRA...) */
    SDC_E_SHAPE = 5,       /* a tensor the network needs is missing or has the wrong shape/type */
    SDC_E_NOMEM = 6,
    SDC_E_CANCELLED = 7,
    SDC_E_INTERNAL = 8,
} sdc_status;

const char *sdc_status_name(sdc_status s);
const char *sdc_version(void);

/* ------------------------------------------------------------------ model files */

typedef struct sdc_model sdc_model;

typedef enum sdc_arch {
    SDC_ARCH_UNKNOWN = 0,
    SDC_ARCH_SD1 = 1,         /* SD 1.x, 4-channel UNet input */
    SDC_ARCH_SD1_INPAINT = 2, /* SD 1.x inpainting, 9-channel UNet input */
} sdc_arch;

typedef enum sdc_component {
    SDC_COMPONENT_CLIP = 0,
    SDC_COMPONENT_UNET = 1,
    SDC_COMPONENT_VAE = 2,
    SDC_COMPONENT_OTHER = 3,
    SDC_COMPONENT_COUNT = 4,
} sdc_component;

/* Opens a model file or folder: a GGUF file, a .safetensors checkpoint, or a diffusers
 * folder (unet/, text_encoder/, vae/). Tensors are memory-mapped, never copied. The
 * architecture is detected from tensor names and shapes; an unsupported one opens fine
 * (for `sdc info`) and sdc_model_check() then says what it looks like. */
sdc_status sdc_model_open(const char *path, sdc_model **out, char *err, size_t errlen);
void sdc_model_free(sdc_model *m);

/* Verifies the architecture is supported and every tensor the SD 1.x graph needs is
 * present with the right shape and a usable type; the first problem is reported by name. */
sdc_status sdc_model_check(const sdc_model *m, char *err, size_t errlen);

sdc_arch sdc_model_arch(const sdc_model *m);
const char *sdc_model_arch_name(const sdc_model *m);  /* "sd1", "sd1-inpaint", or a "looks like" guess */
const char *sdc_model_format(const sdc_model *m);     /* "gguf v3", "safetensors", "diffusers" */

typedef struct sdc_tensor_info {
    const char *name;      /* canonical (original LDM checkpoint) name */
    const char *type;      /* "f16", "q8_0", ... */
    int ndim;
    int64_t shape[8];      /* outermost first */
    uint64_t nbytes;
    sdc_component component;
} sdc_tensor_info;

int sdc_model_tensor_count(const sdc_model *m);
sdc_status sdc_model_tensor_info(const sdc_model *m, int i, sdc_tensor_info *out);
bool sdc_model_has_tensor(const sdc_model *m, const char *name);

/* File-level metadata: GGUF key/value pairs (values rendered as text, arrays summarised)
 * or safetensors __metadata__ entries. */
int sdc_model_meta_count(const sdc_model *m);
sdc_status sdc_model_meta(const sdc_model *m, int i, const char **key, char *value, size_t valuelen);

const char *sdc_component_name(sdc_component c);

/* ------------------------------------------------------------------ conversion */

/* Called as work advances; return false to cancel (the call then fails with SDC_E_CANCELLED
 * and leaves no output file). */
typedef bool (*sdc_progress_fn)(void *user, int done, int total, const char *what);

typedef struct sdc_convert_params {
    const char *type;        /* "f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0" */
    bool quantize_all;       /* also quantize biases, norms, embeddings (the published files' rule) */
    const char *vocab_path;  /* optional CLIP BPE vocabulary to embed (bpe_simple_vocab_16e6.txt.gz) */
    sdc_progress_fn progress; /* optional */
    void *progress_user;
} sdc_convert_params;

/* The type convert gives one tensor: the target type when the tensor is quantized, F16 (or
 * the target float type) otherwise, the source type for integer tensors. Exposed so tools
 * and tests can show and check the rule. Returns the type name. */
const char *sdc_convert_tensor_type(const char *name, int ndim, const int64_t *shape, const char *src_type,
                                    const sdc_convert_params *p);

sdc_convert_params sdc_convert_default_params(void);

/* Converts any readable SD 1.x model to a GGUF file. The output is written to a temporary
 * file beside out_path and renamed at the end, so a failure never leaves a partial file. */
sdc_status sdc_convert(const char *in_path, const char *out_path, const sdc_convert_params *p,
                       char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
