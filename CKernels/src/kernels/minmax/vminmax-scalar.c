/* Scalar reference: element-wise running min/max (per-channel statistics of a tensor whose channels are contiguous). */
#include <math.h>

#include "qk_kernels.h"

void qk_f32_vminmax__scalar(size_t n, const float *x, int finite_only, float *min, float *max) {
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        if (v != v) continue;
        if (finite_only && isinf(v)) continue;
        min[i] = v < min[i] ? v : min[i];
        max[i] = v > max[i] ? v : max[i];
    }
}
