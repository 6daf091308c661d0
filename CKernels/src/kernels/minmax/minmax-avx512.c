/* AVX-512 min/max, equal to minmax-scalar.c (up to the sign of a zero result, which the contract leaves open). */
#if defined(__x86_64__) || defined(_M_X64)

#include <math.h>

#include "qk_avx512.h"
#include "qk_kernels.h"

#define QK_TAIL_MASK16(r) ((__mmask16)((1u << (r)) - 1u))

/*
 * minps/maxps return the second operand when either is NaN, so min(x, acc) skips a NaN x. The accumulators start
 * at *min / *max: a NaN there stays in every lane, as it stays in the scalar loop. finite_only and the tail use
 * masked min/max, which leave the accumulator lane unchanged where the mask is clear (|x| < inf is false for
 * +-inf and NaN).
 */
static QK_TARGET_AVX512 inline __mmask16 qk_finite(__m512 x) {
    return _mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(INFINITY), _CMP_LT_OQ);
}

QK_TARGET_AVX512 void qk_f32_minmax__avx512(size_t n, const float *x, int finite_only, float *min, float *max) {
    __m512 lo0 = _mm512_set1_ps(*min), lo1 = lo0, lo2 = lo0, lo3 = lo0;
    __m512 hi0 = _mm512_set1_ps(*max), hi1 = hi0, hi2 = hi0, hi3 = hi0;
    size_t i = 0;
    if (finite_only) {
        for (; i + 64 <= n; i += 64) {
            const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
            const __m512 c = _mm512_loadu_ps(x + i + 32), d = _mm512_loadu_ps(x + i + 48);
            const __mmask16 ka = qk_finite(a), kb = qk_finite(b), kc = qk_finite(c), kd = qk_finite(d);
            lo0 = _mm512_mask_min_ps(lo0, ka, a, lo0); hi0 = _mm512_mask_max_ps(hi0, ka, a, hi0);
            lo1 = _mm512_mask_min_ps(lo1, kb, b, lo1); hi1 = _mm512_mask_max_ps(hi1, kb, b, hi1);
            lo2 = _mm512_mask_min_ps(lo2, kc, c, lo2); hi2 = _mm512_mask_max_ps(hi2, kc, c, hi2);
            lo3 = _mm512_mask_min_ps(lo3, kd, d, lo3); hi3 = _mm512_mask_max_ps(hi3, kd, d, hi3);
        }
    } else {
        for (; i + 64 <= n; i += 64) {
            const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
            const __m512 c = _mm512_loadu_ps(x + i + 32), d = _mm512_loadu_ps(x + i + 48);
            lo0 = _mm512_min_ps(a, lo0); hi0 = _mm512_max_ps(a, hi0);
            lo1 = _mm512_min_ps(b, lo1); hi1 = _mm512_max_ps(b, hi1);
            lo2 = _mm512_min_ps(c, lo2); hi2 = _mm512_max_ps(c, hi2);
            lo3 = _mm512_min_ps(d, lo3); hi3 = _mm512_max_ps(d, hi3);
        }
    }
    for (; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : QK_TAIL_MASK16(n - i);
        const __m512 a = _mm512_maskz_loadu_ps(k, x + i);
        if (finite_only) k = (__mmask16)(k & qk_finite(a));
        lo0 = _mm512_mask_min_ps(lo0, k, a, lo0);
        hi0 = _mm512_mask_max_ps(hi0, k, a, hi0);
    }
    /* Lanes hold NaN only if *min / *max was NaN, and then all of them do: the fold order does not matter. */
    float l[16], h[16];
    _mm512_storeu_ps(l, _mm512_min_ps(_mm512_min_ps(lo0, lo1), _mm512_min_ps(lo2, lo3)));
    _mm512_storeu_ps(h, _mm512_max_ps(_mm512_max_ps(hi0, hi1), _mm512_max_ps(hi2, hi3)));
    float lo = l[0], hi = h[0];
    for (int k = 1; k < 16; k++) {
        lo = l[k] < lo ? l[k] : lo;
        hi = h[k] > hi ? h[k] : hi;
    }
    *min = lo;
    *max = hi;
}

#endif
