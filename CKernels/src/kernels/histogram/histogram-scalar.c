/* Scalar reference: torch.histc's CPU binning into per-way counters, and the finite min/max of the raw values. */
#include "qk_histogram.h"

void qk_f32_histogram__scalar(size_t n, const float *x, float lo, float hi, uint32_t bins, int absolute,
                              uint32_t *counts, float *min, float *max) {
    float mn = min ? *min : 0.0f, mx = max ? *max : 0.0f;
    qk_histogram_bin_range(0, n, x, lo, hi, bins, absolute, counts, min != NULL, &mn, &mx);
    if (min) {
        *min = mn;
        *max = mx;
    }
}
