/*
 * The AVX-512 fp32 depthwise body (f32-dwconv-avx2.h on zmm registers): 32 channels per step in two accumulator
 * pairs (even / odd taps), channel tails through masked loads and stores. Included by f32-dwconv-*-avx512.c only.
 */
#ifndef F32_DWCONV_AVX512_H
#define F32_DWCONV_AVX512_H

#if defined(__x86_64__) || defined(_M_X64)

#include "qk_avx512.h"
#include "qk_kernels.h"

#define QK_INLINE static QK_TARGET_AVX512 inline __attribute__((always_inline))
#define QK_UNROLL _Pragma("GCC unroll 16")

QK_INLINE const float *qk_dwf512_row(const float *a, const float *zero, size_t offset) {
    return a == zero ? zero : (const float *)((const char *)a + offset);
}

#define QK_DWF512_TILE(T, ROW, LOAD0, LOAD1)                                                                     \
    do {                                                                                                         \
        __m512 a0 = _mm512_loadu_ps(w + c), a1 = _mm512_loadu_ps(w + c + 16);                                    \
        __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();                                               \
        size_t t_ = 0;                                                                                           \
        QK_UNROLL for (; t_ + 2 <= (T); t_ += 2) {                                                               \
            const float *ra = ROW(t_) + c, *rb = ROW(t_ + 1) + c;                                                \
            const float *wa = w + (t_ + 1) * cp + c, *wb = wa + cp;                                              \
            a0 = _mm512_fmadd_ps(LOAD0(ra), _mm512_loadu_ps(wa), a0);                                            \
            a1 = _mm512_fmadd_ps(LOAD1(ra + 16), _mm512_loadu_ps(wa + 16), a1);                                  \
            b0 = _mm512_fmadd_ps(LOAD0(rb), _mm512_loadu_ps(wb), b0);                                            \
            b1 = _mm512_fmadd_ps(LOAD1(rb + 16), _mm512_loadu_ps(wb + 16), b1);                                  \
        }                                                                                                        \
        if (t_ < (T)) {                                                                                          \
            const float *ra = ROW(t_) + c, *wa = w + (t_ + 1) * cp + c;                                          \
            a0 = _mm512_fmadd_ps(LOAD0(ra), _mm512_loadu_ps(wa), a0);                                            \
            a1 = _mm512_fmadd_ps(LOAD1(ra + 16), _mm512_loadu_ps(wa + 16), a1);                                  \
        }                                                                                                        \
        y0 = _mm512_add_ps(a0, b0);                                                                              \
        y1 = _mm512_add_ps(a1, b1);                                                                              \
        if (relu) {                                                                                              \
            y0 = _mm512_max_ps(_mm512_setzero_ps(), y0);   /* y second: NaN stays NaN */                         \
            y1 = _mm512_max_ps(_mm512_setzero_ps(), y1);                                                         \
        }                                                                                                        \
    } while (0)

#define QK_DWF512_LOADU(p) _mm512_loadu_ps(p)
#define QK_DWF512_LOAD_M0(p) _mm512_maskz_loadu_ps(k0, (p))
#define QK_DWF512_LOAD_M1(p) _mm512_maskz_loadu_ps(k1, (p))

QK_INLINE void qk_dwf512(const size_t T, const int fixed, size_t channels, size_t output_width, const float **input,
                         size_t input_stride, size_t input_offset, const float *zero, const float *w, float *output,
                         int relu) {
    const size_t cp = (channels + QK_DW_CPAD - 1) / QK_DW_CPAD * QK_DW_CPAD;
    const size_t full = channels - channels % 32, r = channels % 32;
    const __mmask16 k0 = (__mmask16)(r >= 16 ? 0xFFFF : (1u << r) - 1);
    const __mmask16 k1 = (__mmask16)(r > 16 ? (1u << (r - 16)) - 1 : 0);
    for (size_t p = 0; p < output_width; p++) {
        const float **in = input + p * input_stride;
        const float *rows[16];
        if (fixed)
            QK_UNROLL for (size_t t = 0; t < T; t++) rows[t] = qk_dwf512_row(in[t], zero, input_offset);
#define QK_DWF512_ROW(t) (fixed ? rows[t] : qk_dwf512_row(in[t], zero, input_offset))
        size_t c = 0;
        for (; c < full; c += 32) {
            __m512 y0, y1;
            QK_DWF512_TILE(T, QK_DWF512_ROW, QK_DWF512_LOADU, QK_DWF512_LOADU);
            _mm512_storeu_ps(output + c, y0);
            _mm512_storeu_ps(output + c + 16, y1);
        }
        if (r) {
            __m512 y0, y1;
            QK_DWF512_TILE(T, QK_DWF512_ROW, QK_DWF512_LOAD_M0, QK_DWF512_LOAD_M1);
            _mm512_mask_storeu_ps(output + c, k0, y0);
            _mm512_mask_storeu_ps(output + c + 16, k1, y1);
        }
#undef QK_DWF512_ROW
        output += channels;
    }
}

#endif
#endif /* F32_DWCONV_AVX512_H */
