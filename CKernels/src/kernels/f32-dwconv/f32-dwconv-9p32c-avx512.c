/* AVX-512 fp32 depthwise convolution, 9 taps (3x3), unrolled, 32 channels per step (f32-dwconv-avx512.h). */
#include "f32-dwconv-avx512.h"

#if defined(__x86_64__) || defined(_M_X64)
QK_TARGET_AVX512 void qk_f32_dwconv_ukernel_9p32c__avx512(size_t channels, size_t output_width, size_t taps,
                                       const float **input, size_t input_stride, size_t input_offset,
                                       const float *zero, const float *weights, float *output, int relu) {
    (void)taps;
    qk_dwf512(9, 1, channels, output_width, input, input_stride, input_offset, zero, weights, output, relu);
}
#endif
