/*
 * The NEON fp32 depthwise body shared by f32-dwconv-9p8c-neon.c and f32-dwconv-kp8c-neon.c: 8 channels per step,
 * FMLA into two accumulator pairs (even / odd taps) added at the end; ReLU with FMAX against 0, which keeps NaN.
 * Channel tails (< 8) go through zero-filled local copies. Included by those files only.
 */
#ifndef F32_DWCONV_NEON_H
#define F32_DWCONV_NEON_H

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#include "qk_kernels.h"

#define QK_INLINE static inline __attribute__((always_inline))
#define QK_UNROLL _Pragma("GCC unroll 16")

QK_INLINE const float *qk_dwfn_row(const float *a, const float *zero, size_t offset) {
    return a == zero ? zero : (const float *)((const char *)a + offset);
}

/* r (1..7) floats at p, zero-filled, as two vectors. */
QK_INLINE float32x4x2_t qk_dwfn_load_tail(const float *p, size_t r) {
    float b[8] = {0};
    memcpy(b, p, r * sizeof(float));
    float32x4x2_t v;
    v.val[0] = vld1q_f32(b);
    v.val[1] = vld1q_f32(b + 4);
    return v;
}

QK_INLINE float32x4x2_t qk_dwfn_load(const float *p) {
    float32x4x2_t v;
    v.val[0] = vld1q_f32(p);
    v.val[1] = vld1q_f32(p + 4);
    return v;
}

#define QK_DWFN_TILE(T, ROW, LOAD)                                                                     \
    do {                                                                                               \
        float32x4_t a0 = vld1q_f32(w + c), a1 = vld1q_f32(w + c + 4);                                  \
        float32x4_t b0 = vdupq_n_f32(0.0f), b1 = vdupq_n_f32(0.0f);                                    \
        size_t t_ = 0;                                                                                 \
        QK_UNROLL for (; t_ + 2 <= (T); t_ += 2) {                                                     \
            const float32x4x2_t xa = LOAD(ROW(t_) + c), xb = LOAD(ROW(t_ + 1) + c);                    \
            const float *wa = w + (t_ + 1) * cp + c, *wb = wa + cp;                                    \
            a0 = vfmaq_f32(a0, xa.val[0], vld1q_f32(wa));                                              \
            a1 = vfmaq_f32(a1, xa.val[1], vld1q_f32(wa + 4));                                          \
            b0 = vfmaq_f32(b0, xb.val[0], vld1q_f32(wb));                                              \
            b1 = vfmaq_f32(b1, xb.val[1], vld1q_f32(wb + 4));                                          \
        }                                                                                              \
        if (t_ < (T)) {                                                                                \
            const float32x4x2_t xa = LOAD(ROW(t_) + c);                                                \
            const float *wa = w + (t_ + 1) * cp + c;                                                   \
            a0 = vfmaq_f32(a0, xa.val[0], vld1q_f32(wa));                                              \
            a1 = vfmaq_f32(a1, xa.val[1], vld1q_f32(wa + 4));                                          \
        }                                                                                              \
        y0 = vaddq_f32(a0, b0);                                                                        \
        y1 = vaddq_f32(a1, b1);                                                                        \
        if (relu) {                                                                                    \
            y0 = vmaxq_f32(vdupq_n_f32(0.0f), y0);                                                     \
            y1 = vmaxq_f32(vdupq_n_f32(0.0f), y1);                                                     \
        }                                                                                              \
    } while (0)

#define QK_DWFN_LOADU(p) qk_dwfn_load(p)
#define QK_DWFN_LOADT(p) qk_dwfn_load_tail((p), r)

QK_INLINE void qk_dwfn(const size_t T, const int fixed, size_t channels, size_t output_width, const float **input,
                       size_t input_stride, size_t input_offset, const float *zero, const float *w, float *output,
                       int relu) {
    const size_t cp = (channels + QK_DW_CPAD - 1) / QK_DW_CPAD * QK_DW_CPAD;
    const size_t full = channels - channels % 8, r = channels % 8;
    for (size_t p = 0; p < output_width; p++) {
        const float **in = input + p * input_stride;
        const float *rows[16];
        if (fixed)
            QK_UNROLL for (size_t t = 0; t < T; t++) rows[t] = qk_dwfn_row(in[t], zero, input_offset);
#define QK_DWFN_ROW(t) (fixed ? rows[t] : qk_dwfn_row(in[t], zero, input_offset))
        size_t c = 0;
        for (; c < full; c += 8) {
            float32x4_t y0, y1;
            QK_DWFN_TILE(T, QK_DWFN_ROW, QK_DWFN_LOADU);
            vst1q_f32(output + c, y0);
            vst1q_f32(output + c + 4, y1);
        }
        if (r) {
            float32x4_t y0, y1;
            QK_DWFN_TILE(T, QK_DWFN_ROW, QK_DWFN_LOADT);
            float b[8];
            vst1q_f32(b, y0);
            vst1q_f32(b + 4, y1);
            memcpy(output + c, b, r * sizeof(float));
        }
#undef QK_DWFN_ROW
        output += channels;
    }
}

#endif
#endif /* F32_DWCONV_NEON_H */
