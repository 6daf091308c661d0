/*
 * NEON BF16 (ARMv8.6 FEAT_BF16, optional from v8.2) 6x16c2: bf16 A x bf16 weights with BFDOT by element, fp32
 * accumulators. The c2 packing is BFDOT's operand: one q register of weights is 4 columns x 2 k, and
 * vbfdotq_laneq_f32 adds w[j][k] a[k] + w[j][k+1] a[k+1] for the k pair in lane l of the A vector (8 k per row).
 * Per k pair and 4 columns: 1 weight load, 1 BFDOT per row.
 *
 * BFDOT ignores FPCR: it rounds to odd, flushes subnormal inputs and results to zero and returns the default NaN
 * (documented in quantkit.h; each of the kc additions errs by under 1 ulp, within the contract's bound).
 *
 * Registers: the 6x16 tile is 24 accumulators; with 6 A vectors and the weights GCC and clang spill, so 5 and 6 rows
 * run as two 6x8 passes over K (12 accumulators; A is read twice from L1, each weight once), 1 to 4 rows in one pass;
 * one row splits the k pairs over two accumulator sets to break the BFDOT latency chain (GEMV).
 */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#include "f16-gemm/half-gemm-neon-epilogue.h"
#include "qk_internal.h"

#define QK_MR 6
#define QK_NR 16
#define QK_KR 2

/*
 * BFDOT (by element). clang (21) expands vbfdotq_laneq_f32 as a DUP of the lane plus a vector BFDOT and keeps the
 * DUP separate when it feeds several columns (a DUP per row and pair); an asm statement gives the single
 * instruction (".arch_extension" for assemblers that ignore the function's target). GCC 12 emits it directly.
 */
#if defined(__clang__)
#define QK_BFDOT_LANEQ(acc, b, v, l)                                                                      \
    __asm__(".arch_extension bf16\n\tbfdot %0.4s, %1.8h, %2.2h[%c3]" : "+w"(acc) : "w"(b), "w"(v), "i"(l))
#define QK_BFDOT_LANE(acc, b, v, l)                                                                       \
    __asm__(".arch_extension bf16\n\tbfdot %0.4s, %1.8h, %2.2h[%c3]" : "+w"(acc) : "w"(b), "w"(v), "i"(l))
#else
#define QK_BFDOT_LANEQ(acc, b, v, l) ((acc) = vbfdotq_laneq_f32((acc), (b), (v), (l)))
#define QK_BFDOT_LANE(acc, b, v, l) ((acc) = vbfdotq_lane_f32((acc), (b), (v), (l)))
#endif

/* One k pair: the pass's J weight vectors (4 columns x 2 k each) against pair l of the A vectors (FN =
 * QK_BFDOT_LANEQ or QK_BFDOT_LANE), into accumulator set s. */
#define QK_STEP(FN, va, l, s)                                                                  \
    do {                                                                                       \
        QK_UNROLL for (size_t j = 0; j < J; j++) {                                             \
            const bfloat16x8_t wj = vreinterpretq_bf16_u16(vld1q_u16(w + 8 * j));             \
            QK_UNROLL for (size_t r = 0; r < R; r++) FN(acc[s][r][j], wj, va[r], l);               \
        }                                                                                      \
        w += QK_NR * QK_KR;                                                                    \
    } while (0)

/*
 * R rows x 4J columns (J = 4: the whole tile; J = 2: one half, w and c already offset) over all of kc; S accumulator
 * sets (pairs alternate between them; summed at the end in a fixed order, so results depend only on the inputs).
 * ncols: columns to write (1..4J). R, J, S are constants in each inlined copy.
 */
QK_TARGET_NEON_BF16 static inline __attribute__((always_inline)) void qk_pass(
    const size_t R, const size_t J, const size_t S, size_t ncols, size_t kc, const char *a, size_t a_stride,
    const uint16_t *w, char *c, size_t c_stride, const float *bias, uint32_t flags) {
    const char *ap[QK_MR];
    float32x4_t acc[2][QK_MR][4];
    QK_HALF_NEON_START_TILE();
    /* A rows hold whole pairs (zero padded by the driver), so count in pairs */
    size_t k = (kc + 1) & ~(size_t)1;
    for (; k >= 8; k -= 8) {
        bfloat16x8_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            va[r] = vreinterpretq_bf16_u8(vld1q_u8((const uint8_t *)ap[r]));
            ap[r] += 16;
        }
        QK_STEP(QK_BFDOT_LANEQ, va, 0, 0);
        QK_STEP(QK_BFDOT_LANEQ, va, 1, S - 1);
        QK_STEP(QK_BFDOT_LANEQ, va, 2, 0);
        QK_STEP(QK_BFDOT_LANEQ, va, 3, S - 1);
    }
    if (k & 4) {
        bfloat16x4_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            va[r] = vreinterpret_bf16_u8(vld1_u8((const uint8_t *)ap[r]));
            ap[r] += 8;
        }
        QK_STEP(QK_BFDOT_LANE, va, 0, 0);
        QK_STEP(QK_BFDOT_LANE, va, 1, S - 1);
    }
    if (k & 2) {
        bfloat16x4_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            uint32_t pair;
            memcpy(&pair, ap[r], sizeof pair);
            va[r] = vreinterpret_bf16_u32(vdup_n_u32(pair));
        }
        QK_STEP(QK_BFDOT_LANE, va, 0, 0);
    }

    QK_HALF_NEON_STORE_TILE();
}

/* 5 or 6 rows: columns 0..7, then 8..15 when nc > 8 (second half of each packed group, w + 16). */
QK_TARGET_NEON_BF16 static inline __attribute__((always_inline)) void qk_two_passes(
    const size_t R, size_t nc, size_t kc, const char *a, size_t a_stride, const uint16_t *w, char *c, size_t c_stride,
    const float *bias, uint32_t flags) {
    qk_pass(R, 2, 1, nc < 8 ? nc : 8, kc, a, a_stride, w, c, c_stride, bias, flags);
    if (nc > 8)
        qk_pass(R, 2, 1, nc - 8, kc, a, a_stride, w + 8 * QK_KR, c + 32, c_stride, bias ? bias + 8 : NULL, flags);
}

QK_TARGET_NEON_BF16 void qk_bf16_gemm_ukernel_6x16c2__neonbf16(size_t mr, size_t nc, size_t kc, const void *a,
                                                               size_t a_stride, const uint16_t *w, float *c,
                                                               size_t c_stride, const float *bias,
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
