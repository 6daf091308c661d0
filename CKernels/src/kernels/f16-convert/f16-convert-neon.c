/* NEON (ARMv8-A baseline FCVTN/FCVTL): fp32 <-> fp16 bit patterns, as f16-convert-scalar.c. */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include "qk_scalar_math.h"

/*
 * With the Linux FPCR defaults (RN, FZ = 0, DN = 0, AHP = 0) FCVTN rounds half to even, keeps subnormals, overflows
 * to inf and turns a NaN into sign | 0x7E00 | top payload bits, which is the scalar's qk_f32_to_f16_bits; FCVTL sets
 * the quiet bit and keeps the payload, as qk_f16_bits_to_f32.
 */
static inline uint16x8_t qk_neon_f32_f16x8(float32x4_t a, float32x4_t b) {
    return vreinterpretq_u16_f16(vcvt_high_f16_f32(vcvt_f16_f32(a), b));
}

void qk_f32_f16_convert__neon(size_t n, const float *x, uint16_t *y) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        vst1q_u16(y + i, qk_neon_f32_f16x8(vld1q_f32(x + i), vld1q_f32(x + i + 4)));
        vst1q_u16(y + i + 8, qk_neon_f32_f16x8(vld1q_f32(x + i + 8), vld1q_f32(x + i + 12)));
    }
    for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++) y[i] = qk_f32_to_f16_bits(x[i]);
}

/* |v| > 65504 (and +-inf) -> +-65504; NaN compares false and is kept. Each saturated lane adds 1 to *count. */
static inline float32x4_t qk_neon_sat65504(float32x4_t v, uint32x4_t *count) {
    const float32x4_t limit = vdupq_n_f32(65504.0f);
    const uint32x4_t over = vcagtq_f32(v, limit);
    const float32x4_t signed_limit = vbslq_f32(vdupq_n_u32(0x80000000u), v, limit);
    *count = vsubq_u32(*count, over);
    return vbslq_f32(over, signed_limit, v);
}

size_t qk_f32_f16_convert_sat__neon(size_t n, const float *x, uint16_t *y) {
    uint64x2_t total = vdupq_n_u64(0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint32x4_t count = vdupq_n_u32(0);   /* at most 4 per lane here, folded into 64 bits below */
        const float32x4_t a = qk_neon_sat65504(vld1q_f32(x + i), &count);
        const float32x4_t b = qk_neon_sat65504(vld1q_f32(x + i + 4), &count);
        const float32x4_t c = qk_neon_sat65504(vld1q_f32(x + i + 8), &count);
        const float32x4_t d = qk_neon_sat65504(vld1q_f32(x + i + 12), &count);
        vst1q_u16(y + i, qk_neon_f32_f16x8(a, b));
        vst1q_u16(y + i + 8, qk_neon_f32_f16x8(c, d));
        total = vpadalq_u32(total, count);
    }
    for (; i + 4 <= n; i += 4) {
        uint32x4_t count = vdupq_n_u32(0);
        vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(qk_neon_sat65504(vld1q_f32(x + i), &count))));
        total = vpadalq_u32(total, count);
    }
    size_t saturated = (size_t)vaddvq_u64(total);
    for (; i < n; i++) {
        float v = x[i];
        if (v > 65504.0f) { v = 65504.0f; saturated++; }
        else if (v < -65504.0f) { v = -65504.0f; saturated++; }
        y[i] = qk_f32_to_f16_bits(v);
    }
    return saturated;
}

void qk_f16_f32_convert__neon(size_t n, const uint16_t *x, float *y) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const float16x8_t a = vreinterpretq_f16_u16(vld1q_u16(x + i));
        const float16x8_t b = vreinterpretq_f16_u16(vld1q_u16(x + i + 8));
        vst1q_f32(y + i, vcvt_f32_f16(vget_low_f16(a)));
        vst1q_f32(y + i + 4, vcvt_high_f32_f16(a));
        vst1q_f32(y + i + 8, vcvt_f32_f16(vget_low_f16(b)));
        vst1q_f32(y + i + 12, vcvt_high_f32_f16(b));
    }
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))));
    for (; i < n; i++) y[i] = qk_f16_bits_to_f32(x[i]);
}

#endif /* __aarch64__ */
