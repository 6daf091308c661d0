/* Scalar reference: min and max, NaN skipped (and +-inf with finite_only). */
#include <math.h>

#include "qk_kernels.h"

void qk_f32_minmax__scalar(size_t n, const float *x, int finite_only, float *min, float *max) {
    float lo = *min, hi = *max;
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        if (v != v) continue;
        if (finite_only && isinf(v)) continue;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    *min = lo;
    *max = hi;
}
