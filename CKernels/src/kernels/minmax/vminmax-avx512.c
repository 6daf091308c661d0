/* AVX-512 element-wise running min/max, bit for bit vminmax-scalar.c (masked: only lanes whose x is a number, and
 * finite with finite_only, take part; min(x, acc) keeps acc on ties). */
#if defined(__x86_64__) || defined(_M_X64)

#include <math.h>

#include "qk_avx512.h"
#include "qk_kernels.h"

QK_TARGET_AVX512 void qk_f32_vminmax__avx512(size_t n, const float *x, int finite_only, float *min, float *max) {
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
    const __m512 vinf = _mm512_set1_ps(INFINITY);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), abs_mask));
        /* |x| < inf: finite; |x| <= inf: not NaN */
        const __mmask16 keep = finite_only ? _mm512_cmp_ps_mask(a, vinf, _CMP_LT_OQ)
                                           : _mm512_cmp_ps_mask(a, vinf, _CMP_LE_OQ);
        const __m512 lo = _mm512_loadu_ps(min + i), hi = _mm512_loadu_ps(max + i);
        _mm512_storeu_ps(min + i, _mm512_mask_min_ps(lo, keep, v, lo));
        _mm512_storeu_ps(max + i, _mm512_mask_max_ps(hi, keep, v, hi));
    }
    for (; i < n; i++) {
        const float v = x[i];
        if (v != v) continue;
        if (finite_only && isinf(v)) continue;
        min[i] = v < min[i] ? v : min[i];
        max[i] = v > max[i] ? v : max[i];
    }
}

#endif
