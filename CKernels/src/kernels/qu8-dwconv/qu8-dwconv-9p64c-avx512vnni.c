/* AVX-512 VNNI (vpdpwssd) u8 x s8 depthwise convolution, 9 taps (3x3), unrolled,
 * 64 channels per step: qu8-dwconv-avx512.h. */
#define QK_DW_VNNI 1
#define QK_DW_TARGET QK_TARGET_AVX512VNNI
#include "qu8-dwconv-avx512.h"

#if defined(__x86_64__) || defined(_M_X64)
QK_DW_TARGET void qk_qu8_dwconv_ukernel_9p64c__avx512vnni(size_t channels, size_t output_width, size_t taps,
                                   const uint8_t **input, size_t input_stride, size_t input_offset,
                                   const uint8_t *zero, const void *weights, uint8_t *output,
                                   const qk_dwconv_qparams *params) {
    (void)taps;
    qk_dw512(9, 1, channels, output_width, input, input_stride, input_offset, zero, weights, output, params);
}
#endif
