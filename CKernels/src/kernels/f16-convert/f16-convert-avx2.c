/* AVX2 + F16C fp32 <-> fp16, bit-identical to f16-convert-scalar.c: vcvtps2ph with imm 0 (nearest-even) and
 * vcvtph2ps keep subnormals and treat NaN exactly as qk_f32_to_f16_bits / qk_f16_bits_to_f32 do. */
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>
#include <string.h>

#include "qk_internal.h"
#include "qk_kernels.h"

static QK_TARGET_AVX2 inline __m128i qk_to_f16(__m256 v) { return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT); }

QK_TARGET_AVX2 void qk_f32_f16_convert__avx2(size_t n, const float *x, uint16_t *y) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m128i a = qk_to_f16(_mm256_loadu_ps(x + i));
        const __m128i b = qk_to_f16(_mm256_loadu_ps(x + i + 8));
        const __m128i c = qk_to_f16(_mm256_loadu_ps(x + i + 16));
        const __m128i d = qk_to_f16(_mm256_loadu_ps(x + i + 24));
        _mm_storeu_si128((__m128i *)(y + i), a);
        _mm_storeu_si128((__m128i *)(y + i + 8), b);
        _mm_storeu_si128((__m128i *)(y + i + 16), c);
        _mm_storeu_si128((__m128i *)(y + i + 24), d);
    }
    for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(y + i), qk_to_f16(_mm256_loadu_ps(x + i)));
    if (i < n) { /* the last 1..7 through stack copies: never touch memory past n */
        const size_t r = n - i;
        float xb[8] = {0};
        uint16_t yb[8];
        memcpy(xb, x + i, r * sizeof(float));
        _mm_storeu_si128((__m128i *)yb, qk_to_f16(_mm256_loadu_ps(xb)));
        memcpy(y + i, yb, r * sizeof(uint16_t));
    }
}

/*
 * Saturating: clamp with the constant as the FIRST operand of max/min, so a NaN x (returned as the second operand)
 * passes through. Count lanes with x > 65504 or x < -65504 (ordered compares: not NaN) by subtracting the all-ones
 * compare masks from per-lane int32 counters, drained into a size_t often enough that they cannot overflow.
 */
static QK_TARGET_AVX2 inline __m128i qk_to_f16_sat(__m256 x, __m256i *count) {
    const __m256 big = _mm256_set1_ps(65504.0f), nbig = _mm256_set1_ps(-65504.0f);
    const __m256 over = _mm256_or_ps(_mm256_cmp_ps(x, big, _CMP_GT_OQ), _mm256_cmp_ps(x, nbig, _CMP_LT_OQ));
    *count = _mm256_sub_epi32(*count, _mm256_castps_si256(over));
    return qk_to_f16(_mm256_min_ps(big, _mm256_max_ps(nbig, x)));
}

static QK_TARGET_AVX2 inline size_t qk_sum_counts(__m256i c) {
    int32_t l[8];
    _mm256_storeu_si256((__m256i *)l, c);
    size_t s = 0;
    for (int k = 0; k < 8; k++) s += (uint32_t)l[k];
    return s;
}

QK_TARGET_AVX2 size_t qk_f32_f16_convert_sat__avx2(size_t n, const float *x, uint16_t *y) {
    size_t saturated = 0, i = 0;
    while (i + 8 <= n) {
        /* per-lane counters get at most 2^19 increments per block */
        const size_t block_end = n - i > ((size_t)1 << 23) ? i + ((size_t)1 << 23) : n;
        __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256();
        for (; i + 32 <= block_end; i += 32) {
            const __m128i a = qk_to_f16_sat(_mm256_loadu_ps(x + i), &c0);
            const __m128i b = qk_to_f16_sat(_mm256_loadu_ps(x + i + 8), &c1);
            const __m128i c = qk_to_f16_sat(_mm256_loadu_ps(x + i + 16), &c0);
            const __m128i d = qk_to_f16_sat(_mm256_loadu_ps(x + i + 24), &c1);
            _mm_storeu_si128((__m128i *)(y + i), a);
            _mm_storeu_si128((__m128i *)(y + i + 8), b);
            _mm_storeu_si128((__m128i *)(y + i + 16), c);
            _mm_storeu_si128((__m128i *)(y + i + 24), d);
        }
        for (; i + 8 <= block_end; i += 8)
            _mm_storeu_si128((__m128i *)(y + i), qk_to_f16_sat(_mm256_loadu_ps(x + i), &c0));
        saturated += qk_sum_counts(c0) + qk_sum_counts(c1);
    }
    if (i < n) { /* zero padding never counts */
        const size_t r = n - i;
        float xb[8] = {0};
        uint16_t yb[8];
        __m256i c = _mm256_setzero_si256();
        memcpy(xb, x + i, r * sizeof(float));
        _mm_storeu_si128((__m128i *)yb, qk_to_f16_sat(_mm256_loadu_ps(xb), &c));
        memcpy(y + i, yb, r * sizeof(uint16_t));
        saturated += qk_sum_counts(c);
    }
    return saturated;
}

QK_TARGET_AVX2 void qk_f16_f32_convert__avx2(size_t n, const uint16_t *x, float *y) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        const __m256 b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8)));
        const __m256 c = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 16)));
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 24)));
        _mm256_storeu_ps(y + i, a);
        _mm256_storeu_ps(y + i + 8, b);
        _mm256_storeu_ps(y + i + 16, c);
        _mm256_storeu_ps(y + i + 24, d);
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    if (i < n) {
        const size_t r = n - i;
        uint16_t xb[8] = {0};
        float yb[8];
        memcpy(xb, x + i, r * sizeof(uint16_t));
        _mm256_storeu_ps(yb, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xb)));
        memcpy(y + i, yb, r * sizeof(float));
    }
}

#endif
