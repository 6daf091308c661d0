/*
 * Scalar u8 x s8 depthwise convolution: the portable reference path, any tap count, layout C (int16 w'[t][Cp]).
 * Channels go in blocks of 64 with the accumulators in a local array, so each tap row pointer is resolved once per
 * block. Arithmetic is mod 2^32 (uint32) like the SIMD lanes; the output stage is qk_round_clamp_small.
 */
#include "qk_kernels.h"
#include "qk_scalar_math.h"

#define QK_BLOCK 64

void qk_qu8_dwconv_ukernel_kp1c__scalar(size_t channels, size_t output_width, size_t taps, const uint8_t **input,
                                        size_t input_stride, size_t input_offset, const uint8_t *zero,
                                        const void *weights, uint8_t *output, const qk_dwconv_qparams *params) {
    const size_t cp = (channels + QK_DW_CPAD - 1) / QK_DW_CPAD * QK_DW_CPAD;
    const int16_t *w = weights;
    for (size_t p = 0; p < output_width; p++) {
        const uint8_t **in = input + p * input_stride;
        for (size_t c0 = 0; c0 < channels; c0 += QK_BLOCK) {
            const size_t n = channels - c0 < QK_BLOCK ? channels - c0 : QK_BLOCK;
            uint32_t acc[QK_BLOCK];
            for (size_t c = 0; c < n; c++) acc[c] = (uint32_t)params->comp[c0 + c];
            for (size_t t = 0; t < taps; t++) {
                const uint8_t *row = in[t];
                if (row != zero) row += input_offset;
                row += c0;
                const int16_t *wt = w + t * cp + c0;
                for (size_t c = 0; c < n; c++) acc[c] += (uint32_t)((int32_t)row[c] * (int32_t)wt[c]);
            }
            for (size_t c = 0; c < n; c++) {
                const float v = ((float)(int32_t)acc[c] + params->bias_term[c0 + c]) * params->multiplier[c0 + c];
                output[c0 + c] =
                    (uint8_t)qk_round_clamp_small(v, params->out_zero_point, params->out_min, params->out_max);
            }
        }
        output += channels;
    }
}
