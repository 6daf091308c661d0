/* AVX-512 dequantize: quint8 / qint8 / qint32 -> fp32, y = ((float)q - (float)zp) * scale, bit-identical to
 * dequantize-scalar.c (a subtraction then a multiplication, two roundings). Masked tails never touch memory past n. */
#if defined(__x86_64__) || defined(_M_X64)

#include <stdint.h>

#include "qk_avx512.h"
#include "qk_kernels.h"

#define QK_TAIL_MASK16(r) ((__mmask16)((1u << (r)) - 1u))

/* 16 elements of q widened to int32: full and masked (zero-filled) loads. */
static QK_TARGET_AVX512 inline __m512i qk_load_qu8(const uint8_t *q) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)q));
}
static QK_TARGET_AVX512 inline __m512i qk_load_qs8(const int8_t *q) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q));
}
static QK_TARGET_AVX512 inline __m512i qk_load_qs32(const int32_t *q) { return _mm512_loadu_si512(q); }
static QK_TARGET_AVX512 inline __m512i qk_maskz_load_qu8(__mmask16 k, const uint8_t *q) {
    return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, q));
}
static QK_TARGET_AVX512 inline __m512i qk_maskz_load_qs8(__mmask16 k, const int8_t *q) {
    return _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, q));
}
static QK_TARGET_AVX512 inline __m512i qk_maskz_load_qs32(__mmask16 k, const int32_t *q) {
    return _mm512_maskz_loadu_epi32(k, q);
}

static QK_TARGET_AVX512 inline __m512 qk_dq(__m512i q, __m512 zp, __m512 s) {
    return _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(q), zp), s);
}

#define QK_DEQUANTIZE(name, T)                                                                                 \
    QK_TARGET_AVX512 void qk_##name##_f32_dequantize__avx512(size_t n, const T *q, float *y, float scale,      \
                                                             int32_t zp) {                                     \
        const __m512 vs = _mm512_set1_ps(scale), vz = _mm512_set1_ps((float)zp);                               \
        size_t i = 0;                                                                                          \
        for (; i + 64 <= n; i += 64) {                                                                         \
            const __m512 a = qk_dq(qk_load_##name(q + i), vz, vs);                                             \
            const __m512 b = qk_dq(qk_load_##name(q + i + 16), vz, vs);                                        \
            const __m512 c = qk_dq(qk_load_##name(q + i + 32), vz, vs);                                        \
            const __m512 d = qk_dq(qk_load_##name(q + i + 48), vz, vs);                                        \
            _mm512_storeu_ps(y + i, a);                                                                        \
            _mm512_storeu_ps(y + i + 16, b);                                                                   \
            _mm512_storeu_ps(y + i + 32, c);                                                                   \
            _mm512_storeu_ps(y + i + 48, d);                                                                   \
        }                                                                                                      \
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, qk_dq(qk_load_##name(q + i), vz, vs));           \
        if (i < n) {                                                                                           \
            const __mmask16 k = QK_TAIL_MASK16(n - i);                                                         \
            _mm512_mask_storeu_ps(y + i, k, qk_dq(qk_maskz_load_##name(k, q + i), vz, vs));                    \
        }                                                                                                      \
    }                                                                                                          \
    QK_TARGET_AVX512 void qk_##name##_f32_dequantize_pc__avx512(size_t n, const T *q, float *y,                \
                                                                const float *scale, const int32_t *zp) {       \
        size_t i = 0;                                                                                          \
        for (; i + 32 <= n; i += 32) {                                                                         \
            const __m512 a = qk_dq(qk_load_##name(q + i), _mm512_cvtepi32_ps(_mm512_loadu_si512(zp + i)),      \
                                   _mm512_loadu_ps(scale + i));                                                \
            const __m512 b = qk_dq(qk_load_##name(q + i + 16),                                                 \
                                   _mm512_cvtepi32_ps(_mm512_loadu_si512(zp + i + 16)),                        \
                                   _mm512_loadu_ps(scale + i + 16));                                           \
            _mm512_storeu_ps(y + i, a);                                                                        \
            _mm512_storeu_ps(y + i + 16, b);                                                                   \
        }                                                                                                      \
        for (; i < n; i += 16) {                                                                               \
            const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : QK_TAIL_MASK16(n - i);                       \
            const __m512 a = qk_dq(qk_maskz_load_##name(k, q + i),                                             \
                                   _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(k, zp + i)),                    \
                                   _mm512_maskz_loadu_ps(k, scale + i));                                       \
            _mm512_mask_storeu_ps(y + i, k, a);                                                                \
        }                                                                                                      \
    }

QK_DEQUANTIZE(qu8, uint8_t)
QK_DEQUANTIZE(qs8, int8_t)
QK_DEQUANTIZE(qs32, int32_t)

#endif
