/* NEON u8 x s8 depthwise convolution, any tap count, 16 channels per step (qu8-dwconv-neon.h). */
#include "qu8-dwconv-neon.h"

#if defined(__aarch64__)
void qk_qu8_dwconv_ukernel_kp16c__neon(size_t channels, size_t output_width, size_t taps, const uint8_t **input,
                                       size_t input_stride, size_t input_offset, const uint8_t *zero,
                                       const void *weights, uint8_t *output, const qk_dwconv_qparams *params) {
    qk_dwn(taps, 0, channels, output_width, input, input_stride, input_offset, zero, weights, output, params);
}
#endif
