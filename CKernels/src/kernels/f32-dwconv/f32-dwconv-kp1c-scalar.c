/*
 * Scalar fp32 depthwise convolution: the portable path, any tap count. Per channel the sum starts from the bias and
 * adds the taps in order, one multiply and one add each (never fused: -ffp-contract=off in the CMake build; a
 * contracting compiler stays within the documented tolerance).
 */
#include "qk_kernels.h"

#define QK_BLOCK 64

void qk_f32_dwconv_ukernel_kp1c__scalar(size_t channels, size_t output_width, size_t taps, const float **input,
                                        size_t input_stride, size_t input_offset, const float *zero,
                                        const float *weights, float *output, int relu) {
    const size_t cp = (channels + QK_DW_CPAD - 1) / QK_DW_CPAD * QK_DW_CPAD;
    for (size_t p = 0; p < output_width; p++) {
        const float **in = input + p * input_stride;
        for (size_t c0 = 0; c0 < channels; c0 += QK_BLOCK) {
            const size_t n = channels - c0 < QK_BLOCK ? channels - c0 : QK_BLOCK;
            float acc[QK_BLOCK];
            for (size_t c = 0; c < n; c++) acc[c] = weights[c0 + c];
            for (size_t t = 0; t < taps; t++) {
                const float *row = in[t];
                if (row != zero) row = (const float *)((const char *)row + input_offset);
                row += c0;
                const float *wt = weights + (t + 1) * cp + c0;
                for (size_t c = 0; c < n; c++) acc[c] += row[c] * wt[c];
            }
            for (size_t c = 0; c < n; c++) {
                const float y = acc[c];
                output[c0 + c] = relu && y < 0.0f ? 0.0f : y;
            }
        }
        output += channels;
    }
}
