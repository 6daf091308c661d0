/* AVX-512 histogram: bin indices 16 at a time (the scalar reference's fp32 operations, so the same bins), a block of
 * them first and then the counter increments, spread over the ways (see histogram-avx2.c). */
#if defined(__x86_64__) || defined(_M_X64)


#include "qk_avx512.h"
#include "qk_histogram.h"

/* SIMDe 0.7.4 has no vcvttps2dq on zmm: the emulated test build truncates each 256-bit half natively. */
#if defined(QK_SIMDE_EMULATION)
static inline __m512i qk_histogram_cvttps_epi32(__m512 a) {
    return qk_emu_si_join(_mm256_cvttps_epi32(qk_emu_ps_half(a, 0)), _mm256_cvttps_epi32(qk_emu_ps_half(a, 1)));
}
#else
#define qk_histogram_cvttps_epi32 _mm512_cvttps_epi32
#endif

QK_TARGET_AVX512 void qk_f32_histogram__avx512(size_t n, const float *x, float lo, float hi, uint32_t bins,
                                               int absolute, uint32_t *counts, float *min, float *max) {
    const float nb = (float)bins, width = hi - lo;
    const size_t stride = (size_t)bins + 1;
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), vnb = _mm512_set1_ps(nb);
    const __m512 vwidth = _mm512_set1_ps(width), vinf = _mm512_set1_ps(INFINITY);
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
    const __m512i value_mask = absolute ? abs_mask : _mm512_set1_epi32(-1);
    const __m512i vlast = _mm512_set1_epi32((int32_t)(bins - 1)), vskip = _mm512_set1_epi32((int32_t)bins);
    float mn = min ? *min : 0.0f, mx = max ? *max : 0.0f;
    __m512 lo_acc = _mm512_set1_ps(mn), hi_acc = _mm512_set1_ps(mx);
    _Alignas(64) uint32_t idx[QK_HISTOGRAM_BLOCK];
    size_t i = 0;
#define QK_HISTOGRAM_INDICES(MINMAX)                                                                            \
    for (size_t j = 0; j < m; j += 16) {                                                                        \
        const __m512 raw = _mm512_loadu_ps(x + i + j);                                                          \
        const __m512i raw_bits = _mm512_castps_si512(raw);                                                      \
        MINMAX                                                                                                  \
        const __m512 v = _mm512_castsi512_ps(_mm512_and_si512(raw_bits, value_mask));                           \
        const __mmask16 in = _mm512_cmp_ps_mask(v, vlo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(v, vhi, _CMP_LE_OQ);   \
        const __m512 t = _mm512_div_ps(_mm512_mul_ps(_mm512_sub_ps(v, vlo), vnb), vwidth);                      \
        const __mmask16 below = _mm512_cmp_ps_mask(t, vnb, _CMP_LT_OQ);                                         \
        __m512i b = _mm512_mask_blend_epi32(below, vlast, qk_histogram_cvttps_epi32(t));                        \
        b = _mm512_mask_blend_epi32(in, vskip, b);                                                              \
        _mm512_store_si512((void *)(idx + j), b);                                                               \
    }
/* Finite lanes only; min(x, acc) keeps acc on ties, as the scalar loop does. */
#define QK_HISTOGRAM_MINMAX                                                                                     \
        const __mmask16 finite =                                                                                \
            _mm512_cmp_ps_mask(_mm512_castsi512_ps(_mm512_and_si512(raw_bits, abs_mask)), vinf, _CMP_LT_OQ);   \
        lo_acc = _mm512_mask_min_ps(lo_acc, finite, raw, lo_acc);                                               \
        hi_acc = _mm512_mask_max_ps(hi_acc, finite, raw, hi_acc);
    while (i + 16 <= n) {
        size_t m = (n - i) & ~(size_t)15;
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
        float l[16], h[16];
        _mm512_storeu_ps(l, lo_acc);
        _mm512_storeu_ps(h, hi_acc);
        qk_histogram_fold_lanes(l, h, 16, &mn, &mx);
    }
    qk_histogram_bin_range(i, n, x, lo, hi, bins, absolute, counts, min != NULL, &mn, &mx);
    if (min) {
        *min = mn;
        *max = mx;
    }
}

#endif
