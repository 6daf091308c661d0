/* AVX2 dequantize: quint8 / qint8 / qint32 -> fp32, y = ((float)q - (float)zp) * scale, bit-identical to
 * dequantize-scalar.c (a subtraction then a multiplication, two roundings: no FMA form exists for it). */
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "qk_internal.h"
#include "qk_kernels.h"

/* 8 elements of q widened to int32 (vpmovzxbd / vpmovsxbd from memory, plain load for int32). */
static QK_TARGET_AVX2 inline __m256i qk_load_qu8(const uint8_t *q) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)q));
}
static QK_TARGET_AVX2 inline __m256i qk_load_qs8(const int8_t *q) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q));
}
static QK_TARGET_AVX2 inline __m256i qk_load_qs32(const int32_t *q) {
    return _mm256_loadu_si256((const __m256i *)q);
}

static QK_TARGET_AVX2 inline __m256 qk_dq(__m256i q, __m256 zp, __m256 s) {
    return _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(q), zp), s);
}

#define QK_DEQUANTIZE(name, T)                                                                                 \
    /* r <= 7 elements through stack copies: never touches memory past r. */                                   \
    static QK_TARGET_AVX2 inline void qk_##name##_dq_few(size_t r, const T *q, float *y, __m256 vz, __m256 vs) { \
        T qb[8] = {0};                                                                                         \
        float yb[8];                                                                                           \
        memcpy(qb, q, r * sizeof(T));                                                                          \
        _mm256_storeu_ps(yb, qk_dq(qk_load_##name(qb), vz, vs));                                               \
        memcpy(y, yb, r * sizeof(float));                                                                      \
    }                                                                                                          \
    QK_TARGET_AVX2 void qk_##name##_f32_dequantize__avx2(size_t n, const T *q, float *y, float scale,          \
                                                         int32_t zp) {                                         \
        const __m256 vs = _mm256_set1_ps(scale), vz = _mm256_set1_ps((float)zp);                               \
        size_t i = 0;                                                                                          \
        for (; i + 32 <= n; i += 32) {                                                                         \
            const __m256 a = qk_dq(qk_load_##name(q + i), vz, vs);                                             \
            const __m256 b = qk_dq(qk_load_##name(q + i + 8), vz, vs);                                         \
            const __m256 c = qk_dq(qk_load_##name(q + i + 16), vz, vs);                                        \
            const __m256 d = qk_dq(qk_load_##name(q + i + 24), vz, vs);                                        \
            _mm256_storeu_ps(y + i, a);                                                                        \
            _mm256_storeu_ps(y + i + 8, b);                                                                    \
            _mm256_storeu_ps(y + i + 16, c);                                                                   \
            _mm256_storeu_ps(y + i + 24, d);                                                                   \
        }                                                                                                      \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, qk_dq(qk_load_##name(q + i), vz, vs));             \
        if (i < n) qk_##name##_dq_few(n - i, q + i, y + i, vz, vs);                                            \
    }                                                                                                          \
    static QK_TARGET_AVX2 inline __m256 qk_##name##_dq_pc(const T *q, const float *s, const int32_t *zp) {     \
        const __m256 z = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)zp));                          \
        return qk_dq(qk_load_##name(q), z, _mm256_loadu_ps(s));                                                \
    }                                                                                                          \
    QK_TARGET_AVX2 void qk_##name##_f32_dequantize_pc__avx2(size_t n, const T *q, float *y, const float *scale, \
                                                            const int32_t *zp) {                               \
        size_t i = 0;                                                                                          \
        for (; i + 16 <= n; i += 16) {                                                                         \
            const __m256 a = qk_##name##_dq_pc(q + i, scale + i, zp + i);                                      \
            const __m256 b = qk_##name##_dq_pc(q + i + 8, scale + i + 8, zp + i + 8);                          \
            _mm256_storeu_ps(y + i, a);                                                                        \
            _mm256_storeu_ps(y + i + 8, b);                                                                    \
        }                                                                                                      \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, qk_##name##_dq_pc(q + i, scale + i, zp + i));      \
        if (i < n) {                                                                                           \
            const size_t r = n - i;                                                                            \
            T qb[8] = {0};                                                                                     \
            float sb[8] = {0}, yb[8];                                                                          \
            int32_t zb[8] = {0};                                                                               \
            memcpy(qb, q + i, r * sizeof(T));                                                                  \
            memcpy(sb, scale + i, r * sizeof(float));                                                          \
            memcpy(zb, zp + i, r * sizeof(int32_t));                                                           \
            _mm256_storeu_ps(yb, qk_##name##_dq_pc(qb, sb, zb));                                               \
            memcpy(y + i, yb, r * sizeof(float));                                                              \
        }                                                                                                      \
    }

QK_DEQUANTIZE(qu8, uint8_t)
QK_DEQUANTIZE(qs8, int8_t)
QK_DEQUANTIZE(qs32, int32_t)

#endif
