/* AVX2 quantize: fp32 -> quint8 / qint8 / qint32, bit-identical to quantize-scalar.c. */
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>
#include <string.h>

#include "qk_avx2.h"
#include "qk_internal.h"
#include "qk_kernels.h"

#define QK_QUANTIZE_SMALL(name, T, QMIN, QMAX, BIAS)                                                          \
    QK_TARGET_AVX2 void qk_f32_##name##_quantize__avx2(size_t n, const float *x, T *y, float inv_scale,        \
                                                       int32_t zp) {                                           \
        const __m256 vs = _mm256_set1_ps(inv_scale);                                                           \
        const __m256 lo = _mm256_set1_ps((float)(QMIN - zp)), hi = _mm256_set1_ps((float)(QMAX - zp));         \
        const __m256i zpb = _mm256_set1_epi32((int32_t)((uint32_t)zp + (BIAS)));                                \
        const __m256i flip = _mm256_set1_epi8((char)(BIAS));                                                    \
        size_t i = 0;                                                                                          \
        for (; i + 32 <= n; i += 32) {                                                                         \
            const __m256i a = qk_avx2_round_clamp8(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), lo, hi, zpb);                   \
            const __m256i b = qk_avx2_round_clamp8(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vs), lo, hi, zpb);               \
            const __m256i c = qk_avx2_round_clamp8(_mm256_mul_ps(_mm256_loadu_ps(x + i + 16), vs), lo, hi, zpb);              \
            const __m256i d = qk_avx2_round_clamp8(_mm256_mul_ps(_mm256_loadu_ps(x + i + 24), vs), lo, hi, zpb);              \
            _mm256_storeu_si256((__m256i *)(y + i), qk_avx2_pack8(a, b, c, d, flip));                                \
        }                                                                                                      \
        for (; i + 8 <= n; i += 8)                                                                             \
            qk_avx2_store8(y + i, qk_avx2_round_clamp8(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), lo, hi, zpb), flip);             \
        if (i < n) { /* the last 1..7 through stack copies: never touch memory past n */                       \
            const size_t r = n - i;                                                                            \
            float xb[8] = {0};                                                                                 \
            T yb[8];                                                                                           \
            memcpy(xb, x + i, r * sizeof(float));                                                              \
            qk_avx2_store8(yb, qk_avx2_round_clamp8(_mm256_mul_ps(_mm256_loadu_ps(xb), vs), lo, hi, zpb), flip);                   \
            memcpy(y + i, yb, r * sizeof(T));                                                                  \
        }                                                                                                      \
    }                                                                                                          \
    static QK_TARGET_AVX2 inline __m256i qk_##name##_pc8(const float *x, const float *s, const int32_t *zp) {   \
        const __m256i z = _mm256_loadu_si256((const __m256i *)zp);                                             \
        const __m256 lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_set1_epi32(QMIN), z));                    \
        const __m256 hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_set1_epi32(QMAX), z));                    \
        const __m256i zpb = _mm256_add_epi32(z, _mm256_set1_epi32(BIAS));                                      \
        return qk_avx2_round_clamp8(_mm256_mul_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(s)), lo, hi, zpb);                      \
    }                                                                                                          \
    QK_TARGET_AVX2 void qk_f32_##name##_quantize_pc__avx2(size_t n, const float *x, T *y,                      \
                                                          const float *inv_scale, const int32_t *zp) {         \
        const __m256i flip = _mm256_set1_epi8((char)(BIAS));                                                    \
        size_t i = 0;                                                                                          \
        for (; i + 32 <= n; i += 32) {                                                                         \
            const __m256i a = qk_##name##_pc8(x + i, inv_scale + i, zp + i);                                   \
            const __m256i b = qk_##name##_pc8(x + i + 8, inv_scale + i + 8, zp + i + 8);                       \
            const __m256i c = qk_##name##_pc8(x + i + 16, inv_scale + i + 16, zp + i + 16);                    \
            const __m256i d = qk_##name##_pc8(x + i + 24, inv_scale + i + 24, zp + i + 24);                    \
            _mm256_storeu_si256((__m256i *)(y + i), qk_avx2_pack8(a, b, c, d, flip));                                \
        }                                                                                                      \
        for (; i + 8 <= n; i += 8) qk_avx2_store8(y + i, qk_##name##_pc8(x + i, inv_scale + i, zp + i), flip);      \
        if (i < n) {                                                                                           \
            const size_t r = n - i;                                                                            \
            float xb[8] = {0}, sb[8] = {0};                                                                    \
            int32_t zb[8] = {0};                                                                               \
            T yb[8];                                                                                           \
            memcpy(xb, x + i, r * sizeof(float));                                                              \
            memcpy(sb, inv_scale + i, r * sizeof(float));                                                      \
            memcpy(zb, zp + i, r * sizeof(int32_t));                                                           \
            qk_avx2_store8(yb, qk_##name##_pc8(xb, sb, zb), flip);                                                  \
            memcpy(y + i, yb, r * sizeof(T));                                                                  \
        }                                                                                                      \
    }

QK_QUANTIZE_SMALL(qu8, uint8_t, 0, 255, 0)
QK_QUANTIZE_SMALL(qs8, int8_t, -128, 127, 128)

/*
 * qint32 (qk_round_clamp_s32): round in float, then add zp and saturate in double, where the sum is exact whenever
 * the result is in int32 range (|r| <= 2^33) and stays beyond it otherwise (inf included). NaN: maxpd with the
 * value first returns the lower bound, INT32_MIN.
 */
static QK_TARGET_AVX2 inline __m128i qk_q32_half(__m128 r, __m256d zp) {
    __m256d d = _mm256_add_pd(_mm256_cvtps_pd(r), zp);
    d = _mm256_max_pd(d, _mm256_set1_pd(-2147483648.0));
    d = _mm256_min_pd(d, _mm256_set1_pd(2147483647.0));
    return _mm256_cvtpd_epi32(d);
}

static QK_TARGET_AVX2 inline __m256i qk_q32(__m256 v, __m256d zp_lo, __m256d zp_hi) {
    const __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m128i a = qk_q32_half(_mm256_castps256_ps128(r), zp_lo);
    const __m128i b = qk_q32_half(_mm256_extractf128_ps(r, 1), zp_hi);
    return _mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1);
}

static QK_TARGET_AVX2 inline __m256i qk_q32_pc(const float *x, const float *s, const int32_t *zp) {
    const __m256d zlo = _mm256_cvtepi32_pd(_mm_loadu_si128((const __m128i *)zp));
    const __m256d zhi = _mm256_cvtepi32_pd(_mm_loadu_si128((const __m128i *)(zp + 4)));
    return qk_q32(_mm256_mul_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(s)), zlo, zhi);
}

QK_TARGET_AVX2 void qk_f32_qs32_quantize__avx2(size_t n, const float *x, int32_t *y, float inv_scale, int32_t zp) {
    const __m256 vs = _mm256_set1_ps(inv_scale);
    const __m256d z = _mm256_set1_pd((double)zp);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i a = qk_q32(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), z, z);
        const __m256i b = qk_q32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vs), z, z);
        _mm256_storeu_si256((__m256i *)(y + i), a);
        _mm256_storeu_si256((__m256i *)(y + i + 8), b);
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_si256((__m256i *)(y + i), qk_q32(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), z, z));
    if (i < n) {
        const size_t r = n - i;
        float xb[8] = {0};
        int32_t yb[8];
        memcpy(xb, x + i, r * sizeof(float));
        _mm256_storeu_si256((__m256i *)yb, qk_q32(_mm256_mul_ps(_mm256_loadu_ps(xb), vs), z, z));
        memcpy(y + i, yb, r * sizeof(int32_t));
    }
}

QK_TARGET_AVX2 void qk_f32_qs32_quantize_pc__avx2(size_t n, const float *x, int32_t *y, const float *inv_scale,
                                                  const int32_t *zp) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_si256((__m256i *)(y + i), qk_q32_pc(x + i, inv_scale + i, zp + i));
    if (i < n) {
        const size_t r = n - i;
        float xb[8] = {0}, sb[8] = {0};
        int32_t zb[8] = {0}, yb[8];
        memcpy(xb, x + i, r * sizeof(float));
        memcpy(sb, inv_scale + i, r * sizeof(float));
        memcpy(zb, zp + i, r * sizeof(int32_t));
        _mm256_storeu_si256((__m256i *)yb, qk_q32_pc(xb, sb, zb));
        memcpy(y + i, yb, r * sizeof(int32_t));
    }
}

#endif
