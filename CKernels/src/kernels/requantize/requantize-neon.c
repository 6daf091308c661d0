/* NEON (ARMv8-A baseline): int32 -> quint8 / qint8 with fp32 multipliers, as requantize-scalar.c. */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include "qk_scalar_math.h"

/* round(clamp((float)acc * m, lo, hi)) with lo/hi = (float)(qmin - zp), (float)(qmax - zp); then + zp. The product is
 * never NaN (m is finite); FMAXNM/FMINNM would return the bound for a quiet NaN anyway, as the scalar does. */
static inline int32x4_t qk_neon_requant4(const int32_t *acc, float32x4_t m, float32x4_t lo, float32x4_t hi,
                                         int32x4_t zp) {
    const float32x4_t v = vmulq_f32(vcvtq_f32_s32(vld1q_s32(acc)), m);
    return vaddq_s32(vcvtnq_s32_f32(vminnmq_f32(vmaxnmq_f32(v, lo), hi)), zp);
}

/* Low bytes (modulo 2^8, the scalar's (T) cast; the values are in [qmin, qmax] anyway). */
static inline uint8x16_t qk_neon_narrow16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    const uint16x8_t ab = vuzp1q_u16(vreinterpretq_u16_s32(a), vreinterpretq_u16_s32(b));
    const uint16x8_t cd = vuzp1q_u16(vreinterpretq_u16_s32(c), vreinterpretq_u16_s32(d));
    return vuzp1q_u8(vreinterpretq_u8_u16(ab), vreinterpretq_u8_u16(cd));
}

static inline uint8x8_t qk_neon_narrow8(int32x4_t a, int32x4_t b) {
    return vmovn_u16(vuzp1q_u16(vreinterpretq_u16_s32(a), vreinterpretq_u16_s32(b)));
}

/* mstep: how far the multiplier pointer advances per element (0: per tensor, 1: per channel); always inlined so
 * that each caller gets its own loop without the test. */
static inline __attribute__((always_inline)) void qk_neon_requantize(size_t n, const int32_t *acc, uint8_t *y,
                                                                     const float *m, size_t mstep, int32_t zp,
                                                                     int32_t qmin, int32_t qmax) {
    const float32x4_t lo = vdupq_n_f32((float)(qmin - zp)), hi = vdupq_n_f32((float)(qmax - zp));
    const int32x4_t vzp = vdupq_n_s32(zp);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const float32x4_t m0 = mstep ? vld1q_f32(m + i) : vdupq_n_f32(m[0]);
        const float32x4_t m1 = mstep ? vld1q_f32(m + i + 4) : m0;
        const float32x4_t m2 = mstep ? vld1q_f32(m + i + 8) : m0;
        const float32x4_t m3 = mstep ? vld1q_f32(m + i + 12) : m0;
        vst1q_u8(y + i, qk_neon_narrow16(qk_neon_requant4(acc + i, m0, lo, hi, vzp),
                                         qk_neon_requant4(acc + i + 4, m1, lo, hi, vzp),
                                         qk_neon_requant4(acc + i + 8, m2, lo, hi, vzp),
                                         qk_neon_requant4(acc + i + 12, m3, lo, hi, vzp)));
    }
    if (i + 8 <= n) {
        const float32x4_t m0 = mstep ? vld1q_f32(m + i) : vdupq_n_f32(m[0]);
        const float32x4_t m1 = mstep ? vld1q_f32(m + i + 4) : m0;
        vst1_u8(y + i, qk_neon_narrow8(qk_neon_requant4(acc + i, m0, lo, hi, vzp),
                                       qk_neon_requant4(acc + i + 4, m1, lo, hi, vzp)));
        i += 8;
    }
    for (; i < n; i++) y[i] = (uint8_t)qk_round_clamp_small((float)acc[i] * m[i * mstep], zp, qmin, qmax);
}

void qk_qs32_qu8_requantize__neon(size_t n, const int32_t *acc, uint8_t *y, float m, int32_t zp, int32_t qmin,
                                  int32_t qmax) {
    qk_neon_requantize(n, acc, y, &m, 0, zp, qmin, qmax);
}

void qk_qs32_qs8_requantize__neon(size_t n, const int32_t *acc, int8_t *y, float m, int32_t zp, int32_t qmin,
                                  int32_t qmax) {
    qk_neon_requantize(n, acc, (uint8_t *)y, &m, 0, zp, qmin, qmax);
}

void qk_qs32_qu8_requantize_pc__neon(size_t n, const int32_t *acc, uint8_t *y, const float *m, int32_t zp,
                                     int32_t qmin, int32_t qmax) {
    qk_neon_requantize(n, acc, y, m, 1, zp, qmin, qmax);
}

void qk_qs32_qs8_requantize_pc__neon(size_t n, const int32_t *acc, int8_t *y, const float *m, int32_t zp,
                                     int32_t qmin, int32_t qmax) {
    qk_neon_requantize(n, acc, (uint8_t *)y, m, 1, zp, qmin, qmax);
}

#endif /* __aarch64__ */
