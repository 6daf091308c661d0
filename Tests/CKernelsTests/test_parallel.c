/*
 * The parallel-for under stress: thousands of calls with 1..5 threads on 2 cores, every tile exactly once, nested
 * calls, concurrent callers, and overlap of two tiles in time (proof that threads really run in parallel).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "qk_test.h"

#include "qk_internal.h"

_Atomic long qk_test_failures = 0;
_Atomic long qk_test_checks = 0;

typedef struct { atomic_int *hits; size_t range; int nested; } count_ctx;

static void count_1d(void *ctx, size_t b, size_t e) {
    count_ctx *c = ctx;
    for (size_t i = b; i < e; i++) atomic_fetch_add(&c->hits[i], 1);
    if (c->nested) {   /* a nested parallel-for runs serially and completely */
        atomic_int inner[7] = {0};
        count_ctx n = {inner, 7, 0};
        qk_parallel_for_1d(7, 2, count_1d, &n);
        for (int i = 0; i < 7; i++) CHECK(atomic_load(&inner[i]) == 1, "nested index %d ran %d times", i, atomic_load(&inner[i]));
    }
}

typedef struct { atomic_int *hits; size_t rj; } grid_ctx;
static void count_2d(void *ctx, size_t i, size_t j, size_t ti, size_t tj) {
    grid_ctx *g = ctx;
    for (size_t a = i; a < i + ti; a++)
        for (size_t b = j; b < j + tj; b++) atomic_fetch_add(&g->hits[a * g->rj + b], 1);
}

static void stress(int calls) {
    atomic_int *hits = calloc(5000, sizeof *hits);
    qk_rng rng = {99};
    for (int call = 0; call < calls; call++) {
        const int threads = 1 + call % 5;
        qk_set_num_threads(threads);
        const size_t range = qk_rng_next(&rng) % 3000, tile = 1 + qk_rng_next(&rng) % 300;
        for (size_t i = 0; i < range; i++) atomic_store(&hits[i], 0);
        count_ctx c = {hits, range, call % 50 == 0};
        qk_parallel_for_1d(range, tile, count_1d, &c);
        size_t bad = 0;
        for (size_t i = 0; i < range; i++) bad += atomic_load(&hits[i]) != 1;
        CHECK(bad == 0, "1d call %d (range %zu tile %zu threads %d): %zu indices not run exactly once", call, range,
              tile, threads, bad);
        const size_t ri = qk_rng_next(&rng) % 60, rj = qk_rng_next(&rng) % 60;
        for (size_t i = 0; i < ri * rj; i++) atomic_store(&hits[i], 0);
        grid_ctx g = {hits, rj};
        qk_parallel_for_2d(ri, 1 + qk_rng_next(&rng) % 8, rj, 1 + qk_rng_next(&rng) % 16, count_2d, &g);
        bad = 0;
        for (size_t i = 0; i < ri * rj; i++) bad += atomic_load(&hits[i]) != 1;
        CHECK(bad == 0, "2d call %d (%zux%zu, threads %d): %zu cells not run exactly once", call, ri, rj, threads, bad);
    }
    free(hits);
}

static void *concurrent_caller(void *arg) {
    (void)arg;
    atomic_int hits[1000];
    for (int call = 0; call < 300; call++) {
        for (int i = 0; i < 1000; i++) atomic_store(&hits[i], 0);
        count_ctx c = {hits, 1000, 0};
        qk_parallel_for_1d(1000, 37, count_1d, &c);
        int bad = 0;
        for (int i = 0; i < 1000; i++) bad += atomic_load(&hits[i]) != 1;
        CHECK(bad == 0, "concurrent call %d: %d indices wrong", call, bad);
    }
    return NULL;
}

static double thread_cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static double wall_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void spin_tile(void *ctx, size_t b, size_t e) {
    (void)e;
    ((pthread_t *)ctx)[b] = pthread_self();
    const double t0 = thread_cpu_seconds();
    while (thread_cpu_seconds() - t0 < 0.15) { }
}

/* Many threads make their first kernel call at once: the table is filled once and every call succeeds. */
static void *first_use(void *arg) {
    (void)arg;
    float x[100];
    uint8_t q[100];
    for (int i = 0; i < 100; i++) x[i] = (float)i;
    CHECK(qk_quantize_per_tensor(QK_DTYPE_QUINT8, 100, x, q, 1.0f, 0) == QK_OK, "first use failed");
    int bad = 0;
    for (int i = 0; i < 100; i++) bad += q[i] != i;
    CHECK(bad == 0, "first use gave %d wrong values", bad);
    return NULL;
}

int main(int argc, char **argv) {
    const int calls = argc > 1 ? atoi(argv[1]) : 5000;
    pthread_t first[8];
    for (int i = 0; i < 8; i++) pthread_create(&first[i], NULL, first_use, NULL);
    for (int i = 0; i < 8; i++) pthread_join(first[i], NULL);
    printf("backend %s, default %d threads\n", qk_thread_backend(), qk_get_num_threads());
    stress(calls);
    qk_set_num_threads(2);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, concurrent_caller, NULL);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    /* Two tiles that each burn 150 ms of thread CPU time run on two different threads; the wall time (about 150 ms
     * on two idle cores, 300 ms when they share one) is printed, not asserted: another job may hold a core. */
    pthread_t ran_on[2];
    const double t0 = wall_seconds();
    qk_parallel_for_1d(2, 1, spin_tile, ran_on);
    const double wall = wall_seconds() - t0;
    printf("two 150 ms tiles on 2 threads took %.0f ms of wall time\n", wall * 1e3);
    CHECK(!pthread_equal(ran_on[0], ran_on[1]), "both tiles ran on the same thread");
    qk_set_num_threads(0);
    printf("parallel: %ld checks, %ld failures\n", qk_test_checks, qk_test_failures);
    return qk_test_failures != 0;
}
