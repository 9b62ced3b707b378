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


/* ------------------------------------------------------------------ text-to-image
 *
 *     sdc_txt2img_params p = sdc_txt2img_default_params();
 *     p.prompt = "a photo of an astronaut riding a horse on mars";
 *     p.model_path = "v1-5-pruned-emaonly.safetensors";  // vocabulary search + infotext
 *     sdc_image *imgs; int n;
 *     if (sdc_txt2img(m, &p, &imgs, &n, err, sizeof err) != SDC_OK) ...
 *     char hash[11];
 *     sdc_model_hash(p.model_path, NULL, hash, err, sizeof err);
 *     size_t len = sdc_infotext(&p, imgs[0].seed, hash, "v1-5-pruned-emaonly", NULL, 0);
 *     char *text = malloc(len + 1);
 *     sdc_infotext(&p, imgs[0].seed, hash, "v1-5-pruned-emaonly", text, len + 1);
 *     sdc_image_write_png("out.png", &imgs[0], text, err, sizeof err);
 *     sdc_images_free(imgs, n);
 *
 * Pipeline: tokenize (A1111 emphasis syntax, 75-token chunks) -> CLIP (its pages released
 * after) -> initial noise (draw 0 of the seed's generator, times sigmas[0]) -> sampler over the
 * k-diffusion eps denoiser with classifier-free guidance (batch [uncond, cond]; cfg 1 skips
 * the unconditional pass) -> UNet pages released -> VAE decode -> 8-bit RGB. */

typedef enum sdc_log_level { SDC_LOG_DEBUG = 0, SDC_LOG_INFO = 1, SDC_LOG_WARN = 2, SDC_LOG_ERROR = 3 } sdc_log_level;
typedef void (*sdc_log_fn)(void *user, sdc_log_level level, const char *msg);
/* After each sampling step: image (0-based) of n_images, step 1..steps, that step's seconds. */
typedef void (*sdc_step_fn)(void *user, int image, int n_images, int step, int steps, double step_seconds);
/* Polled between steps and stages; true stops the run with SDC_E_CANCELLED. */
typedef bool (*sdc_cancel_fn)(void *user);

#define SDC_MAX_THREADS 256

typedef struct sdc_txt2img_params {
    const char *prompt;           /* A1111 syntax: (emphasis), [de-emphasis], (word:1.3), BREAK */
    const char *negative_prompt;  /* "" or NULL: none */
    int width, height;            /* pixels, multiples of 8 in [64, 2048]; default 512 */
    int steps;                    /* 1..1000; default 20 */
    float cfg_scale;              /* >= 0; default 7 */
    int64_t seed;                 /* default 42; < 0: a random seed (reported in sdc_image.seed) */
    int batch_count;              /* images, image i uses seed + i; default 1 */
    const char *sampler;          /* stable-diffusion.cpp or A1111 name; default "euler_a" */
    const char *schedule;         /* "discrete" (default), "karras", "exponential", "ays",
                                     "sgm_uniform", "simple" (A1111 labels accepted too) */
    const char *rng;              /* "cuda" (default: torch CUDA randn, A1111/sd.cpp) or "cpu" */
    int clip_skip;                /* <= 0 or 1: last layer; N: hidden_states[-N] */
    bool vae_tiling;              /* decode in 32x32-latent tiles (lower memory) */
    bool stream_weights;          /* true in sdc_txt2img_default_params(): give each layer's
                                     memory-mapped weight pages back right after use (they
                                     fault in again from the page cache), so the process holds
                                     about one layer of weights, not a network; false keeps
                                     them mapped for the whole run */
    bool int8_linear;             /* opt-in fast path: linear layers on Q8_0/Q4_0/Q4_1 weights
                                     take int8 activations (quantized per 32 values) and AVX-512
                                     VNNI int32 dot products; changes the image slightly (see
                                     BENCHMARKS.md). Without VNNI it logs a warning and runs fp32.
                                     Default false: everything in fp32 */
    bool bf16;                    /* opt-in fast path: linear, convolution and (non-causal)
                                     attention layers with bf16 operands and fp32 sums on Intel
                                     AMX tiles (any weight type; before int8_linear where both
                                     are on); changes the image slightly (see BENCHMARKS.md).
                                     Without AMX it logs a warning and runs fp32. Default false */
    int n_threads;                /* <= 0: every core (at most SDC_MAX_THREADS); else 1..SDC_MAX_THREADS */
    float eta;                    /* NAN: the sampler's default */
    bool schedule_from_file;      /* sigmas from the file's alphas_cumprod (stable-diffusion.cpp
                                     parity) instead of the computed schedule */
    const char *model_path;       /* optional: the model's file, searched for an embedded vocabulary */
    const char *vocab_path;       /* optional: CLIP BPE vocabulary (else $SDC_VOCAB, then the cache) */
    sdc_step_fn progress;         /* all callbacks optional */
    void *progress_user;
    sdc_cancel_fn cancel;
    void *cancel_user;
    sdc_log_fn log;               /* stage timings, peak RSS (INFO), details (DEBUG) */
    void *log_user;
} sdc_txt2img_params;

sdc_txt2img_params sdc_txt2img_default_params(void);
/* "euler, euler_a, ..." and "discrete, karras, ...": the accepted names, for help and errors. */
const char *sdc_txt2img_sampler_list(void);
const char *sdc_txt2img_schedule_list(void);

/* 8-bit RGB, rows top to bottom, channels interleaved. */
typedef struct sdc_image {
    int width, height, channels;  /* channels = 3 */
    uint8_t *data;                /* width * height * channels bytes */
    int64_t seed;                 /* the seed this image was made from */
} sdc_image;

/* Checks every parameter without touching a model; on failure SDC_E_INVALID and the message
 * the command shows ("width 100: expected a multiple of 8 in [64, 2048]", "sampler 'foo':
 * expected one of euler, euler_a, ..."). */
sdc_status sdc_txt2img_validate(const sdc_txt2img_params *p, char *err, size_t errlen);

/* Generates p->batch_count images. On success *images (free with sdc_images_free) holds *n
 * images. When cancelled, returns SDC_E_CANCELLED and no images. */
sdc_status sdc_txt2img(sdc_model *m, const sdc_txt2img_params *p, sdc_image **images, int *n, char *err,
                       size_t errlen);
void sdc_images_free(sdc_image *images, int n);

/* A1111's "parameters" infotext for an image made with p and seed:
 *   <prompt>\nNegative prompt: <neg>\nSteps: 20, Sampler: Euler a, Schedule type: Karras,
 *   CFG scale: 7, Seed: 42, Size: 512x512, Model hash: <10 hex>, Model: <name>, Version: sdc 0.1.0
 * (negative line only when non-empty; Schedule type only when not discrete; "Clip skip: N"
 * when N > 1; "RNG: CPU" with the cpu generator; "Eta: x" when set and not the sampler's
 * default; values holding ',' ':' or a newline JSON-quoted; numbers as Python's str()).
 * model_hash / model_name may be NULL or "" (field left out). Writes up to outlen - 1 bytes
 * and a NUL (out may be NULL when outlen is 0); returns the full length, as snprintf. */
size_t sdc_infotext(const sdc_txt2img_params *p, int64_t seed, const char *model_hash, const char *model_name,
                    char *out, size_t outlen);

/* A1111's "Model hash": the first 10 hex digits of the SHA-256 of the model file, cached per
 * file (path, size and mtime) in cache_dir/model-hashes.tsv; cache_dir NULL means
 * $XDG_CACHE_HOME/sdc, else $HOME/.cache/sdc (the one place this reads the environment); a
 * cache that cannot be read or written only costs the hashing. A folder gets SDC_E_UNSUPPORTED. */
sdc_status sdc_model_hash(const char *path, const char *cache_dir, char out[11], char *err, size_t errlen);

/* SHA-256 of a buffer (hex written to out[65]). */
void sdc_sha256_hex(const void *data, size_t n, char out[65]);

/* Writes an 8-bit RGB PNG with an optional "parameters" tEXt chunk (NULL: none), through a
 * temporary file beside path renamed at the end (a failure leaves no file at path). */
sdc_status sdc_image_write_png(const char *path, const sdc_image *img, const char *parameters, char *err,
                               size_t errlen);
/* Reads the text chunk `key` (tEXt, zTXt or iTXt) of a PNG: *value is malloc'd (free with
 * sdc_free) or NULL when the image has no such chunk. SDC_E_FORMAT when not a PNG. */
sdc_status sdc_png_read_text(const char *path, const char *key, char **value, char *err, size_t errlen);
/* Frees memory the library handed out (sdc_png_read_text). */
void sdc_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
