/* cmd_convert.c - `sdc convert IN OUT.gguf --type TYPE [--quantize-all] [--vocab FILE]`. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

typedef struct { bool tty; double t0; int last_pct; } progress_state;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool progress(void *user, int done, int total, const char *what) {
    progress_state *ps = user;
    if (interrupted) return false;
    if (!ps->tty) return true;
    int pct = total ? (int)(100.0 * done / total) : 100;
    if (pct != ps->last_pct || done == total) {
        fprintf(stderr, "\r\033[K[%3d%%] %d/%d %.60s  (%.1f s)", pct, done, total, what, now_s() - ps->t0);
        ps->last_pct = pct;
    }
    if (done == total) fputc('\n', stderr);
    return true;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: sdc convert IN OUT.gguf --type TYPE [--quantize-all] [--vocab FILE]\n"
            "\n"
            "Converts an SD 1.x model (GGUF, .safetensors or diffusers folder) to GGUF.\n"
            "  --type TYPE      f32, f16 (default), bf16, q8_0, q5_1, q5_0, q4_1, q4_0\n"
            "  --quantize-all   also quantize biases, norm weights, embeddings and the time\n"
            "                   embedding (the rule of the published stable-diffusion-v1-5-GGUF\n"
            "                   files); by default those stay F16\n"
            "  --vocab FILE     embed the CLIP BPE vocabulary (bpe_simple_vocab_16e6.txt.gz or\n"
            "                   merges.txt) so the file is self-contained\n"
            "The output is written to a temporary file and renamed when complete.\n");
}

int cmd_convert(int argc, char **argv) {
    sdc_convert_params p = sdc_convert_default_params();
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--type") || !strcmp(a, "-t")) {
            if (++i >= argc) { fprintf(stderr, "sdc convert: %s needs a value\n", a); return CLI_EXIT_USAGE; }
            p.type = argv[i];
        } else if (!strcmp(a, "--vocab")) {
            if (++i >= argc) { fprintf(stderr, "sdc convert: %s needs a file\n", a); return CLI_EXIT_USAGE; }
            p.vocab_path = argv[i];
        } else if (!strcmp(a, "--quantize-all")) {
            p.quantize_all = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sdc convert: unknown option '%s'\n", a);
            usage(stderr);
            return CLI_EXIT_USAGE;
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            fprintf(stderr, "sdc convert: unexpected argument '%s'\n", a);
            return CLI_EXIT_USAGE;
        }
    }
    if (!in || !out) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    static const char *const valid[] = {"f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0"};
    bool ok = false;
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) ok |= !strcmp(p.type, valid[i]);
    if (!ok) {
        fprintf(stderr, "sdc convert: unknown type '%s' (valid: f32, f16, bf16, q8_0, q5_1, q5_0, q4_1, q4_0)\n", p.type);
        return CLI_EXIT_USAGE;
    }

    progress_state ps = {isatty(2) != 0, now_s(), -1};
    p.progress = progress;
    p.progress_user = &ps;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    char err[1024] = "";
    sdc_status st = sdc_convert(in, out, &p, err, sizeof err);
    if (st != SDC_OK) {
        if (ps.tty) fputc('\n', stderr);
        fprintf(stderr, "sdc convert: %s\n", err);
        return st == SDC_E_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    fprintf(stderr, "sdc convert: wrote %s (%s) in %.1f s\n", out, p.type, now_s() - ps.t0);
    return 0;
}
