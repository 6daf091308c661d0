/* NEON (ARMv8-A baseline): fp32 -> quint8 / qint8 / qint32, per tensor and per channel. */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include "qk_scalar_math.h"

/* Clamp then round half to even (FCVTNS). v = x * s is never a signalling NaN (FMUL quiets), and FMAXNM returns the
 * number when the other operand is a quiet NaN: NaN -> lo, as the scalar's `v > lo ? v : lo`. */
static inline int32x4_t qk_neon_clamp_round(float32x4_t v, float32x4_t lo, float32x4_t hi) {
    return vcvtnq_s32_f32(vminnmq_f32(vmaxnmq_f32(v, lo), hi));
}

/* Low bytes of 16 int32 lanes: truncation modulo 2^8, i.e. the scalar's (T) cast. */
static inline uint8x16_t qk_neon_narrow16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    const uint16x8_t ab = vuzp1q_u16(vreinterpretq_u16_s32(a), vreinterpretq_u16_s32(b));
    const uint16x8_t cd = vuzp1q_u16(vreinterpretq_u16_s32(c), vreinterpretq_u16_s32(d));
    return vuzp1q_u8(vreinterpretq_u8_u16(ab), vreinterpretq_u8_u16(cd));
}

static inline uint8x8_t qk_neon_narrow8(int32x4_t a, int32x4_t b) {
    return vmovn_u16(vuzp1q_u16(vreinterpretq_u16_s32(a), vreinterpretq_u16_s32(b)));
}

/* Per channel: bounds (float)(qmin - zp[i]) as the scalar computes them, zp added in int32 (r + zp). */
static inline int32x4_t qk_neon_clamp_round_pc(const float *x, const float *s, const int32_t *zp, int32x4_t vqmin,
                                               int32x4_t vqmax) {
    const int32x4_t z = vld1q_s32(zp);
    const float32x4_t lo = vcvtq_f32_s32(vsubq_s32(vqmin, z)), hi = vcvtq_f32_s32(vsubq_s32(vqmax, z));
    return vaddq_s32(qk_neon_clamp_round(vmulq_f32(vld1q_f32(x), vld1q_f32(s)), lo, hi), z);
}

/* Per tensor: narrowing first and adding zp modulo 2^8 gives (T)(r + zp), the scalar result, bit for bit. */
#define QK_NEON_QUANTIZE_SMALL(name, T, QMIN, QMAX)                                                            \
    void qk_f32_##name##_quantize__neon(size_t n, const float *x, T *y, float inv_scale, int32_t zp) {          \
        const float32x4_t vs = vdupq_n_f32(inv_scale);                                                         \
        const float32x4_t lo = vdupq_n_f32((float)(QMIN - zp)), hi = vdupq_n_f32((float)(QMAX - zp));          \
        const uint8x16_t vzp = vdupq_n_u8((uint8_t)zp);                                                        \
        uint8_t *out = (uint8_t *)y;                                                                           \
        size_t i = 0;                                                                                          \
        for (; i + 16 <= n; i += 16) {                                                                         \
            const int32x4_t r0 = qk_neon_clamp_round(vmulq_f32(vld1q_f32(x + i), vs), lo, hi);                 \
            const int32x4_t r1 = qk_neon_clamp_round(vmulq_f32(vld1q_f32(x + i + 4), vs), lo, hi);             \
            const int32x4_t r2 = qk_neon_clamp_round(vmulq_f32(vld1q_f32(x + i + 8), vs), lo, hi);             \
            const int32x4_t r3 = qk_neon_clamp_round(vmulq_f32(vld1q_f32(x + i + 12), vs), lo, hi);            \
            vst1q_u8(out + i, vaddq_u8(qk_neon_narrow16(r0, r1, r2, r3), vzp));                                \
        }                                                                                                      \
        if (i + 8 <= n) {                                                                                      \
            const int32x4_t r0 = qk_neon_clamp_round(vmulq_f32(vld1q_f32(x + i), vs), lo, hi);                 \
            const int32x4_t r1 = qk_neon_clamp_round(vmulq_f32(vld1q_f32(x + i + 4), vs), lo, hi);             \
            vst1_u8(out + i, vadd_u8(qk_neon_narrow8(r0, r1), vget_low_u8(vzp)));                              \
            i += 8;                                                                                            \
        }                                                                                                      \
        for (; i < n; i++) y[i] = (T)qk_round_clamp_small(x[i] * inv_scale, zp, QMIN, QMAX);                 \
    }                                                                                                          \
    void qk_f32_##name##_quantize_pc__neon(size_t n, const float *x, T *y, const float *inv_scale,             \
                                           const int32_t *zp) {                                                \
        const int32x4_t vqmin = vdupq_n_s32(QMIN), vqmax = vdupq_n_s32(QMAX);                                  \
        uint8_t *out = (uint8_t *)y;                                                                           \
        size_t i = 0;                                                                                          \
        for (; i + 16 <= n; i += 16) {                                                                         \
            const int32x4_t r0 = qk_neon_clamp_round_pc(x + i, inv_scale + i, zp + i, vqmin, vqmax);           \
            const int32x4_t r1 = qk_neon_clamp_round_pc(x + i + 4, inv_scale + i + 4, zp + i + 4, vqmin, vqmax); \
            const int32x4_t r2 = qk_neon_clamp_round_pc(x + i + 8, inv_scale + i + 8, zp + i + 8, vqmin, vqmax); \
            const int32x4_t r3 = qk_neon_clamp_round_pc(x + i + 12, inv_scale + i + 12, zp + i + 12, vqmin, vqmax); \
            vst1q_u8(out + i, qk_neon_narrow16(r0, r1, r2, r3));                                               \
        }                                                                                                      \
        if (i + 8 <= n) {                                                                                      \
            const int32x4_t r0 = qk_neon_clamp_round_pc(x + i, inv_scale + i, zp + i, vqmin, vqmax);           \
            const int32x4_t r1 = qk_neon_clamp_round_pc(x + i + 4, inv_scale + i + 4, zp + i + 4, vqmin, vqmax); \
            vst1_u8(out + i, qk_neon_narrow8(r0, r1));                                                         \
            i += 8;                                                                                            \
        }                                                                                                      \
        for (; i < n; i++) y[i] = (T)qk_round_clamp_small(x[i] * inv_scale[i], zp[i], QMIN, QMAX);            \
    }

QK_NEON_QUANTIZE_SMALL(qu8, uint8_t, 0, 255)
QK_NEON_QUANTIZE_SMALL(qs8, int8_t, -128, 127)

/*
 * qint32: the scalar saturates the rounded value only to +-4 * 2^31 before adding zp, so saturating to int32 first
 * would be wrong (3e9 + zp -2e9 must give 1e9). Rounding in int64 instead (float -> double is exact, FCVTNS rounds
 * the same value half to even and saturates to int64), then a saturating int64 add and a saturating narrow, gives
 * sat32(R + zp) for |R| <= 2^33 and the same bound as the scalar beyond it. NaN -> INT32_MIN.
 */
static inline int32x4_t qk_neon_round_clamp_s32(float32x4_t v, int64x2_t zp_lo, int64x2_t zp_hi) {
    const uint32x4_t ordered = vceqq_f32(v, v);
    const int64x2_t r_lo = vcvtnq_s64_f64(vcvt_f64_f32(vget_low_f32(v)));
    const int64x2_t r_hi = vcvtnq_s64_f64(vcvt_high_f64_f32(v));
    const int32x4_t q = vqmovn_high_s64(vqmovn_s64(vqaddq_s64(r_lo, zp_lo)), vqaddq_s64(r_hi, zp_hi));
    return vbslq_s32(ordered, q, vdupq_n_s32(INT32_MIN));
}

void qk_f32_qs32_quantize__neon(size_t n, const float *x, int32_t *y, float inv_scale, int32_t zp) {
    const float32x4_t vs = vdupq_n_f32(inv_scale);
    const int64x2_t vzp = vdupq_n_s64(zp);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1q_s32(y + i, qk_neon_round_clamp_s32(vmulq_f32(vld1q_f32(x + i), vs), vzp, vzp));
        vst1q_s32(y + i + 4, qk_neon_round_clamp_s32(vmulq_f32(vld1q_f32(x + i + 4), vs), vzp, vzp));
    }
    if (i + 4 <= n) {
        vst1q_s32(y + i, qk_neon_round_clamp_s32(vmulq_f32(vld1q_f32(x + i), vs), vzp, vzp));
        i += 4;
    }
    for (; i < n; i++) y[i] = qk_round_clamp_s32(x[i] * inv_scale, zp);
}

void qk_f32_qs32_quantize_pc__neon(size_t n, const float *x, int32_t *y, const float *inv_scale,
                                   const int32_t *zp) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const int32x4_t z = vld1q_s32(zp + i);
        const float32x4_t v = vmulq_f32(vld1q_f32(x + i), vld1q_f32(inv_scale + i));
        vst1q_s32(y + i, qk_neon_round_clamp_s32(v, vmovl_s32(vget_low_s32(z)), vmovl_high_s32(z)));
    }
    for (; i < n; i++) y[i] = qk_round_clamp_s32(x[i] * inv_scale[i], zp[i]);
}

#endif /* __aarch64__ */
