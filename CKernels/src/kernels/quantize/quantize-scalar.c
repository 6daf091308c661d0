/* Scalar reference: fp32 -> quint8 / qint8 / qint32, per tensor and per channel ("pc"). */
#include "qk_kernels.h"
#include "qk_scalar_math.h"

#define QK_QUANTIZE_SMALL(name, T, QMIN, QMAX)                                                              \
    void qk_f32_##name##_quantize__scalar(size_t n, const float *x, T *y, float inv_scale, int32_t zp) {    \
        for (size_t i = 0; i < n; i++) y[i] = (T)qk_round_clamp_small(x[i] * inv_scale, zp, QMIN, QMAX);      \
    }                                                                                                       \
    void qk_f32_##name##_quantize_pc__scalar(size_t n, const float *x, T *y, const float *inv_scale,        \
                                             const int32_t *zp) {                                           \
        for (size_t i = 0; i < n; i++) y[i] = (T)qk_round_clamp_small(x[i] * inv_scale[i], zp[i], QMIN, QMAX); \
    }

QK_QUANTIZE_SMALL(qu8, uint8_t, 0, 255)
QK_QUANTIZE_SMALL(qs8, int8_t, -128, 127)

void qk_f32_qs32_quantize__scalar(size_t n, const float *x, int32_t *y, float inv_scale, int32_t zp) {
    for (size_t i = 0; i < n; i++) y[i] = qk_round_clamp_s32(x[i] * inv_scale, zp);
}

void qk_f32_qs32_quantize_pc__scalar(size_t n, const float *x, int32_t *y, const float *inv_scale,
                                     const int32_t *zp) {
    for (size_t i = 0; i < n; i++) y[i] = qk_round_clamp_s32(x[i] * inv_scale[i], zp[i]);
}
