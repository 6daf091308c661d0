/* Scalar reference: fp32 <-> fp16 (IEEE binary16 bit patterns), round half to even. */
#include "qk_kernels.h"
#include "qk_scalar_math.h"

void qk_f32_f16_convert__scalar(size_t n, const float *x, uint16_t *y) {
    for (size_t i = 0; i < n; i++) y[i] = qk_f32_to_f16_bits(x[i]);
}

size_t qk_f32_f16_convert_sat__scalar(size_t n, const float *x, uint16_t *y) {
    size_t saturated = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (v > 65504.0f) { v = 65504.0f; saturated++; }
        else if (v < -65504.0f) { v = -65504.0f; saturated++; }
        y[i] = qk_f32_to_f16_bits(v);
    }
    return saturated;
}

void qk_f16_f32_convert__scalar(size_t n, const uint16_t *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = qk_f16_bits_to_f32(x[i]);
}
