/* AVX-512 fp32 <-> fp16, bit-identical to f16-convert-scalar.c: vcvtps2ph with imm 0 (nearest-even) and vcvtph2ps
 * keep subnormals and treat NaN exactly as the scalar helpers do. Masked tails never touch memory past n. */
#if defined(__x86_64__) || defined(_M_X64)

#include "qk_avx512.h"
#include "qk_kernels.h"

#define QK_TAIL_MASK16(r) ((__mmask16)((1u << (r)) - 1u))

static QK_TARGET_AVX512 inline __m256i qk_to_f16(__m512 v) { return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT); }

QK_TARGET_AVX512 void qk_f32_f16_convert__avx512(size_t n, const float *x, uint16_t *y) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m256i a = qk_to_f16(_mm512_loadu_ps(x + i));
        const __m256i b = qk_to_f16(_mm512_loadu_ps(x + i + 16));
        const __m256i c = qk_to_f16(_mm512_loadu_ps(x + i + 32));
        const __m256i d = qk_to_f16(_mm512_loadu_ps(x + i + 48));
        _mm256_storeu_si256((__m256i *)(y + i), a);
        _mm256_storeu_si256((__m256i *)(y + i + 16), b);
        _mm256_storeu_si256((__m256i *)(y + i + 32), c);
        _mm256_storeu_si256((__m256i *)(y + i + 48), d);
    }
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(y + i), qk_to_f16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 k = QK_TAIL_MASK16(n - i);
        _mm256_mask_storeu_epi16(y + i, k, qk_to_f16(_mm512_maskz_loadu_ps(k, x + i)));
    }
}

/*
 * Saturating: clamp with the constant as the FIRST operand of max/min, so a NaN x (returned as the second operand)
 * passes through. Lanes with x > 65504 or x < -65504 (ordered compares: not NaN) add one to per-lane int32
 * counters, drained into a size_t often enough that they cannot overflow. Masked-off tail lanes load as 0.
 */
static QK_TARGET_AVX512 inline __m256i qk_to_f16_sat(__m512 x, __m512i *count) {
    const __m512 big = _mm512_set1_ps(65504.0f), nbig = _mm512_set1_ps(-65504.0f);
    const __mmask16 over = (__mmask16)(_mm512_cmp_ps_mask(x, big, _CMP_GT_OQ) | _mm512_cmp_ps_mask(x, nbig, _CMP_LT_OQ));
    *count = _mm512_mask_sub_epi32(*count, over, *count, _mm512_set1_epi32(-1));
    return qk_to_f16(_mm512_min_ps(big, _mm512_max_ps(nbig, x)));
}

static QK_TARGET_AVX512 inline size_t qk_sum_counts(__m512i c) {
    int32_t l[16];
    _mm512_storeu_si512(l, c);
    size_t s = 0;
    for (int k = 0; k < 16; k++) s += (uint32_t)l[k];
    return s;
}

QK_TARGET_AVX512 size_t qk_f32_f16_convert_sat__avx512(size_t n, const float *x, uint16_t *y) {
    size_t saturated = 0, i = 0;
    while (i < n) {
        /* per-lane counters get at most 2^19 increments per block */
        const size_t block_end = n - i > ((size_t)1 << 23) ? i + ((size_t)1 << 23) : n;
        __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512();
        for (; i + 64 <= block_end; i += 64) {
            const __m256i a = qk_to_f16_sat(_mm512_loadu_ps(x + i), &c0);
            const __m256i b = qk_to_f16_sat(_mm512_loadu_ps(x + i + 16), &c1);
            const __m256i c = qk_to_f16_sat(_mm512_loadu_ps(x + i + 32), &c0);
            const __m256i d = qk_to_f16_sat(_mm512_loadu_ps(x + i + 48), &c1);
            _mm256_storeu_si256((__m256i *)(y + i), a);
            _mm256_storeu_si256((__m256i *)(y + i + 16), b);
            _mm256_storeu_si256((__m256i *)(y + i + 32), c);
            _mm256_storeu_si256((__m256i *)(y + i + 48), d);
        }
        for (; i < block_end; i += 16) {
            const __mmask16 k = block_end - i >= 16 ? (__mmask16)0xFFFF : QK_TAIL_MASK16(block_end - i);
            _mm256_mask_storeu_epi16(y + i, k, qk_to_f16_sat(_mm512_maskz_loadu_ps(k, x + i), &c0));
        }
        i = block_end;
        saturated += qk_sum_counts(c0) + qk_sum_counts(c1);
    }
    return saturated;
}

QK_TARGET_AVX512 void qk_f16_f32_convert__avx512(size_t n, const uint16_t *x, float *y) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512 a = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i)));
        const __m512 b = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + 16)));
        const __m512 c = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + 32)));
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + 48)));
        _mm512_storeu_ps(y + i, a);
        _mm512_storeu_ps(y + i + 16, b);
        _mm512_storeu_ps(y + i + 32, c);
        _mm512_storeu_ps(y + i + 48, d);
    }
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
    if (i < n) {
        const __mmask16 k = QK_TAIL_MASK16(n - i);
        _mm512_mask_storeu_ps(y + i, k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, x + i)));
    }
}

#endif
