/*
 * The parallel-for behind every operator: OpenMP when compiled with -fopenmp, else a persistent pthread pool.
 *
 * Determinism comes from the callers: tiles are fixed by the problem, never by the thread count, and each tile owns
 * its outputs. Threads only decide who runs which tile.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE   /* sched_getaffinity */
#endif
#include <pthread.h>
#if defined(__linux__)
#include <sched.h>
#endif
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "qk_internal.h"

static atomic_int requested_threads = 0;   /* 0: default */

static int env_threads(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 1) return 0;
    return v > QK_MAX_THREADS ? QK_MAX_THREADS : (int)v;
}

qk_status qk_set_num_threads(int num_threads) {
    if (num_threads < 0 || num_threads > QK_MAX_THREADS)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "thread count must be 0 (default) or 1...%d, got %d",
                       QK_MAX_THREADS, num_threads);
    atomic_store(&requested_threads, num_threads);
    return QK_OK;
}

/* Tiles of a 2D space, enumerated row-major; a 1D space is the case range_j = 1. */
typedef struct job {
    size_t range_i, tile_i, range_j, tile_j, tiles_j, tiles;
    qk_task_2d task2;
    qk_task_1d task1;
    void *context;
    atomic_size_t next;
} job;

static void run_tile(job *j, size_t t) {
    const size_t ti = t / j->tiles_j, tj = t % j->tiles_j;
    const size_t i = ti * j->tile_i, jj = tj * j->tile_j;
    const size_t ni = j->range_i - i < j->tile_i ? j->range_i - i : j->tile_i;
    if (j->task1) {
        j->task1(j->context, i, i + ni);
    } else {
        const size_t nj = j->range_j - jj < j->tile_j ? j->range_j - jj : j->tile_j;
        j->task2(j->context, i, jj, ni, nj);
    }
}

static void run_tiles(job *j) {
    for (;;) {
        const size_t t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (t >= j->tiles) break;
        run_tile(j, t);
    }
}

#if defined(_OPENMP)
/* ------------------------------------------------------------------------------------------- OpenMP */
#if __has_include(<omp.h>)
#include <omp.h>
#else
int omp_get_max_threads(void);
int omp_in_parallel(void);
#endif

const char *qk_thread_backend(void) { return "openmp"; }

int qk_get_num_threads(void) {
    int n = atomic_load(&requested_threads);
    if (n) return n;
    n = env_threads("QUANTKIT_NUM_THREADS");
    if (n) return n;
    n = omp_get_max_threads();
    return n < 1 ? 1 : n > QK_MAX_THREADS ? QK_MAX_THREADS : n;
}

static void run_job(job *j) {
    const int threads = qk_get_num_threads();
    if (threads <= 1 || j->tiles <= 1 || omp_in_parallel()) {
        for (size_t t = 0; t < j->tiles; t++) run_tile(j, t);
        return;
    }
    const int team = (size_t)threads < j->tiles ? threads : (int)j->tiles;
#pragma omp parallel num_threads(team)
    run_tiles(j);
}

#else
/* ------------------------------------------------------------------------------------------- pthread pool */

const char *qk_thread_backend(void) { return "pthread"; }

/* CPUs this process may run on (taskset and cgroup cpusets shrink it), else the online count. */
static int online_cpus(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        const int c = CPU_COUNT(&set);
        if (c >= 1) return c > QK_MAX_THREADS ? QK_MAX_THREADS : c;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > QK_MAX_THREADS ? QK_MAX_THREADS : (int)n;
}

int qk_get_num_threads(void) {
    int n = atomic_load(&requested_threads);
    if (n) return n;
    n = env_threads("QUANTKIT_NUM_THREADS");
    return n ? n : online_cpus();
}

/*
 * Workers sleep on a condition variable between jobs and spin briefly first when the pool does not oversubscribe
 * the CPUs. One job runs at a time (call_lock); a call from inside a job (nested) runs serially.
 */
static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int workers = 0;                  /* started so far; they live until the process ends */
static atomic_ulong generation = 0;      /* bumped for every job */
static job *current = NULL;
static int current_workers = 0;          /* workers [0, current_workers) take part in the current job */
static atomic_int pending = 0;           /* participating workers not finished yet */
static _Atomic int spin_allowed = 0;
static _Thread_local int inside_job = 0;

static inline void cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void *worker_main(void *arg) {
    const int id = (int)(intptr_t)arg;
    unsigned long seen = 0;
    inside_job = 1;
    for (;;) {
        if (spin_allowed)
            for (int spin = 0; spin < 20000 && atomic_load_explicit(&generation, memory_order_acquire) == seen; spin++)
                cpu_relax();
        /* Read the generation and its job together, under the lock that publishes them. */
        pthread_mutex_lock(&pool_lock);
        while (atomic_load_explicit(&generation, memory_order_relaxed) == seen) pthread_cond_wait(&work_cond, &pool_lock);
        seen = atomic_load_explicit(&generation, memory_order_relaxed);
        job *j = current;
        const int takes_part = id < current_workers;
        pthread_mutex_unlock(&pool_lock);
        if (!takes_part) continue;
        run_tiles(j);
        if (atomic_fetch_sub_explicit(&pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool_lock);
            pthread_cond_signal(&done_cond);
            pthread_mutex_unlock(&pool_lock);
        }
    }
    return NULL;
}

/* Starts workers up to `wanted`; returns how many exist. */
static int ensure_workers(int wanted) {
    while (workers < wanted) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int rc = pthread_create(&t, &attr, worker_main, (void *)(intptr_t)workers);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;   /* run with the workers we have */
        workers++;
    }
    return workers;
}

static void run_job(job *j) {
    const int threads = qk_get_num_threads();
    if (threads <= 1 || j->tiles <= 1 || inside_job) {
        for (size_t t = 0; t < j->tiles; t++) run_tile(j, t);
        return;
    }
    pthread_mutex_lock(&call_lock);
    int helpers = ((size_t)threads < j->tiles ? threads : (int)j->tiles) - 1;
    helpers = helpers < ensure_workers(helpers) ? helpers : workers;
    if (helpers <= 0) {
        pthread_mutex_unlock(&call_lock);
        for (size_t t = 0; t < j->tiles; t++) run_tile(j, t);
        return;
    }
    pthread_mutex_lock(&pool_lock);
    spin_allowed = workers + 1 <= online_cpus();
    current = j;
    current_workers = helpers;
    atomic_store_explicit(&pending, helpers, memory_order_relaxed);
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    pthread_cond_broadcast(&work_cond);
    pthread_mutex_unlock(&pool_lock);

    inside_job = 1;
    run_tiles(j);
    inside_job = 0;

    for (int spin = 0; spin < 20000 && atomic_load_explicit(&pending, memory_order_acquire); spin++) cpu_relax();
    if (atomic_load_explicit(&pending, memory_order_acquire)) {
        pthread_mutex_lock(&pool_lock);
        while (atomic_load_explicit(&pending, memory_order_acquire)) pthread_cond_wait(&done_cond, &pool_lock);
        pthread_mutex_unlock(&pool_lock);
    }
    pthread_mutex_unlock(&call_lock);
}
#endif

/* ------------------------------------------------------------------------------------------- front end */

static size_t ceil_div(size_t a, size_t b) { return a / b + (a % b != 0); }

void qk_parallel_for_1d(size_t range, size_t tile, qk_task_1d task, void *context) {
    if (range == 0) return;
    if (tile == 0) tile = 1;
    job j = {.range_i = range, .tile_i = tile, .range_j = 1, .tile_j = 1, .tiles_j = 1,
             .tiles = ceil_div(range, tile), .task1 = task, .context = context};
    atomic_init(&j.next, 0);
    run_job(&j);
}

void qk_parallel_for_2d(size_t range_i, size_t tile_i, size_t range_j, size_t tile_j, qk_task_2d task,
                        void *context) {
    if (range_i == 0 || range_j == 0) return;
    if (tile_i == 0) tile_i = 1;
    if (tile_j == 0) tile_j = 1;
    const size_t tiles_j = ceil_div(range_j, tile_j);
    job j = {.range_i = range_i, .tile_i = tile_i, .range_j = range_j, .tile_j = tile_j, .tiles_j = tiles_j,
             .tiles = ceil_div(range_i, tile_i) * tiles_j, .task2 = task, .context = context};
    atomic_init(&j.next, 0);
    run_job(&j);
}
