/* Scalar reference: torch.histc's CPU binning into per-way counters, and the finite min/max of the raw values. */
#include <math.h>

#include "qk_kernels.h"

/* v in [lo, hi] goes to bin ((v - lo) * bins) / (hi - lo), fp32 in PyTorch's order (HistogramKernel.cpp,
 * LINEAR_INTERPOLATION), truncated; a quotient that is not below bins (v == hi, overflow, NaN from an infinite
 * width) goes to the last bin. Other elements count in the extra counter. */
void qk_f32_histogram__scalar(size_t n, const float *x, float lo, float hi, uint32_t bins, int absolute,
                              uint32_t *counts, float *min, float *max) {
    const float nb = (float)bins, width = hi - lo;
    const size_t stride = (size_t)bins + 1;
    float mn = min ? *min : 0.0f, mx = max ? *max : 0.0f;
    for (size_t i = 0; i < n; i++) {
        const float raw = x[i];
        if (min && isfinite(raw)) {
            mn = raw < mn ? raw : mn;
            mx = raw > mx ? raw : mx;
        }
        const float v = absolute ? fabsf(raw) : raw;
        uint32_t *way = counts + (i % QK_HISTOGRAM_WAYS) * stride;
        if (!(v >= lo && v <= hi)) {
            way[bins]++;
            continue;
        }
        const float t = ((v - lo) * nb) / width;
        way[t < nb ? (uint32_t)t : bins - 1]++;
    }
    if (min) {
        *min = mn;
        *max = mx;
    }
}
