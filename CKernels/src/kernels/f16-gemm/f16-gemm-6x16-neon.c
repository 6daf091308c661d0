/*
 * NEON (ARMv8.0 baseline) fp16-weight GEMM 6x16: fp32 A, fp16 weights widened exactly with FCVTL/FCVTL2, fp32 FMLA
 * by lane (FBGEMM's FbgemmFP16 scheme on NEON). Per k and 8 columns: 1 weight load, 2 FCVTL, 2 FMLA per row; A is
 * loaded 4 k per row (one q register per row, used lane by lane).
 *
 * Registers: a 6x16 fp32 tile is 24 accumulators, and with 6 A vectors and the widened weights GCC and clang both
 * spill. So 4 to 6 rows run the tile as two 6x8 passes over K (12 accumulators, XNNPACK's 6x8 shape; each weight
 * is still widened once, A is read twice from L1: only loads are added); 1 to 3 rows run all 16 columns in one
 * pass, and a single row splits k over two accumulator sets to break the FMLA latency chain (GEMV).
 */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#include "f16-gemm/half-gemm-neon-epilogue.h"

#define QK_MR 6
#define QK_NR 16

/* One k: the J*4 weights of this pass widened, times lane l of the A vectors (FN = vfmaq_laneq_f32 or
 * vfmaq_lane_f32), into accumulator set s. */
#define QK_STEP(FN, va, l, s)                                                                  \
    do {                                                                                       \
        QK_UNROLL for (size_t h = 0; h < J / 2; h++) {                                         \
            const float16x8_t wh = vreinterpretq_f16_u16(vld1q_u16(w + 8 * h));               \
            const float32x4_t wlo = vcvt_f32_f16(vget_low_f16(wh));                            \
            const float32x4_t whi = vcvt_high_f32_f16(wh);                                     \
            QK_UNROLL for (size_t r = 0; r < R; r++) {                                         \
                acc[s][r][2 * h] = FN(acc[s][r][2 * h], wlo, va[r], l);                        \
                acc[s][r][2 * h + 1] = FN(acc[s][r][2 * h + 1], whi, va[r], l);                \
            }                                                                                  \
        }                                                                                      \
        w += QK_NR;                                                                            \
    } while (0)

/*
 * R rows x 4J columns (J = 4: the whole tile; J = 2: one half, w and c already offset) over all of kc; S accumulator
 * sets (k alternates between them; summed at the end in a fixed order, so results depend only on the inputs).
 * ncols: columns to write (1..4J). All of R, J, S are constants in each inlined copy.
 */
static inline __attribute__((always_inline)) void qk_pass(const size_t R, const size_t J, const size_t S,
                                                          size_t ncols, size_t kc, const char *a, size_t a_stride,
                                                          const uint16_t *w, char *c, size_t c_stride,
                                                          const float *bias, uint32_t flags) {
    const char *ap[QK_MR];
    float32x4_t acc[2][QK_MR][4];
    QK_HALF_NEON_START_TILE();
    size_t k = kc;
    for (; k >= 4; k -= 4) {
        float32x4_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            va[r] = qk_half_neon_ld_f32x4(ap[r]);
            ap[r] += 16;
        }
        QK_STEP(vfmaq_laneq_f32, va, 0, 0);
        QK_STEP(vfmaq_laneq_f32, va, 1, S - 1);
        QK_STEP(vfmaq_laneq_f32, va, 2, 0);
        QK_STEP(vfmaq_laneq_f32, va, 3, S - 1);
    }
    if (k & 2) {
        float32x2_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            va[r] = vreinterpret_f32_u8(vld1_u8((const uint8_t *)ap[r]));
            ap[r] += 8;
        }
        QK_STEP(vfmaq_lane_f32, va, 0, 0);
        QK_STEP(vfmaq_lane_f32, va, 1, S - 1);
    }
    if (k & 1) {
        float32x2_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            float x;
            memcpy(&x, ap[r], sizeof x);
            va[r] = vdup_n_f32(x);
        }
        QK_STEP(vfmaq_lane_f32, va, 0, 0);
    }

    QK_HALF_NEON_STORE_TILE();
}

/* 4 to 6 rows: columns 0..7, then 8..15 when nc > 8. */
static inline __attribute__((always_inline)) void qk_two_passes(const size_t R, size_t nc, size_t kc, const char *a,
                                                                size_t a_stride, const uint16_t *w, char *c,
                                                                size_t c_stride, const float *bias, uint32_t flags) {
    qk_pass(R, 2, 1, nc < 8 ? nc : 8, kc, a, a_stride, w, c, c_stride, bias, flags);
    if (nc > 8) qk_pass(R, 2, 1, nc - 8, kc, a, a_stride, w + 8, c + 32, c_stride, bias ? bias + 8 : NULL, flags);
}

void qk_f16_gemm_ukernel_6x16__neon(size_t mr, size_t nc, size_t kc, const void *a, size_t a_stride,
                                    const uint16_t *w, float *c, size_t c_stride, const float *bias,
                                    uint32_t flags) {
    const char *ab = (const char *)a;
    char *cb = (char *)c;
    if (mr == 0 || nc == 0) return;
    switch (mr) {
        case 1: qk_pass(1, 4, 2, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        case 2: qk_pass(2, 4, 1, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        case 3: qk_pass(3, 4, 1, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        case 4: qk_two_passes(4, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        case 5: qk_two_passes(5, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        default: qk_two_passes(6, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
    }
}

#endif /* __aarch64__ */
