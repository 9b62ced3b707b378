/* test_safetensors_model.c - opens the random-weight SD 1.5 checkpoint (SKIP when absent) and
 * compares its tensor list with ../shared/data/sd15_tensors.tsv (name, dtype, shape), then
 * spot-checks the buffers whose values are fixed by the DDPM schedule. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "safetensors.h"
#include "testutil.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float f32_at(const sdc_tensor *t, int64_t i) {
    float v;
    memcpy(&v, (const char *)t->data + 4 * i, 4);
    return v;
}

/* Compares every line of the tsv with the file; returns the number of lines read. */
static int check_tsv(const sdc_st *s, const char *tsv) {
    FILE *f = fopen(tsv, "r");
    CHECK_MSG(f != NULL, "cannot open %s", tsv);
    if (!f) return 0;
    char line[1024];
    int lines = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0]) continue;
        lines++;
        char *name = line, *dt = strchr(line, '\t'), *shp = NULL;
        if (dt) {
            *dt++ = '\0';
            shp = strchr(dt, '\t');
            if (shp) *shp++ = '\0';
        }
        if (!dt || !shp) {
            CHECK_MSG(0, "bad tsv line %d", lines);
            continue;
        }
        int64_t want[SDC_MAX_DIMS];
        int nd = 0;
        for (char *p = shp; *p && nd < SDC_MAX_DIMS;) {
            want[nd++] = strtoll(p, &p, 10);
            if (*p == ',') p++;
        }
        const sdc_tensor *t = sdc_st_find_tensor(s, name);
        bool ok = t && sdc_type_from_name(dt) == (int)t->type && t->ndim == nd;
        for (int d = 0; ok && d < nd; d++) ok = t->shape[d] == want[d];
        if (!ok && bad++ < 10) {
            char gs[128] = "-";
            if (t) sdc_shape_str(t->shape, t->ndim, gs, sizeof gs);
            CHECK_MSG(0, "%s: want %s [%s], got %s %s", name, dt, shp, t ? sdc_type_name(t->type) : "(missing)", gs);
        }
    }
    fclose(f);
    CHECK_MSG(bad == 0, "%d tensors differ from the tsv", bad);
    return lines;
}

int main(void) {
    const char *path = tu_require_model();
    const char *tsv = tu_shared_path("data/sd15_tensors.tsv");
    char err[512] = "";
    sdc_st *s = NULL;
    double t0 = now();
    sdc_status st = sdc_st_open(path, &s, err, sizeof err);
    double t1 = now();
    CHECK_MSG(st == SDC_OK, "%s", err);
    if (st != SDC_OK) return check_done();
    printf("opened %s: %lld tensors, %lld metadata entries, %.1f ms, aligned=%d\n", path,
           (long long)sdc_st_tensor_count(s), (long long)sdc_st_meta_count(s), (t1 - t0) * 1e3, sdc_st_aligned(s));

    CHECK(sdc_st_tensor_count(s) == 1145);
    CHECK(check_tsv(s, tsv) == 1145); /* same count and every tsv entry found: the sets are equal */

    const sdc_tensor *nu = sdc_st_find_tensor(s, "model_ema.num_updates");
    CHECK(nu && nu->type == SDC_TYPE_I32 && nu->ndim == 0 && nu->nbytes == 4);
    if (nu) {
        int32_t v;
        memcpy(&v, nu->data, 4);
        CHECK(v == 0);
    }
    const sdc_tensor *dec = sdc_st_find_tensor(s, "model_ema.decay");
    CHECK(dec && dec->type == SDC_TYPE_F32 && dec->ndim == 0);
    if (dec) CHECK(fabsf(f32_at(dec, 0) - 0.9999f) == 0);

    const sdc_tensor *pos = sdc_st_find_tensor(s, "cond_stage_model.transformer.text_model.embeddings.position_ids");
    CHECK(pos && pos->type == SDC_TYPE_I64 && pos->ndim == 2 && pos->shape[0] == 1 && pos->shape[1] == 77);
    if (pos && pos->nbytes == 77 * 8) {
        int bad = 0;
        for (int i = 0; i < 77; i++) {
            int64_t v;
            memcpy(&v, (const char *)pos->data + 8 * i, 8);
            bad += v != i;
        }
        CHECK(bad == 0);
    }

    /* the DDPM schedule, recomputed here: betas = linspace(sqrt(0.00085), sqrt(0.012), 1000)^2 */
    const sdc_tensor *betas = sdc_st_find_tensor(s, "betas"), *ac = sdc_st_find_tensor(s, "alphas_cumprod");
    CHECK(betas && ac && betas->type == SDC_TYPE_F32 && ac->type == SDC_TYPE_F32 && ac->ndim == 1 &&
          ac->shape[0] == 1000);
    if (betas && ac && ac->nbytes == 4000 && betas->nbytes == 4000) {
        CHECK(fabs(f32_at(ac, 0) - (1.0 - 0.00085)) < 1e-6);
        CHECK(fabs(f32_at(betas, 0) - 0.00085) < 1e-9);
        double a = sqrt(0.00085), b = sqrt(0.012), prod = 1;
        float want[1000], got[1000];
        for (int i = 0; i < 1000; i++) {
            double beta = a + (b - a) * i / 999.0;
            beta *= beta;
            prod *= 1 - beta;
            want[i] = (float)prod;
            got[i] = f32_at(ac, i);
        }
        CHECK_NEAR(got, want, 1000, 1e-7, 1e-6, "alphas_cumprod vs recomputed");
    }

    /* a few F16 weights: inside the file, finite */
    const sdc_tensor *w = sdc_st_find_tensor(s, "model.diffusion_model.input_blocks.0.0.weight");
    CHECK(w && w->type == SDC_TYPE_F16 && w->nbytes == 320 * 4 * 3 * 3 * 2);
    const sdc_map *m = sdc_st_map(s);
    int64_t outside = 0;
    for (int64_t i = 0; i < sdc_st_tensor_count(s); i++) {
        const sdc_tensor *t = sdc_st_tensor(s, i);
        if ((const uint8_t *)t->data < m->data || (const uint8_t *)t->data + t->nbytes > m->data + m->size) outside++;
    }
    CHECK(outside == 0);
    CHECK(sdc_st_meta_get(s, "format") && strcmp(sdc_st_meta_get(s, "format"), "pt") == 0);
    sdc_st_close(s);
    return check_done();
}
