/* NEON fake quantization, bit-identical to fake-quantize-scalar.c (tails through zero-padded stack copies). */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#include "qk_fake_quantize.h"

/* Forward of 4 elements: y, and the in-range mask (all-ones lanes). FMAXNM returns the number when the other
 * operand is a quiet NaN (FADD quiets): NaN -> qmin, as the scalar `qf > qmin ? qf : qmin`. */
static inline float32x4_t qk_fq4(float32x4_t x, float32x4_t s, float32x4_t inv, float32x4_t zp, float32x4_t lo,
                                 float32x4_t hi, uint32x4_t *in) {
    const float32x4_t qf = vaddq_f32(vrndnq_f32(vmulq_f32(x, inv)), zp);
    *in = vandq_u32(vcgeq_f32(qf, lo), vcleq_f32(qf, hi));
    const float32x4_t c = vminnmq_f32(vmaxnmq_f32(qf, lo), hi);
    return vmulq_f32(vsubq_f32(c, zp), s);
}

/* Four masks of 4 lanes -> 16 bytes 0 / 1 in element order. */
static inline uint8x16_t qk_mask_bytes16(uint32x4_t a, uint32x4_t b, uint32x4_t c, uint32x4_t d) {
    const uint16x8_t ab = vcombine_u16(vmovn_u32(a), vmovn_u32(b));
    const uint16x8_t cd = vcombine_u16(vmovn_u32(c), vmovn_u32(d));
    return vandq_u8(vcombine_u8(vmovn_u16(ab), vmovn_u16(cd)), vdupq_n_u8(1));
}

/* 16 elements from pointers (per channel: parameter pointers advance; per tensor: the caller passes splats). */
#define QK_FQ16_BODY(LOADP)                                                                                   \
    uint32x4_t m0, m1, m2, m3;                                                                                \
    vst1q_f32(y + 0, qk_fq4(vld1q_f32(x + 0), LOADP(s, 0), LOADP(v, 0), LOADP(z, 0), lo, hi, &m0));           \
    vst1q_f32(y + 4, qk_fq4(vld1q_f32(x + 4), LOADP(s, 4), LOADP(v, 4), LOADP(z, 4), lo, hi, &m1));           \
    vst1q_f32(y + 8, qk_fq4(vld1q_f32(x + 8), LOADP(s, 8), LOADP(v, 8), LOADP(z, 8), lo, hi, &m2));           \
    vst1q_f32(y + 12, qk_fq4(vld1q_f32(x + 12), LOADP(s, 12), LOADP(v, 12), LOADP(z, 12), lo, hi, &m3));      \
    if (mask) vst1q_u8(mask, qk_mask_bytes16(m0, m1, m2, m3));

#define QK_SPLAT(p, o) p
#define QK_LOAD(p, o) vld1q_f32((p) + (o))

static inline void qk_fq16(const float *x, float *y, uint8_t *mask, float32x4_t s, float32x4_t v, float32x4_t z,
                           float32x4_t lo, float32x4_t hi) {
    QK_FQ16_BODY(QK_SPLAT)
}

static inline void qk_fq16_pc(const float *x, float *y, uint8_t *mask, const float *s, const float *v,
                              const float *z, float32x4_t lo, float32x4_t hi) {
    QK_FQ16_BODY(QK_LOAD)
}

void qk_f32_fq__neon(size_t n, const float *x, float *y, uint8_t *mask, const qk_fq_params *p) {
    const float32x4_t s = vdupq_n_f32(p->scale), v = vdupq_n_f32(p->inv_scale), z = vdupq_n_f32(p->zero_point);
    const float32x4_t lo = vdupq_n_f32(p->qmin), hi = vdupq_n_f32(p->qmax);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) qk_fq16(x + i, y + i, mask ? mask + i : NULL, s, v, z, lo, hi);
    /* The tail is the scalar reference (element-wise, so the same bits). */
    if (i < n) qk_f32_fq__scalar(n - i, x + i, y + i, mask ? mask + i : NULL, p);
}

void qk_f32_fq_pc__neon(size_t n, const float *x, float *y, uint8_t *mask, const float *scale,
                        const float *inv_scale, const float *zero_point, const qk_fq_params *p) {
    const float32x4_t lo = vdupq_n_f32(p->qmin), hi = vdupq_n_f32(p->qmax);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        qk_fq16_pc(x + i, y + i, mask ? mask + i : NULL, scale + i, inv_scale + i, zero_point + i, lo, hi);
    /* The tail is the scalar reference (element-wise, so the same bits). */
    if (i < n) qk_f32_fq_pc__scalar(n - i, x + i, y + i, mask ? mask + i : NULL, scale + i,
                                     inv_scale + i, zero_point + i, p);
}

/* dy * (0.0f or 1.0f) for 16 elements */
static inline void qk_mask_backward16(const float *dy, const uint8_t *mask, float *dx) {
    const uint8x16_t m = vld1q_u8(mask);
    const uint16x8_t lo = vmovl_u8(vget_low_u8(m)), hi = vmovl_u8(vget_high_u8(m));
    vst1q_f32(dx + 0, vmulq_f32(vld1q_f32(dy + 0), vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo)))));
    vst1q_f32(dx + 4, vmulq_f32(vld1q_f32(dy + 4), vcvtq_f32_u32(vmovl_u16(vget_high_u16(lo)))));
    vst1q_f32(dx + 8, vmulq_f32(vld1q_f32(dy + 8), vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi)))));
    vst1q_f32(dx + 12, vmulq_f32(vld1q_f32(dy + 12), vcvtq_f32_u32(vmovl_u16(vget_high_u16(hi)))));
}

void qk_f32_fq_mask_backward__neon(size_t n, const float *dy, const uint8_t *mask, float *dx) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) qk_mask_backward16(dy + i, mask + i, dx + i);
    /* The tail is the scalar reference (element-wise, so the same bits). */
    if (i < n) qk_f32_fq_mask_backward__scalar(n - i, dy + i, mask + i, dx + i);
}

/* Learnable backward of 4 elements (the scalar branch formulas, both computed and selected); returns dx. */
static inline float32x4_t qk_fql4(float32x4_t x, float32x4_t dy, float32x4_t s, float32x4_t inv, float32x4_t zp,
                                  float32x4_t lo, float32x4_t hi, float32x4_t g, float32x4_t *ds, float32x4_t *dz) {
    const float32x4_t xq = vrndnq_f32(vaddq_f32(vmulq_f32(x, inv), zp));
    const uint32x4_t in = vandq_u32(vcgeq_f32(xq, lo), vcleq_f32(xq, hi));
    const uint32x4_t above = vcgtq_f32(xq, hi);
    const float32x4_t xfq = vmulq_f32(vsubq_f32(xq, zp), s);
    const float32x4_t ds_in = vmulq_f32(vmulq_f32(vmulq_f32(dy, vsubq_f32(xfq, x)), inv), g);
    const float32x4_t bound = vbslq_f32(above, hi, lo);
    const float32x4_t ds_out = vmulq_f32(vmulq_f32(dy, vsubq_f32(bound, zp)), g);
    *ds = vbslq_f32(in, ds_in, ds_out);
    *dz = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(vmulq_f32(vmulq_f32(vnegq_f32(dy), s), g)), in));
    return vmulq_f32(dy, vreinterpretq_f32_u32(vandq_u32(in, vreinterpretq_u32_f32(vdupq_n_f32(1.0f)))));
}

/* a += low two lanes of v, b += high two, widened exactly to double. */
static inline void qk_acc4(float64x2_t *a, float64x2_t *b, float32x4_t v) {
    *a = vaddq_f64(*a, vcvt_f64_f32(vget_low_f32(v)));
    *b = vaddq_f64(*b, vcvt_high_f64_f32(v));
}

/* 16 elements into the 16 lanes (acc[2k], acc[2k+1] hold lanes 4k..4k+3). */
static inline void qk_fql16(const float *x, const float *dy, float *dx, float32x4_t s, float32x4_t v,
                            float32x4_t z, float32x4_t lo, float32x4_t hi, float32x4_t g, float64x2_t *as,
                            float64x2_t *az) {
    float32x4_t ds, dz;
    for (int k = 0; k < 4; k++) {
        vst1q_f32(dx + 4 * k, qk_fql4(vld1q_f32(x + 4 * k), vld1q_f32(dy + 4 * k), s, v, z, lo, hi, g, &ds, &dz));
        qk_acc4(&as[2 * k], &as[2 * k + 1], ds);
        qk_acc4(&az[2 * k], &az[2 * k + 1], dz);
    }
}

void qk_f32_fq_learnable_backward__neon(size_t n, const float *x, const float *dy, float *dx, const qk_fq_params *p,
                                        double *grad_scale, double *grad_zero_point) {
    const float32x4_t s = vdupq_n_f32(p->scale), v = vdupq_n_f32(p->inv_scale), z = vdupq_n_f32(p->zero_point);
    const float32x4_t lo = vdupq_n_f32(p->qmin), hi = vdupq_n_f32(p->qmax), g = vdupq_n_f32(p->grad_factor);
    float64x2_t as[8], az[8];
    for (int k = 0; k < 8; k++) as[k] = az[k] = vdupq_n_f64(0.0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) qk_fql16(x + i, dy + i, dx + i, s, v, z, lo, hi, g, as, az);
    if (i < n) { /* x = 0, dy = 0 padding adds +-0 to the lanes, which leaves them unchanged */
        const size_t r = n - i;
        float xb[16] = {0}, db[16] = {0}, ob[16];
        memcpy(xb, x + i, r * sizeof(float));
        memcpy(db, dy + i, r * sizeof(float));
        qk_fql16(xb, db, ob, s, v, z, lo, hi, g, as, az);
        memcpy(dx + i, ob, r * sizeof(float));
    }
    double ls[QK_FQ_LANES], lz[QK_FQ_LANES];
    for (int k = 0; k < 8; k++) {
        vst1q_f64(ls + 2 * k, as[k]);
        vst1q_f64(lz + 2 * k, az[k]);
    }
    *grad_scale = qk_fq_sum_lanes(ls);
    *grad_zero_point = qk_fq_sum_lanes(lz);
}

static inline void qk_fql4_pc(const float *x, const float *dy, float *dx, const float *scale, const float *inv_scale,
                              const float *zero_point, float32x4_t lo, float32x4_t hi, float32x4_t g, double *acc_s,
                              double *acc_z) {
    float32x4_t ds, dz;
    vst1q_f32(dx, qk_fql4(vld1q_f32(x), vld1q_f32(dy), vld1q_f32(scale), vld1q_f32(inv_scale), vld1q_f32(zero_point),
                          lo, hi, g, &ds, &dz));
    float64x2_t a = vld1q_f64(acc_s), b = vld1q_f64(acc_s + 2);
    qk_acc4(&a, &b, ds);
    vst1q_f64(acc_s, a);
    vst1q_f64(acc_s + 2, b);
    a = vld1q_f64(acc_z);
    b = vld1q_f64(acc_z + 2);
    qk_acc4(&a, &b, dz);
    vst1q_f64(acc_z, a);
    vst1q_f64(acc_z + 2, b);
}

void qk_f32_fq_learnable_backward_pc__neon(size_t n, const float *x, const float *dy, float *dx, const float *scale,
                                           const float *inv_scale, const float *zero_point, const qk_fq_params *p,
                                           double *acc_scale, double *acc_zero_point) {
    const float32x4_t lo = vdupq_n_f32(p->qmin), hi = vdupq_n_f32(p->qmax), g = vdupq_n_f32(p->grad_factor);
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        qk_fql4_pc(x + i, dy + i, dx + i, scale + i, inv_scale + i, zero_point + i, lo, hi, g, acc_scale + i,
                   acc_zero_point + i);
    /* The tail is the scalar reference: every element has its own accumulators, so the bits are the same. */
    qk_f32_fq_learnable_backward_pc__scalar(n - i, x + i, dy + i, dx + i, scale + i, inv_scale + i,
                                            zero_point + i, p, acc_scale + i, acc_zero_point + i);
}

#endif
