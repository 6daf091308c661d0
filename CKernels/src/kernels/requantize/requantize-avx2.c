/* AVX2 requantize: int32 -> quint8 / qint8 with fp32 multipliers, bit-identical to requantize-scalar.c. */
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>
#include <string.h>

#include "qk_avx2.h"
#include "qk_internal.h"
#include "qk_kernels.h"

/* (float)acc (vcvtdq2ps, nearest-even) * m, then the shared clamp-round of qk_avx2.h. */
static QK_TARGET_AVX2 inline __m256i qk_rq8(const int32_t *acc, __m256 m, __m256 lo, __m256 hi, __m256i zpb) {
    const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)acc)), m);
    return qk_avx2_round_clamp8(v, lo, hi, zpb);
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
            _mm256_storeu_si256((__m256i *)(y + i), qk_avx2_pack8(a, b, c, d, flip));                                \
        }                                                                                                      \
        for (; i + 8 <= n; i += 8) qk_avx2_store8(y + i, qk_rq8(acc + i, vm, lo, hi, zpb), flip);                   \
        if (i < n) { /* the last 1..7 through stack copies: never touch memory past n */                       \
            const size_t r = n - i;                                                                            \
            int32_t ab[8] = {0};                                                                               \
            T yb[8];                                                                                           \
            memcpy(ab, acc + i, r * sizeof(int32_t));                                                          \
            qk_avx2_store8(yb, qk_rq8(ab, vm, lo, hi, zpb), flip);                                                  \
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
            _mm256_storeu_si256((__m256i *)(y + i), qk_avx2_pack8(a, b, c, d, flip));                                \
        }                                                                                                      \
        for (; i + 8 <= n; i += 8) qk_avx2_store8(y + i, qk_##name##_rq8_pc(acc + i, m + i, lo, hi, zpb), flip);    \
        if (i < n) {                                                                                           \
            const size_t r = n - i;                                                                            \
            int32_t ab[8] = {0};                                                                               \
            float mb[8] = {0};                                                                                 \
            T yb[8];                                                                                           \
            memcpy(ab, acc + i, r * sizeof(int32_t));                                                          \
            memcpy(mb, m + i, r * sizeof(float));                                                              \
            qk_avx2_store8(yb, qk_##name##_rq8_pc(ab, mb, lo, hi, zpb), flip);                                      \
            memcpy(y + i, yb, r * sizeof(T));                                                                  \
        }                                                                                                      \
    }

QK_REQUANTIZE(qu8, uint8_t, 0)
QK_REQUANTIZE(qs8, int8_t, 128)

#endif
