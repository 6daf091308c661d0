/*
 * Calibration statistics: every histogram and element-wise min/max variant against its scalar reference (bin counts
 * bit for bit, tails, alignments, NaN / inf, values on bin edges, reads fenced to the input); then the operators:
 * torch.histc semantics, per-channel min/max against a plain loop, the HistogramObserver update, merging, the L2
 * search, percentile and entropy against independent reimplementations, the same results on every ISA level and
 * thread count, and bad input rejected with a status.
 *
 * Built twice on x86: natively, and with QK_TEST_EMULATED_AVX512 against the AVX-512 files compiled through SIMDe
 * (kernels only there: the operators need the library).
 */
#include "qk_test.h"

#include "qk_kernels.h"

_Atomic long qk_test_failures = 0;
_Atomic long qk_test_checks = 0;

#if defined(QK_TEST_EMULATED_AVX512)
#undef QK_STATISTICS_VARIANTS
#define QK_STATISTICS_VARIANTS(X)              \
    QK_STATISTICS_KERNELS(X, avx512, 0u)       \
    QK_STATISTICS_KERNELS(X, scalar, QK_REQ_SCALAR)
static uint32_t cpu_features(void) { return ~0u; }
#else
#include "quantkit.h"
static uint32_t cpu_features(void) { return qk_cpu_features(); }
#endif

static qk_rng rng = {0x243F6A8885A308D3ull};

static const size_t sizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 255, 256, 257,
                               1000, 4099};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define MAXN 4099

/* Values spread over about [lo - 10%, hi + 10%], with exact edges, bin boundaries and their neighbours, -0.0,
 * NaN, infinities and huge values mixed in. */
static void fill(float *x, size_t n, float lo, float hi, size_t bins) {
    const float span = hi - lo;
    for (size_t i = 0; i < n; i++) {
        const uint64_t r = qk_rng_next(&rng) % 32;
        const float edge = lo + span * (float)(qk_rng_next(&rng) % (bins + 1)) / (float)bins;
        switch (r) {
        case 0: x[i] = NAN; break;
        case 1: x[i] = (qk_rng_next(&rng) & 1) ? INFINITY : -INFINITY; break;
        case 2: x[i] = lo; break;
        case 3: x[i] = hi; break;
        case 4: x[i] = edge; break;
        case 5: x[i] = nextafterf(edge, INFINITY); break;
        case 6: x[i] = nextafterf(edge, -INFINITY); break;
        case 7: x[i] = -0.0f; break;
        case 8: x[i] = qk_rng_uniform(&rng, -3e38f, 3e38f); break;
        case 9: x[i] = nextafterf(hi, INFINITY); break;
        case 10: x[i] = nextafterf(lo, -INFINITY); break;
        default: x[i] = qk_rng_uniform(&rng, lo - 0.1f * span, hi + 0.1f * span); break;
        }
    }
}

/* ------------------------------------------------------------------------------------------- histogram kernels */

typedef struct { float lo, hi; uint32_t bins; } hist_case;
static const hist_case hist_cases[] = {
    {0.0f, 1.0f, 2048}, {-3.5f, 2.25f, 2048}, {-1.0f, 1.0f, 1}, {0.0f, 3.0f, 3}, {-1e-3f, 7e-4f, 256},
    {-1e30f, 1e30f, 2048}, {1e6f, 1e6f + 1.0f, 100}, {0.0f, 1e-38f, 16}, {-2.0f, 0.0f, 2047}, {-3e38f, 3e38f, 64},
};
#define NHIST (sizeof hist_cases / sizeof hist_cases[0])

/* out[0 ..< bins]: the counts; out[bins]: the elements left out. */
static void sum_ways(const uint32_t *counts, uint32_t bins, uint64_t *out) {
    for (uint32_t b = 0; b <= bins; b++) {
        out[b] = 0;
        for (int w = 0; w < QK_HISTOGRAM_WAYS; w++) out[b] += counts[(size_t)w * (bins + 1) + b];
    }
}

static int same_extreme(float a, float b) { return a == b || (a != a && b != b); }

static void test_f32_histogram(qk_f32_histogram_fn *fn, qk_f32_histogram_fn *ref, const char *label) {
    const size_t max_words = QK_HISTOGRAM_WAYS * (2048 + 1) + 16;
    uint32_t *c_ref = malloc(max_words * 4), *c_fn = malloc(max_words * 4);
    uint64_t *s_ref = malloc(2049 * 8), *s_fn = malloc(2049 * 8);
    float *x = malloc((MAXN + 16) * sizeof(float));
    for (size_t h = 0; h < NHIST; h++) {
        const hist_case hc = hist_cases[h];
        const size_t words = QK_HISTOGRAM_WAYS * ((size_t)hc.bins + 1);
        for (int absolute = 0; absolute <= 1; absolute++)
            for (size_t s = 0; s < NSIZES; s++)
                for (size_t off = 0; off < 4; off++) {
                    const size_t n = sizes[s];
                    fill(x, n + off, absolute ? -hc.hi : hc.lo, hc.hi, hc.bins);
                    memset(c_ref, 0, max_words * 4);
                    memset(c_fn, 0, max_words * 4);
                    for (size_t g = words; g < max_words; g++) c_fn[g] = 0xA5A5A5A5u;
                    float rlo = INFINITY, rhi = -INFINITY, flo = INFINITY, fhi = -INFINITY;
                    ref(n, x + off, hc.lo, hc.hi, hc.bins, absolute, c_ref, &rlo, &rhi);
                    fn(n, x + off, hc.lo, hc.hi, hc.bins, absolute, c_fn, &flo, &fhi);
                    sum_ways(c_ref, hc.bins, s_ref);
                    sum_ways(c_fn, hc.bins, s_fn);
                    size_t bad = hc.bins + 1;
                    for (size_t b = 0; b <= hc.bins && bad > hc.bins; b++)
                        if (s_ref[b] != s_fn[b]) bad = b;
                    CHECK(bad > hc.bins, "%s case %zu abs %d n=%zu off %zu: bin %zu has %llu, scalar %llu "
                          "(bin %u: left out)", label, h, absolute, n, off, bad,
                          bad <= hc.bins ? (unsigned long long)s_fn[bad] : 0ull,
                          bad <= hc.bins ? (unsigned long long)s_ref[bad] : 0ull, hc.bins);
                    uint64_t total = 0;
                    for (size_t b = 0; b <= hc.bins; b++) total += s_fn[b];
                    CHECK(total == n, "%s case %zu n=%zu: %llu elements counted", label, h, n,
                          (unsigned long long)total);
                    int guard = 1;
                    for (size_t g = words; g < max_words; g++) guard &= c_fn[g] == 0xA5A5A5A5u;
                    CHECK(guard, "%s case %zu n=%zu: wrote past the counters", label, h, n);
                    /* Without min/max: the same counts. */
                    memset(c_fn, 0, max_words * 4);
                    fn(n, x + off, hc.lo, hc.hi, hc.bins, absolute, c_fn, NULL, NULL);
                    sum_ways(c_fn, hc.bins, s_fn);
                    CHECK(memcmp(s_fn, s_ref, (hc.bins + 1) * sizeof *s_fn) == 0, "%s case %zu n=%zu: counts "
                          "without min/max differ", label, h, n);
                    CHECK(same_extreme(rlo, flo) && same_extreme(rhi, fhi), "%s case %zu n=%zu: min/max %g %g vs %g %g",
                          label, h, n, (double)flo, (double)fhi, (double)rlo, (double)rhi);
                }
    }
    /* Reads stay inside the input: the last element ends where an unreadable page begins. */
    for (size_t s = 0; s < NSIZES; s++) {
        const size_t n = sizes[s];
        fenced f = fenced_alloc(n * sizeof(float));
        float *fx = (float *)(void *)f.p;
        fill(fx, n, -1.0f, 1.0f, 64);
        memset(c_fn, 0, max_words * 4);
        float lo = INFINITY, hi = -INFINITY;
        fn(n, fx, -1.0f, 1.0f, 64, 0, c_fn, &lo, &hi);
        fenced_free(f);
    }
    /* A running fold: min/max start from the caller's values. */
    fill(x, 100, -1.0f, 1.0f, 8);
    float rlo = -50.0f, rhi = 50.0f, flo = -50.0f, fhi = 50.0f;
    memset(c_ref, 0, max_words * 4);
    memset(c_fn, 0, max_words * 4);
    ref(100, x, -1.0f, 1.0f, 8, 0, c_ref, &rlo, &rhi);
    fn(100, x, -1.0f, 1.0f, 8, 0, c_fn, &flo, &fhi);
    CHECK(rlo == -50.0f && flo == -50.0f && rhi == 50.0f && fhi == 50.0f, "%s: running min/max", label);
    free(c_ref);
    free(c_fn);
    free(s_ref);
    free(s_fn);
    free(x);
}

/* The reference itself against torch.histc's documented and verified behaviour. */
static void check_histogram_reference(void) {
    uint32_t c[QK_HISTOGRAM_WAYS * 5];
    uint64_t s[5];
    float lo = INFINITY, hi = -INFINITY;
    /* torch.histc(torch.tensor([1., 2, 1]), bins=4, min=0, max=3) == [0, 2, 1, 0] (PyTorch's docs) */
    const float a[] = {1.0f, 2.0f, 1.0f};
    memset(c, 0, sizeof c);
    qk_f32_histogram__scalar(3, a, 0.0f, 3.0f, 4, 0, c, &lo, &hi);
    sum_ways(c, 4, s);
    CHECK(s[0] == 0 && s[1] == 2 && s[2] == 1 && s[3] == 0, "histc doc example: %llu %llu %llu %llu",
          (unsigned long long)s[0], (unsigned long long)s[1], (unsigned long long)s[2], (unsigned long long)s[3]);
    CHECK(lo == 1.0f && hi == 2.0f, "histc doc example min/max");
    /* The upper edge belongs to the last bin; values outside, NaN and infinities are not counted. */
    const float b[] = {0.0f, 3.0f, 3.0f, -0.5f, 3.5f, NAN, INFINITY, -INFINITY, 1.5f};
    memset(c, 0, sizeof c);
    lo = INFINITY, hi = -INFINITY;
    qk_f32_histogram__scalar(9, b, 0.0f, 3.0f, 3, 0, c, &lo, &hi);
    sum_ways(c, 3, s);
    CHECK(s[0] == 1 && s[1] == 1 && s[2] == 2 && s[3] == 5, "histc edges: %llu %llu %llu, %llu left out",
          (unsigned long long)s[0], (unsigned long long)s[1], (unsigned long long)s[2], (unsigned long long)s[3]);
    CHECK(lo == -0.5f && hi == 3.5f, "finite min/max skip NaN and inf: %g %g", (double)lo, (double)hi);
    /* fp32 order of operations: 0.1 with [0, 1] and 10 bins is (0.1f * 10) / 1 = 1.0f -> bin 1, although
     * 0.1f < 0.1; 0.7f * 10 rounds to 7.0f as well. */
    const float d[] = {0.1f, 0.7f};
    memset(c, 0, sizeof c);
    uint32_t c10[QK_HISTOGRAM_WAYS * 11];
    uint64_t s10[11];
    memset(c10, 0, sizeof c10);
    qk_f32_histogram__scalar(2, d, 0.0f, 1.0f, 10, 0, c10, &lo, &hi);
    sum_ways(c10, 10, s10);
    CHECK(s10[1] == 1 && s10[7] == 1, "fp32 bin of 0.1f and 0.7f");
    /* |x| with absolute */
    const float e[] = {-2.0f, 2.0f, -0.5f};
    memset(c, 0, sizeof c);
    qk_f32_histogram__scalar(3, e, 0.0f, 2.0f, 4, 1, c, &lo, &hi);
    sum_ways(c, 4, s);
    CHECK(s[1] == 1 && s[3] == 2, "absolute binning");
}

/* ------------------------------------------------------------------------------------------- vminmax kernels */

static void test_f32_vminmax(qk_f32_vminmax_fn *fn, qk_f32_vminmax_fn *ref, const char *label) {
    float *x = malloc((MAXN + 8) * 4), *a_lo = malloc((MAXN + 8) * 4), *a_hi = malloc((MAXN + 8) * 4);
    float *b_lo = malloc((MAXN + 8) * 4), *b_hi = malloc((MAXN + 8) * 4);
    for (int finite_only = 0; finite_only <= 1; finite_only++)
        for (size_t s = 0; s < NSIZES; s++)
            for (size_t off = 0; off < 3; off++) {
                const size_t n = sizes[s];
                fill(x, n + off, -2.0f, 2.0f, 16);
                for (size_t i = 0; i < n + off; i++) {
                    /* accumulators: a mix of finite values, +-0, +-inf and the starting +inf / -inf */
                    const uint64_t r = qk_rng_next(&rng) % 6;
                    a_lo[i] = r == 0 ? INFINITY : r == 1 ? 0.0f : r == 2 ? -0.0f : qk_rng_uniform(&rng, -1, 1);
                    a_hi[i] = r == 0 ? -INFINITY : r == 1 ? -0.0f : r == 2 ? 0.0f : qk_rng_uniform(&rng, -1, 1);
                    b_lo[i] = a_lo[i];
                    b_hi[i] = a_hi[i];
                }
                ref(n, x + off, finite_only, a_lo + off, a_hi + off);
                fn(n, x + off, finite_only, b_lo + off, b_hi + off);
                size_t bad = n;
                for (size_t i = 0; i < n && bad == n; i++)
                    if (!qk_same_float(a_lo[off + i], b_lo[off + i]) || !qk_same_float(a_hi[off + i], b_hi[off + i]))
                        bad = i;
                CHECK(bad == n, "%s finite_only %d n=%zu off %zu: element %zu differs", label, finite_only, n, off,
                      bad);
            }
    free(x);
    free(a_lo);
    free(a_hi);
    free(b_lo);
    free(b_hi);
}

static int run_kernel_tests(const char *only) {
    const uint32_t cpu = cpu_features();
    int tested = 0, skipped = 0;
    check_histogram_reference();
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
    QK_STATISTICS_VARIANTS(QK__RUN)
#undef QK__RUN
    printf("%d statistics variants tested against the scalar reference, %d skipped\n", tested, skipped);
    return tested;
}

#if !defined(QK_TEST_EMULATED_AVX512)
/* ------------------------------------------------------------------------------------------- operators */

static const char *all_levels[] = {"scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neondot", "neoni8mm"};
#define NLEVELS (sizeof all_levels / sizeof all_levels[0])

#define BINS 2048
#define N_BIG ((size_t)3 * 65536 + 4321)

static float *normal_data(size_t n, float mean, float sigma, uint64_t seed) {
    qk_rng r = {seed};
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i += 2) {
        /* Box-Muller */
        const double u1 = ((qk_rng_next(&r) >> 11) + 1.0) * 0x1.0p-53, u2 = (qk_rng_next(&r) >> 11) * 0x1.0p-53;
        const double rad = sqrt(-2.0 * log(u1));
        x[i] = mean + sigma * (float)(rad * cos(6.283185307179586 * u2));
        if (i + 1 < n) x[i + 1] = mean + sigma * (float)(rad * sin(6.283185307179586 * u2));
    }
    return x;
}

/* torch.histc as a plain loop. */
static void histc_loop(size_t n, const float *x, float lo, float hi, size_t bins, int absolute, double *out) {
    if (lo == hi) { lo = (float)((double)lo - 1); hi = (float)((double)hi + 1); }
    for (size_t b = 0; b < bins; b++) out[b] = 0;
    for (size_t i = 0; i < n; i++) {
        const float v = absolute ? fabsf(x[i]) : x[i];
        if (!(v >= lo && v <= hi)) continue;
        const float t = ((v - lo) * (float)bins) / (hi - lo);
        out[t < (float)bins ? (size_t)t : bins - 1] += 1;
    }
}

typedef struct observe_result {
    float hist[BINS], min_val, max_val, l2_lo, l2_hi, p_lo, p_hi, e_amax;
    float merged[BINS], merged_min, merged_max;
    float pc_min[64], pc_max[64], pc_min_last[7], pc_max_last[7];
    float histc[BINS];
} observe_result;

/* The whole calibration pipeline on three batches (growing range), with merging, every search, per-channel min/max
 * and a histc; compared across ISA levels and thread counts. */
static void pipeline(const float *a, const float *b, const float *c, observe_result *o) {
    memset(o, 0, sizeof *o);
    o->min_val = INFINITY;
    o->max_val = -INFINITY;
    const float *batches[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        CHECK(qk_histogram_observe_f32(N_BIG, batches[i], BINS, 16, 0, o->hist, &o->min_val, &o->max_val, NULL,
                                       NULL) == QK_OK, "observe: %s", qk_last_error_message());
    CHECK(qk_histogram_l2_range_f32(BINS, o->hist, o->min_val, o->max_val, 256, &o->l2_lo, &o->l2_hi) == QK_OK,
          "l2: %s", qk_last_error_message());
    CHECK(qk_histogram_percentile_range_f32(BINS, o->hist, o->min_val, o->max_val, 99.99, 0, o->min_val, o->max_val,
                                            &o->p_lo, &o->p_hi) == QK_OK, "percentile: %s", qk_last_error_message());
    float ah[BINS] = {0}, amin = INFINITY, amax = -INFINITY;
    CHECK(qk_histogram_observe_f32(N_BIG, a, BINS, 16, QK_HISTOGRAM_ABSOLUTE, ah, &amin, &amax, NULL, NULL) == QK_OK,
          "observe abs");
    CHECK(qk_histogram_entropy_amax_f32(BINS, ah, amax, 128, 128, &o->e_amax) == QK_OK, "entropy: %s",
          qk_last_error_message());
    float hb[BINS] = {0}, bmin = INFINITY, bmax = -INFINITY;
    qk_histogram_observe_f32(N_BIG, b, BINS, 16, 0, hb, &bmin, &bmax, NULL, NULL);
    const float *hs[2] = {o->hist, hb};
    const float mins[2] = {o->min_val, bmin}, maxs[2] = {o->max_val, bmax};
    CHECK(qk_histogram_merge_f32(2, BINS, 16, hs, mins, maxs, o->merged, &o->merged_min, &o->merged_max) == QK_OK,
          "merge");
    CHECK(qk_minmax_per_channel_f32(N_BIG / (64 * 3), 64, 3, a, QK_MINMAX_FINITE_ONLY, o->pc_min, o->pc_max) == QK_OK,
          "per channel");
    CHECK(qk_minmax_per_channel_f32(N_BIG / 7, 7, 1, c, 0, o->pc_min_last, o->pc_max_last) == QK_OK, "per channel");
    CHECK(qk_histogram_f32(N_BIG, c, -1.5f, 2.5f, BINS, 0, o->histc) == QK_OK, "histc");
}

static void check_levels_and_threads(void) {
    float *a = normal_data(N_BIG, 0.0f, 1.0f, 1), *b = normal_data(N_BIG, 0.5f, 2.0f, 2);
    float *c = normal_data(N_BIG, -1.0f, 0.5f, 3);
    a[17] = NAN;
    b[1000] = INFINITY;
    c[5] = -INFINITY;
    observe_result *ref = malloc(sizeof *ref), *o = malloc(sizeof *o);
    CHECK(qk_set_isa("scalar") == QK_OK, "scalar");
    qk_set_num_threads(1);
    pipeline(a, b, c, ref);
    for (size_t i = 0; i < NLEVELS; i++) {
        if (!qk_isa_supported(all_levels[i])) continue;
        CHECK(qk_set_isa(all_levels[i]) == QK_OK, "set %s", all_levels[i]);
        for (int threads = 1; threads <= 5; threads += 2) {
            qk_set_num_threads(threads);
            pipeline(a, b, c, o);
            CHECK(memcmp(ref, o, sizeof *ref) == 0, "%s with %d threads differs from scalar with 1 thread",
                  all_levels[i], threads);
        }
        printf("calibration pipeline on %-10s = scalar for 1, 3, 5 threads\n", all_levels[i]);
    }
    qk_set_num_threads(0);
    qk_set_isa(NULL);
    /* The three batches grew the range twice: the total mass is every finite element. */
    double total = 0;
    for (size_t i = 0; i < BINS; i++) total += ref->hist[i];
    CHECK(fabs(total - (3.0 * N_BIG - 3)) < 1e-3 * N_BIG, "mass after re-binning: %g", total);
    CHECK(ref->l2_lo > ref->min_val && ref->l2_hi < ref->max_val && ref->l2_lo < 0 && ref->l2_hi > 0,
          "l2 range [%g, %g] of [%g, %g]", (double)ref->l2_lo, (double)ref->l2_hi, (double)ref->min_val,
          (double)ref->max_val);
    /* histc against the plain loop */
    double *loop = malloc(BINS * sizeof(double));
    histc_loop(N_BIG, c, -1.5f, 2.5f, BINS, 0, loop);
    int same = 1;
    for (size_t i = 0; i < BINS; i++) same &= (double)ref->histc[i] == loop[i];
    CHECK(same, "qk_histogram_f32 differs from torch.histc's loop");
    free(loop);
    free(a);
    free(b);
    free(c);
    free(ref);
    free(o);
}

static void check_per_channel(void) {
    static const size_t shapes[][3] = {{1, 1, 1}, {3, 5, 1}, {1000, 7, 1}, {5, 4, 3}, {2, 3, 100}, {40000, 3, 2},
                                       {1, 70000, 1}, {300, 1, 300}, {0, 4, 5}, {7, 0, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t outer = shapes[s][0], channels = shapes[s][1], inner = shapes[s][2];
        const size_t n = outer * channels * inner;
        float *x = malloc((n + 1) * sizeof(float));
        fill(x, n, -5.0f, 5.0f, 10);
        float *mn = malloc((channels + 1) * 4), *mx = malloc((channels + 1) * 4);
        for (int finite_only = 0; finite_only <= 1; finite_only++) {
            CHECK(qk_minmax_per_channel_f32(outer, channels, inner, x, finite_only ? QK_MINMAX_FINITE_ONLY : 0, mn,
                                            mx) == QK_OK, "per channel: %s", qk_last_error_message());
            for (size_t c = 0; c < channels; c++) {
                float lo = INFINITY, hi = -INFINITY;
                for (size_t o = 0; o < outer; o++)
                    for (size_t i = 0; i < inner; i++) {
                        const float v = x[(o * channels + c) * inner + i];
                        if (v != v || (finite_only && isinf(v))) continue;
                        lo = v < lo ? v : lo;
                        hi = v > hi ? v : hi;
                    }
                CHECK(lo == mn[c] && hi == mx[c], "[%zu, %zu, %zu] channel %zu: %g %g, loop %g %g", outer, channels,
                      inner, c, (double)mn[c], (double)mx[c], (double)lo, (double)hi);
            }
        }
        free(x);
        free(mn);
        free(mx);
    }
}

/* HistogramObserver.forward's cases on small inputs whose results are known. */
static void check_observe_semantics(void) {
    float h[8] = {0}, mn = INFINITY, mx = -INFINITY, bmin, bmax;
    /* first batch: its own range */
    const float a[] = {0.0f, 1.0f, 2.0f, 4.0f, NAN, INFINITY};
    CHECK(qk_histogram_observe_f32(6, a, 4, 16, 0, h, &mn, &mx, &bmin, &bmax) == QK_OK, "observe");
    CHECK(mn == 0.0f && mx == 4.0f && bmin == 0.0f && bmax == 4.0f, "first range [%g, %g]", (double)mn, (double)mx);
    CHECK(h[0] == 1 && h[1] == 1 && h[2] == 1 && h[3] == 1, "first histogram");
    /* same range: added */
    const float b[] = {0.5f, 3.9f};
    CHECK(qk_histogram_observe_f32(2, b, 4, 16, 0, h, &mn, &mx, NULL, NULL) == QK_OK, "observe");
    CHECK(h[0] == 2 && h[1] == 1 && h[2] == 1 && h[3] == 2 && mn == 0 && mx == 4, "added");
    /* empty, all NaN: nothing changes */
    const float nan[] = {NAN, -INFINITY};
    CHECK(qk_histogram_observe_f32(0, NULL, 4, 16, 0, h, &mn, &mx, &bmin, &bmax) == QK_OK && bmin == INFINITY, "empty");
    CHECK(qk_histogram_observe_f32(2, nan, 4, 16, 0, h, &mn, &mx, NULL, NULL) == QK_OK, "nan");
    CHECK(h[0] == 2 && h[3] == 2 && mn == 0 && mx == 4, "nothing finite: unchanged");
    /* range doubles: old bins [0,1) [1,2) [2,3) [3,4] fall into new [0,2) [2,4) -> 3 and 3, plus the new 8.0 */
    const float c[] = {8.0f};
    CHECK(qk_histogram_observe_f32(1, c, 4, 16, 0, h, &mn, &mx, NULL, NULL) == QK_OK, "observe");
    CHECK(mn == 0 && mx == 8 && h[0] == 3 && h[1] == 3 && h[2] == 0 && h[3] == 1, "re-binned: %g %g %g %g",
          (double)h[0], (double)h[1], (double)h[2], (double)h[3]);
    /* a single value (torch.histc widens it to [v - 1, v + 1]: the middle bin) then a wider range: the whole mass
     * moves to that value's bin */
    float g[4] = {0}, gmin = INFINITY, gmax = -INFINITY;
    const float d[] = {1.0f, 1.0f, 1.0f};
    qk_histogram_observe_f32(3, d, 4, 16, 0, g, &gmin, &gmax, NULL, NULL);
    CHECK(gmin == 1 && gmax == 1 && g[2] == 3, "constant batch");
    const float e[] = {-3.0f};
    qk_histogram_observe_f32(1, e, 4, 16, 0, g, &gmin, &gmax, NULL, NULL);
    CHECK(gmin == -3 && gmax == 1 && g[0] == 1 && g[3] == 3, "constant state moved: %g %g %g %g", (double)g[0],
          (double)g[1], (double)g[2], (double)g[3]);
    /* a single value, then a batch inside torch.histc's widened [v - 1, v + 1] but beyond v: the range grows */
    float w[4] = {0}, wmin = INFINITY, wmax = -INFINITY;
    qk_histogram_observe_f32(3, d, 4, 16, 0, w, &wmin, &wmax, NULL, NULL);
    const float inside[] = {0.5f, 1.5f};
    qk_histogram_observe_f32(2, inside, 4, 16, 0, w, &wmin, &wmax, NULL, NULL);
    CHECK(wmin == 0.5f && wmax == 1.5f && w[0] + w[1] + w[2] + w[3] == 5 && w[3] == 1,
          "growth inside the widened range: [%g, %g]", (double)wmin, (double)wmax);
    /* a batch with NaN only besides in-range values: counted without re-binning */
    float v[4] = {0}, vmin = INFINITY, vmax = -INFINITY;
    const float first[] = {0.0f, 4.0f}, nan_inside[] = {NAN, 1.0f, INFINITY};
    qk_histogram_observe_f32(2, first, 4, 16, 0, v, &vmin, &vmax, NULL, NULL);
    qk_histogram_observe_f32(3, nan_inside, 4, 16, 0, v, &vmin, &vmax, NULL, NULL);
    CHECK(vmin == 0 && vmax == 4 && v[0] == 1 && v[1] == 1 && v[3] == 1, "NaN and inf skipped in place");
    /* absolute: |x| over [0, max |x|] */
    float k[4] = {0}, kmin = INFINITY, kmax = -INFINITY;
    const float f[] = {-4.0f, 1.0f, -0.0f};
    qk_histogram_observe_f32(3, f, 4, 16, QK_HISTOGRAM_ABSOLUTE, k, &kmin, &kmax, &bmin, &bmax);
    CHECK(kmin == 0 && kmax == 4 && k[0] == 1 && k[1] == 1 && k[3] == 1 && bmin == -4 && bmax == 1, "absolute");
    /* -0.0 is stored as +0.0 */
    float z[4] = {0}, zmin = INFINITY, zmax = -INFINITY;
    const float zz[] = {-0.0f, 2.0f};
    qk_histogram_observe_f32(2, zz, 4, 16, 0, z, &zmin, &zmax, NULL, NULL);
    CHECK(qk_float_to_bits(zmin) == 0, "min -0.0 stored as +0.0");
}

/* merge([a, b]) is observing a's data then b's when b's range contains a's; order and empty states. */
static void check_merge(void) {
    float *a = normal_data(5000, 0.0f, 1.0f, 11), *b = normal_data(7000, 0.2f, 1.5f, 12);
    b[0] = -40.0f;
    b[1] = 40.0f;
    float ha[BINS] = {0}, amin = INFINITY, amax = -INFINITY, hb[BINS] = {0}, bmin = INFINITY, bmax = -INFINITY;
    float hs[BINS] = {0}, smin = INFINITY, smax = -INFINITY;
    qk_histogram_observe_f32(5000, a, BINS, 16, 0, ha, &amin, &amax, NULL, NULL);
    qk_histogram_observe_f32(7000, b, BINS, 16, 0, hb, &bmin, &bmax, NULL, NULL);
    qk_histogram_observe_f32(5000, a, BINS, 16, 0, hs, &smin, &smax, NULL, NULL);
    qk_histogram_observe_f32(7000, b, BINS, 16, 0, hs, &smin, &smax, NULL, NULL);
    float empty[BINS] = {0};
    const float *list[3] = {ha, empty, hb};
    const float mins[3] = {amin, INFINITY, bmin}, maxs[3] = {amax, -INFINITY, bmax};
    float hm[BINS], mmin, mmax;
    CHECK(qk_histogram_merge_f32(3, BINS, 16, list, mins, maxs, hm, &mmin, &mmax) == QK_OK, "merge");
    CHECK(mmin == smin && mmax == smax && memcmp(hm, hs, sizeof hm) == 0, "merge([a, b]) != observe a then b");
    /* in place, one state: unchanged */
    const float *one[1] = {ha};
    float omin = amin, omax = amax;
    float copy[BINS];
    memcpy(copy, ha, sizeof copy);
    CHECK(qk_histogram_merge_f32(1, BINS, 16, one, &omin, &omax, ha, &omin, &omax) == QK_OK, "merge one");
    CHECK(memcmp(copy, ha, sizeof copy) == 0 && omin == amin && omax == amax, "merge of one state");
    /* nothing: the empty state */
    float nmin = 0, nmax = 0;
    CHECK(qk_histogram_merge_f32(0, BINS, 16, NULL, NULL, NULL, hm, &nmin, &nmax) == QK_OK, "merge none");
    CHECK(nmin == INFINITY && nmax == -INFINITY && hm[0] == 0, "merge of nothing");
    free(a);
    free(b);
}

/* _compute_quantization_error as PyTorch's tensor code forms it, element by element (fp32 terms; the floor division
 * through fmodf as c10::div_floor_floating does), for the search below. */
static float torch_div_floor(float a, float b) {
    const float mod = fmodf(a, b);
    float div = (a - mod) / b;
    if (mod != 0 && (b < 0) != (mod < 0)) div -= 1.0f;
    if (div == 0) return copysignf(0.0f, a / b);
    float fl = floorf(div);
    if (div - fl > 0.5f) fl += 1.0f;
    return fl;
}

static double torch_error(const float *hist, size_t bins, float mn, float mx, size_t s, size_t e) {
    const double bw = ((double)mx - (double)mn) / (double)bins, dw = bw * (double)(e - s + 1) / 256.0;
    if (dw == 0) return 0;
    const float bwf = (float)bw, d = (float)dw, h = (float)(dw / 2);
    double sum = 0;
    for (size_t i = 0; i < bins; i++) {
        const float begin = (float)((double)i - (double)s) * bwf, end = begin + bwf;
        float db = torch_div_floor(begin, d), de = torch_div_floor(end, d);
        db = db < 0 ? 0 : db > 255 ? 255 : db;
        de = de < 0 ? 0 : de > 255 ? 255 : de;
        const float dens = hist[i] / bwf, cb = (db + 0.5f) * d, dbeg = begin - cb;
        volatile float t1 = dens * ((h * h * h - dbeg * dbeg * dbeg) / 3.0f);
        const float k3 = (h * h * h - (-h) * (-h) * (-h)) / 3.0f;
        volatile float t2 = (de - db - 1.0f) * (dens * k3);
        const float ce = de * d + h, dend = end - ce;
        volatile float t3 = dens * ((dend * dend * dend - (-h) * (-h) * (-h)) / 3.0f);
        float norm = 0.0f;
        norm += t1;
        norm += t2;
        norm += t3;
        sum += norm;
    }
    return sum;
}

/* _non_linear_param_search written out plainly (no early exit), against the library. */
static void torch_search(const float *hist, size_t bins, float mn, float mx, float *lo, float *hi) {
    double total = 0;
    float *cs = malloc(bins * sizeof(float));
    for (size_t i = 0; i < bins; i++) { total += hist[i]; cs[i] = (float)total; }
    total = (float)total;
    double alpha = 0, beta = 1, best = INFINITY;
    size_t s = 0, e = bins - 1;
    while (alpha < beta) {
        const double na = alpha + 1e-5, nb = beta - 1e-5;
        size_t l = s, r = e;
        while (l < e && cs[l] < na * total) l++;
        while (r > s && cs[r] > nb * total) r--;
        size_t ns = s, ne = e;
        if (l - s > e - r) { ns = l; alpha = na; } else { ne = r; beta = nb; }
        if (ns == s && ne == e) continue;
        const double norm = torch_error(hist, bins, mn, mx, ns, ne);
        if (norm > best) break;
        best = norm;
        s = ns;
        e = ne;
    }
    const float bw = (mx - mn) / (float)bins;
    *lo = mn + bw * (float)s;
    *hi = mn + bw * (float)(e + 1);
    free(cs);
}

static void check_searches(void) {
    static const struct { float mean, sigma; size_t n; uint64_t seed; } sets[] = {
        {0, 1, 200000, 21}, {2, 0.5f, 3000, 22}, {0, 3, 700, 23}, {-1, 1, 50000, 24}};
    for (size_t t = 0; t < sizeof sets / sizeof sets[0]; t++) {
        float *x = normal_data(sets[t].n, sets[t].mean, sets[t].sigma, sets[t].seed);
        x[3] = sets[t].mean + 12 * sets[t].sigma;   /* an outlier to trim */
        float h[BINS] = {0}, mn = INFINITY, mx = -INFINITY, lo, hi, rlo, rhi;
        qk_histogram_observe_f32(sets[t].n, x, BINS, 16, 0, h, &mn, &mx, NULL, NULL);
        CHECK(qk_histogram_l2_range_f32(BINS, h, mn, mx, 256, &lo, &hi) == QK_OK, "l2");
        torch_search(h, BINS, mn, mx, &rlo, &rhi);
        CHECK(lo == rlo && hi == rhi, "set %zu: l2 range [%g, %g], PyTorch's search [%g, %g]", t, (double)lo,
              (double)hi, (double)rlo, (double)rhi);
        CHECK(hi < mx, "set %zu: the outlier is trimmed", t);
        free(x);
    }
    /* A constant (all mass in one bin) and a single bin. */
    float one[1] = {5}, lo, hi;
    CHECK(qk_histogram_l2_range_f32(1, one, 2.0f, 3.0f, 256, &lo, &hi) == QK_OK && lo == 2 && hi == 3, "one bin");
    float spike[BINS] = {0};
    spike[1024] = 100;
    CHECK(qk_histogram_l2_range_f32(BINS, spike, 3.0f, 3.0f, 256, &lo, &hi) == QK_OK && lo == 3 && hi == 3, "constant");

    /* Percentile (ORT): 64 bins of 1 over [0, 64], so the cdf is (i + 1) / 64 exactly. 75: the cdf reaches
     * (100 - 75) / 200 = 0.125 at bin 7 and 0.875 at bin 55 (their left edges); symmetric, 0.75 at bin 47. */
    float u[64];
    for (int i = 0; i < 64; i++) u[i] = 1;
    CHECK(qk_histogram_percentile_range_f32(64, u, 0, 64, 75.0, 0, 0, 64, &lo, &hi) == QK_OK, "percentile");
    CHECK(lo == 7.0f && hi == 55.0f, "percentile 75: [%g, %g]", (double)lo, (double)hi);
    CHECK(qk_histogram_percentile_range_f32(64, u, 0, 64, 75.0, QK_HISTOGRAM_ABSOLUTE, -10, 64, &lo, &hi) == QK_OK
          && lo == -10.0f && hi == 47.0f, "symmetric percentile clamped to the data: [%g, %g]", (double)lo, (double)hi);
    CHECK(qk_histogram_percentile_range_f32(64, u, 0, 64, 100.0, 0, 0, 64, &lo, &hi) == QK_OK && lo == 0 &&
          hi == 63.0f, "percentile 100: [%g, %g]", (double)lo, (double)hi);

    /* Entropy against pytorch-quantization's loops, written out (quadratic) with the same merging. */
    float *x = normal_data(100000, 0, 1, 31);
    float ah[BINS] = {0}, amin = INFINITY, amax = -INFINITY, got;
    for (int i = 0; i < 3; i++) x[i] = 20.0f - (float)i;   /* a few far outliers */
    qk_histogram_observe_f32(100000, x, BINS, 16, QK_HISTOGRAM_ABSOLUTE, ah, &amin, &amax, NULL, NULL);
    for (size_t levels = 128; levels <= 256; levels *= 2) {
        CHECK(qk_histogram_entropy_amax_f32(BINS, ah, amax, levels, 128, &got) == QK_OK, "entropy");
        double *bins = malloc(BINS * sizeof(double)), *q = malloc(BINS * sizeof(double));
        double *counts = malloc(levels * sizeof(double));
        int *dig = malloc(BINS * sizeof(int)), *nz = malloc(levels * sizeof(int));
        for (size_t i = 0; i < BINS; i++) bins[i] = ah[i];
        bins[0] = bins[1];
        double best = INFINITY;
        size_t best_i = BINS;
        for (size_t i = 128; i <= BINS; i++) {
            for (size_t k = 0; k < levels; k++) { counts[k] = 0; nz[k] = 0; }
            size_t k = 0;   /* np.digitize(j, linspace(0, i, levels + 1)) - 1: the last edge <= j */
            for (size_t j = 0; j < i; j++) {
                while (k + 1 < levels && (double)(k + 1) * ((double)i / (double)levels) <= (double)j) k++;
                dig[j] = bins[j] == 0 ? -1 : (int)k;
                if (dig[j] >= 0) { counts[k] += bins[j]; nz[k]++; }
            }
            double qs = 0, ps = 0, kl = 0;
            for (size_t j = 0; j < i; j++) { q[j] = dig[j] < 0 ? 0 : counts[dig[j]] / nz[dig[j]]; qs += q[j]; }
            double tail = 0;
            for (size_t j = i; j < BINS; j++) tail += bins[j];
            for (size_t j = 0; j < i; j++) ps += bins[j] + (j == i - 1 ? tail : 0);
            for (size_t j = 0; j < i; j++) {
                const double p = (bins[j] + (j == i - 1 ? tail : 0)) / ps, qq = q[j] / qs;
                if (p > 0) kl += qq > 0 ? p * log(p / qq) : INFINITY;
            }
            if (kl <= best) { best = kl; best_i = i; }
        }
        /* edge best_i of torch.linspace(0, amax, BINS + 1) */
        const float step = amax / (float)BINS;
        const float want = best_i < (BINS + 1) / 2 ? step * (float)best_i : amax - step * (float)(BINS - best_i);
        CHECK(got == want, "entropy levels %zu: amax %g, quadratic reference %g (bin %zu)", levels, (double)got,
              (double)want, best_i);
        CHECK(got < 18.0f && got > 2.0f, "entropy clips the outliers: %g", (double)got);
        printf("entropy range of N(0, 1) with outliers up to 20, %zu levels: amax %g\n", levels, (double)got);
        free(bins); free(q); free(counts); free(dig); free(nz);
    }
    free(x);
    float zero[BINS] = {0};
    CHECK(qk_histogram_entropy_amax_f32(BINS, zero, 0, 128, 128, &got) == QK_OK && got == 0, "entropy of zeros");
}

static void check_validation(void) {
    float h[4] = {0}, mn = INFINITY, mx = -INFINITY, lo, hi, x[2] = {1, 2};
    CHECK(qk_histogram_observe_f32(2, NULL, 4, 16, 0, h, &mn, &mx, NULL, NULL) == QK_ERROR_INVALID_ARGUMENT, "null x");
    CHECK(qk_histogram_observe_f32(2, x, 0, 16, 0, h, &mn, &mx, NULL, NULL) == QK_ERROR_INVALID_ARGUMENT, "0 bins");
    CHECK(strstr(qk_last_error_message(), "bins") != NULL, "message names bins: %s", qk_last_error_message());
    CHECK(qk_histogram_observe_f32(2, x, 4, 0, 0, h, &mn, &mx, NULL, NULL) == QK_ERROR_INVALID_ARGUMENT, "upsample 0");
    CHECK(qk_histogram_observe_f32(2, x, 4, 16, 8, h, &mn, &mx, NULL, NULL) == QK_ERROR_INVALID_ARGUMENT, "flags");
    float bad_min = 3, bad_max = 1;
    CHECK(qk_histogram_observe_f32(2, x, 4, 16, 0, h, &bad_min, &bad_max, NULL, NULL) == QK_ERROR_INVALID_ARGUMENT,
          "min > max");
    float nan_min = NAN;
    CHECK(qk_histogram_observe_f32(2, x, 4, 16, 0, h, &nan_min, &mx, NULL, NULL) == QK_ERROR_INVALID_ARGUMENT, "NaN");
    CHECK(qk_histogram_f32(2, x, 2, 1, 4, 0, h) == QK_ERROR_INVALID_ARGUMENT, "histc lo > hi");
    CHECK(qk_histogram_f32(2, x, 0, INFINITY, 4, 0, h) == QK_ERROR_INVALID_ARGUMENT, "histc infinite");
    h[1] = -1;
    CHECK(qk_histogram_l2_range_f32(4, h, 0, 1, 256, &lo, &hi) == QK_ERROR_INVALID_ARGUMENT, "negative count");
    h[1] = 0;
    CHECK(qk_histogram_l2_range_f32(4, h, 0, 1, 1, &lo, &hi) == QK_ERROR_INVALID_ARGUMENT, "dst_bins 1");
    h[0] = 1;
    CHECK(qk_histogram_percentile_range_f32(4, h, 0, 1, 100.5, 0, 0, 1, &lo, &hi) == QK_ERROR_INVALID_ARGUMENT,
          "percentile > 100");
    CHECK(qk_histogram_entropy_amax_f32(1, h, 1, 128, 128, &lo) == QK_ERROR_INVALID_ARGUMENT, "entropy 1 bin");
    float m1 = 3, m2 = 1;
    const float *hs[1] = {h};
    CHECK(qk_histogram_merge_f32(1, 4, 16, hs, &m1, &m2, h, &lo, &hi) == QK_ERROR_INVALID_ARGUMENT, "merge bad state");
    float pm[2], px[2];
    CHECK(qk_minmax_per_channel_f32(1, 2, 1, NULL, 0, pm, px) == QK_ERROR_INVALID_ARGUMENT, "per channel null");
    CHECK(qk_minmax_per_channel_f32(1, 2, 1, x, 4, pm, px) == QK_ERROR_INVALID_ARGUMENT, "per channel flags");
    CHECK(qk_minmax_per_channel_f32(SIZE_MAX, 2, 2, x, 0, pm, px) == QK_ERROR_OVERFLOW, "per channel overflow");
}
#endif

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    const int tested = run_kernel_tests(only);
#if !defined(QK_TEST_EMULATED_AVX512)
    if (!only) {
        CHECK(qk_runtime_init() == QK_OK, "init: %s", qk_last_error_message());
        check_levels_and_threads();
        check_per_channel();
        check_observe_semantics();
        check_merge();
        check_searches();
        check_validation();
    }
#endif
    printf("statistics: %ld checks, %ld failures\n", qk_test_checks, qk_test_failures);
    if (qk_test_failures) return 1;
    (void)tested;
    return 0;
}
