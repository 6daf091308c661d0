/*
 * The GEMM output stage, one element at a time: the definition every GEMM microkernel matches bit for bit (the
 * scalar kernels use it for everything, the SIMD kernels for partial column tiles).
 */
#ifndef QK_GEMM_SCALAR_H
#define QK_GEMM_SCALAR_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "qk_kernels.h"
#include "qk_scalar_math.h"

/* raw = acc + za * wcomp - zw * row_sum, wrapping mod 2^32 as the int32 SIMD lanes do. */
static inline int32_t qk_gemm_raw(int32_t acc, int32_t za, int32_t wcomp, const qk_gemm_epilogue *e, size_t i,
                                  size_t j) {
    uint32_t r = (uint32_t)acc + (uint32_t)za * (uint32_t)wcomp;
    if (e->row_sums) r -= (uint32_t)e->w_zero_points[j] * (uint32_t)e->row_sums[i];
    return (int32_t)r;
}

/* Separate float add and multiply (never contracted: (a + b) * c has no FMA form), then round and clamp. */
static inline int32_t qk_gemm_requantize1(int32_t raw, float bias_term, float multiplier, const qk_gemm_epilogue *e) {
    const float v = ((float)raw + bias_term) * multiplier;
    return qk_round_clamp_small(v, e->out_zero_point, e->out_min, e->out_max);
}

/* One fused multiply-add, as PyTorch's dynamic linear; ReLU maps NaN and -0 to +0 (what maxps(y, 0) gives). */
static inline float qk_gemm_dequantize1(int32_t raw, float scale, float bias, int relu) {
    float y = fmaf((float)raw, scale, bias);
    if (relu) y = y > 0.0f ? y : 0.0f;
    return y;
}

/* Stores output (i, j) of a tile from its accumulator. */
static inline void qk_gemm_store1(const qk_gemm_epilogue *e, const int32_t *wcomp, size_t i, size_t j, int32_t acc,
                                  void *c, size_t c_stride) {
    const int32_t raw = qk_gemm_raw(acc, e->a_zero_point, wcomp[j], e, i, j);
    char *row = (char *)c + i * c_stride;
    switch (e->kind) {
    case QK_GEMM_OUT_QU8:
        ((uint8_t *)row)[j] = (uint8_t)qk_gemm_requantize1(raw, e->bias_term[j], e->multiplier[j], e);
        break;
    case QK_GEMM_OUT_QS8:
        ((int8_t *)row)[j] = (int8_t)qk_gemm_requantize1(raw, e->bias_term[j], e->multiplier[j], e);
        break;
    case QK_GEMM_OUT_F32:
        ((float *)row)[j] = qk_gemm_dequantize1(raw, e->scale[j], e->bias[j], e->relu);
        break;
    default:
        ((int32_t *)row)[j] = raw;
        break;
    }
}

#endif /* QK_GEMM_SCALAR_H */
