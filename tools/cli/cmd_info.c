/* cmd_info.c - `sdc info MODEL [--json]`: format, detected architecture, the result of the
 * load-time check, tensor count and bytes per type per component, metadata, and whether the
 * file carries an alphas_cumprod schedule. `sdc info IMAGE.png [--json]`: the image's
 * generation parameters (A1111's "parameters" text chunk). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_TYPES 32

typedef struct {
    char type[16];
    int count;
    uint64_t bytes;
} type_row;

typedef struct {
    type_row rows[SDC_COMPONENT_COUNT][MAX_TYPES];
    int nrows[SDC_COMPONENT_COUNT];
    int count[SDC_COMPONENT_COUNT];
    uint64_t bytes[SDC_COMPONENT_COUNT];
    int total;
    uint64_t total_bytes;
    const char *ac_type; /* alphas_cumprod type or NULL */
} summary;

static void summarise(const sdc_model *m, summary *s) {
    memset(s, 0, sizeof *s);
    int n = sdc_model_tensor_count(m);
    for (int i = 0; i < n; i++) {
        sdc_tensor_info ti;
        if (sdc_model_tensor_info(m, i, &ti) != SDC_OK) continue;
        int c = ti.component;
        if (c < 0 || c >= SDC_COMPONENT_COUNT) c = SDC_COMPONENT_OTHER;
        if (!strcmp(ti.name, "alphas_cumprod")) s->ac_type = ti.type;
        int r = 0;
        while (r < s->nrows[c] && strcmp(s->rows[c][r].type, ti.type)) r++;
        if (r == s->nrows[c]) {
            if (r == MAX_TYPES) continue;
            snprintf(s->rows[c][r].type, sizeof s->rows[c][r].type, "%s", ti.type);
            s->nrows[c]++;
        }
        s->rows[c][r].count++;
        s->rows[c][r].bytes += ti.nbytes;
        s->count[c]++;
        s->bytes[c] += ti.nbytes;
        s->total++;
        s->total_bytes += ti.nbytes;
    }
}

static const char *human(uint64_t b, char *buf, size_t len) {
    if (b >= (1ull << 30)) snprintf(buf, len, "%.2f GiB", b / 1073741824.0);
    else if (b >= (1ull << 20)) snprintf(buf, len, "%.1f MiB", b / 1048576.0);
    else if (b >= 1024) snprintf(buf, len, "%.1f KiB", b / 1024.0);
    else snprintf(buf, len, "%llu B", (unsigned long long)b);
    return buf;
}

static int print_text(const char *path, const sdc_model *m, sdc_status check, const char *check_err) {
    summary s;
    summarise(m, &s);
    char h[32];
    printf("file:            %s\n", path);
    printf("format:          %s\n", sdc_model_format(m));
    printf("architecture:    %s\n", sdc_model_arch_name(m));
    printf("check:           %s\n", check == SDC_OK ? "ok: every tensor of the SD 1.x graph is present and well-shaped" : check_err);
    printf("tensors:         %d (%s)\n", s.total, human(s.total_bytes, h, sizeof h));
    if (s.ac_type) printf("alphas_cumprod:  present (%s)\n", s.ac_type);
    else printf("alphas_cumprod:  absent (the schedule is computed)\n");
    printf("\n%-10s %-6s %8s %14s\n", "component", "type", "tensors", "bytes");
    for (int c = 0; c < SDC_COMPONENT_COUNT; c++) {
        for (int r = 0; r < s.nrows[c]; r++)
            printf("%-10s %-6s %8d %14llu  %s\n", sdc_component_name((sdc_component)c), s.rows[c][r].type,
                   s.rows[c][r].count, (unsigned long long)s.rows[c][r].bytes, human(s.rows[c][r].bytes, h, sizeof h));
        if (s.count[c])
            printf("%-10s %-6s %8d %14llu  %s\n", sdc_component_name((sdc_component)c), "all", s.count[c],
                   (unsigned long long)s.bytes[c], human(s.bytes[c], h, sizeof h));
    }
    int nm = sdc_model_meta_count(m);
    printf("\nmetadata:        %d key%s\n", nm, nm == 1 ? "" : "s");
    for (int i = 0; i < nm; i++) {
        const char *key;
        char val[256];
        if (sdc_model_meta(m, i, &key, val, sizeof val) == SDC_OK) printf("  %s = %s\n", key, val);
    }
    return 0;
}

static int print_json(const char *path, const sdc_model *m, sdc_status check, const char *check_err) {
    summary s;
    summarise(m, &s);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", path);
    cJSON_AddStringToObject(root, "format", sdc_model_format(m));
    cJSON_AddStringToObject(root, "architecture", sdc_model_arch_name(m));
    cJSON_AddBoolToObject(root, "supported", check == SDC_OK);
    if (check != SDC_OK) cJSON_AddStringToObject(root, "check_error", check_err);
    cJSON_AddNumberToObject(root, "tensors", s.total);
    cJSON_AddNumberToObject(root, "bytes", (double)s.total_bytes);
    cJSON_AddBoolToObject(root, "alphas_cumprod", s.ac_type != NULL);
    if (s.ac_type) cJSON_AddStringToObject(root, "alphas_cumprod_type", s.ac_type);
    cJSON *comps = cJSON_AddObjectToObject(root, "components");
    for (int c = 0; c < SDC_COMPONENT_COUNT; c++) {
        cJSON *jc = cJSON_AddObjectToObject(comps, sdc_component_name((sdc_component)c));
        cJSON_AddNumberToObject(jc, "tensors", s.count[c]);
        cJSON_AddNumberToObject(jc, "bytes", (double)s.bytes[c]);
        cJSON *types = cJSON_AddObjectToObject(jc, "types");
        for (int r = 0; r < s.nrows[c]; r++) {
            cJSON *jt = cJSON_AddObjectToObject(types, s.rows[c][r].type);
            cJSON_AddNumberToObject(jt, "tensors", s.rows[c][r].count);
            cJSON_AddNumberToObject(jt, "bytes", (double)s.rows[c][r].bytes);
        }
    }
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    int nm = sdc_model_meta_count(m);
    for (int i = 0; i < nm; i++) {
        const char *key;
        char val[1024];
        if (sdc_model_meta(m, i, &key, val, sizeof val) == SDC_OK) cJSON_AddStringToObject(meta, key, val);
    }
    char *txt = cJSON_Print(root);
    if (txt) puts(txt);
    free(txt);
    cJSON_Delete(root);
    return 0;
}

static bool is_png(const char *path) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char b[8];
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    bool ok = fread(b, 1, 8, f) == 8 && memcmp(b, sig, 8) == 0;
    fclose(f);
    return ok;
}

/* Prints a PNG's "parameters" text (exit 1 when it has none). */
static int info_png(const char *path, bool json) {
    char err[1024] = "";
    char *text = NULL;
    if (sdc_png_read_text(path, "parameters", &text, err, sizeof err) != SDC_OK) {
        fprintf(stderr, "sdc info: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    if (!text) {
        fprintf(stderr, "sdc info: %s: no generation parameters (no \"parameters\" text chunk)\n", path);
        return CLI_EXIT_FAIL;
    }
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "file", path);
        cJSON_AddStringToObject(root, "parameters", text);
        char *txt = cJSON_Print(root);
        if (txt) puts(txt);
        free(txt);
        cJSON_Delete(root);
    } else {
        puts(text);
    }
    sdc_free(text);
    return 0;
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: sdc info MODEL [--json]\n"
                   "       sdc info IMAGE.png [--json]\n"
                   "For an image: prints its generation parameters (A1111 infotext) back.\n"
                   "Prints a model's format, detected architecture, load check, tensor counts and bytes\n"
                   "per type per component (clip, unet, vae, other), metadata, and alphas_cumprod.\n");
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "sdc info: unknown option '%s'\n", argv[i]);
            return CLI_EXIT_USAGE;
        } else if (!path) path = argv[i];
        else {
            fprintf(stderr, "sdc info: unexpected argument '%s'\n", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: sdc info MODEL [--json]\n");
        return CLI_EXIT_USAGE;
    }
    if (is_png(path)) return info_png(path, json);
    char err[1024] = "";
    sdc_model *m = NULL;
    sdc_status st = sdc_model_open(path, &m, err, sizeof err);
    if (st != SDC_OK) {
        fprintf(stderr, "sdc info: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    char cerr[1024] = "";
    sdc_status check = sdc_model_check(m, cerr, sizeof cerr);
    int rc = json ? print_json(path, m, check, cerr) : print_text(path, m, check, cerr);
    sdc_model_free(m);
    return rc;
}
