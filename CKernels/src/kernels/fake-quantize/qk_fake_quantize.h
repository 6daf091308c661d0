/* Shared by the fake-quantization kernels. */
#ifndef QK_FAKE_QUANTIZE_H
#define QK_FAKE_QUANTIZE_H

#include "qk_kernels.h"

/* The lanes of a learnable segment, added in order (every ISA stores its lanes and calls this). */
static inline double qk_fq_sum_lanes(const double *lanes) {
    double s = 0.0;
    for (int l = 0; l < QK_FQ_LANES; l++) s += lanes[l];
    return s;
}

#endif /* QK_FAKE_QUANTIZE_H */
