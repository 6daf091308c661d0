/* NEON (ARMv8-A baseline): min and max, NaN skipped (and +-inf with finite_only), as minmax-scalar.c. */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>

/*
 * Skipped lanes are replaced by +inf / -inf, which never change a min / max; a mask is used rather than
 * FMINNM/FMAXNM because those return NaN for a signalling NaN operand. |v| <= bound is false for NaN, and with
 * bound = FLT_MAX also for +-inf. Min and max are exact, so lane order only matters for -0.0 vs +0.0 (either may be
 * returned).
 */
void qk_f32_minmax__neon(size_t n, const float *x, int finite_only, float *min, float *max) {
    const float32x4_t bound = vdupq_n_f32(finite_only ? 0x1.fffffep127f : INFINITY);
    const float32x4_t pinf = vdupq_n_f32(INFINITY), ninf = vdupq_n_f32(-INFINITY);
    float lo = *min, hi = *max;
    size_t i = 0;
    if (n >= 4) {
        float32x4_t lo0 = pinf, lo1 = pinf, lo2 = pinf, lo3 = pinf;
        float32x4_t hi0 = ninf, hi1 = ninf, hi2 = ninf, hi3 = ninf;
#define QK_NEON_MINMAX_STEP(k, p)                                  \
        do {                                                       \
            const float32x4_t v = vld1q_f32(p);                    \
            const uint32x4_t keep = vcaleq_f32(v, bound);          \
            lo##k = vminq_f32(lo##k, vbslq_f32(keep, v, pinf));    \
            hi##k = vmaxq_f32(hi##k, vbslq_f32(keep, v, ninf));    \
        } while (0)
        for (; i + 16 <= n; i += 16) {
            QK_NEON_MINMAX_STEP(0, x + i);
            QK_NEON_MINMAX_STEP(1, x + i + 4);
            QK_NEON_MINMAX_STEP(2, x + i + 8);
            QK_NEON_MINMAX_STEP(3, x + i + 12);
        }
        for (; i + 4 <= n; i += 4) QK_NEON_MINMAX_STEP(0, x + i);
#undef QK_NEON_MINMAX_STEP
        /* Folded as the scalar folds one value (keeps a NaN the caller passed in *min / *max). */
        const float vlo = vminvq_f32(vminq_f32(vminq_f32(lo0, lo1), vminq_f32(lo2, lo3)));
        const float vhi = vmaxvq_f32(vmaxq_f32(vmaxq_f32(hi0, hi1), vmaxq_f32(hi2, hi3)));
        lo = vlo < lo ? vlo : lo;
        hi = vhi > hi ? vhi : hi;
    }
    for (; i < n; i++) {
        const float v = x[i];
        if (v != v) continue;
        if (finite_only && isinf(v)) continue;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    *min = lo;
    *max = hi;
}

#endif /* __aarch64__ */
