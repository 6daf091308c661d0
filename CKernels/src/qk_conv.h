/* Quantized convolution internals shared by the operator (src/operators/conv.c) and the C tests. Not installed. */
#ifndef QK_CONV_H
#define QK_CONV_H

#include <stddef.h>

#include "qk_dwconv.h"
#include "qk_gemm.h"
#include "quantkit.h"

struct qk_qs8_conv2d_weights {
    size_t in_channels, out_channels, groups, kh, kw;
    size_t icg, ocg;              /* channels per group */
    size_t k;                     /* GEMM depth kh * kw * icg, ordered (ky, kx, c) like an NHWC im2col row */
    qk_qs8_dwconv_weights *dw;    /* groups == in_channels: the depthwise handle, else NULL */
    qk_qs8_gemm_weights **gemm;   /* otherwise one GEMM handle per group: [ocg, k] */
    size_t packed_bytes;
};

#endif /* QK_CONV_H */
