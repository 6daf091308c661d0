/*
 * Every microkernel variant against its scalar reference, bit for bit. The variants come from QK_VARIANTS, so a new
 * kernel is tested as soon as it is listed. Variants the CPU cannot run are reported as skipped.
 *
 * Built twice on x86: natively (the library's variants) and, with QK_TEST_EMULATED_AVX512, against the AVX-512
 * files compiled through SIMDe on a CPU without AVX-512.
 */
#include "qk_test.h"

#include "qk_kernels.h"
#include "qk_scalar_math.h"

_Atomic long qk_test_failures = 0;
_Atomic long qk_test_checks = 0;

#if defined(QK_TEST_EMULATED_AVX512)
/* Only the AVX-512 variants (emulated, so runnable anywhere) and the scalar references. */
#undef QK_VARIANTS
#define QK_VARIANTS(X)                              \
    QK_ELEMENTWISE_VARIANTS(X, avx512, 0u)          \
    QK_ELEMENTWISE_VARIANTS(X, scalar, QK_REQ_SCALAR)
static uint32_t cpu_features(void) { return ~0u; }
#else
#include "quantkit.h"
static uint32_t cpu_features(void) { return qk_cpu_features(); }
#endif

static const size_t sizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 95, 96, 97,
                               127, 128, 129, 191, 255, 256, 257, 511, 1000, 1023, 4099};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define MAXN 4099
#define GUARD 64   /* bytes after each output that must stay untouched */

static qk_rng rng = {0x9E3779B97F4A7C15ull};

/* Fills x with values around [lo, hi], ties at k + 0.5 steps of `step`, and special values. */
static void fill_floats(float *x, size_t n, float lo, float hi, float step) {
    static const uint32_t specials[] = {0x7FC00000u, 0xFFC00001u, 0x7F800001u, 0x7FA12345u, 0x7F800000u, 0xFF800000u,
                                        0x80000000u, 0x00000000u, 0x00000001u, 0x807FFFFFu, 0x7F7FFFFFu, 0xFF7FFFFFu,
                                        0x4F000000u, 0xCF000000u, 0x4EFFFFFFu, 0xCF000001u, 0x5F000000u, 0x3F000000u};
    for (size_t i = 0; i < n; i++) {
        const uint64_t r = qk_rng_next(&rng) % 16;
        if (r == 0) x[i] = qk_bits_to_float(specials[qk_rng_next(&rng) % (sizeof specials / sizeof specials[0])]);
        else if (r < 5) x[i] = ((float)(int)(qk_rng_uniform(&rng, lo, hi) / step) + 0.5f) * step;
        else if (r == 5) x[i] = qk_rng_uniform(&rng, -1e30f, 1e30f);
        else x[i] = qk_rng_uniform(&rng, lo, hi);
    }
}

static void *guarded(size_t bytes) {
    unsigned char *p = malloc(bytes + GUARD + 64);
    memset(p, 0xA5, bytes + GUARD + 64);
    return p;
}

static int guard_intact(const void *base, size_t bytes) {
    const unsigned char *p = (const unsigned char *)base + bytes;
    for (size_t i = 0; i < GUARD; i++)
        if (p[i] != 0xA5) return 0;
    return 1;
}

/* Parameter sets: (scale, zero point) per dtype. */
typedef struct { float scale; int32_t zp; } qparam;
static const qparam qu8_params[] = {{0.0173f, 193}, {1.0f, 0}, {0.5f, 128}, {2.0f, 255}, {1e-3f, 7}, {3.3e-38f, 100}};
static const qparam qs8_params[] = {{0.0173f, -3}, {1.0f, 0}, {0.5f, 127}, {2.0f, -128}, {1e-3f, 77}};
static const qparam qs32_params[] = {{0.0173f, -2}, {1.0f, 0}, {1e-9f, 5}, {1e-3f, INT32_MAX}, {1.0f, INT32_MIN},
                                     {4.0f, -123456789}};
#define NPARAMS(a) (sizeof a / sizeof a[0])

/* ------------------------------------------------------------------------------------------- quantize */

#define TEST_QUANTIZE(name, T, PARAMS)                                                                              \
    static void test_f32_##name##_quantize(qk_f32_##name##_quantize_fn *fn, qk_f32_##name##_quantize_fn *ref,      \
                                           const char *label) {                                                    \
        float *x = malloc((MAXN + 16) * sizeof(float));                                                            \
        T *want = malloc((MAXN + 16) * sizeof(T));                                                                 \
        for (size_t p = 0; p < NPARAMS(PARAMS); p++)                                                               \
            for (size_t s = 0; s < NSIZES; s++)                                                                    \
                for (size_t off = 0; off < 4; off++) {                                                             \
                    const size_t n = sizes[s];                                                                     \
                    const float scale = PARAMS[p].scale;                                                           \
                    fill_floats(x + off, n, -300.0f * scale, 300.0f * scale, scale);                               \
                    unsigned char *buf = guarded((n + off) * sizeof(T));                                          \
                    T *y = (T *)buf + off;                                                                         \
                    ref(n, x + off, want, 1.0f / scale, PARAMS[p].zp);                                             \
                    fn(n, x + off, y, 1.0f / scale, PARAMS[p].zp);                                                 \
                    size_t bad = 0, first = 0;                                                                     \
                    for (size_t i = 0; i < n; i++)                                                                 \
                        if (y[i] != want[i] && !bad++) first = i;                                                  \
                    CHECK(bad == 0, "%s n=%zu off=%zu scale=%g zp=%d: %zu mismatches, first x=%a got %lld want %lld", \
                          label, n, off, (double)scale, PARAMS[p].zp, bad, (double)x[off + first],                 \
                          (long long)y[first], (long long)want[first]);                                            \
                    CHECK(guard_intact(buf, (n + off) * sizeof(T)), "%s n=%zu off=%zu wrote past the end", label, n, off); \
                    free(buf);                                                                                     \
                }                                                                                                  \
        free(x);                                                                                                   \
        free(want);                                                                                                \
    }                                                                                                              \
    static void test_f32_##name##_quantize_pc(qk_f32_##name##_quantize_pc_fn *fn, qk_f32_##name##_quantize_pc_fn *ref, \
                                              const char *label) {                                                 \
        float *x = malloc((MAXN + 16) * sizeof(float)), *inv = malloc(MAXN * sizeof(float));                       \
        int32_t *zp = malloc(MAXN * sizeof(int32_t));                                                              \
        T *want = malloc((MAXN + 16) * sizeof(T));                                                                 \
        for (size_t s = 0; s < NSIZES; s++)                                                                        \
            for (size_t off = 0; off < 3; off++) {                                                                 \
                const size_t n = sizes[s];                                                                         \
                for (size_t i = 0; i < n; i++) {                                                                   \
                    const qparam q = PARAMS[qk_rng_next(&rng) % NPARAMS(PARAMS)];                                  \
                    inv[i] = 1.0f / q.scale;                                                                       \
                    zp[i] = q.zp;                                                                                  \
                }                                                                                                  \
                fill_floats(x + off, n, -300.0f, 300.0f, 0.25f);                                                   \
                for (size_t i = 0; i < n; i++)                                                                     \
                    if (qk_rng_next(&rng) % 2) x[off + i] = (x[off + i] / 300.0f) * 300.0f / inv[i];               \
                unsigned char *buf = guarded((n + off) * sizeof(T));                                              \
                T *y = (T *)buf + off;                                                                             \
                ref(n, x + off, want, inv, zp);                                                                    \
                fn(n, x + off, y, inv, zp);                                                                        \
                size_t bad = 0, first = 0;                                                                         \
                for (size_t i = 0; i < n; i++)                                                                     \
                    if (y[i] != want[i] && !bad++) first = i;                                                      \
                CHECK(bad == 0, "%s n=%zu off=%zu: %zu mismatches, first x=%a got %lld want %lld", label, n, off,  \
                      bad, (double)x[off + first], (long long)y[first], (long long)want[first]);                   \
                CHECK(guard_intact(buf, (n + off) * sizeof(T)), "%s n=%zu wrote past the end", label, n);          \
                free(buf);                                                                                         \
            }                                                                                                      \
        free(x); free(inv); free(zp); free(want);                                                                  \
    }

TEST_QUANTIZE(qu8, uint8_t, qu8_params)
TEST_QUANTIZE(qs8, int8_t, qs8_params)
TEST_QUANTIZE(qs32, int32_t, qs32_params)

/* ------------------------------------------------------------------------------------------- dequantize */

#define TEST_DEQUANTIZE(name, T, PARAMS, GEN)                                                                      \
    static void test_##name##_f32_dequantize(qk_##name##_f32_dequantize_fn *fn, qk_##name##_f32_dequantize_fn *ref, \
                                             const char *label) {                                                  \
        T *q = malloc((MAXN + 16) * sizeof(T));                                                                    \
        float *want = malloc(MAXN * sizeof(float));                                                                \
        for (size_t p = 0; p < NPARAMS(PARAMS); p++)                                                               \
            for (size_t s = 0; s < NSIZES; s++)                                                                    \
                for (size_t off = 0; off < 4; off++) {                                                             \
                    const size_t n = sizes[s];                                                                     \
                    for (size_t i = 0; i < n; i++) q[off + i] = (T)(GEN);                                          \
                    unsigned char *buf = guarded((n + off) * sizeof(float));                                      \
                    float *y = (float *)buf + off;                                                                 \
                    ref(n, q + off, want, PARAMS[p].scale, PARAMS[p].zp);                                          \
                    fn(n, q + off, y, PARAMS[p].scale, PARAMS[p].zp);                                              \
                    size_t bad = 0, first = 0;                                                                     \
                    for (size_t i = 0; i < n; i++)                                                                 \
                        if (!qk_same_float(y[i], want[i]) && !bad++) first = i;                                    \
                    CHECK(bad == 0, "%s n=%zu off=%zu: %zu mismatches, first q=%lld got %a want %a", label, n, off, \
                          bad, (long long)q[off + first], (double)y[first], (double)want[first]);                  \
                    CHECK(guard_intact(buf, (n + off) * sizeof(float)), "%s n=%zu wrote past the end", label, n);  \
                    free(buf);                                                                                     \
                }                                                                                                  \
        free(q); free(want);                                                                                       \
    }                                                                                                              \
    static void test_##name##_f32_dequantize_pc(qk_##name##_f32_dequantize_pc_fn *fn,                              \
                                                qk_##name##_f32_dequantize_pc_fn *ref, const char *label) {        \
        T *q = malloc((MAXN + 16) * sizeof(T));                                                                    \
        float *want = malloc(MAXN * sizeof(float)), *sc = malloc(MAXN * sizeof(float));                            \
        int32_t *zp = malloc(MAXN * sizeof(int32_t));                                                              \
        for (size_t s = 0; s < NSIZES; s++)                                                                        \
            for (size_t off = 0; off < 3; off++) {                                                                 \
                const size_t n = sizes[s];                                                                         \
                for (size_t i = 0; i < n; i++) {                                                                   \
                    const qparam pp = PARAMS[qk_rng_next(&rng) % NPARAMS(PARAMS)];                                 \
                    sc[i] = pp.scale * qk_rng_uniform(&rng, 0.5f, 2.0f);                                           \
                    zp[i] = pp.zp;                                                                                 \
                    q[off + i] = (T)(GEN);                                                                         \
                }                                                                                                  \
                unsigned char *buf = guarded((n + off) * sizeof(float));                                          \
                float *y = (float *)buf + off;                                                                     \
                ref(n, q + off, want, sc, zp);                                                                     \
                fn(n, q + off, y, sc, zp);                                                                         \
                size_t bad = 0;                                                                                    \
                for (size_t i = 0; i < n; i++) bad += !qk_same_float(y[i], want[i]);                               \
                CHECK(bad == 0, "%s n=%zu off=%zu: %zu mismatches", label, n, off, bad);                           \
                CHECK(guard_intact(buf, (n + off) * sizeof(float)), "%s n=%zu wrote past the end", label, n);      \
                free(buf);                                                                                         \
            }                                                                                                      \
        free(q); free(want); free(sc); free(zp);                                                                   \
    }

TEST_DEQUANTIZE(qu8, uint8_t, qu8_params, qk_rng_next(&rng))
TEST_DEQUANTIZE(qs8, int8_t, qs8_params, qk_rng_next(&rng))
TEST_DEQUANTIZE(qs32, int32_t, qs32_params,
                (qk_rng_next(&rng) % 4 == 0) ? (int32_t)qk_rng_next(&rng) : (int32_t)(qk_rng_next(&rng) % 20001) - 10000)

/* ------------------------------------------------------------------------------------------- requantize */

typedef struct { float m; int32_t zp, qmin, qmax; } rparam;
static const rparam qu8_rparams[] = {{1.0f / 256, 128, 0, 255}, {0.37f, 0, 0, 255}, {0.5f, 3, 3, 255},
                                     {1e-6f, 255, 0, 255}, {2.5f, 100, 20, 200}, {0.0075f, 0, 0, 0}};
static const rparam qs8_rparams[] = {{1.0f / 256, 0, -128, 127}, {0.37f, -5, -128, 127}, {0.5f, 3, 3, 127},
                                     {1e-6f, -128, -128, 127}, {2.5f, 10, -100, 100}};

static int32_t gen_acc(void) {
    switch (qk_rng_next(&rng) % 8) {
    case 0: return (int32_t)qk_rng_next(&rng);                      /* anywhere, saturating */
    case 1: return (qk_rng_next(&rng) % 2) ? INT32_MAX : INT32_MIN;
    case 2: return ((int32_t)(qk_rng_next(&rng) % 2001) - 1000) * 128 + 64;   /* ties for m = 1/256, 0.5 */
    default: return (int32_t)(qk_rng_next(&rng) % 200001) - 100000;
    }
}

#define TEST_REQUANTIZE(name, T, PARAMS)                                                                           \
    static void test_qs32_##name##_requantize(qk_qs32_##name##_requantize_fn *fn, qk_qs32_##name##_requantize_fn *ref, \
                                              const char *label) {                                                 \
        int32_t *acc = malloc((MAXN + 16) * sizeof(int32_t));                                                      \
        T *want = malloc(MAXN * sizeof(T));                                                                        \
        for (size_t p = 0; p < NPARAMS(PARAMS); p++)                                                               \
            for (size_t s = 0; s < NSIZES; s++)                                                                    \
                for (size_t off = 0; off < 4; off++) {                                                             \
                    const size_t n = sizes[s];                                                                     \
                    const rparam r = PARAMS[p];                                                                    \
                    for (size_t i = 0; i < n; i++) acc[off + i] = gen_acc();                                       \
                    unsigned char *buf = guarded(n + off);                                                        \
                    T *y = (T *)buf + off;                                                                         \
                    ref(n, acc + off, want, r.m, r.zp, r.qmin, r.qmax);                                            \
                    fn(n, acc + off, y, r.m, r.zp, r.qmin, r.qmax);                                                \
                    size_t bad = 0, first = 0;                                                                     \
                    for (size_t i = 0; i < n; i++)                                                                 \
                        if (y[i] != want[i] && !bad++) first = i;                                                  \
                    CHECK(bad == 0, "%s n=%zu off=%zu m=%g: %zu mismatches, first acc=%d got %d want %d", label, n, \
                          off, (double)r.m, bad, acc[off + first], (int)y[first], (int)want[first]);               \
                    CHECK(guard_intact(buf, n + off), "%s n=%zu wrote past the end", label, n);                    \
                    free(buf);                                                                                     \
                }                                                                                                  \
        free(acc); free(want);                                                                                     \
    }                                                                                                              \
    static void test_qs32_##name##_requantize_pc(qk_qs32_##name##_requantize_pc_fn *fn,                            \
                                                 qk_qs32_##name##_requantize_pc_fn *ref, const char *label) {      \
        int32_t *acc = malloc((MAXN + 16) * sizeof(int32_t));                                                      \
        float *m = malloc(MAXN * sizeof(float));                                                                   \
        T *want = malloc(MAXN * sizeof(T));                                                                        \
        for (size_t p = 0; p < NPARAMS(PARAMS); p++)                                                               \
            for (size_t s = 0; s < NSIZES; s++) {                                                                  \
                const size_t n = sizes[s], off = s % 3;                                                            \
                const rparam r = PARAMS[p];                                                                        \
                for (size_t i = 0; i < n; i++) {                                                                   \
                    acc[off + i] = gen_acc();                                                                      \
                    m[i] = PARAMS[qk_rng_next(&rng) % NPARAMS(PARAMS)].m;                                          \
                }                                                                                                  \
                unsigned char *buf = guarded(n + off);                                                            \
                T *y = (T *)buf + off;                                                                             \
                ref(n, acc + off, want, m, r.zp, r.qmin, r.qmax);                                                  \
                fn(n, acc + off, y, m, r.zp, r.qmin, r.qmax);                                                      \
                size_t bad = 0;                                                                                    \
                for (size_t i = 0; i < n; i++) bad += y[i] != want[i];                                             \
                CHECK(bad == 0, "%s n=%zu: %zu mismatches", label, n, bad);                                        \
                CHECK(guard_intact(buf, n + off), "%s n=%zu wrote past the end", label, n);                        \
                free(buf);                                                                                         \
            }                                                                                                      \
        free(acc); free(m); free(want);                                                                            \
    }

TEST_REQUANTIZE(qu8, uint8_t, qu8_rparams)
TEST_REQUANTIZE(qs8, int8_t, qs8_rparams)

/* ------------------------------------------------------------------------------------------- fp16 */

/* Half patterns: all 65536 for f16 -> f32; floats: every 4099th bit pattern (about a million) plus edge cases. */
static void test_f16_f32_convert(qk_f16_f32_convert_fn *fn, qk_f16_f32_convert_fn *ref, const char *label) {
    uint16_t *h = malloc(65536 * sizeof *h + 64);
    float *want = malloc(65536 * sizeof(float)), *got = malloc(65536 * sizeof(float) + GUARD + 64);
    for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    ref(65536, h, want);
    for (size_t off = 0; off < 3; off++) {
        memset(got, 0xA5, 65536 * sizeof(float) + GUARD + 64);
        memmove(h + off, h, 65536 * sizeof *h);
        fn(65536 - off, h + off, got + off);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i + off < 65536; i++)
            if (!qk_same_float(got[off + i], want[i]) && !bad++) first = i;
        CHECK(bad == 0, "%s off=%zu: %zu of 65536 halves differ, first %04zx got %08x want %08x", label, off, bad,
              first, qk_float_to_bits(got[off + first]), qk_float_to_bits(want[first]));
        CHECK(guard_intact(got + off, (65536 - off) * sizeof(float)), "%s wrote past the end", label);
        memmove(h, h + off, (65536 - off) * sizeof *h);
        for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    }
    for (size_t s = 0; s < NSIZES; s++) {   /* tails */
        const size_t n = sizes[s];
        memset(got, 0xA5, n * sizeof(float) + GUARD);
        fn(n, h + 1000, got);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) bad += !qk_same_float(got[i], want[1000 + i]);
        CHECK(bad == 0 && guard_intact(got, n * sizeof(float)), "%s n=%zu: %zu mismatches or overrun", label, n, bad);
    }
    free(h); free(want); free(got);
}

#define FP16_SAMPLES (1u << 20)
static float *fp16_test_inputs(size_t *count) {
    static const uint32_t edges[] = {0x477FE000u, 0x477FEFFFu, 0x477FF000u, 0x477FF001u, 0x47800000u, 0xC77FF000u,
                                     0x38800000u, 0x387FFFFFu, 0x33800000u, 0x33000000u, 0x33000001u, 0x32FFFFFFu,
                                     0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x7F800001u, 0xFFFFFFFFu, 0x7FBFE000u,
                                     0x00000000u, 0x80000000u, 0x3F801000u, 0x3F803000u, 0x477FF000u, 0x477FE001u};
    const size_t n = FP16_SAMPLES + sizeof edges / sizeof edges[0];
    float *x = malloc(n * sizeof *x + 64);
    uint32_t bits = 0;
    for (size_t i = 0; i < FP16_SAMPLES; i++, bits += 4099u) x[i] = qk_bits_to_float(bits);
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) x[FP16_SAMPLES + i] = qk_bits_to_float(edges[i]);
    *count = n;
    return x;
}

static void test_f32_f16_convert(qk_f32_f16_convert_fn *fn, qk_f32_f16_convert_fn *ref, const char *label) {
    size_t n;
    float *x = fp16_test_inputs(&n);
    uint16_t *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got + GUARD + 64);
    ref(n, x, want);
    for (size_t off = 0; off < 2; off++) {
        memset(got, 0xA5, n * sizeof *got + GUARD + 64);
        fn(n - off, x + off, got + off);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i + off < n; i++)
            if (got[off + i] != want[off + i] && !bad++) first = off + i;
        CHECK(bad == 0, "%s: %zu mismatches, first x=%08x got %04x want %04x", label, bad,
              qk_float_to_bits(x[first]), got[first], want[first]);
        CHECK(guard_intact(got + off, (n - off) * sizeof *got), "%s wrote past the end", label);
    }
    for (size_t s = 0; s < NSIZES; s++) {
        const size_t m = sizes[s];
        memset(got, 0xA5, m * sizeof *got + GUARD);
        fn(m, x + n - m, got);
        size_t bad = 0;
        for (size_t i = 0; i < m; i++) bad += got[i] != want[n - m + i];
        CHECK(bad == 0 && guard_intact(got, m * sizeof *got), "%s n=%zu: %zu mismatches or overrun", label, m, bad);
    }
    free(x); free(want); free(got);
}

static void test_f32_f16_convert_sat(qk_f32_f16_convert_sat_fn *fn, qk_f32_f16_convert_sat_fn *ref,
                                     const char *label) {
    size_t n;
    float *x = fp16_test_inputs(&n);
    uint16_t *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got + GUARD + 64);
    const size_t want_count = ref(n, x, want);
    memset(got, 0xA5, n * sizeof *got + GUARD + 64);
    const size_t got_count = fn(n, x, got);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += got[i] != want[i];
    CHECK(bad == 0, "%s: %zu mismatches", label, bad);
    CHECK(got_count == want_count, "%s: saturated count %zu, want %zu", label, got_count, want_count);
    CHECK(guard_intact(got, n * sizeof *got), "%s wrote past the end", label);
    for (size_t s = 0; s < NSIZES; s++) {
        const size_t m = sizes[s];
        const size_t wc = ref(m, x + n - m, want);
        memset(got, 0xA5, m * sizeof *got + GUARD);
        const size_t gc = fn(m, x + n - m, got);
        size_t b = 0;
        for (size_t i = 0; i < m; i++) b += got[i] != want[i];
        CHECK(b == 0 && gc == wc && guard_intact(got, m * sizeof *got), "%s n=%zu: %zu mismatches, count %zu/%zu",
              label, m, b, gc, wc);
    }
    free(x); free(want); free(got);
}

/* ------------------------------------------------------------------------------------------- minmax */

static void test_f32_minmax(qk_f32_minmax_fn *fn, qk_f32_minmax_fn *ref, const char *label) {
    float *x = malloc((MAXN + 16) * sizeof(float));
    for (int finite_only = 0; finite_only < 2; finite_only++)
        for (size_t s = 0; s < NSIZES; s++)
            for (size_t off = 0; off < 4; off++) {
                const size_t n = sizes[s];
                fill_floats(x + off, n, -5.0f, 7.0f, 0.5f);
                if (n > 2 && s % 3 == 0)   /* all NaN and inf */
                    for (size_t i = 0; i < n; i++) x[off + i] = (i % 2) ? NAN : (i % 4 ? INFINITY : -INFINITY);
                float a_lo = INFINITY, a_hi = -INFINITY, b_lo = INFINITY, b_hi = -INFINITY;
                ref(n, x + off, finite_only, &a_lo, &a_hi);
                fn(n, x + off, finite_only, &b_lo, &b_hi);
                CHECK(a_lo == b_lo && a_hi == b_hi, "%s n=%zu off=%zu finite_only=%d: got [%g, %g] want [%g, %g]", label,
                      n, off, finite_only, (double)b_lo, (double)b_hi, (double)a_lo, (double)a_hi);
                float c_lo = -3.0f, c_hi = 3.0f, d_lo = -3.0f, d_hi = 3.0f;   /* folds into the running values */
                ref(n, x + off, finite_only, &c_lo, &c_hi);
                fn(n, x + off, finite_only, &d_lo, &d_hi);
                CHECK(c_lo == d_lo && c_hi == d_hi, "%s n=%zu: running fold differs", label, n);
            }
    free(x);
}

/* ------------------------------------------------------------------------------------------- main */

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;   /* optional substring filter on the variant name */
    const uint32_t cpu = cpu_features();
    int tested = 0, skipped = 0;
#define QK__RUN(slot, fn, req)                                                                     \
    if ((void *)fn != (void *)qk_##slot##__scalar && (!only || strstr(#fn, only))) {               \
        if (((req) & ~cpu) != 0) {                                                                 \
            printf("skip %-40s (CPU lacks it)\n", #fn);                                            \
            skipped++;                                                                             \
        } else {                                                                                   \
            const long before = qk_test_failures;                                                  \
            test_##slot(fn, qk_##slot##__scalar, #fn);                                             \
            printf("%s %s\n", qk_test_failures == before ? "ok  " : "FAIL", #fn);                  \
            tested++;                                                                              \
        }                                                                                          \
    }
    QK_VARIANTS(QK__RUN)
#undef QK__RUN
    printf("%d variants tested against the scalar reference, %d skipped; %ld checks, %ld failures\n", tested, skipped,
           qk_test_checks, qk_test_failures);
    if (qk_test_failures) return 1;
    return tested == 0 && skipped > 0 ? 77 : 0;
}
