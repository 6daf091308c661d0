/* NEON histogram: bin indices 4 at a time (the scalar reference's fp32 operations, so the same bins), a block of
 * them first and then the counter increments, spread over the ways (see histogram-avx2.c). */
#include "qk_histogram.h"

#if defined(__aarch64__)
#include <arm_neon.h>

void qk_f32_histogram__neon(size_t n, const float *x, float lo, float hi, uint32_t bins, int absolute,
                            uint32_t *counts, float *min, float *max) {
    const float nb = (float)bins, width = hi - lo;
    const size_t stride = (size_t)bins + 1;
    const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi), vnb = vdupq_n_f32(nb);
    const float32x4_t vwidth = vdupq_n_f32(width), vinf = vdupq_n_f32(INFINITY);
    const uint32x4_t vlast = vdupq_n_u32(bins - 1), vskip = vdupq_n_u32(bins);
    float mn = min ? *min : 0.0f, mx = max ? *max : 0.0f;
    float32x4_t lo_acc = vdupq_n_f32(mn), hi_acc = vdupq_n_f32(mx);
    uint32_t idx[QK_HISTOGRAM_BLOCK];
    size_t i = 0;
#define QK_HISTOGRAM_INDICES(MINMAX)                                                 \
    for (size_t j = 0; j < m; j += 4) {                                              \
        const float32x4_t raw = vld1q_f32(x + i + j);                                \
        MINMAX                                                                       \
        const float32x4_t v = absolute ? vabsq_f32(raw) : raw;                       \
        const uint32x4_t in = vandq_u32(vcgeq_f32(v, vlo), vcleq_f32(v, vhi));       \
        const float32x4_t t = vdivq_f32(vmulq_f32(vsubq_f32(v, vlo), vnb), vwidth);  \
        uint32x4_t b = vbslq_u32(vcltq_f32(t, vnb), vcvtq_u32_f32(t), vlast);        \
        b = vbslq_u32(in, b, vskip);                                                 \
        vst1q_u32(idx + j, b);                                                       \
    }
/* FMIN/FMAX propagate NaN, so select instead: x where finite and beyond the accumulator (as the scalar comparison,
 * ties keep the accumulator). vcaltq is false for NaN and +-inf. */
#define QK_HISTOGRAM_MINMAX                                                                    \
        const uint32x4_t finite = vcaltq_f32(raw, vinf);                                       \
        lo_acc = vbslq_f32(vandq_u32(finite, vcltq_f32(raw, lo_acc)), raw, lo_acc);            \
        hi_acc = vbslq_f32(vandq_u32(finite, vcgtq_f32(raw, hi_acc)), raw, hi_acc);
    while (i + 4 <= n) {
        size_t m = (n - i) & ~(size_t)3;
        if (m > QK_HISTOGRAM_BLOCK) m = QK_HISTOGRAM_BLOCK;
        if (min) {
            QK_HISTOGRAM_INDICES(QK_HISTOGRAM_MINMAX)
        } else {
            QK_HISTOGRAM_INDICES()
        }
        qk_histogram_increment(idx, m, counts, stride);
        i += m;
    }
#undef QK_HISTOGRAM_INDICES
#undef QK_HISTOGRAM_MINMAX
    if (min) {
        float l[4], h[4];
        vst1q_f32(l, lo_acc);
        vst1q_f32(h, hi_acc);
        qk_histogram_fold_lanes(l, h, 4, &mn, &mx);
    }
    qk_histogram_bin_range(i, n, x, lo, hi, bins, absolute, counts, min != NULL, &mn, &mx);
    if (min) {
        *min = mn;
        *max = mx;
    }
}

#endif
