/* cpu.h - the CPU execution context every CPU kernel takes: thread pool, the instruction
 * set kernels may use, and per-thread scratch that grows during warm-up and is then reused
 * (so a sampling step allocates nothing after the first).
 *
 * ISA selection is per context, not global: tests build one context capped at
 * SDC_ISA_SCALAR to run a kernel's scalar twin and compare it with the SIMD path. SIMD code
 * is compiled with function-level target attributes, so a portable build (SDC_NATIVE=OFF)
 * still has the AVX2 paths and picks them at run time from CPUID. */
#ifndef SDC_CPU_H
#define SDC_CPU_H

#include <stddef.h>
#include <stdint.h>
#include "sdc.h"
#include "threadpool.h"

typedef enum sdc_isa {
    SDC_ISA_SCALAR = 0,  /* portable C */
    SDC_ISA_AVX2 = 1,    /* AVX2 + FMA + F16C */
    SDC_ISA_AVX512 = 2,  /* AVX-512 F/BW/VL (+VNNI/BF16 where present) */
} sdc_isa;

/* Highest ISA this CPU and OS support (CPUID + XGETBV). */
sdc_isa sdc_cpu_detect_isa(void);
/* AVX-512 VNNI (vpdpbusd) usable: CPUID leaf 7 ECX bit 11 on top of AVX-512. */
int sdc_cpu_detect_vnni(void);
/* AMX-TILE + AMX-BF16 + AVX512-BF16 present and granted by the OS (asked once per process). */
int sdc_cpu_detect_amx(void);
const char *sdc_isa_name(sdc_isa isa);

#define SDC_CPU_MAX_THREADS SDC_MAX_THREADS /* sdc.h: the most threads a run may ask for */

typedef struct sdc_cpu_buf { void *ptr; size_t size; } sdc_cpu_buf; /* grown on demand, kept */

typedef struct sdc_cpu {
    sdc_pool *pool;
    sdc_isa isa;
    int n_threads;
    sdc_cpu_buf scratch[SDC_CPU_MAX_THREADS];
    sdc_cpu_buf work; /* shared workspace (Winograd buffers), kept */
    int winograd;  /* 3x3 stride-1 convolutions by Winograd where eligible (gemm.h): 1 automatic
                      F(4x4) or F(2x2) (default), 0 off, 2 or 4 only that variant; the
                      environment's SDC_WINOGRAD=0|2|4 sets it */
    int vnni;      /* AVX-512 VNNI present and isa == AVX512 (the int8 linear's SIMD kernel) */
    int int8;      /* linear on Q8_0/Q4_0/Q4_1 weights with int8 activations (qgemm.c): 0 off
                      (default: fp32), 1 where the VNNI kernel runs (else fp32), 2 always (the
                      scalar twin without VNNI; tests) */
    int bf16;      /* linear and conv2d on AMX tiles with bf16 operands (amx.c): 0 off (default:
                      fp32), 1 where AMX-BF16 is usable (else fp32) */
    size_t winograd_u_bytes, winograd_chunk_bytes; /* 0: the defaults (winograd.c); tests make
                      them small to cover blocks of output channels and chunks of tile rows */
} sdc_cpu;

/* n_threads <= 0: all cores. max_isa caps the detected ISA (pass SDC_ISA_AVX512 for "best").
 * The environment variable SDC_ISA=scalar|avx2|avx512 lowers it further (debugging). */
sdc_cpu *sdc_cpu_new(int n_threads, sdc_isa max_isa);
void sdc_cpu_free(sdc_cpu *c);

/* Per-thread scratch of at least `bytes`, 64-byte aligned; contents undefined. Grows (and
 * keeps) the buffer when too small; NULL on allocation failure. `thread` is the index the
 * pool passed to the task. */
void *sdc_cpu_scratch(sdc_cpu *c, int thread, size_t bytes);
/* The shared workspace: at least `bytes`, 64-byte aligned, grown and kept like the scratch;
 * for the calling thread's op (never inside a pool task). NULL on allocation failure. */
void *sdc_cpu_workspace(sdc_cpu *c, size_t bytes);

#endif
