/* AVX2 building blocks shared by the 8-bit-output kernels (quantize, requantize). Include inside an x86 guard. */
#ifndef QK_AVX2_H
#define QK_AVX2_H

#include <immintrin.h>

#include "qk_internal.h"

/*
 * 8-bit outputs: clamp in float to [qmin - zp, qmax - zp] with v as the first operand of max/min (NaN takes the
 * lower bound, as in qk_round_clamp_small), round with vcvtps2dq (nearest-even under the default MXCSR), add zp.
 * The scalar (T) cast keeps the low byte even if zp is outside the dtype range; to match it for any zp, u8 keeps
 * the low byte with an AND before packus, and s8 adds a 128 bias first and flips the top bit back afterwards.
 */
static QK_TARGET_AVX2 inline __m256i qk_avx2_round_clamp8(__m256 v, __m256 lo, __m256 hi, __m256i zpb) {
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    return _mm256_and_si256(_mm256_add_epi32(_mm256_cvtps_epi32(v), zpb), _mm256_set1_epi32(0xFF));
}

/* Four vectors of 0..255 in int32 lanes -> 32 bytes in element order (flip: 0x80 bytes for s8, else 0). */
static QK_TARGET_AVX2 inline __m256i qk_avx2_pack8(__m256i a, __m256i b, __m256i c, __m256i d, __m256i flip) {
    const __m256i ab = _mm256_packus_epi32(a, b);   /* per 128-bit lane: a0-3 b0-3 | a4-7 b4-7 */
    const __m256i cd = _mm256_packus_epi32(c, d);
    const __m256i r = _mm256_packus_epi16(ab, cd);  /* dwords: a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7 */
    return _mm256_xor_si256(_mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)), flip);
}

/* y[0..7] from the 8 lanes of q. */
static QK_TARGET_AVX2 inline void qk_avx2_store8(void *y, __m256i q, __m256i flip) {
    _mm_storel_epi64((__m128i *)y, _mm256_castsi256_si128(qk_avx2_pack8(q, q, q, q, flip)));
}

#endif /* QK_AVX2_H */
