/* AVX2 requantize: int32 -> quint8 / qint8 with fp32 multipliers, bit-identical to requantize-scalar.c. */
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>
#include <string.h>

#include "qk_internal.h"
#include "qk_kernels.h"

/*
 * (float)acc (vcvtdq2ps, nearest-even) * m, clamped in float to [qmin - zp, qmax - zp] with v as the first operand
 * of max/min, rounded by vcvtps2dq, plus zp. The scalar (T) cast keeps the low byte; as in quantize-avx2.c, u8
 * masks to a byte before packus and s8 adds a 128 bias that is flipped back after packing.
 */
static QK_TARGET_AVX2 inline __m256i qk_rq8(const int32_t *acc, __m256 m, __m256 lo, __m256 hi, __m256i zpb) {
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)acc)), m);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    return _mm256_and_si256(_mm256_add_epi32(_mm256_cvtps_epi32(v), zpb), _mm256_set1_epi32(0xFF));
}

/* Four vectors of 0..255 in int32 lanes -> 32 bytes in element order (flip: 0x80 bytes for s8, else 0). */
static QK_TARGET_AVX2 inline __m256i qk_pack8(__m256i a, __m256i b, __m256i c, __m256i d, __m256i flip) {
    const __m256i ab = _mm256_packus_epi32(a, b);   /* per 128-bit lane: a0-3 b0-3 | a4-7 b4-7 */
    const __m256i cd = _mm256_packus_epi32(c, d);
    const __m256i r = _mm256_packus_epi16(ab, cd);  /* dwords: a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7 */
    return _mm256_xor_si256(_mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)), flip);
}

static QK_TARGET_AVX2 inline void qk_store8(void *y, __m256i q, __m256i flip) {
    _mm_storel_epi64((__m128i *)y, _mm256_castsi256_si128(qk_pack8(q, q, q, q, flip)));
}

#define QK_REQUANTIZE(name, T, BIAS)                                                                           \
    QK_TARGET_AVX2 void qk_qs32_##name##_requantize__avx2(size_t n, const int32_t *acc, T *y, float m,         \
                                                          int32_t zp, int32_t qmin, int32_t qmax) {            \
        const __m256 vm = _mm256_set1_ps(m);                                                                   \
        const __m256 lo = _mm256_set1_ps((float)(qmin - zp)), hi = _mm256_set1_ps((float)(qmax - zp));         \
        const __m256i zpb = _mm256_set1_epi32((int32_t)((uint32_t)zp + (BIAS)));                                \
        const __m256i flip = _mm256_set1_epi8((char)(BIAS));                                                    \
        size_t i = 0;                                                                                          \
        for (; i + 32 <= n; i += 32) {                                                                         \
            const __m256i a = qk_rq8(acc + i, vm, lo, hi, zpb);                                                \
            const __m256i b = qk_rq8(acc + i + 8, vm, lo, hi, zpb);                                            \
            const __m256i c = qk_rq8(acc + i + 16, vm, lo, hi, zpb);                                           \
            const __m256i d = qk_rq8(acc + i + 24, vm, lo, hi, zpb);                                           \
            _mm256_storeu_si256((__m256i *)(y + i), qk_pack8(a, b, c, d, flip));                                \
        }                                                                                                      \
        for (; i + 8 <= n; i += 8) qk_store8(y + i, qk_rq8(acc + i, vm, lo, hi, zpb), flip);                   \
        if (i < n) { /* the last 1..7 through stack copies: never touch memory past n */                       \
            const size_t r = n - i;                                                                            \
            int32_t ab[8] = {0};                                                                               \
            T yb[8];                                                                                           \
            memcpy(ab, acc + i, r * sizeof(int32_t));                                                          \
            qk_store8(yb, qk_rq8(ab, vm, lo, hi, zpb), flip);                                                  \
            memcpy(y + i, yb, r * sizeof(T));                                                                  \
        }                                                                                                      \
    }                                                                                                          \
    static QK_TARGET_AVX2 inline __m256i qk_##name##_rq8_pc(const int32_t *acc, const float *m, __m256 lo,      \
                                                            __m256 hi, __m256i zpb) {                          \
        return qk_rq8(acc, _mm256_loadu_ps(m), lo, hi, zpb);                                                   \
    }                                                                                                          \
    QK_TARGET_AVX2 void qk_qs32_##name##_requantize_pc__avx2(size_t n, const int32_t *acc, T *y,               \
                                                             const float *m, int32_t zp, int32_t qmin,         \
                                                             int32_t qmax) {                                   \
        const __m256 lo = _mm256_set1_ps((float)(qmin - zp)), hi = _mm256_set1_ps((float)(qmax - zp));         \
        const __m256i zpb = _mm256_set1_epi32((int32_t)((uint32_t)zp + (BIAS)));                                \
        const __m256i flip = _mm256_set1_epi8((char)(BIAS));                                                    \
        size_t i = 0;                                                                                          \
        for (; i + 32 <= n; i += 32) {                                                                         \
            const __m256i a = qk_##name##_rq8_pc(acc + i, m + i, lo, hi, zpb);                                 \
            const __m256i b = qk_##name##_rq8_pc(acc + i + 8, m + i + 8, lo, hi, zpb);                         \
            const __m256i c = qk_##name##_rq8_pc(acc + i + 16, m + i + 16, lo, hi, zpb);                       \
            const __m256i d = qk_##name##_rq8_pc(acc + i + 24, m + i + 24, lo, hi, zpb);                       \
            _mm256_storeu_si256((__m256i *)(y + i), qk_pack8(a, b, c, d, flip));                                \
        }                                                                                                      \
        for (; i + 8 <= n; i += 8) qk_store8(y + i, qk_##name##_rq8_pc(acc + i, m + i, lo, hi, zpb), flip);    \
        if (i < n) {                                                                                           \
            const size_t r = n - i;                                                                            \
            int32_t ab[8] = {0};                                                                               \
            float mb[8] = {0};                                                                                 \
            T yb[8];                                                                                           \
            memcpy(ab, acc + i, r * sizeof(int32_t));                                                          \
            memcpy(mb, m + i, r * sizeof(float));                                                              \
            qk_store8(yb, qk_##name##_rq8_pc(ab, mb, lo, hi, zpb), flip);                                      \
            memcpy(y + i, yb, r * sizeof(T));                                                                  \
        }                                                                                                      \
    }

QK_REQUANTIZE(qu8, uint8_t, 0)
QK_REQUANTIZE(qs8, int8_t, 128)

#endif
