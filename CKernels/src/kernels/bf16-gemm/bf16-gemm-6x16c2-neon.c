/*
 * NEON (ARMv8.0 baseline) bf16 GEMM 6x16c2 for CPUs without the BF16 extension: bf16 is the top half of an fp32,
 * so widening is a shift. A (bf16, 4 k per row) becomes fp32 with one SHLL #16; a q register of packed weights
 * (4 columns x 2 k, c2) gives k's 4 columns as its 32-bit lanes << 16 (SHL) and k+1's as the lanes & 0xffff0000
 * (AND). Then fp32 FMLA by lane, as the fp16 kernel. Products of bf16 values are exact in fp32 and the FMA rounds
 * once per k. Per k pair and 4 columns: 1 weight load, SHL + AND, 2 FMLA per row.
 *
 * Registers: the 6x16 tile is 24 accumulators; with 6 A vectors, the widened weights and the mask GCC and clang
 * spill, so 5 and 6 rows run as two 6x8 passes over K (12 accumulators; each weight is widened once, A is loaded and
 * widened twice: 3 SHLL per k beside 24 FMLA), 1 to 4 rows in one pass; one row puts even and odd k into two
 * accumulator sets to break the FMLA latency chain.
 */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#include "f16-gemm/half-gemm-neon-epilogue.h"

#define QK_MR 6
#define QK_NR 16
#define QK_KR 2

/* One k pair: the pass's J weight vectors (4 columns x 2 k each) widened, times lanes l and l + 1 of the fp32 A
 * vectors (FN = vfmaq_laneq_f32 or vfmaq_lane_f32); k into set 0, k + 1 into set S - 1. */
#define QK_STEP(FN, va, l)                                                                     \
    do {                                                                                       \
        QK_UNROLL for (size_t j = 0; j < J; j++) {                                             \
            const uint32x4_t wj = vreinterpretq_u32_u16(vld1q_u16(w + 8 * j));                \
            const float32x4_t w0 = vreinterpretq_f32_u32(vshlq_n_u32(wj, 16));                 \
            const float32x4_t w1 = vreinterpretq_f32_u32(vandq_u32(wj, hi16));                 \
            QK_UNROLL for (size_t r = 0; r < R; r++) {                                         \
                acc[0][r][j] = FN(acc[0][r][j], w0, va[r], l);                                 \
                acc[S - 1][r][j] = FN(acc[S - 1][r][j], w1, va[r], (l) + 1);                   \
            }                                                                                  \
        }                                                                                      \
        w += QK_NR * QK_KR;                                                                    \
    } while (0)

/*
 * R rows x 4J columns (J = 4: the whole tile; J = 2: one half, w and c already offset) over all of kc; S accumulator
 * sets (even and odd k; summed at the end in a fixed order, so results depend only on the inputs).
 * ncols: columns to write (1..4J). R, J, S are constants in each inlined copy.
 */
static inline __attribute__((always_inline)) void qk_pass(
    const size_t R, const size_t J, const size_t S, size_t ncols, size_t kc, const char *a, size_t a_stride,
    const uint16_t *w, char *c, size_t c_stride, const float *bias, uint32_t flags) {
    const char *ap[QK_MR];
    float32x4_t acc[2][QK_MR][4];
    QK_HALF_NEON_START_TILE();
    const uint32x4_t hi16 = vdupq_n_u32(0xFFFF0000u);
    /* A rows hold whole pairs (zero padded by the driver), so count in pairs */
    size_t k = (kc + 1) & ~(size_t)1;
    for (; k >= 4; k -= 4) {
        float32x4_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            va[r] = vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u8(vld1_u8((const uint8_t *)ap[r])), 16));
            ap[r] += 8;
        }
        QK_STEP(vfmaq_laneq_f32, va, 0);
        QK_STEP(vfmaq_laneq_f32, va, 2);
    }
    if (k != 0) { /* one pair left */
        float32x2_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            uint32_t pair;
            memcpy(&pair, ap[r], sizeof pair);
            va[r] = vget_low_f32(vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u32(vdup_n_u32(pair)), 16)));
        }
        QK_STEP(vfmaq_lane_f32, va, 0);
    }

    QK_HALF_NEON_STORE_TILE();
}

/* 5 or 6 rows: columns 0..7, then 8..15 when nc > 8 (second half of each packed group, w + 16). */
static inline __attribute__((always_inline)) void qk_two_passes(
    const size_t R, size_t nc, size_t kc, const char *a, size_t a_stride, const uint16_t *w, char *c, size_t c_stride,
    const float *bias, uint32_t flags) {
    qk_pass(R, 2, 1, nc < 8 ? nc : 8, kc, a, a_stride, w, c, c_stride, bias, flags);
    if (nc > 8)
        qk_pass(R, 2, 1, nc - 8, kc, a, a_stride, w + 8 * QK_KR, c + 32, c_stride, bias ? bias + 8 : NULL, flags);
}

void qk_bf16_gemm_ukernel_6x16c2__neon(size_t mr, size_t nc, size_t kc, const void *a, size_t a_stride,
                                       const uint16_t *w, float *c, size_t c_stride, const float *bias,
                                       uint32_t flags) {
    const char *ab = (const char *)a;
    char *cb = (char *)c;
    if (mr == 0 || nc == 0) return;
    switch (mr) {
        case 1: qk_pass(1, 4, 2, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        case 2: qk_pass(2, 4, 1, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        case 3: qk_pass(3, 4, 1, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        case 4: qk_pass(4, 4, 1, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        case 5: qk_two_passes(5, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        default: qk_two_passes(6, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
    }
}

#endif /* __aarch64__ */
