/* NEON dotprod (ARMv8.2 SDOT) 4x16c4: u8 activations x s8 weights, XNNPACK's 4x16c4 neondot tile. */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include "qk_internal.h"
#include "qu8-gemm-neon-epilogue.h"

/*
 * Dotprod has no mixed-sign dot (USDOT is i8mm), so A is moved to s8, a' = a ^ 0x80 = a - 128, and SDOT runs on
 * a'*w. With za' = za - 128 and rowsum' = rowsum - 128*K:
 *   sum (a - za)(w - zw) = sum a'w + za' * wcomp - zw * rowsum'   (mod 2^32),
 * so the epilogue gets za' and the row-sum offset 128*K. Exact: |a'w| <= 2^14, sums wrap like the reference.
 */
#define QK_MR 4
#define QK_NR 16

/* One k-quad (lane l of the A vectors) against the 16 columns: 4 B loads of 4 columns x 4 k. */
#define QK_DOT_STEP(LANEFN, va, l)                                                             \
    do {                                                                                       \
        const int8x16_t b0 = vld1q_s8(w), b1 = vld1q_s8(w + 16);                               \
        const int8x16_t b2 = vld1q_s8(w + 32), b3 = vld1q_s8(w + 48);                          \
        w += 64;                                                                               \
        QK_UNROLL for (size_t r = 0; r < R; r++) {                                             \
            acc[r][0] = LANEFN(acc[r][0], b0, va[r], l);                                       \
            acc[r][1] = LANEFN(acc[r][1], b1, va[r], l);                                       \
            acc[r][2] = LANEFN(acc[r][2], b2, va[r], l);                                       \
            acc[r][3] = LANEFN(acc[r][3], b3, va[r], l);                                       \
        }                                                                                      \
    } while (0)

/* R (the rows, 1..4) is a constant in each inlined copy, so short tiles do no redundant work. */
QK_TARGET_NEON_DOTPROD static inline __attribute__((always_inline)) void qk_body(const size_t R, size_t kc,
                                                                                const uint8_t *a, size_t a_stride,
                                                                                const int8_t *w, int32_t *tile) {
    const uint8_t *ap[QK_MR];
    int32x4_t acc[QK_MR][QK_NR / 4];
    QK_UNROLL for (size_t r = 0; r < R; r++) {
        ap[r] = a + r * a_stride;
        QK_UNROLL for (size_t j = 0; j < QK_NR / 4; j++) acc[r][j] = vdupq_n_s32(0);
    }
    const uint8x8_t sign = vdup_n_u8(0x80);
    size_t k = kc;
    /* 8 k per step (XNNPACK's schedule): 16 accumulators + 8 B vectors + 4 A halves fit the 32 registers; a 16-k
     * step made GCC hoist 16 B loads and spill accumulators. */
    for (; k >= 8; k -= 8) {
        int8x8_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            va[r] = vreinterpret_s8_u8(veor_u8(vld1_u8(ap[r]), sign));
            ap[r] += 8;
        }
        QK_DOT_STEP(vdotq_lane_s32, va, 0);
        QK_DOT_STEP(vdotq_lane_s32, va, 1);
    }
    if (k != 0) { /* 1..7 bytes left; the packed weights are zero past kc, so the filler bytes of A do not count */
        int8x8_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++)
            va[r] = vreinterpret_s8_u8(veor_u8(qk_neon_gemm_load_tail(ap[r], k), sign));
        QK_DOT_STEP(vdotq_lane_s32, va, 0);
        if (k > 4) QK_DOT_STEP(vdotq_lane_s32, va, 1);
    }
    QK_UNROLL for (size_t r = 0; r < R; r++)
        QK_UNROLL for (size_t j = 0; j < QK_NR / 4; j++) vst1q_s32(tile + r * QK_NR + 4 * j, acc[r][j]);
}

QK_TARGET_NEON_DOTPROD void qk_qu8_gemm_ukernel_4x16c4__neondot(size_t mr, size_t nc, size_t kc, const uint8_t *a,
                                                                size_t a_stride, const void *w, void *c,
                                                                size_t c_stride, const qk_gemm_epilogue *e) {
    const int32_t *wcomp = (const int32_t *)w;
    const int8_t *wk = (const int8_t *)w + QK_NR * sizeof(int32_t);
    int32_t tile[QK_MR * QK_NR];
    if (mr == 0 || nc == 0) return;
    switch (mr) {
        case 1: qk_body(1, kc, a, a_stride, wk, tile); break;
        case 2: qk_body(2, kc, a, a_stride, wk, tile); break;
        case 3: qk_body(3, kc, a, a_stride, wk, tile); break;
        default: qk_body(4, kc, a, a_stride, wk, tile); break;
    }
    qk_neon_gemm_epilogue(QK_NR, mr, nc, tile, wcomp, e->a_zero_point - 128, (uint32_t)kc * 128u, c, c_stride, e);
}

#endif /* __aarch64__ */
