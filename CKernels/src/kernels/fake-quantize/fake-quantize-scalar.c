/*
 * Scalar reference: fake quantization forward (y and the straight-through mask), the mask backward, and the
 * learnable (LSQ) backward with its grad_scale / grad_zero_point contributions. Every SIMD variant must match these
 * bit for bit. Products and sums are separate statements so that no compiler contracts them into an FMA.
 */
#include "qk_kernels.h"
#include "qk_scalar_math.h"
#include "qk_fake_quantize.h"

/* One element of the forward pass, PyTorch's fake_quantize_tensor_cachemask: qf = zp + nearbyint(x * inv_scale),
 * mask = qmin <= qf <= qmax (NaN: 0), y = (clamp(qf) - zp) * scale with NaN taking qmin. */
static inline float qk_fq_one(float x, float scale, float inv_scale, float zp, float qmin, float qmax,
                              uint8_t *mask) {
    const float v = x * inv_scale;
    const float qf = qk_rint(v) + zp;
    *mask = (uint8_t)(qf >= qmin && qf <= qmax);
    float c = qf > qmin ? qf : qmin;
    c = c < qmax ? c : qmax;
    const float d = c - zp;
    return d * scale;
}

void qk_f32_fq__scalar(size_t n, const float *x, float *y, uint8_t *mask, const qk_fq_params *p) {
    uint8_t m;
    for (size_t i = 0; i < n; i++) {
        y[i] = qk_fq_one(x[i], p->scale, p->inv_scale, p->zero_point, p->qmin, p->qmax, &m);
        if (mask) mask[i] = m;
    }
}

void qk_f32_fq_pc__scalar(size_t n, const float *x, float *y, uint8_t *mask, const float *scale,
                          const float *inv_scale, const float *zero_point, const qk_fq_params *p) {
    uint8_t m;
    for (size_t i = 0; i < n; i++) {
        y[i] = qk_fq_one(x[i], scale[i], inv_scale[i], zero_point[i], p->qmin, p->qmax, &m);
        if (mask) mask[i] = m;
    }
}

void qk_f32_fq_mask_backward__scalar(size_t n, const float *dy, const uint8_t *mask, float *dx) {
    /* dY * mask as PyTorch's tensor product: a negative gradient outside the range gives -0.0, NaN stays NaN. */
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (mask[i] ? 1.0f : 0.0f);
}

/* One element of the learnable backward (PyTorch's fake_quantize_learnable_*_grad_kernel_cpu):
 *   xq = nearbyint(zp + x * inv_scale)    (NaN counts as below qmin, +-inf and huge values as beyond their bound)
 *   inside  qmin <= xq <= qmax:  dx = dy, ds = ((dy * (((xq - zp) * scale) - x)) * inv_scale) * g, dz = 0
 *   below:  dx = dy * 0, ds = (dy * (qmin - zp)) * g, dz = ((-dy) * scale) * g
 *   above:  dx = dy * 0, ds = (dy * (qmax - zp)) * g, dz = ((-dy) * scale) * g */
static inline float qk_fq_learnable_one(float x, float dy, float scale, float inv_scale, float zp, float qmin,
                                        float qmax, float g, float *ds, float *dz) {
    const float v = x * inv_scale;
    const float w = v + zp;
    const float xq = qk_rint(w);
    if (xq >= qmin && xq <= qmax) {
        const float xfq = (xq - zp) * scale;
        const float t = xfq - x;
        const float u = dy * t;
        const float s = u * inv_scale;
        *ds = s * g;
        *dz = 0.0f;
        return dy * 1.0f;
    }
    const float bound = xq > qmax ? qmax : qmin;
    const float b = dy * (bound - zp);
    *ds = b * g;
    const float z = -dy * scale;
    *dz = z * g;
    return dy * 0.0f;
}

void qk_f32_fq_learnable_backward__scalar(size_t n, const float *x, const float *dy, float *dx,
                                          const qk_fq_params *p, double *grad_scale, double *grad_zero_point) {
    double ls[QK_FQ_LANES] = {0}, lz[QK_FQ_LANES] = {0};
    for (size_t i = 0; i < n; i++) {
        float ds, dz;
        dx[i] = qk_fq_learnable_one(x[i], dy[i], p->scale, p->inv_scale, p->zero_point, p->qmin, p->qmax,
                                    p->grad_factor, &ds, &dz);
        ls[i % QK_FQ_LANES] += (double)ds;
        lz[i % QK_FQ_LANES] += (double)dz;
    }
    *grad_scale = qk_fq_sum_lanes(ls);
    *grad_zero_point = qk_fq_sum_lanes(lz);
}

void qk_f32_fq_learnable_backward_pc__scalar(size_t n, const float *x, const float *dy, float *dx,
                                             const float *scale, const float *inv_scale, const float *zero_point,
                                             const qk_fq_params *p, double *acc_scale, double *acc_zero_point) {
    for (size_t i = 0; i < n; i++) {
        float ds, dz;
        dx[i] = qk_fq_learnable_one(x[i], dy[i], scale[i], inv_scale[i], zero_point[i], p->qmin, p->qmax,
                                    p->grad_factor, &ds, &dz);
        acc_scale[i] += (double)ds;
        acc_zero_point[i] += (double)dz;
    }
}
