/* threadpool.h - a small persistent pthread pool running parallel-for loops.
 *
 * Determinism: sdc_pool_for hands out task indices dynamically, so which thread runs a task
 * varies; kernels keep results bit-identical for any thread count by making each task
 * compute a fixed, disjoint piece of the output with a fixed inner order. The thread index
 * passed to the callback is only for choosing per-thread scratch memory. */
#ifndef SDC_THREADPOOL_H
#define SDC_THREADPOOL_H

#include <stdint.h>

typedef struct sdc_pool sdc_pool;

/* n_threads <= 0: one per online CPU; at most SDC_MAX_THREADS (sdc.h). Returns NULL on failure. */
sdc_pool *sdc_pool_new(int n_threads);
void sdc_pool_free(sdc_pool *p);
int sdc_pool_size(const sdc_pool *p);

typedef void (*sdc_pool_fn)(void *ctx, int64_t task, int thread);

/* Calls fn(ctx, t, thread) once for every t in [0, n_tasks), spread over the pool's threads
 * (the caller's thread takes part as thread 0), and returns when all are done. A NULL pool
 * runs everything on the caller's thread. Not reentrant: do not call from inside fn. */
void sdc_pool_for(sdc_pool *p, int64_t n_tasks, sdc_pool_fn fn, void *ctx);

#endif
