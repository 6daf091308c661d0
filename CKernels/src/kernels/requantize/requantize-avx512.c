/* AVX-512 requantize: int32 -> quint8 / qint8 with fp32 multipliers, bit-identical to requantize-scalar.c. Masked
 * tails never touch memory past n. */
#if defined(__x86_64__) || defined(_M_X64)

#include "qk_avx512.h"
#include "qk_kernels.h"

#define QK_TAIL_MASK16(r) ((__mmask16)((1u << (r)) - 1u))

/*
 * (float)acc (vcvtdq2ps, nearest-even) * m, clamped in float to [qmin - zp, qmax - zp] with v as the first operand
 * of max/min (NaN cannot occur, but the order matches the scalar), rounded by vcvtps2dq, plus zp; vpmovdb keeps the
 * low byte, exactly the scalar (T) cast.
 */
static QK_TARGET_AVX512 inline __m512i qk_rq32(__m512i acc, __m512 m, __m512 lo, __m512 hi, __m512i zp) {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), m);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    return _mm512_add_epi32(_mm512_cvtps_epi32(v), zp);
}
static QK_TARGET_AVX512 inline __m128i qk_rq8(__m512i acc, __m512 m, __m512 lo, __m512 hi, __m512i zp) {
    return _mm512_cvtepi32_epi8(qk_rq32(acc, m, lo, hi, zp));
}

#define QK_REQUANTIZE(name, T)                                                                                 \
    QK_TARGET_AVX512 void qk_qs32_##name##_requantize__avx512(size_t n, const int32_t *acc, T *y, float m,     \
                                                              int32_t zp, int32_t qmin, int32_t qmax) {        \
        const __m512 vm = _mm512_set1_ps(m);                                                                   \
        const __m512 lo = _mm512_set1_ps((float)(qmin - zp)), hi = _mm512_set1_ps((float)(qmax - zp));         \
        const __m512i vz = _mm512_set1_epi32(zp);                                                              \
        size_t i = 0;                                                                                          \
        for (; i + 64 <= n; i += 64) {                                                                         \
            const __m128i a = qk_rq8(_mm512_loadu_si512(acc + i), vm, lo, hi, vz);                             \
            const __m128i b = qk_rq8(_mm512_loadu_si512(acc + i + 16), vm, lo, hi, vz);                        \
            const __m128i c = qk_rq8(_mm512_loadu_si512(acc + i + 32), vm, lo, hi, vz);                        \
            const __m128i d = qk_rq8(_mm512_loadu_si512(acc + i + 48), vm, lo, hi, vz);                        \
            _mm_storeu_si128((__m128i *)(y + i), a);                                                           \
            _mm_storeu_si128((__m128i *)(y + i + 16), b);                                                      \
            _mm_storeu_si128((__m128i *)(y + i + 32), c);                                                      \
            _mm_storeu_si128((__m128i *)(y + i + 48), d);                                                      \
        }                                                                                                      \
        for (; i + 16 <= n; i += 16)                                                                           \
            _mm_storeu_si128((__m128i *)(y + i), qk_rq8(_mm512_loadu_si512(acc + i), vm, lo, hi, vz));         \
        if (i < n) {                                                                                           \
            const __mmask16 k = QK_TAIL_MASK16(n - i);                                                         \
            _mm512_mask_cvtepi32_storeu_epi8(                                                                  \
                y + i, k, qk_rq32(_mm512_maskz_loadu_epi32(k, acc + i), vm, lo, hi, vz));             \
        }                                                                                                      \
    }                                                                                                          \
    QK_TARGET_AVX512 void qk_qs32_##name##_requantize_pc__avx512(size_t n, const int32_t *acc, T *y,           \
                                                                 const float *m, int32_t zp, int32_t qmin,     \
                                                                 int32_t qmax) {                               \
        const __m512 lo = _mm512_set1_ps((float)(qmin - zp)), hi = _mm512_set1_ps((float)(qmax - zp));         \
        const __m512i vz = _mm512_set1_epi32(zp);                                                              \
        size_t i = 0;                                                                                          \
        for (; i + 32 <= n; i += 32) {                                                                         \
            const __m128i a = qk_rq8(_mm512_loadu_si512(acc + i), _mm512_loadu_ps(m + i), lo, hi, vz);         \
            const __m128i b = qk_rq8(_mm512_loadu_si512(acc + i + 16), _mm512_loadu_ps(m + i + 16), lo, hi, vz); \
            _mm_storeu_si128((__m128i *)(y + i), a);                                                           \
            _mm_storeu_si128((__m128i *)(y + i + 16), b);                                                      \
        }                                                                                                      \
        for (; i < n; i += 16) {                                                                               \
            const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : QK_TAIL_MASK16(n - i);                       \
            _mm512_mask_cvtepi32_storeu_epi8(                                                                  \
                y + i, k,                                                                                      \
                qk_rq32(_mm512_maskz_loadu_epi32(k, acc + i), _mm512_maskz_loadu_ps(k, m + i), lo, hi, vz)); \
        }                                                                                                      \
    }

QK_REQUANTIZE(qu8, uint8_t)
QK_REQUANTIZE(qs8, int8_t)

#endif
