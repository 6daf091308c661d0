/*
 * Shared by the aarch64 half-precision GEMM microkernels (f16-gemm-6x16-neon.c, f16-gemm-6x16-neonfp16arith.c,
 * bf16-gemm-6x16c2-neon.c, bf16-gemm-6x16c2-neonbf16.c): unaligned fp32 vector access, partial rows of up to 16
 * columns, the output stage (+ bias, ReLU) and the start and end of a pass with fp32 accumulators. Baseline NEON
 * only, so it inlines into the FP16 / BF16 target functions too. Internal; included as
 * "f16-gemm/half-gemm-neon-epilogue.h".
 */
#ifndef QK_HALF_GEMM_NEON_EPILOGUE_H
#define QK_HALF_GEMM_NEON_EPILOGUE_H

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#include "qk_kernels.h"

/* Constant-trip row/column loops must unroll fully for the accumulators to stay in registers. */
#define QK_UNROLL _Pragma("GCC unroll 16")

/* Unaligned-safe fp32 vector access through bytes (A and C may have any alignment). */
static inline float32x4_t qk_half_neon_ld_f32x4(const char *p) {
    return vreinterpretq_f32_u8(vld1q_u8((const uint8_t *)p));
}
static inline void qk_half_neon_st_f32x4(char *p, float32x4_t v) { vst1q_u8((uint8_t *)p, vreinterpretq_u8_f32(v)); }

/* The first n (1..4J) floats at p as J vectors, zero past n, reading only n floats. */
static inline __attribute__((always_inline)) void qk_half_neon_load_cols(const size_t J, const char *p, size_t n,
                                                                         float32x4_t *v) {
    if (n == 4 * J) {
        QK_UNROLL for (size_t j = 0; j < J; j++) v[j] = qk_half_neon_ld_f32x4(p + 16 * j);
        return;
    }
    float t[16] = {0};
    memcpy(t, p, n * sizeof(float));
    QK_UNROLL for (size_t j = 0; j < J; j++) v[j] = vld1q_f32(t + 4 * j);
}

/* Writes the first n (1..4J) floats of the J vectors. */
static inline __attribute__((always_inline)) void qk_half_neon_store_cols(const size_t J, char *p, size_t n,
                                                                          const float32x4_t *v) {
    if (n == 4 * J) {
        QK_UNROLL for (size_t j = 0; j < J; j++) qk_half_neon_st_f32x4(p + 16 * j, v[j]);
        return;
    }
    float32x4_t y[4];
    QK_UNROLL for (size_t j = 0; j < J; j++) y[j] = v[j];
    if (J == 4 && (n & 8)) {
        qk_half_neon_st_f32x4(p, y[0]);
        qk_half_neon_st_f32x4(p + 16, y[1]);
        y[0] = y[2];
        y[1] = y[3];
        p += 32;
    }
    if (n & 4) {
        qk_half_neon_st_f32x4(p, y[0]);
        y[0] = y[1];
        p += 16;
    }
    float32x2_t lo = vget_low_f32(y[0]);
    if (n & 2) {
        vst1_u8((uint8_t *)p, vreinterpret_u8_f32(lo));
        lo = vget_high_f32(y[0]);
        p += 8;
    }
    if (n & 1) {
        const float x = vget_lane_f32(lo, 0);
        memcpy(p, &x, sizeof x);
    }
}

/*
 * The output stage of one vector, in place: y + b when bias != NULL, then with QK_HALF_UK_RELU y < 0 ? 0 : y exactly
 * (NaN compares false and stays, as does -0.0). A macro: as an always_inline function it made GCC 12 lay out and
 * allocate the kernels differently (with spills in one of them).
 */
#define QK_HALF_NEON_OUTPUT(y, b, bias, flags)                                                                 \
    do {                                                                                                       \
        if (bias) (y) = vaddq_f32((y), (b));                                                                   \
        if ((flags) & QK_HALF_UK_RELU)                                                                         \
            (y) = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), vcltzq_f32(y)));                   \
    } while (0)

/*
 * The start of a pass with fp32 accumulators acc[s][r][j] (set s < S, row r < R, vector j < J; R, J, S constants):
 * the A row pointers ap[r], every set at zero, set 0 from the first ncols columns of c with QK_HALF_UK_ACCUMULATE.
 * Uses the pass's R, J, S, ap, acc, a, a_stride, c, c_stride, ncols and flags.
 */
#define QK_HALF_NEON_START_TILE()                                                                              \
    do {                                                                                                       \
        QK_UNROLL for (size_t r = 0; r < R; r++) {                                                             \
            ap[r] = a + r * a_stride;                                                                          \
            QK_UNROLL for (size_t s = 0; s < S; s++)                                                           \
                QK_UNROLL for (size_t j = 0; j < J; j++) acc[s][r][j] = vdupq_n_f32(0.0f);                     \
            if (flags & QK_HALF_UK_ACCUMULATE)                                                                 \
                qk_half_neon_load_cols(J, c + r * c_stride, ncols, acc[0][r]);                                 \
        }                                                                                                      \
    } while (0)

/*
 * The end of such a pass: per row the sets summed in order, the output stage, the first ncols (1..4J) floats stored.
 * Uses the pass's R, J, S, acc, c, c_stride, ncols, bias and flags. Macros for the same reason as QK_HALF_NEON_OUTPUT
 * (here clang changed the code).
 */
#define QK_HALF_NEON_STORE_TILE()                                                                              \
    do {                                                                                                       \
        float32x4_t vb[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};      \
        if (bias) qk_half_neon_load_cols(J, (const char *)bias, ncols, vb);                                    \
        QK_UNROLL for (size_t r = 0; r < R; r++) {                                                             \
            float32x4_t y[4];                                                                                  \
            QK_UNROLL for (size_t j = 0; j < J; j++) {                                                         \
                y[j] = acc[0][r][j];                                                                           \
                if (S == 2) y[j] = vaddq_f32(y[j], acc[1][r][j]);                                              \
                QK_HALF_NEON_OUTPUT(y[j], vb[j], bias, flags);                                                 \
            }                                                                                                  \
            qk_half_neon_store_cols(J, c + r * c_stride, ncols, y);                                            \
        }                                                                                                      \
    } while (0)

#endif /* __aarch64__ */
#endif /* QK_HALF_GEMM_NEON_EPILOGUE_H */
