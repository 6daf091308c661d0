/* AVX2 histogram: bin indices 8 at a time (the scalar reference's fp32 operations, so the same bins), a block of
 * them first and then the counter increments, spread over the ways. */
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#include "qk_internal.h"
#include "qk_histogram.h"

QK_TARGET_AVX2 void qk_f32_histogram__avx2(size_t n, const float *x, float lo, float hi, uint32_t bins, int absolute,
                                           uint32_t *counts, float *min, float *max) {
    const float nb = (float)bins, width = hi - lo;
    const size_t stride = (size_t)bins + 1;
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi), vnb = _mm256_set1_ps(nb);
    const __m256 vwidth = _mm256_set1_ps(width), vinf = _mm256_set1_ps(INFINITY);
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 value_mask = absolute ? abs_mask : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    const __m256i vlast = _mm256_set1_epi32((int32_t)(bins - 1)), vskip = _mm256_set1_epi32((int32_t)bins);
    float mn = min ? *min : 0.0f, mx = max ? *max : 0.0f;
    __m256 lo_acc = _mm256_set1_ps(mn), hi_acc = _mm256_set1_ps(mx);
    _Alignas(32) uint32_t idx[QK_HISTOGRAM_BLOCK];
    size_t i = 0;
/* The bin indices of 8 values at x + i + j into idx + j; MINMAX folds them into lo_acc / hi_acc. */
#define QK_HISTOGRAM_INDICES(MINMAX)                                                                            \
    for (size_t j = 0; j < m; j += 8) {                                                                         \
        const __m256 raw = _mm256_loadu_ps(x + i + j);                                                          \
        MINMAX                                                                                                  \
        const __m256 v = _mm256_and_ps(raw, value_mask);                                                        \
        const __m256 in = _mm256_and_ps(_mm256_cmp_ps(v, vlo, _CMP_GE_OQ), _mm256_cmp_ps(v, vhi, _CMP_LE_OQ));  \
        const __m256 t = _mm256_div_ps(_mm256_mul_ps(_mm256_sub_ps(v, vlo), vnb), vwidth);                      \
        __m256i b = _mm256_blendv_epi8(vlast, _mm256_cvttps_epi32(t),                                           \
                                       _mm256_castps_si256(_mm256_cmp_ps(t, vnb, _CMP_LT_OQ)));                 \
        b = _mm256_blendv_epi8(vskip, b, _mm256_castps_si256(in));                                              \
        _mm256_store_si256((__m256i *)(idx + j), b);                                                            \
    }
/* min/max skip NaN (minps returns its second operand); non-finite values become NaN first. */
#define QK_HISTOGRAM_MINMAX                                                                                     \
        const __m256 finite = _mm256_or_ps(raw, _mm256_cmp_ps(_mm256_and_ps(raw, abs_mask), vinf, _CMP_NLT_UQ)); \
        lo_acc = _mm256_min_ps(finite, lo_acc);                                                                 \
        hi_acc = _mm256_max_ps(finite, hi_acc);
    while (i + 8 <= n) {
        /* A block of indices first, then its increments: the counters' loads and stores then overlap freely
         * instead of waiting behind the vector code. */
        size_t m = (n - i) & ~(size_t)7;
        if (m > QK_HISTOGRAM_BLOCK) m = QK_HISTOGRAM_BLOCK;
        if (min) {
            QK_HISTOGRAM_INDICES(QK_HISTOGRAM_MINMAX)
        } else {
            QK_HISTOGRAM_INDICES()
        }
        qk_histogram_increment(idx, m, counts, stride);
        i += m;
    }
#undef QK_HISTOGRAM_INDICES
#undef QK_HISTOGRAM_MINMAX
    if (min) {
        float l[8], h[8];
        _mm256_storeu_ps(l, lo_acc);
        _mm256_storeu_ps(h, hi_acc);
        qk_histogram_fold_lanes(l, h, 8, &mn, &mx);
    }
    qk_histogram_bin_range(i, n, x, lo, hi, bins, absolute, counts, min != NULL, &mn, &mx);
    if (min) {
        *min = mn;
        *max = mx;
    }
}

#endif
