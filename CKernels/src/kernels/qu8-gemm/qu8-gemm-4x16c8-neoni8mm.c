/* NEON i8mm (USMMLA) 4x16c8: u8 activations x s8 weights natively, XNNPACK's 4x16c8 i8mm tile. */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include "qk_internal.h"
#include "qu8-gemm-neon-epilogue.h"

/*
 * USMMLA multiplies a 2x8 u8 block (two A rows, 8 k) by an 8x2 s8 block (two packed columns of 8 k: 16 contiguous
 * bytes of the c8 layout) into a 2x2 int32 block [r0c0 r0c1 r1c0 r1c1]; exact, sums wrap like the reference.
 */
#define QK_MR 4
#define QK_NR 16

/* One 8-k group against the 16 columns; vpair[p] = [row 2p: 8 bytes | row 2p+1: 8 bytes]. */
#define QK_MMLA_STEP(vpair)                                                                    \
    do {                                                                                       \
        int8x16_t b[QK_NR / 2];                                                                \
        QK_UNROLL for (size_t j = 0; j < QK_NR / 2; j++) b[j] = vld1q_s8(w + 16 * j);          \
        w += 8 * QK_NR;                                                                        \
        QK_UNROLL for (size_t p = 0; p < P; p++)                                               \
            QK_UNROLL for (size_t j = 0; j < QK_NR / 2; j++)                                   \
                acc[p][j] = vusmmlaq_s32(acc[p][j], vpair[p], b[j]);                           \
    } while (0)

/* R (the rows, 1..4) is a constant in each inlined copy; an odd last row is paired with zeros. */
QK_TARGET_NEON_I8MM static inline __attribute__((always_inline)) void qk_body(const size_t R, size_t kc,
                                                                             const uint8_t *a, size_t a_stride,
                                                                             const int8_t *w, int32_t *tile) {
    const size_t P = (R + 1) / 2;
    const uint8_t *ap[QK_MR];
    int32x4_t acc[QK_MR / 2][QK_NR / 2];
    QK_UNROLL for (size_t r = 0; r < R; r++) ap[r] = a + r * a_stride;
    QK_UNROLL for (size_t p = 0; p < P; p++)
        QK_UNROLL for (size_t j = 0; j < QK_NR / 2; j++) acc[p][j] = vdupq_n_s32(0);
    size_t k = kc;
    /* 8 k per step: 16 accumulators + 8 B vectors + 2 A pairs fit the 32 registers (a 16-k step spilled) */
    uint8x8_t va[QK_MR];
    uint8x16_t pr[QK_MR / 2];
    if (R & 1) va[R & (QK_MR - 1)] = vdup_n_u8(0);
    for (; k >= 8; k -= 8) {
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            va[r] = vld1_u8(ap[r]);
            ap[r] += 8;
        }
        QK_UNROLL for (size_t p = 0; p < P; p++) pr[p] = vcombine_u8(va[2 * p], va[2 * p + 1]);
        QK_MMLA_STEP(pr);
    }
    if (k != 0) { /* 1..7 left; the packed weights are zero past kc, so the filler bytes of A do not count */
        QK_UNROLL for (size_t r = 0; r < R; r++) va[r] = qk_neon_gemm_load_tail(ap[r], k);
        QK_UNROLL for (size_t p = 0; p < P; p++) pr[p] = vcombine_u8(va[2 * p], va[2 * p + 1]);
        QK_MMLA_STEP(pr);
    }
    /* un-interleave the 2x2 blocks: row 2p takes the low halves, row 2p+1 the high halves */
    QK_UNROLL for (size_t p = 0; p < P; p++)
        QK_UNROLL for (size_t q = 0; q < QK_NR / 4; q++) {
            const int64x2_t x = vreinterpretq_s64_s32(acc[p][2 * q]), y = vreinterpretq_s64_s32(acc[p][2 * q + 1]);
            vst1q_s32(tile + (2 * p) * QK_NR + 4 * q, vreinterpretq_s32_s64(vzip1q_s64(x, y)));
            if (2 * p + 1 < R) vst1q_s32(tile + (2 * p + 1) * QK_NR + 4 * q, vreinterpretq_s32_s64(vzip2q_s64(x, y)));
        }
}

QK_TARGET_NEON_I8MM void qk_qu8_gemm_ukernel_4x16c8__neoni8mm(size_t mr, size_t nc, size_t kc, const uint8_t *a,
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
    qk_neon_gemm_epilogue(QK_NR, mr, nc, tile, wcomp, e->a_zero_point, 0, c, c_stride, e);
}

#endif /* __aarch64__ */
