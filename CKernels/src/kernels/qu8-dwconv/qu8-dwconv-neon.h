/*
 * The NEON (ARMv8.0) u8 x s8 depthwise body shared by qu8-dwconv-9p16c-neon.c and qu8-dwconv-kp16c-neon.c, QNNPACK's
 * scheme: per tap and 16 channels, the row is widened u8 -> s16 (USHLL) and multiplied by the int16 weights w' with
 * SMLAL / SMLAL2 into four int32x4 accumulators: every product is added in int32, so sums are exact (mod 2^32).
 * Output stage: FMAXNM / FMINNM clamp (NaN takes the lower bound), FCVTNS (nearest even), + zp, saturating narrows
 * (the values are already in [out_min, out_max]). Channel tails (< 16) go through zero-filled local copies, so no
 * row is read past its end. Weights in layout C (int16 w'[t][Cp]). Included by those files only.
 */
#ifndef QU8_DWCONV_NEON_H
#define QU8_DWCONV_NEON_H

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#include "qk_kernels.h"

#define QK_INLINE static inline __attribute__((always_inline))
#define QK_UNROLL _Pragma("GCC unroll 16")

QK_INLINE const uint8_t *qk_dwn_row(const uint8_t *a, const uint8_t *zero, size_t offset) {
    return a == zero ? zero : a + offset;
}

QK_INLINE void qk_dwn_tap(int32x4_t acc[4], uint8x16_t x, const int16_t *w) {
    const int16x8_t lo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(x)));
    const int16x8_t hi = vreinterpretq_s16_u16(vmovl_high_u8(x));
    const int16x8_t w0 = vld1q_s16(w), w1 = vld1q_s16(w + 8);
    acc[0] = vmlal_s16(acc[0], vget_low_s16(lo), vget_low_s16(w0));
    acc[1] = vmlal_high_s16(acc[1], lo, w0);
    acc[2] = vmlal_s16(acc[2], vget_low_s16(hi), vget_low_s16(w1));
    acc[3] = vmlal_high_s16(acc[3], hi, w1);
}

QK_INLINE uint8x16_t qk_dwn_requant(const int32x4_t acc[4], const float *bt, const float *m, float32x4_t lo,
                                    float32x4_t hi, int32x4_t zp) {
    int32x4_t q[4];
    QK_UNROLL for (int v = 0; v < 4; v++) {
        float32x4_t f = vaddq_f32(vcvtq_f32_s32(acc[v]), vld1q_f32(bt + 4 * v));
        f = vmulq_f32(f, vld1q_f32(m + 4 * v));
        f = vminnmq_f32(vmaxnmq_f32(f, lo), hi);
        q[v] = vaddq_s32(vcvtnq_s32_f32(f), zp);
    }
    const int16x8_t a = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
    const int16x8_t b = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
    return vcombine_u8(vqmovun_s16(a), vqmovun_s16(b));
}

/* r (1..15) bytes at p, zero-filled. */
QK_INLINE uint8x16_t qk_dwn_load_tail(const uint8_t *p, size_t r) {
    uint8_t b[16] = {0};
    memcpy(b, p, r);
    return vld1q_u8(b);
}

#define QK_DWN_TILE(T, ROW, LOAD)                                                                    \
    do {                                                                                             \
        int32x4_t acc[4];                                                                            \
        QK_UNROLL for (int v_ = 0; v_ < 4; v_++) acc[v_] = vld1q_s32(comp + c + 4 * v_);              \
        QK_UNROLL for (size_t t_ = 0; t_ < (T); t_++) qk_dwn_tap(acc, LOAD(ROW(t_) + c), w + t_ * cp + c); \
        result = qk_dwn_requant(acc, bt + c, mult + c, lo, hi, zp);                                  \
    } while (0)

#define QK_DWN_LOADU(p) vld1q_u8(p)
#define QK_DWN_LOADT(p) qk_dwn_load_tail((p), r)

QK_INLINE void qk_dwn(const size_t T, const int fixed, size_t channels, size_t output_width, const uint8_t **input,
                      size_t input_stride, size_t input_offset, const uint8_t *zero, const void *weights,
                      uint8_t *output, const qk_dwconv_qparams *params) {
    const size_t cp = (channels + QK_DW_CPAD - 1) / QK_DW_CPAD * QK_DW_CPAD;
    const int16_t *w = weights;
    const int32_t *comp = params->comp;
    const float *bt = params->bias_term, *mult = params->multiplier;
    const int32_t ozp = params->out_zero_point;
    const float32x4_t lo = vdupq_n_f32((float)(params->out_min - ozp));
    const float32x4_t hi = vdupq_n_f32((float)(params->out_max - ozp));
    const int32x4_t zp = vdupq_n_s32(ozp);
    const size_t full = channels - channels % 16, r = channels % 16;
    for (size_t p = 0; p < output_width; p++) {
        const uint8_t **in = input + p * input_stride;
        const uint8_t *rows[16];
        if (fixed)
            QK_UNROLL for (size_t t = 0; t < T; t++) rows[t] = qk_dwn_row(in[t], zero, input_offset);
#define QK_DWN_ROW(t) (fixed ? rows[t] : qk_dwn_row(in[t], zero, input_offset))
        size_t c = 0;
        for (; c < full; c += 16) {
            uint8x16_t result;
            QK_DWN_TILE(T, QK_DWN_ROW, QK_DWN_LOADU);
            vst1q_u8(output + c, result);
        }
        if (r) {
            uint8x16_t result;
            QK_DWN_TILE(T, QK_DWN_ROW, QK_DWN_LOADT);
            uint8_t b[16];
            vst1q_u8(b, result);
            memcpy(output + c, b, r);
        }
#undef QK_DWN_ROW
        output += channels;
    }
}

#endif
#endif /* QU8_DWCONV_NEON_H */
