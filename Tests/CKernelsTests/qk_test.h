/* A minimal test harness for the C suites: CHECK counts failures and reports the first few of each kind. */
#ifndef QK_TEST_H
#define QK_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern _Atomic long qk_test_failures;
extern _Atomic long qk_test_checks;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        qk_test_checks++;                                                     \
        if (!(cond)) {                                                        \
            if (qk_test_failures++ < 25) {                                    \
                fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
                fprintf(stderr, __VA_ARGS__);                                 \
                fputc('\n', stderr);                                          \
            }                                                                 \
        }                                                                     \
    } while (0)

/* Deterministic xorshift generator. */
typedef struct { uint64_t s; } qk_rng;
static inline uint64_t qk_rng_next(qk_rng *r) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}
static inline float qk_rng_uniform(qk_rng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)((qk_rng_next(r) >> 40) * (1.0 / 16777216.0));
}
static inline float qk_bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t qk_float_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* Same value, or both NaN with the same bits. */
static inline int qk_same_float(float a, float b) { return qk_float_to_bits(a) == qk_float_to_bits(b); }

/* `bytes` usable bytes that end exactly where a PROT_NONE page begins: reading past them faults. */
typedef struct { void *map; size_t map_bytes; unsigned char *p; } fenced;
static inline fenced fenced_alloc(size_t bytes) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t data_pages = (bytes + page - 1) / page;
    fenced f;
    f.map_bytes = (data_pages + 1) * page;
    f.map = mmap(NULL, f.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (f.map == MAP_FAILED) { perror("mmap"); exit(2); }
    mprotect((unsigned char *)f.map + data_pages * page, page, PROT_NONE);
    f.p = (unsigned char *)f.map + data_pages * page - bytes;
    return f;
}
static inline void fenced_free(fenced f) { munmap(f.map, f.map_bytes); }

/* Suites: each returns nothing and reports through CHECK. Return 77 from main to mark a skip. */
typedef struct { const char *name; int (*run)(void); } qk_suite;

#endif
