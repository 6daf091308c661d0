/* AVX2 min/max, equal to minmax-scalar.c (up to the sign of a zero result, which the contract leaves open). */
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>
#include <math.h>

#include "qk_internal.h"
#include "qk_kernels.h"

/*
 * minps/maxps return the second operand when either is NaN, so min(x, acc) skips a NaN x. The accumulators start
 * at *min / *max: a NaN there stays in every lane, as it stays in the scalar loop. finite_only turns +-inf (and
 * NaN) into an all-ones NaN first, so they are skipped the same way.
 */
static QK_TARGET_AVX2 inline __m256 qk_nan_if_not_finite(__m256 x) {
    const __m256 ax = _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)));
    return _mm256_or_ps(x, _mm256_cmp_ps(ax, _mm256_set1_ps(INFINITY), _CMP_NLT_UQ));
}

#define QK_MINMAX_LOOP(LOAD)                                                          \
    for (; i + 32 <= n; i += 32) {                                                    \
        const __m256 a = LOAD(x + i), b = LOAD(x + i + 8);                            \
        const __m256 c = LOAD(x + i + 16), d = LOAD(x + i + 24);                      \
        lo0 = _mm256_min_ps(a, lo0); hi0 = _mm256_max_ps(a, hi0);                     \
        lo1 = _mm256_min_ps(b, lo1); hi1 = _mm256_max_ps(b, hi1);                     \
        lo2 = _mm256_min_ps(c, lo2); hi2 = _mm256_max_ps(c, hi2);                     \
        lo3 = _mm256_min_ps(d, lo3); hi3 = _mm256_max_ps(d, hi3);                     \
    }                                                                                 \
    for (; i + 8 <= n; i += 8) {                                                      \
        const __m256 a = LOAD(x + i);                                                 \
        lo0 = _mm256_min_ps(a, lo0); hi0 = _mm256_max_ps(a, hi0);                     \
    }

#define QK_LOAD(p) _mm256_loadu_ps(p)
#define QK_LOAD_FINITE(p) qk_nan_if_not_finite(_mm256_loadu_ps(p))

QK_TARGET_AVX2 void qk_f32_minmax__avx2(size_t n, const float *x, int finite_only, float *min, float *max) {
    __m256 lo0 = _mm256_set1_ps(*min), lo1 = lo0, lo2 = lo0, lo3 = lo0;
    __m256 hi0 = _mm256_set1_ps(*max), hi1 = hi0, hi2 = hi0, hi3 = hi0;
    size_t i = 0;
    if (finite_only) {
        QK_MINMAX_LOOP(QK_LOAD_FINITE)
    } else {
        QK_MINMAX_LOOP(QK_LOAD)
    }
    /* Lanes hold NaN only if *min / *max was NaN, and then all of them do: the fold order does not matter. */
    float l[8], h[8];
    _mm256_storeu_ps(l, _mm256_min_ps(_mm256_min_ps(lo0, lo1), _mm256_min_ps(lo2, lo3)));
    _mm256_storeu_ps(h, _mm256_max_ps(_mm256_max_ps(hi0, hi1), _mm256_max_ps(hi2, hi3)));
    float lo = l[0], hi = h[0];
    for (int k = 1; k < 8; k++) {
        lo = l[k] < lo ? l[k] : lo;
        hi = h[k] > hi ? h[k] : hi;
    }
    for (; i < n; i++) {
        const float v = x[i];
        if (v != v) continue;
        if (finite_only && isinf(v)) continue;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    *min = lo;
    *max = hi;
}

#endif
