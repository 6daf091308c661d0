/* NEON (ARMv8-A baseline): quint8 / qint8 / qint32 -> fp32, y = ((float)q - (float)zp) * scale, two roundings. */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

/* Subtract then multiply: nothing a compiler may contract into an FMA. */
static inline float32x4_t qk_neon_deq(float32x4_t q, float32x4_t zp, float32x4_t s) {
    return vmulq_f32(vsubq_f32(q, zp), s);
}

/* 8 bytes -> 8 floats (exact), then dequantized with per-lane or broadcast zp / scale. */
static inline void qk_neon_deq_u8x8(uint8x8_t b, float *y, const float32x4_t zp[2], const float32x4_t s[2]) {
    const uint16x8_t w = vmovl_u8(b);
    vst1q_f32(y, qk_neon_deq(vcvtq_f32_u32(vmovl_u16(vget_low_u16(w))), zp[0], s[0]));
    vst1q_f32(y + 4, qk_neon_deq(vcvtq_f32_u32(vmovl_high_u16(w)), zp[1], s[1]));
}

static inline void qk_neon_deq_s8x8(int8x8_t b, float *y, const float32x4_t zp[2], const float32x4_t s[2]) {
    const int16x8_t w = vmovl_s8(b);
    vst1q_f32(y, qk_neon_deq(vcvtq_f32_s32(vmovl_s16(vget_low_s16(w))), zp[0], s[0]));
    vst1q_f32(y + 4, qk_neon_deq(vcvtq_f32_s32(vmovl_high_s16(w)), zp[1], s[1]));
}

/* Per-channel operands for 8 lanes: (float)zp[i] (SCVTF rounds as the C conversion does) and scale[i]. */
static inline void qk_neon_load_pc8(const float *scale, const int32_t *zp, float32x4_t vzp[2], float32x4_t vs[2]) {
    vzp[0] = vcvtq_f32_s32(vld1q_s32(zp));
    vzp[1] = vcvtq_f32_s32(vld1q_s32(zp + 4));
    vs[0] = vld1q_f32(scale);
    vs[1] = vld1q_f32(scale + 4);
}

#define QK_NEON_DEQUANTIZE_8BIT(name, T, VT, LOAD8)                                                            \
    void qk_##name##_f32_dequantize__neon(size_t n, const T *q, float *y, float scale, int32_t zp) {          \
        const float fzp = (float)zp;                                                                           \
        const float32x4_t vzp[2] = {vdupq_n_f32(fzp), vdupq_n_f32(fzp)};                                       \
        const float32x4_t vs[2] = {vdupq_n_f32(scale), vdupq_n_f32(scale)};                                    \
        size_t i = 0;                                                                                          \
        for (; i + 16 <= n; i += 16) {                                                                         \
            qk_neon_deq_##VT##x8(LOAD8(q + i), y + i, vzp, vs);                                                \
            qk_neon_deq_##VT##x8(LOAD8(q + i + 8), y + i + 8, vzp, vs);                                        \
        }                                                                                                      \
        if (i + 8 <= n) {                                                                                      \
            qk_neon_deq_##VT##x8(LOAD8(q + i), y + i, vzp, vs);                                                \
            i += 8;                                                                                            \
        }                                                                                                      \
        for (; i < n; i++) y[i] = ((float)q[i] - fzp) * scale;                                                 \
    }                                                                                                          \
    void qk_##name##_f32_dequantize_pc__neon(size_t n, const T *q, float *y, const float *scale,              \
                                             const int32_t *zp) {                                              \
        float32x4_t vzp[2], vs[2];                                                                             \
        size_t i = 0;                                                                                          \
        for (; i + 8 <= n; i += 8) {                                                                           \
            qk_neon_load_pc8(scale + i, zp + i, vzp, vs);                                                      \
            qk_neon_deq_##VT##x8(LOAD8(q + i), y + i, vzp, vs);                                                \
        }                                                                                                      \
        for (; i < n; i++) y[i] = ((float)q[i] - (float)zp[i]) * scale[i];                                     \
    }

QK_NEON_DEQUANTIZE_8BIT(qu8, uint8_t, u8, vld1_u8)
QK_NEON_DEQUANTIZE_8BIT(qs8, int8_t, s8, vld1_s8)

void qk_qs32_f32_dequantize__neon(size_t n, const int32_t *q, float *y, float scale, int32_t zp) {
    const float fzp = (float)zp;
    const float32x4_t vzp = vdupq_n_f32(fzp), vs = vdupq_n_f32(scale);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        vst1q_f32(y + i, qk_neon_deq(vcvtq_f32_s32(vld1q_s32(q + i)), vzp, vs));
        vst1q_f32(y + i + 4, qk_neon_deq(vcvtq_f32_s32(vld1q_s32(q + i + 4)), vzp, vs));
        vst1q_f32(y + i + 8, qk_neon_deq(vcvtq_f32_s32(vld1q_s32(q + i + 8)), vzp, vs));
        vst1q_f32(y + i + 12, qk_neon_deq(vcvtq_f32_s32(vld1q_s32(q + i + 12)), vzp, vs));
    }
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, qk_neon_deq(vcvtq_f32_s32(vld1q_s32(q + i)), vzp, vs));
    for (; i < n; i++) y[i] = ((float)q[i] - fzp) * scale;
}

void qk_qs32_f32_dequantize_pc__neon(size_t n, const int32_t *q, float *y, const float *scale, const int32_t *zp) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t vzp = vcvtq_f32_s32(vld1q_s32(zp + i));
        vst1q_f32(y + i, qk_neon_deq(vcvtq_f32_s32(vld1q_s32(q + i)), vzp, vld1q_f32(scale + i)));
    }
    for (; i < n; i++) y[i] = ((float)q[i] - (float)zp[i]) * scale[i];
}

#endif /* __aarch64__ */
