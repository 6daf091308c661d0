/* NEON element-wise running min/max, bit for bit vminmax-scalar.c (FMIN/FMAX would propagate NaN, so selects:
 * x where it is a number, finite with finite_only, and beyond the accumulator). */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>

void qk_f32_vminmax__neon(size_t n, const float *x, int finite_only, float *min, float *max) {
    /* |x| <= bound is false for NaN, and with bound = FLT_MAX also for +-inf. */
    const float32x4_t bound = vdupq_n_f32(finite_only ? 0x1.fffffep127f : INFINITY);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vld1q_f32(x + i);
        const uint32x4_t keep = vcaleq_f32(v, bound);
        const float32x4_t lo = vld1q_f32(min + i), hi = vld1q_f32(max + i);
        vst1q_f32(min + i, vbslq_f32(vandq_u32(keep, vcltq_f32(v, lo)), v, lo));
        vst1q_f32(max + i, vbslq_f32(vandq_u32(keep, vcgtq_f32(v, hi)), v, hi));
    }
    for (; i < n; i++) {
        const float v = x[i];
        if (v != v) continue;
        if (finite_only && isinf(v)) continue;
        min[i] = v < min[i] ? v : min[i];
        max[i] = v > max[i] ? v : max[i];
    }
}

#endif
