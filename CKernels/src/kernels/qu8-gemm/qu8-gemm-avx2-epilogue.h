/*
 * The AVX2 GEMM output stage for one row of 8 columns, bit-identical to qk_gemm_store1 (qk_gemm_scalar.h).
 * Included by the AVX2 GEMM kernels only.
 */
#ifndef QU8_GEMM_AVX2_EPILOGUE_H
#define QU8_GEMM_AVX2_EPILOGUE_H

#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#include "qk_gemm_scalar.h"
#include "qk_internal.h"

/*
 * acc[i] holds columns 0..7 of row i. Full tiles (nc == 8) run in SIMD; partial ones go through the scalar
 * definition, so no per-column array is read past nc.
 */
static QK_TARGET_AVX2 inline void qk_gemm_avx2_store_rows(size_t mr, size_t nc, const __m256i *acc,
                                                          const int32_t *wcomp, void *c, size_t c_stride,
                                                          const qk_gemm_epilogue *e) {
    if (nc != 8) {
        for (size_t i = 0; i < mr; i++) {
            int32_t t[8];
            _mm256_storeu_si256((__m256i *)t, acc[i]);
            for (size_t j = 0; j < nc; j++) qk_gemm_store1(e, wcomp, i, j, t[j], c, c_stride);
        }
        return;
    }
    /* za * wcomp, wrapping (vpmulld keeps the low 32 bits like the scalar uint32 product). */
    const __m256i zc = _mm256_mullo_epi32(_mm256_set1_epi32(e->a_zero_point),
                                          _mm256_loadu_si256((const __m256i *)wcomp));
    const __m256i zw = e->row_sums ? _mm256_loadu_si256((const __m256i *)e->w_zero_points) : _mm256_setzero_si256();
    switch (e->kind) {
    case QK_GEMM_OUT_QU8:
    case QK_GEMM_OUT_QS8: {
        const __m256 bt = _mm256_loadu_ps(e->bias_term), m = _mm256_loadu_ps(e->multiplier);
        const __m256 lo = _mm256_set1_ps((float)(e->out_min - e->out_zero_point));
        const __m256 hi = _mm256_set1_ps((float)(e->out_max - e->out_zero_point));
        const __m256i oz = _mm256_set1_epi32(e->out_zero_point);
        for (size_t i = 0; i < mr; i++) {
            __m256i raw = _mm256_add_epi32(acc[i], zc);
            if (e->row_sums) raw = _mm256_sub_epi32(raw, _mm256_mullo_epi32(zw, _mm256_set1_epi32(e->row_sums[i])));
            __m256 v = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(raw), bt), m);
            v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);   /* v first: NaN takes lo */
            const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), oz);   /* inside [out_min, out_max] */
            const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
            const __m128i q8 = e->kind == QK_GEMM_OUT_QU8 ? _mm_packus_epi16(q16, q16) : _mm_packs_epi16(q16, q16);
            _mm_storel_epi64((__m128i *)((char *)c + i * c_stride), q8);
        }
        break;
    }
    case QK_GEMM_OUT_F32: {
        const __m256 s = _mm256_loadu_ps(e->scale), b = _mm256_loadu_ps(e->bias);
        for (size_t i = 0; i < mr; i++) {
            __m256i raw = _mm256_add_epi32(acc[i], zc);
            if (e->row_sums) raw = _mm256_sub_epi32(raw, _mm256_mullo_epi32(zw, _mm256_set1_epi32(e->row_sums[i])));
            __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(raw), s, b);
            if (e->relu) y = _mm256_max_ps(y, _mm256_setzero_ps());   /* NaN and -0 -> +0 */
            _mm256_storeu_ps((float *)((char *)c + i * c_stride), y);
        }
        break;
    }
    default:
        for (size_t i = 0; i < mr; i++) {
            __m256i raw = _mm256_add_epi32(acc[i], zc);
            if (e->row_sums) raw = _mm256_sub_epi32(raw, _mm256_mullo_epi32(zw, _mm256_set1_epi32(e->row_sums[i])));
            _mm256_storeu_si256((__m256i *)((char *)c + i * c_stride), raw);
        }
        break;
    }
}

/* Loads the 1..3 bytes of a K tail as one little-endian word, zero-filled, without reading past them. */
static inline int32_t qk_gemm_load_tail(const uint8_t *p, size_t r) {
    uint32_t v = p[0];
    if (r > 1) v |= (uint32_t)p[1] << 8;
    if (r > 2) v |= (uint32_t)p[2] << 16;
    return (int32_t)v;
}

static inline int32_t qk_gemm_load4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#endif
#endif /* QU8_GEMM_AVX2_EPILOGUE_H */
