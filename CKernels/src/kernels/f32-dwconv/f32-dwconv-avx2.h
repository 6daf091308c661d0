/*
 * The AVX2 fp32 depthwise body shared by f32-dwconv-9p16c-avx2.c (9 taps, unrolled) and f32-dwconv-kp16c-avx2.c
 * (any tap count): 16 channels per step in two accumulator pairs, even taps into one and odd taps into the other
 * (two FMA chains of half the length), added at the end. Channel tails use vmaskmovps, which does not touch masked
 * elements. ReLU is max(0, y) with y second, so NaN stays NaN. Included by those files only.
 */
#ifndef F32_DWCONV_AVX2_H
#define F32_DWCONV_AVX2_H

#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#include "qk_internal.h"
#include "qk_kernels.h"

#define QK_INLINE static QK_TARGET_AVX2 inline __attribute__((always_inline))
#define QK_UNROLL _Pragma("GCC unroll 16")

QK_INLINE const float *qk_dwf_row(const float *a, const float *zero, size_t offset) {
    return a == zero ? zero : (const float *)((const char *)a + offset);
}

/* 16 channels (two vectors, loaded by LOAD0 / LOAD1) of one pixel. */
#define QK_DWF_AVX2_TILE(T, ROW, LOAD0, LOAD1)                                                                   \
    do {                                                                                                         \
        __m256 a0 = _mm256_loadu_ps(w + c), a1 = _mm256_loadu_ps(w + c + 8);                                     \
        __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();                                               \
        size_t t_ = 0;                                                                                           \
        QK_UNROLL for (; t_ + 2 <= (T); t_ += 2) {                                                               \
            const float *ra = ROW(t_) + c, *rb = ROW(t_ + 1) + c;                                                \
            const float *wa = w + (t_ + 1) * cp + c, *wb = wa + cp;                                              \
            a0 = _mm256_fmadd_ps(LOAD0(ra), _mm256_loadu_ps(wa), a0);                                            \
            a1 = _mm256_fmadd_ps(LOAD1(ra + 8), _mm256_loadu_ps(wa + 8), a1);                                    \
            b0 = _mm256_fmadd_ps(LOAD0(rb), _mm256_loadu_ps(wb), b0);                                            \
            b1 = _mm256_fmadd_ps(LOAD1(rb + 8), _mm256_loadu_ps(wb + 8), b1);                                    \
        }                                                                                                        \
        if (t_ < (T)) {                                                                                          \
            const float *ra = ROW(t_) + c, *wa = w + (t_ + 1) * cp + c;                                          \
            a0 = _mm256_fmadd_ps(LOAD0(ra), _mm256_loadu_ps(wa), a0);                                            \
            a1 = _mm256_fmadd_ps(LOAD1(ra + 8), _mm256_loadu_ps(wa + 8), a1);                                    \
        }                                                                                                        \
        y0 = _mm256_add_ps(a0, b0);                                                                              \
        y1 = _mm256_add_ps(a1, b1);                                                                              \
        if (relu) {                                                                                              \
            y0 = _mm256_max_ps(_mm256_setzero_ps(), y0);                                                         \
            y1 = _mm256_max_ps(_mm256_setzero_ps(), y1);                                                         \
        }                                                                                                        \
    } while (0)

#define QK_DWF_LOADU(p) _mm256_loadu_ps(p)
#define QK_DWF_LOAD_M0(p) _mm256_maskload_ps((p), m0)
#define QK_DWF_LOAD_M1(p) _mm256_maskload_ps((p), m1)

QK_INLINE void qk_dwf_avx2(const size_t T, const int fixed, size_t channels, size_t output_width, const float **input,
                           size_t input_stride, size_t input_offset, const float *zero, const float *w,
                           float *output, int relu) {
    const size_t cp = (channels + QK_DW_CPAD - 1) / QK_DW_CPAD * QK_DW_CPAD;
    const size_t full = channels - channels % 16, r = channels % 16;
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), idx);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r - 8), idx);
    for (size_t p = 0; p < output_width; p++) {
        const float **in = input + p * input_stride;
        const float *rows[16];
        if (fixed)
            QK_UNROLL for (size_t t = 0; t < T; t++) rows[t] = qk_dwf_row(in[t], zero, input_offset);
#define QK_DWF_ROW(t) (fixed ? rows[t] : qk_dwf_row(in[t], zero, input_offset))
        size_t c = 0;
        for (; c < full; c += 16) {
            __m256 y0, y1;
            QK_DWF_AVX2_TILE(T, QK_DWF_ROW, QK_DWF_LOADU, QK_DWF_LOADU);
            _mm256_storeu_ps(output + c, y0);
            _mm256_storeu_ps(output + c + 8, y1);
        }
        if (r) {
            __m256 y0, y1;
            QK_DWF_AVX2_TILE(T, QK_DWF_ROW, QK_DWF_LOAD_M0, QK_DWF_LOAD_M1);
            _mm256_maskstore_ps(output + c, m0, y0);
            _mm256_maskstore_ps(output + c + 8, m1, y1);
        }
#undef QK_DWF_ROW
        output += channels;
    }
}

#endif
#endif /* F32_DWCONV_AVX2_H */
