/* common.c - error helpers and read-only file mapping. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

sdc_status sdc_fail(char *err, size_t errlen, sdc_status code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

void sdc_err_prefix(char *err, size_t errlen, const char *prefix) {
    if (!err || !errlen || !prefix) return;
    size_t pl = strlen(prefix), el = strnlen(err, errlen - 1);
    if (pl + 2 >= errlen) return;
    size_t keep = el;
    if (pl + 2 + keep >= errlen) keep = errlen - pl - 3;
    memmove(err + pl + 2, err, keep);
    memcpy(err, prefix, pl);
    err[pl] = ':';
    err[pl + 1] = ' ';
    err[pl + 2 + keep] = '\0';
}

sdc_status sdc_map_file(const char *path, sdc_map *out, char *err, size_t errlen) {
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sdc_fail(err, errlen, SDC_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sdc_fail(err, errlen, SDC_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sdc_fail(err, errlen, SDC_E_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return SDC_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return sdc_fail(err, errlen, SDC_E_IO, "%s: cannot mmap: %s", path, strerror(e));
    out->data = p;
    out->size = (size_t)st.st_size;
    return SDC_OK;
}

void sdc_unmap(sdc_map *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

void sdc_map_release(const sdc_map *m, const void *ptr, size_t len) {
    if (!m->data || !len) return;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)ptr, b = a + len;
    uintptr_t lo = (uintptr_t)m->data, hi = lo + m->size;
    if (a < lo) a = lo;
    if (b > hi) b = hi;
    a = (a + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1); /* only whole pages inside the range */
    b &= ~((uintptr_t)pg - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

char *sdc_strndup(const char *s, size_t n) {
    char *r = malloc(n + 1);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

const char *sdc_status_name(sdc_status s) {
    switch (s) {
    case SDC_OK: return "ok";
    case SDC_E_INVALID: return "invalid argument";
    case SDC_E_IO: return "i/o error";
    case SDC_E_FORMAT: return "malformed file";
    case SDC_E_UNSUPPORTED: return "not supported";
    case SDC_E_SHAPE: return "missing or mis-shaped tensor";
    case SDC_E_NOMEM: return "out of memory";
    case SDC_E_CANCELLED: return "cancelled";
    case SDC_E_INTERNAL: return "internal error";
    }
    return "unknown status";
}

#ifndef SDC_VERSION
#define SDC_VERSION "0.0.0"
#endif
const char *sdc_version(void) { return SDC_VERSION; }
