/* bench_txt2img.c - one text-to-image run of sdc's pipeline, timed stage by stage.
 *
 *   bench_txt2img -m MODEL [-W 512] [-H 512] [--steps 2] [-t THREADS] [--sampler euler_a]
 *                 [-p PROMPT] [--vocab FILE] [--json FILE] [--label NAME]
 *
 * Prints a markdown table (load, text encoding, every sampling step, VAE decode, total, peak
 * RSS after each stage, activation arena peak) and, with --json, the same numbers as one JSON
 * object per run appended to FILE (a line each), for scripts that alternate it with other
 * programs. One run per process: peak RSS (ru_maxrss) is then this run's alone. "load" is
 * sdc_model_open + sdc_model_check (mmap; with a warm page cache this is header parsing);
 * each stage's time includes making its network's view of the weights (microseconds: the
 * weights are used in place), so "sampling" is the steps plus that, and "text" includes
 * reading the vocabulary. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "pipeline.h"
#include "sdc.h"
#include "bench_util.h"

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static int usage(const char *msg) {
    if (msg) fprintf(stderr, "bench_txt2img: %s\n", msg);
    fprintf(stderr, "usage: bench_txt2img -m MODEL [-W 512] [-H 512] [--steps 2] [-t THREADS] [--sampler NAME]\n"
                    "                     [-p PROMPT] [--vocab FILE] [--json FILE] [--label NAME] [--keep-weights-mapped]\n"
                    "                     [--int8-linear] [--bf16]\n");
    return 2;
}

static int parse_int(const char *s, const char *what, int lo, int hi, int *out) {
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "bench_txt2img: %s '%s': expected an integer in [%d, %d]\n", what, s ? s : "", lo, hi);
        return 0;
    }
    *out = (int)v;
    return 1;
}

int main(int argc, char **argv) {
    const char *model = NULL, *json = NULL, *label = NULL;
    sdc_txt2img_params p = sdc_txt2img_default_params();
    p.prompt = "a photograph of an astronaut riding a horse";
    p.steps = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "-W")) ok = parse_int(v, "width", 64, 2048, &p.width);
        else if (!strcmp(a, "-H")) ok = parse_int(v, "height", 64, 2048, &p.height);
        else if (!strcmp(a, "--steps")) ok = parse_int(v, "steps", 1, 1000, &p.steps);
        else if (!strcmp(a, "-t")) ok = parse_int(v, "threads", 1, 256, &p.n_threads);
        else if (!strcmp(a, "--sampler")) p.sampler = v;
        else if (!strcmp(a, "-p")) p.prompt = v;
        else if (!strcmp(a, "--vocab")) p.vocab_path = v;
        else if (!strcmp(a, "--json")) json = v;
        else if (!strcmp(a, "--label")) label = v;
        else if (!strcmp(a, "--keep-weights-mapped")) { p.stream_weights = false; continue; }
        else if (!strcmp(a, "--int8-linear")) { p.int8_linear = true; continue; }
        else if (!strcmp(a, "--bf16")) { p.bf16 = true; continue; }
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(NULL), 0;
        else return usage("unknown option");
        if (!ok) return 2;
        if (!v) return usage("missing value");
        i++;
    }
    if (!model) return usage("no model (-m)");
    char err[1024] = "";
    if (sdc_txt2img_validate(&p, err, sizeof err) != SDC_OK) {
        fprintf(stderr, "bench_txt2img: %s\n", err);
        return 2;
    }
    p.model_path = model;

    double t0 = now();
    sdc_model *m = NULL;
    if (sdc_model_open(model, &m, err, sizeof err) != SDC_OK || sdc_model_check(m, err, sizeof err) != SDC_OK) {
        fprintf(stderr, "bench_txt2img: %s\n", err);
        sdc_model_free(m);
        return 1;
    }
    const double load_s = now() - t0;

    double *steps = calloc((size_t)p.steps, sizeof *steps);
    if (!steps) return 1;
    sdc_txt2img_timing tm = {.step_s = steps, .step_cap = p.steps};
    sdc_txt2img_debug dbg = {.timing = &tm};
    sdc_image *imgs = NULL;
    int n = 0;
    const double c0 = cpu_seconds();
    sdc_status st = sdc_txt2img_ex(m, &p, &dbg, &imgs, &n, err, sizeof err);
    const double cpu = cpu_seconds() - c0;
    sdc_images_free(imgs, n);
    sdc_model_free(m);
    if (st != SDC_OK) {
        fprintf(stderr, "bench_txt2img: %s\n", err);
        free(steps);
        return 1;
    }

    if (tm.n_steps < 1) {
        fprintf(stderr, "bench_txt2img: the run reported no steps\n");
        free(steps);
        return 1;
    }
    /* median step */
    double sorted[1000], med;
    memcpy(sorted, steps, sizeof *steps * (size_t)tm.n_steps);
    for (int i = 1; i < tm.n_steps; i++)
        for (int j = i; j > 0 && sorted[j] < sorted[j - 1]; j--) {
            double t = sorted[j];
            sorted[j] = sorted[j - 1], sorted[j - 1] = t;
        }
    med = tm.n_steps % 2 ? sorted[tm.n_steps / 2] : 0.5 * (sorted[tm.n_steps / 2 - 1] + sorted[tm.n_steps / 2]);
    const char *name = label ? label : model;
    const int threads = p.n_threads > 0 ? p.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);

    printf("| %s %dx%d, %d steps %s, %d threads%s%s%s | seconds | peak RSS MiB |\n|---|---:|---:|\n", name, p.width,
           p.height, p.steps, p.sampler, threads, p.stream_weights ? "" : ", weights kept mapped",
           p.int8_linear ? ", int8 linear" : "", p.bf16 ? ", bf16" : "");
    printf("| load (open + check) | %.3f | |\n", load_s);
    printf("| text encoding | %.3f | %.0f |\n", tm.text_s, tm.rss_text_mib);
    for (int i = 0; i < tm.n_steps; i++) printf("| step %d | %.3f | |\n", i + 1, steps[i]);
    printf("| sampling (median step %.3f) | %.3f | %.0f |\n", med, tm.sample_s, tm.rss_sample_mib);
    printf("| VAE decode | %.3f | %.0f |\n", tm.decode_s, tm.rss_decode_mib);
    printf("| total (pipeline) | %.3f | |\n", tm.total_s);
    printf("| CPU time (all threads) | %.3f | |\n", cpu);
    printf("| activation arena peak | | %.0f |\n", tm.arena_peak_mib);

    if (json) {
        FILE *f = fopen(json, "a");
        if (!f) {
            fprintf(stderr, "bench_txt2img: cannot write %s\n", json);
            free(steps);
            return 1;
        }
        fputs("{\"label\":", f);
        json_str(f, name);
        fputs(",\"sampler\":", f);
        json_str(f, p.sampler);
        fprintf(f,
                ",\"width\":%d,\"height\":%d,\"steps\":%d,\"threads\":%d,\"stream_weights\":%s,\"int8_linear\":%s,\"bf16\":%s,"
                "\"load_s\":%.4f,\"text_s\":%.4f,\"step_s\":[",
                p.width, p.height, p.steps, threads, p.stream_weights ? "true" : "false",
                p.int8_linear ? "true" : "false", p.bf16 ? "true" : "false", load_s, tm.text_s);
        for (int i = 0; i < tm.n_steps; i++) fprintf(f, "%s%.4f", i ? "," : "", steps[i]);
        fprintf(f,
                "],\"step_median_s\":%.4f,\"sample_s\":%.4f,\"decode_s\":%.4f,\"total_s\":%.4f,\"cpu_s\":%.3f,"
                "\"rss_text_mib\":%.1f,\"rss_sample_mib\":%.1f,\"rss_peak_mib\":%.1f,\"arena_peak_mib\":%.1f}\n",
                med, tm.sample_s, tm.decode_s, tm.total_s, cpu, tm.rss_text_mib, tm.rss_sample_mib, tm.rss_decode_mib,
                tm.arena_peak_mib);
        fclose(f);
    }
    free(steps);
    return 0;
}
