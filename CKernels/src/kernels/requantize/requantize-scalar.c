/* Scalar reference: int32 -> quint8 / qint8 with fp32 multipliers (the fp32 scheme of FBGEMM and PyTorch). */
#include "qk_kernels.h"
#include "qk_scalar_math.h"

#define QK_REQUANTIZE(name, T)                                                                               \
    void qk_qs32_##name##_requantize__scalar(size_t n, const int32_t *acc, T *y, float m, int32_t zp,        \
                                             int32_t qmin, int32_t qmax) {                                   \
        for (size_t i = 0; i < n; i++) y[i] = (T)qk_round_clamp_small((float)acc[i] * m, zp, qmin, qmax);      \
    }                                                                                                        \
    void qk_qs32_##name##_requantize_pc__scalar(size_t n, const int32_t *acc, T *y, const float *m,          \
                                                int32_t zp, int32_t qmin, int32_t qmax) {                    \
        for (size_t i = 0; i < n; i++) y[i] = (T)qk_round_clamp_small((float)acc[i] * m[i], zp, qmin, qmax);   \
    }

QK_REQUANTIZE(qu8, uint8_t)
QK_REQUANTIZE(qs8, int8_t)
