/* NEON (ARMv8.0 baseline) 8x8c1: u8 activations x s8 weights, QNNPACK's 8x8 widening multiply-accumulate tile. */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include "qu8-gemm-neon-epilogue.h"

/*
 * A widened u8 -> s16, B s8 -> s16, SMLAL by lane into int32: every product is added in int32, never two in int16
 * (255*128 + 255*128 overflows int16), so the sums are exact (modulo 2^32, as the reference).
 */
#define QK_MR 8
#define QK_NR 8

/* k = lane l of the widened A rows against the 8 columns of vb (int16x8). */
#define QK_MLAL_STEP(vb, l)                                                                    \
    do {                                                                                       \
        QK_UNROLL for (size_t r = 0; r < R; r++) {                                             \
            acc[r][0] = vmlal_laneq_s16(acc[r][0], vget_low_s16(vb), va[r], l);                \
            acc[r][1] = vmlal_high_laneq_s16(acc[r][1], vb, va[r], l);                         \
        }                                                                                      \
    } while (0)

/* Two k (16 packed bytes: k's 8 columns, then k+1's) with A lanes l and l + 1. */
#define QK_MLAL_PAIR(l)                                                                        \
    do {                                                                                       \
        const int8x16_t b = vld1q_s8(w);                                                       \
        w += 16;                                                                               \
        const int16x8_t b0 = vmovl_s8(vget_low_s8(b)), b1 = vmovl_high_s8(b);                  \
        QK_MLAL_STEP(b0, l);                                                                   \
        QK_MLAL_STEP(b1, l + 1);                                                               \
    } while (0)

/* One k from 8 packed bytes (the K tail: no load past the panel). */
#define QK_MLAL_ONE(l)                                                                         \
    do {                                                                                       \
        const int16x8_t b0 = vmovl_s8(vld1_s8(w));                                             \
        w += 8;                                                                                \
        QK_MLAL_STEP(b0, l);                                                                   \
    } while (0)

/* R (the rows, 1..8) is a constant in each inlined copy, so short tiles do no redundant work. */
static inline __attribute__((always_inline)) void qk_body(const size_t R, size_t kc, const uint8_t *a,
                                                          size_t a_stride, const int8_t *w, int32_t *tile) {
    const uint8_t *ap[QK_MR];
    int32x4_t acc[QK_MR][2];
    int16x8_t va[QK_MR];
    QK_UNROLL for (size_t r = 0; r < R; r++) {
        ap[r] = a + r * a_stride;
        acc[r][0] = vdupq_n_s32(0);
        acc[r][1] = vdupq_n_s32(0);
    }
    size_t k = kc;
    for (; k >= 8; k -= 8) {
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            va[r] = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(ap[r])));
            ap[r] += 8;
        }
        QK_MLAL_PAIR(0);
        QK_MLAL_PAIR(2);
        QK_MLAL_PAIR(4);
        QK_MLAL_PAIR(6);
    }
    if (k != 0) { /* 1..7 */
        QK_UNROLL for (size_t r = 0; r < R; r++)
            va[r] = vreinterpretq_s16_u16(vmovl_u8(qk_neon_gemm_load_tail(ap[r], k)));
        QK_MLAL_ONE(0);
        if (k > 1) QK_MLAL_ONE(1);
        if (k > 2) QK_MLAL_ONE(2);
        if (k > 3) QK_MLAL_ONE(3);
        if (k > 4) QK_MLAL_ONE(4);
        if (k > 5) QK_MLAL_ONE(5);
        if (k > 6) QK_MLAL_ONE(6);
    }
    QK_UNROLL for (size_t r = 0; r < R; r++) {
        vst1q_s32(tile + r * QK_NR, acc[r][0]);
        vst1q_s32(tile + r * QK_NR + 4, acc[r][1]);
    }
}

void qk_qu8_gemm_ukernel_8x8c1__neon(size_t mr, size_t nc, size_t kc, const uint8_t *a, size_t a_stride,
                                     const void *w, void *c, size_t c_stride, const qk_gemm_epilogue *e) {
    const int32_t *wcomp = (const int32_t *)w;
    const int8_t *wk = (const int8_t *)w + QK_NR * sizeof(int32_t);
    int32_t tile[QK_MR * QK_NR];
    if (mr == 0 || nc == 0) return;
    switch (mr) {
        case 1: qk_body(1, kc, a, a_stride, wk, tile); break;
        case 2: qk_body(2, kc, a, a_stride, wk, tile); break;
        case 3: qk_body(3, kc, a, a_stride, wk, tile); break;
        case 4: qk_body(4, kc, a, a_stride, wk, tile); break;
        case 5: qk_body(5, kc, a, a_stride, wk, tile); break;
        case 6: qk_body(6, kc, a, a_stride, wk, tile); break;
        case 7: qk_body(7, kc, a, a_stride, wk, tile); break;
        default: qk_body(8, kc, a, a_stride, wk, tile); break;
    }
    qk_neon_gemm_epilogue(QK_NR, mr, nc, tile, wcomp, e->a_zero_point, 0, c, c_stride, e);
}

#endif /* __aarch64__ */
