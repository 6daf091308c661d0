/* NEON fp32 depthwise convolution, any tap count, 8 channels per step (f32-dwconv-neon.h). */
#include "f32-dwconv-neon.h"

#if defined(__aarch64__)
void qk_f32_dwconv_ukernel_kp8c__neon(size_t channels, size_t output_width, size_t taps, const float **input,
                                      size_t input_stride, size_t input_offset, const float *zero,
                                      const float *weights, float *output, int relu) {
    qk_dwfn(taps, 0, channels, output_width, input, input_stride, input_offset, zero, weights, output, relu);
}
#endif
