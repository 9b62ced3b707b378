/* threadpool.c - see threadpool.h.
 *
 * A loop is published by bumping `generation`; workers take task indices from an atomic
 * counter and count themselves out through `busy`. Between loops a worker first spins on
 * `generation` for up to SPIN_NS, then sleeps on a condition variable; the caller likewise
 * spins on `busy` before sleeping. A UNet step runs ~6000 parallel loops, many of them a few
 * hundred microseconds long: waking a sleeping thread took ~46 us on average here (futex
 * wake plus the hypervisor's reschedule), so sleeping between every loop cost 5-10% of a
 * 256x256 step. The spin is bounded, so an idle pool (between images, in the sampler's
 * single-threaded work) goes back to sleep within SPIN_NS. */
#include "threadpool.h"

#include "sdc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() ((void)0)
#endif

enum { SPIN_NS = 300 * 1000 };

struct sdc_pool {
    int n;                     /* threads including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    atomic_uint_fast64_t generation; /* bumped for every loop (under mu) */
    atomic_int busy;           /* workers still in the current loop */
    int sleepers;              /* workers waiting on `wake`; guarded by mu */
    int caller_sleeps;         /* the caller waits on `done`; guarded by mu */
    atomic_int quit;
    /* the current loop: written before generation is bumped, read after it is seen */
    sdc_pool_fn fn;
    void *ctx;
    int64_t n_tasks;
    atomic_int_fast64_t next;
};

typedef struct { sdc_pool *p; int index; } worker_arg;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void run_tasks(sdc_pool *p, int thread) {
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, thread);
    }
}

static bool new_loop(sdc_pool *p, uint64_t seen) {
    return atomic_load_explicit(&p->generation, memory_order_acquire) != seen;
}

static bool loop_done(sdc_pool *p, uint64_t unused) {
    (void)unused;
    return atomic_load_explicit(&p->busy, memory_order_acquire) == 0;
}

/* Spins until ready(p, arg) (returns true) or SPIN_NS pass (false). */
static bool spin_until(bool (*ready)(sdc_pool *, uint64_t), sdc_pool *p, uint64_t arg) {
    int64_t t0 = 0;
    for (int i = 0;; i++) {
        if (ready(p, arg)) return true;
        cpu_relax();
        if ((i & 63) == 63) {
            int64_t t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > SPIN_NS) return false;
        }
    }
}

static void *worker_main(void *arg) {
    worker_arg *wa = arg;
    sdc_pool *p = wa->p;
    int index = wa->index;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        if (!spin_until(new_loop, p, seen)) {
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while (!atomic_load(&p->quit) && atomic_load(&p->generation) == seen) pthread_cond_wait(&p->wake, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) break;
        seen = atomic_load_explicit(&p->generation, memory_order_acquire);
        run_tasks(p, index);
        if (atomic_fetch_sub_explicit(&p->busy, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            if (p->caller_sleeps) pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

sdc_pool *sdc_pool_new(int n_threads) {
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    if (n_threads > SDC_MAX_THREADS) n_threads = SDC_MAX_THREADS; /* per-thread state elsewhere is sized so */
    sdc_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->busy, 0);
    atomic_init(&p->quit, 0);
    atomic_init(&p->next, 0);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) { free(p); return NULL; }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (wa) { wa->p = p; wa->index = i; }
            if (!wa || pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
                free(wa);
                p->n = i; /* keep the threads that started */
                break;
            }
        }
    }
    return p;
}

void sdc_pool_free(sdc_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    atomic_fetch_add(&p->generation, 1); /* spinning workers see the change, sleeping ones the broadcast */
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int sdc_pool_size(const sdc_pool *p) { return p ? p->n : 1; }

void sdc_pool_for(sdc_pool *p, int64_t n_tasks, sdc_pool_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->n == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    /* every worker has counted itself out of the previous loop (busy == 0), so none reads these */
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->busy, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    if (p->sleepers) pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, 0);
    if (!spin_until(loop_done, p, 0)) {
        pthread_mutex_lock(&p->mu);
        p->caller_sleeps = 1;
        while (atomic_load(&p->busy) > 0) pthread_cond_wait(&p->done, &p->mu);
        p->caller_sleeps = 0;
        pthread_mutex_unlock(&p->mu);
    }
}
