/* Scalar reference: quint8 / qint8 / qint32 -> fp32, y = ((float)q - (float)zp) * scale, two roundings, no FMA. */
#include "qk_kernels.h"

/* No FMA can form here (a difference times a scale); builds also pass -ffp-contract=off. */

#define QK_DEQUANTIZE(name, T)                                                                              \
    void qk_##name##_f32_dequantize__scalar(size_t n, const T *q, float *y, float scale, int32_t zp) {      \
        const float fzp = (float)zp;                                                                        \
        for (size_t i = 0; i < n; i++) {                                                                    \
            y[i] = ((float)q[i] - fzp) * scale;                                                             \
        }                                                                                                   \
    }                                                                                                       \
    void qk_##name##_f32_dequantize_pc__scalar(size_t n, const T *q, float *y, const float *scale,          \
                                               const int32_t *zp) {                                         \
        for (size_t i = 0; i < n; i++) {                                                                    \
            y[i] = ((float)q[i] - (float)zp[i]) * scale[i];                                                 \
        }                                                                                                   \
    }

QK_DEQUANTIZE(qu8, uint8_t)
QK_DEQUANTIZE(qs8, int8_t)
QK_DEQUANTIZE(qs32, int32_t)
