/* cmd_generate.c - `sdc [generate] -m MODEL -p PROMPT ...`: text to image with
 * stable-diffusion.cpp's flags and defaults, writing PNGs that carry A1111's infotext.
 *
 * Output names (as stable-diffusion.cpp's sd-cli): one image goes to -o as given; with
 * -b N > 1 the images go to <stem>_0<ext>, <stem>_1<ext>, ... (image i has seed + i); a path
 * with a printf-style %d (e.g. out_%03d.png) is formatted with the index instead. Files are
 * written to a temporary name and renamed. Ctrl-C stops between sampling steps: nothing is
 * written, exit status 130; a second Ctrl-C kills at once. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define CLI_EXIT_INTERRUPTED 130

static volatile sig_atomic_t g_interrupted = 0;

static void on_sigint(int sig) {
    (void)sig;
    if (g_interrupted) {
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
    }
    g_interrupted = 1;
}

static bool cancel_cb(void *user) {
    (void)user;
    return g_interrupted != 0;
}

typedef struct gen_opts {
    sdc_txt2img_params p;
    const char *model;
    const char *output;
    bool verbose;
    bool no_metadata;
} gen_opts;

void cmd_generate_help(FILE *f) {
    sdc_txt2img_params d = sdc_txt2img_default_params();
    fprintf(f,
            "usage: sdc [generate] -m MODEL -p PROMPT [options]\n"
            "Text to image with Stable Diffusion 1.x; flags and defaults as stable-diffusion.cpp's sd-cli.\n"
            "\n"
            "  -m, --model PATH             model: GGUF, .safetensors checkpoint or diffusers folder (required)\n"
            "  -p, --prompt TEXT            the prompt (A1111 syntax: (word), [word], (word:1.3), BREAK)\n"
            "  -n, --negative-prompt TEXT   the negative prompt (default: \"\")\n"
            "  -o, --output PATH            output PNG (default: output.png); with -b N > 1: PATH_0.png,\n"
            "                               PATH_1.png, ...; a %%d in PATH is formatted with the index\n"
            "  -W, --width N                image width, multiple of 8 in [64, 2048] (default: %d)\n"
            "  -H, --height N               image height, multiple of 8 in [64, 2048] (default: %d)\n"
            "      --steps N                sampling steps, 1..1000 (default: %d)\n"
            "      --cfg-scale X            classifier-free guidance scale, >= 0 (default: 7.0)\n"
            "  -s, --seed N                 RNG seed; < 0 picks a random one and prints it (default: %lld)\n"
            "  -b, --batch-count N          number of images; image i uses seed + i (default: 1)\n"
            "      --sampling-method NAME   sampler (default: %s), one of:\n"
            "                               %s\n"
            "                               (A1111 names such as \"DPM++ 2M\" are accepted too)\n"
            "      --schedule NAME          sigma schedule (default: %s; alias --scheduler), one of:\n"
            "                               %s\n"
            "      --rng NAME               noise generator: cuda (torch CUDA / A1111 / sd.cpp) or cpu (torch CPU /\n"
            "                               ComfyUI) (default: %s)\n"
            "      --eta X                  noise multiplier of euler_a, dpm++2s_a, dpm++2m_sde (default 1), ddim,\n"
            "                               tcd (default 0)\n"
            "      --clip-skip N            CLIP layers to skip at the end, 1 skips none (default: -1 = 1 for SD 1.x)\n"
            "      --vae-tiling             decode the image in tiles (less memory)\n"
            "      --keep-weights-mapped    keep every weight page mapped for the whole run; by default each\n"
            "                               layer's weights are given back after use and fault in again from the\n"
            "                               page cache (about one layer resident instead of the whole UNet)\n"
            "      --int8-linear            faster, slightly different image: linear layers on Q8_0/Q4_0/Q4_1\n"
            "                               weights use int8 activations and AVX-512 VNNI (fp32 elsewhere, and\n"
            "                               everywhere on CPUs without VNNI) (default: all fp32)\n"
            "      --bf16                   faster, slightly different image: linear, convolution and attention\n"
            "                               layers with bf16 operands and fp32 sums on Intel AMX (fp32 where AMX\n"
            "                               is absent; before --int8-linear where both apply) (default: all fp32)\n"
            "      --schedule-from-file     sigmas from the model file's alphas_cumprod (stable-diffusion.cpp parity)\n"
            "                               instead of the computed schedule (default: computed)\n"
            "      --vocab FILE             CLIP vocabulary (bpe_simple_vocab_16e6.txt.gz or merges.txt) when the\n"
            "                               model has none; else $SDC_VOCAB, then ~/.cache/sdc/\n"
            "      --disable-image-metadata do not write the \"parameters\" text chunk\n"
            "  -t, --threads N              threads; <= 0 uses every core (default: -1)\n"
            "  -v, --verbose                stage timings and peak memory on stderr\n"
            "  -h, --help                   this help\n"
            "\n"
            "Progress (step i/N, s/step, ETA) is shown on stderr when it is a terminal. Ctrl-C stops between\n"
            "steps and writes nothing (exit 130). Exit status: 0 ok, 1 failure, 2 bad arguments.\n",
            d.width, d.height, d.steps, (long long)d.seed, d.sampler, sdc_txt2img_sampler_list(), d.schedule,
            sdc_txt2img_schedule_list(), d.rng);
}

static bool parse_int(const char *flag, const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < INT_MIN || v > INT_MAX) {
        fprintf(stderr, "sdc: %s '%s': expected an integer\n", flag, s);
        return false;
    }
    *out = (int)v;
    return true;
}

static bool parse_i64(const char *flag, const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) {
        fprintf(stderr, "sdc: %s '%s': expected an integer\n", flag, s);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_float(const char *flag, const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v)) {
        fprintf(stderr, "sdc: %s '%s': expected a number\n", flag, s);
        return false;
    }
    *out = v;
    return true;
}

/* Returns 0 ok, 1 help shown, -1 usage error. */
static int parse_args(int argc, char **argv, int first, gen_opts *o) {
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        char flagbuf[64];
        const char *val = NULL;
        /* --flag=value */
        const char *eq = (a[0] == '-' && a[1] == '-') ? strchr(a, '=') : NULL;
        if (eq && (size_t)(eq - a) < sizeof flagbuf) {
            memcpy(flagbuf, a, (size_t)(eq - a));
            flagbuf[eq - a] = 0;
            val = eq + 1;
            a = flagbuf;
        }
#define IS(s, l) (!strcmp(a, s) || !strcmp(a, l))
#define VALUE()                                                                   \
    do {                                                                          \
        if (!val) {                                                               \
            if (i + 1 >= argc) {                                                  \
                fprintf(stderr, "sdc: %s needs a value (see sdc --help)\n", a);   \
                return -1;                                                        \
            }                                                                     \
            val = argv[++i];                                                      \
        }                                                                         \
    } while (0)
        if (IS("-h", "--help")) return 1;
        else if (IS("-m", "--model")) { VALUE(); o->model = val; }
        else if (IS("-p", "--prompt")) { VALUE(); o->p.prompt = val; }
        else if (IS("-n", "--negative-prompt")) { VALUE(); o->p.negative_prompt = val; }
        else if (IS("-o", "--output")) { VALUE(); o->output = val; }
        else if (IS("-W", "--width")) { VALUE(); if (!parse_int(a, val, &o->p.width)) return -1; }
        else if (IS("-H", "--height")) { VALUE(); if (!parse_int(a, val, &o->p.height)) return -1; }
        else if (IS("--steps", "--steps")) { VALUE(); if (!parse_int(a, val, &o->p.steps)) return -1; }
        else if (IS("--cfg-scale", "--cfg-scale")) { VALUE(); if (!parse_float(a, val, &o->p.cfg_scale)) return -1; }
        else if (IS("-s", "--seed")) { VALUE(); if (!parse_i64(a, val, &o->p.seed)) return -1; }
        else if (IS("-b", "--batch-count")) { VALUE(); if (!parse_int(a, val, &o->p.batch_count)) return -1; }
        else if (IS("--sampling-method", "--sampler")) { VALUE(); o->p.sampler = val; }
        else if (IS("--schedule", "--scheduler")) { VALUE(); o->p.schedule = val; }
        else if (IS("--rng", "--rng")) { VALUE(); o->p.rng = val; }
        else if (IS("--eta", "--eta")) { VALUE(); if (!parse_float(a, val, &o->p.eta)) return -1; }
        else if (IS("--clip-skip", "--clip-skip")) { VALUE(); if (!parse_int(a, val, &o->p.clip_skip)) return -1; }
        else if (IS("-t", "--threads")) { VALUE(); if (!parse_int(a, val, &o->p.n_threads)) return -1; }
        else if (IS("--vocab", "--vocab")) { VALUE(); o->p.vocab_path = val; }
        else if (IS("--vae-tiling", "--vae-tiling") && !val) o->p.vae_tiling = true;
        else if (IS("--keep-weights-mapped", "--keep-weights-mapped") && !val) o->p.stream_weights = false;
        else if (IS("--int8-linear", "--int8-linear") && !val) o->p.int8_linear = true;
        else if (IS("--bf16", "--bf16") && !val) o->p.bf16 = true;
        else if (IS("--schedule-from-file", "--schedule-from-file") && !val) o->p.schedule_from_file = true;
        else if (IS("--disable-image-metadata", "--disable-image-metadata") && !val) o->no_metadata = true;
        else if (IS("-v", "--verbose") && !val) o->verbose = true;
        else {
            fprintf(stderr, "sdc: unknown option '%s' (see sdc generate --help)\n", argv[i]);
            return -1;
        }
#undef IS
#undef VALUE
    }
    return 0;
}

/* ------------------------------------------------------------------ output names */

/* Whether s holds a printf integer specifier %d / %0Nd / %Nd (and no other '%' use). */
static bool has_index_format(const char *s) {
    for (const char *p = strchr(s, '%'); p; p = strchr(p + 1, '%')) {
        const char *q = p + 1;
        while (*q >= '0' && *q <= '9') q++;
        if (*q == 'd') return true;
    }
    return false;
}

static bool output_name(const char *out, int index, int count, char *buf, size_t len) {
    if (has_index_format(out)) {
        /* only the first %..d is formatted; other '%' are copied */
        size_t o = 0;
        bool done = false;
        for (const char *p = out; *p; p++) {
            if (!done && *p == '%') {
                const char *q = p + 1;
                int width = 0;
                bool zero = *q == '0';
                while (*q >= '0' && *q <= '9') width = width * 10 + (*q++ - '0');
                if (*q == 'd') {
                    int n = snprintf(buf + o, o < len ? len - o : 0, zero ? "%0*d" : "%*d", width, index);
                    if (n < 0) return false;
                    o += (size_t)n;
                    p = q;
                    done = true;
                    continue;
                }
            }
            if (o + 1 < len) buf[o] = *p;
            o++;
        }
        if (o >= len) return false;
        buf[o] = 0;
        return true;
    }
    if (count == 1) return (size_t)snprintf(buf, len, "%s", out) < len;
    const char *slash = strrchr(out, '/');
    const char *dot = strrchr(out, '.');
    if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : out)) dot = NULL;
    if (!dot) return (size_t)snprintf(buf, len, "%s_%d.png", out, index) < len;
    return (size_t)snprintf(buf, len, "%.*s_%d%s", (int)(dot - out), out, index, dot) < len;
}

/* The directory part of a path ("." when none). */
static void dir_of(const char *path, char *buf, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(buf, len, ".");
    else if (slash == path) snprintf(buf, len, "/");
    else snprintf(buf, len, "%.*s", (int)(slash - path), path);
}

/* The model's name as A1111 shows it: the file name without its extension (a folder's name). */
static void model_stem(const char *path, char *buf, size_t len) {
    size_t L = strlen(path);
    while (L > 1 && path[L - 1] == '/') L--;
    size_t s = L;
    while (s > 0 && path[s - 1] != '/') s--;
    size_t e = L;
    struct stat st;
    if (!(stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
        for (size_t k = L; k > s; k--)
            if (path[k - 1] == '.') {
                if (k - 1 > s) e = k - 1;
                break;
            }
    }
    snprintf(buf, len, "%.*s", (int)(e - s), path + s);
}

/* ------------------------------------------------------------------ progress, logging */

typedef struct progress {
    bool tty;
    double sum;
    int count;
    bool shown;
} progress;

static void on_progress(void *user, int image, int n_images, int step, int steps, double dt) {
    progress *pr = user;
    if (!pr->tty) return;
    if (step == 1) {
        pr->sum = 0;
        pr->count = 0;
    }
    /* the first step includes warm-up: leave it out of the rate once there are others */
    if (step > 1 || steps == 1) {
        pr->sum += dt;
        pr->count++;
    }
    double rate = pr->count ? pr->sum / pr->count : dt;
    double eta = rate * (steps - step);
    char img[32] = "";
    if (n_images > 1) snprintf(img, sizeof img, "image %d/%d ", image + 1, n_images);
    fprintf(stderr, "\r%sstep %d/%d  %.2f s/step  ETA %d:%02d   ", img, step, steps, rate, (int)eta / 60,
            (int)eta % 60);
    if (step == steps) fputc('\n', stderr);
    fflush(stderr);
    pr->shown = true;
}

static void on_log(void *user, sdc_log_level lv, const char *msg) {
    bool verbose = *(bool *)user;
    if (lv >= SDC_LOG_WARN || (verbose && lv >= SDC_LOG_INFO)) fprintf(stderr, "sdc: %s\n", msg);
}

static uint64_t random_seed(void) {
    uint64_t s = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&s, sizeof s, 1, f) != 1) s = 0;
        fclose(f);
    }
    if (!s) s = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
    return s % 4294967294ull;
}

/* ------------------------------------------------------------------ the command */

int cmd_generate(int argc, char **argv, int first) {
    gen_opts o;
    memset(&o, 0, sizeof o);
    o.p = sdc_txt2img_default_params();
    o.output = "output.png";
    int r = parse_args(argc, argv, first, &o);
    if (r == 1) {
        cmd_generate_help(stdout);
        return 0;
    }
    if (r < 0) return CLI_EXIT_USAGE;

    char err[1024] = "";
    /* everything that can be checked before any heavy work */
    if (!o.model) {
        fprintf(stderr, "sdc: no model given: -m MODEL (see sdc --help)\n");
        return CLI_EXIT_USAGE;
    }
    if (sdc_txt2img_validate(&o.p, err, sizeof err) != SDC_OK) {
        fprintf(stderr, "sdc: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    if (access(o.model, R_OK) != 0) {
        fprintf(stderr, "sdc: model '%s': %s\n", o.model, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    char dir[PATH_MAX];
    dir_of(o.output, dir, sizeof dir);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "sdc: output folder '%s' does not exist\n", dir);
        return CLI_EXIT_USAGE;
    }
    if (access(dir, W_OK) != 0) {
        fprintf(stderr, "sdc: output folder '%s' is not writable: %s\n", dir, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    if (stat(o.output, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "sdc: output '%s' is a folder; give a file name (e.g. %s/output.png)\n", o.output, o.output);
        return CLI_EXIT_USAGE;
    }
    if (o.p.seed < 0) {
        o.p.seed = (int64_t)random_seed();
        fprintf(stderr, "sdc: seed %lld\n", (long long)o.p.seed);
    }
    o.p.model_path = o.model;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    progress pr = {.tty = isatty(2) != 0};
    o.p.progress = on_progress;
    o.p.progress_user = &pr;
    o.p.cancel = cancel_cb;
    o.p.log = on_log;
    o.p.log_user = &o.verbose;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sdc_model *m = NULL;
    if (sdc_model_open(o.model, &m, err, sizeof err) != SDC_OK) {
        fprintf(stderr, "sdc: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (o.verbose)
        fprintf(stderr, "sdc: load: %.2f s (%s, %s)\n", (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
                sdc_model_format(m), sdc_model_arch_name(m));
    sdc_image *imgs = NULL;
    int n = 0;
    sdc_status s = sdc_txt2img(m, &o.p, &imgs, &n, err, sizeof err);
    sdc_model_free(m);
    if (pr.shown && s != SDC_OK) fputc('\n', stderr);
    if (s == SDC_E_CANCELLED || g_interrupted) {
        sdc_images_free(imgs, n);
        fprintf(stderr, "sdc: interrupted; nothing written\n");
        return CLI_EXIT_INTERRUPTED;
    }
    if (s != SDC_OK) {
        fprintf(stderr, "sdc: %s\n", err);
        return s == SDC_E_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }

    char hash[11] = "", stem[256] = "";
    if (!o.no_metadata) {
        char herr[512];
        if (sdc_model_hash(o.model, NULL, hash, herr, sizeof herr) != SDC_OK) hash[0] = 0;
        model_stem(o.model, stem, sizeof stem);
    }
    int rc = 0;
    for (int i = 0; i < n && !g_interrupted; i++) {
        char path[PATH_MAX];
        if (!output_name(o.output, i, n, path, sizeof path)) {
            fprintf(stderr, "sdc: output name too long\n");
            rc = CLI_EXIT_FAIL;
            break;
        }
        char *text = NULL;
        if (!o.no_metadata) {
            size_t len = sdc_infotext(&o.p, imgs[i].seed, hash, stem, NULL, 0);
            text = malloc(len + 1);
            if (text) sdc_infotext(&o.p, imgs[i].seed, hash, stem, text, len + 1);
        }
        if (sdc_image_write_png(path, &imgs[i], text, err, sizeof err) != SDC_OK) {
            fprintf(stderr, "sdc: %s\n", err);
            rc = CLI_EXIT_FAIL;
        } else if (o.verbose || n > 1) {
            fprintf(stderr, "sdc: wrote %s (seed %lld)\n", path, (long long)imgs[i].seed);
        }
        free(text);
    }
    sdc_images_free(imgs, n);
    if (g_interrupted && rc == 0) {
        fprintf(stderr, "sdc: interrupted\n");
        return CLI_EXIT_INTERRUPTED;
    }
    return rc;
}
