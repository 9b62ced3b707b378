/* test_threadpool.c - every task runs exactly once for pool sizes 1..4 and task counts
 * around the pool size; the pool is reusable across many loops, back to back (workers
 * still spinning), after pauses longer than the spin (workers asleep), and with tasks longer
 * than the spin (the caller asleep while a worker finishes). */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "cpu/threadpool.h"

typedef struct { atomic_int *hits; int nthreads; atomic_int bad_thread; } ctx_t;

static void sleep_ms(int ms) {
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void task(void *vc, int64_t t, int thread) {
    ctx_t *c = vc;
    atomic_fetch_add(&c->hits[t], 1);
    if (thread < 0 || thread >= c->nthreads) atomic_fetch_add(&c->bad_thread, 1);
}

static void slow_task(void *vc, int64_t t, int thread) {
    if (thread != 0) sleep_ms(3);
    task(vc, t, thread);
}

int main(void) {
    for (int nt = 1; nt <= 4; nt++) {
        sdc_pool *p = sdc_pool_new(nt);
        CHECK(p != NULL);
        CHECK(sdc_pool_size(p) == nt);
        int64_t counts[] = {0, 1, 2, 3, 4, 5, 7, 64, 1000};
        for (int rep = 0; rep < 50; rep++) {
            for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++) {
                int64_t n = counts[ci];
                ctx_t c = {calloc((size_t)n + 1, sizeof(atomic_int)), nt, 0};
                sdc_pool_for(p, n, task, &c);
                int wrong = 0;
                for (int64_t i = 0; i < n; i++) wrong += atomic_load(&c.hits[i]) != 1;
                if (wrong || atomic_load(&c.bad_thread)) {
                    CHECK_MSG(0, "pool %d, n=%lld: %d tasks not run exactly once", nt, (long long)n, wrong);
                }
                free(c.hits);
            }
        }
        /* pauses of 2 ms between loops: the workers have gone to sleep when each loop starts */
        for (int rep = 0; rep < 5; rep++) {
            sleep_ms(2);
            ctx_t c = {calloc(8, sizeof(atomic_int)), nt, 0};
            sdc_pool_for(p, 7, task, &c);
            int ok = !atomic_load(&c.bad_thread);
            for (int i = 0; i < 7; i++) ok &= atomic_load(&c.hits[i]) == 1;
            CHECK_MSG(ok, "pool %d: loop after a pause", nt);
            free(c.hits);
        }
        /* a worker sleeping 3 ms in its task: the caller outwaits its spin and sleeps until it ends */
        for (int rep = 0; rep < 3; rep++) {
            ctx_t c = {calloc(3, sizeof(atomic_int)), nt, 0};
            sdc_pool_for(p, 2, slow_task, &c);
            CHECK_MSG(atomic_load(&c.hits[0]) == 1 && atomic_load(&c.hits[1]) == 1, "pool %d: slow task", nt);
            free(c.hits);
        }
        sdc_pool_free(p);
    }
    /* NULL pool runs inline */
    ctx_t c = {calloc(10, sizeof(atomic_int)), 1, 0};
    sdc_pool_for(NULL, 10, task, &c);
    int ok = 1;
    for (int i = 0; i < 10; i++) ok &= atomic_load(&c.hits[i]) == 1;
    CHECK(ok);
    free(c.hits);
    return check_done();
}
