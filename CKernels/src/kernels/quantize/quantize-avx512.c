/* AVX-512 quantize: fp32 -> quint8 / qint8 / qint32, bit-identical to quantize-scalar.c. Tails use masked loads and
 * stores, which never touch memory past n. */
#if defined(__x86_64__) || defined(_M_X64)

#include "qk_avx512.h"
#include "qk_kernels.h"

/* The low r bits, r = 1..15 (or 1..7). */
#define QK_TAIL_MASK16(r) ((__mmask16)((1u << (r)) - 1u))
#define QK_TAIL_MASK8(r) ((__mmask8)((1u << (r)) - 1u))

/*
 * 8-bit outputs: clamp in float to [qmin - zp, qmax - zp] with v as the first operand of max/min (NaN takes the
 * lower bound, as in qk_round_clamp_small), round with vcvtps2dq (nearest-even under the default MXCSR), add zp.
 * vpmovdb keeps the low byte, exactly the scalar (T) cast, whatever zp is.
 */
static QK_TARGET_AVX512 inline __m512i qk_q8(__m512 v, __m512 lo, __m512 hi, __m512i zp) {
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    return _mm512_add_epi32(_mm512_cvtps_epi32(v), zp);
}

#define QK_QUANTIZE_SMALL(name, T, QMIN, QMAX)                                                                \
    QK_TARGET_AVX512 void qk_f32_##name##_quantize__avx512(size_t n, const float *x, T *y, float inv_scale,    \
                                                           int32_t zp) {                                       \
        const __m512 vs = _mm512_set1_ps(inv_scale);                                                           \
        const __m512 lo = _mm512_set1_ps((float)(QMIN - zp)), hi = _mm512_set1_ps((float)(QMAX - zp));         \
        const __m512i vz = _mm512_set1_epi32(zp);                                                              \
        size_t i = 0;                                                                                          \
        for (; i + 64 <= n; i += 64) {                                                                         \
            const __m512i a = qk_q8(_mm512_mul_ps(_mm512_loadu_ps(x + i), vs), lo, hi, vz);                    \
            const __m512i b = qk_q8(_mm512_mul_ps(_mm512_loadu_ps(x + i + 16), vs), lo, hi, vz);               \
            const __m512i c = qk_q8(_mm512_mul_ps(_mm512_loadu_ps(x + i + 32), vs), lo, hi, vz);               \
            const __m512i d = qk_q8(_mm512_mul_ps(_mm512_loadu_ps(x + i + 48), vs), lo, hi, vz);               \
            _mm_storeu_si128((__m128i *)(y + i), _mm512_cvtepi32_epi8(a));                                     \
            _mm_storeu_si128((__m128i *)(y + i + 16), _mm512_cvtepi32_epi8(b));                                \
            _mm_storeu_si128((__m128i *)(y + i + 32), _mm512_cvtepi32_epi8(c));                                \
            _mm_storeu_si128((__m128i *)(y + i + 48), _mm512_cvtepi32_epi8(d));                                \
        }                                                                                                      \
        for (; i + 16 <= n; i += 16) {                                                                         \
            const __m512i a = qk_q8(_mm512_mul_ps(_mm512_loadu_ps(x + i), vs), lo, hi, vz);                    \
            _mm_storeu_si128((__m128i *)(y + i), _mm512_cvtepi32_epi8(a));                                     \
        }                                                                                                      \
        if (i < n) {                                                                                           \
            const __mmask16 k = QK_TAIL_MASK16(n - i);                                                         \
            const __m512i a = qk_q8(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vs), lo, hi, vz);           \
            _mm512_mask_cvtepi32_storeu_epi8(y + i, k, a);                                                     \
        }                                                                                                      \
    }                                                                                                          \
    static QK_TARGET_AVX512 inline __m512i qk_##name##_pc16(__m512 x, __m512 s, __m512i z) {                   \
        const __m512 lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_set1_epi32(QMIN), z));                    \
        const __m512 hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_set1_epi32(QMAX), z));                    \
        return qk_q8(_mm512_mul_ps(x, s), lo, hi, z);                                                          \
    }                                                                                                          \
    QK_TARGET_AVX512 void qk_f32_##name##_quantize_pc__avx512(size_t n, const float *x, T *y,                  \
                                                              const float *inv_scale, const int32_t *zp) {     \
        size_t i = 0;                                                                                          \
        for (; i + 32 <= n; i += 32) {                                                                         \
            const __m512i a = qk_##name##_pc16(_mm512_loadu_ps(x + i), _mm512_loadu_ps(inv_scale + i),         \
                                               _mm512_loadu_si512(zp + i));                                    \
            const __m512i b = qk_##name##_pc16(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(inv_scale + i + 16), \
                                               _mm512_loadu_si512(zp + i + 16));                               \
            _mm_storeu_si128((__m128i *)(y + i), _mm512_cvtepi32_epi8(a));                                     \
            _mm_storeu_si128((__m128i *)(y + i + 16), _mm512_cvtepi32_epi8(b));                                \
        }                                                                                                      \
        for (; i + 16 <= n; i += 16) {                                                                         \
            const __m512i a = qk_##name##_pc16(_mm512_loadu_ps(x + i), _mm512_loadu_ps(inv_scale + i),         \
                                               _mm512_loadu_si512(zp + i));                                    \
            _mm_storeu_si128((__m128i *)(y + i), _mm512_cvtepi32_epi8(a));                                     \
        }                                                                                                      \
        if (i < n) {                                                                                           \
            const __mmask16 k = QK_TAIL_MASK16(n - i);                                                         \
            const __m512i a = qk_##name##_pc16(_mm512_maskz_loadu_ps(k, x + i),                                \
                                               _mm512_maskz_loadu_ps(k, inv_scale + i),                        \
                                               _mm512_maskz_loadu_epi32(k, zp + i));                           \
            _mm512_mask_cvtepi32_storeu_epi8(y + i, k, a);                                                     \
        }                                                                                                      \
    }

QK_QUANTIZE_SMALL(qu8, uint8_t, 0, 255)
QK_QUANTIZE_SMALL(qs8, int8_t, -128, 127)

/*
 * qint32 (qk_round_clamp_s32): round in float, then add zp and saturate in double, where the sum is exact whenever
 * the result is in int32 range (|r| <= 2^33) and stays beyond it otherwise (inf included). NaN: maxpd with the
 * value first returns the lower bound, INT32_MIN. Eight elements at a time (ymm in, zmm of doubles, ymm out).
 */
static QK_TARGET_AVX512 inline __m256i qk_q32(__m256 v, __m512d zp) {
    const __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d d = _mm512_add_pd(_mm512_cvtps_pd(r), zp);
    d = _mm512_max_pd(d, _mm512_set1_pd(-2147483648.0));
    d = _mm512_min_pd(d, _mm512_set1_pd(2147483647.0));
    return _mm512_cvtpd_epi32(d);
}

QK_TARGET_AVX512 void qk_f32_qs32_quantize__avx512(size_t n, const float *x, int32_t *y, float inv_scale,
                                                   int32_t zp) {
    const __m256 vs = _mm256_set1_ps(inv_scale);
    const __m512d z = _mm512_set1_pd((double)zp);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i a = qk_q32(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), z);
        const __m256i b = qk_q32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vs), z);
        const __m256i c = qk_q32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 16), vs), z);
        const __m256i d = qk_q32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 24), vs), z);
        _mm256_storeu_si256((__m256i *)(y + i), a);
        _mm256_storeu_si256((__m256i *)(y + i + 8), b);
        _mm256_storeu_si256((__m256i *)(y + i + 16), c);
        _mm256_storeu_si256((__m256i *)(y + i + 24), d);
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_si256((__m256i *)(y + i), qk_q32(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), z));
    if (i < n) {
        const __mmask8 k = QK_TAIL_MASK8(n - i);
        _mm256_mask_storeu_epi32(y + i, k, qk_q32(_mm256_mul_ps(_mm256_maskz_loadu_ps(k, x + i), vs), z));
    }
}

QK_TARGET_AVX512 void qk_f32_qs32_quantize_pc__avx512(size_t n, const float *x, int32_t *y, const float *inv_scale,
                                                      const int32_t *zp) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 va = _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(inv_scale + i));
        const __m256 vb = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(inv_scale + i + 8));
        const __m512d za = _mm512_cvtepi32_pd(_mm256_loadu_si256((const __m256i *)(zp + i)));
        const __m512d zb = _mm512_cvtepi32_pd(_mm256_loadu_si256((const __m256i *)(zp + i + 8)));
        _mm256_storeu_si256((__m256i *)(y + i), qk_q32(va, za));
        _mm256_storeu_si256((__m256i *)(y + i + 8), qk_q32(vb, zb));
    }
    for (; i < n; i += 8) {
        const __mmask8 k = n - i >= 8 ? (__mmask8)0xFF : QK_TAIL_MASK8(n - i);
        const __m256 v = _mm256_mul_ps(_mm256_maskz_loadu_ps(k, x + i), _mm256_maskz_loadu_ps(k, inv_scale + i));
        const __m512d z = _mm512_cvtepi32_pd(_mm256_maskz_loadu_epi32(k, zp + i));
        _mm256_mask_storeu_epi32(y + i, k, qk_q32(v, z));
    }
}

#endif
