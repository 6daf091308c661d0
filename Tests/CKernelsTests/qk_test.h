/* A minimal test harness for the C suites: CHECK counts failures and reports the first few of each kind. */
#ifndef QK_TEST_H
#define QK_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Suites: each returns nothing and reports through CHECK. Return 77 from main to mark a skip. */
typedef struct { const char *name; int (*run)(void); } qk_suite;

#endif
