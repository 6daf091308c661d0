/* Portable pieces of the histogram kernels: the counter increments of a block of SIMD-computed bin indices, the
 * reduction of the min/max lanes, and the scalar binning loop (the reference itself, and every SIMD variant's tail).
 * Plain C, inlined into each ISA's kernel. */
#ifndef QK_HISTOGRAM_H
#define QK_HISTOGRAM_H

#include <math.h>
#include <string.h>

#include "qk_kernels.h"

_Static_assert(QK_HISTOGRAM_WAYS == 4, "the increment loops use 4 ways");

/* Increments for a block of m indices (m a multiple of 4), two indices per load, one way each. */
static inline void qk_histogram_increment(const uint32_t *idx, size_t m, uint32_t *counts, size_t stride) {
    uint32_t *const c0 = counts, *const c1 = counts + stride, *const c2 = counts + 2 * stride;
    uint32_t *const c3 = counts + 3 * stride;
    for (size_t j = 0; j < m; j += 4) {
        uint64_t p, q;
        memcpy(&p, idx + j, 8);
        memcpy(&q, idx + j + 2, 8);
        c0[(uint32_t)p]++;
        c1[p >> 32]++;
        c2[(uint32_t)q]++;
        c3[q >> 32]++;
    }
}

/* Folds the lanes of the SIMD min/max accumulators into *mn / *mx (ties keep the accumulator, as the scalar loop). */
static inline void qk_histogram_fold_lanes(const float *lo, const float *hi, int lanes, float *mn, float *mx) {
    for (int k = 0; k < lanes; k++) {
        *mn = lo[k] < *mn ? lo[k] : *mn;
        *mx = hi[k] > *mx ? hi[k] : *mx;
    }
}

/* Elements [begin, n): v in [lo, hi] goes to bin ((v - lo) * bins) / (hi - lo), fp32 in PyTorch's order
 * (HistogramKernel.cpp, LINEAR_INTERPOLATION), truncated; a quotient that is not below bins (v == hi, overflow, NaN
 * from an infinite width) goes to the last bin. Other elements count in the extra counter. With track_minmax the
 * finite raw values also update *mn / *mx. */
static inline void qk_histogram_bin_range(size_t begin, size_t n, const float *x, float lo, float hi, uint32_t bins,
                                          int absolute, uint32_t *counts, int track_minmax, float *mn, float *mx) {
    const float nb = (float)bins, width = hi - lo;
    const size_t stride = (size_t)bins + 1;
    for (size_t i = begin; i < n; i++) {
        const float raw = x[i];
        if (track_minmax && isfinite(raw)) {
            *mn = raw < *mn ? raw : *mn;
            *mx = raw > *mx ? raw : *mx;
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
}

#endif
