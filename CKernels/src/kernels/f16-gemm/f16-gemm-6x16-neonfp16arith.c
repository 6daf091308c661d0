/*
 * NEON fp16 arithmetic (ARMv8.2 FEAT_FP16) 6x16: fp16 A x fp16 weights with fp16 FMLA by lane into fp16
 * accumulators (XNNPACK's f16 6x16 GEMM), the opt-in QK_HALF_GEMM_FP16_ARITHMETIC mode. The driver rounds A to
 * fp16 (QK_HALF_A_HALF; KR = 1, so a row holds exactly kc values). Per k: 2 weight loads and 2 FMLA per row, 8
 * columns each, twice the fp32 kernel's work per instruction; 12 accumulators + 6 A vectors (8 k per row) + 2
 * weight vectors fit the 32 registers. The accumulators start at 0; at the end they are widened to fp32, and c
 * (QK_HALF_UK_ACCUMULATE) and the bias are added in fp32. Error: about kc * 2^-11 * sum |a w|; sums beyond 65504
 * overflow to infinity (the caller opted in).
 */
#include "qk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#include "f16-gemm/half-gemm-neon-epilogue.h"
#include "qk_internal.h"

#define QK_MR 6
#define QK_NR 16

/* The 16-column (4-vector) forms, plain inline as this kernel always had them (GCC 12 inlines them late). */
static inline void qk_load_cols(const char *p, size_t n, float32x4_t *v) { qk_half_neon_load_cols(4, p, n, v); }
static inline void qk_store_cols(char *p, size_t n, const float32x4_t *v) { qk_half_neon_store_cols(4, p, n, v); }

/*
 * FMLA (by element), fp16. GCC 12 expands vfmaq_laneq_f16 as a DUP of the lane plus a vector FMLA and, as the DUP
 * feeds both column vectors, keeps it separate (a DUP per row and k); an asm statement gives the single
 * instruction. The element form takes its lane register from v0-v15, hence "x".
 */
#if defined(__GNUC__) && !defined(__clang__)
#define QK_FMLA_LANEQ(acc, b, v, l) __asm__("fmla %0.8h, %1.8h, %2.h[%c3]" : "+w"(acc) : "w"(b), "x"(v), "i"(l))
#define QK_FMLA_LANE(acc, b, v, l) __asm__("fmla %0.8h, %1.8h, %2.h[%c3]" : "+w"(acc) : "w"(b), "x"(v), "i"(l))
#else
#define QK_FMLA_LANEQ(acc, b, v, l) ((acc) = vfmaq_laneq_f16((acc), (b), (v), (l)))
#define QK_FMLA_LANE(acc, b, v, l) ((acc) = vfmaq_lane_f16((acc), (b), (v), (l)))
#endif

/* One k: the 16 weights times lane l of the A vectors (FN = QK_FMLA_LANEQ or QK_FMLA_LANE), into set s. */
#define QK_STEP(FN, va, l, s)                                                                  \
    do {                                                                                       \
        const float16x8_t w0 = vreinterpretq_f16_u16(vld1q_u16(w));                           \
        const float16x8_t w1 = vreinterpretq_f16_u16(vld1q_u16(w + 8));                       \
        w += QK_NR;                                                                            \
        QK_UNROLL for (size_t r = 0; r < R; r++) {                                             \
            FN(acc[s][r][0], w0, va[r], l);                                                    \
            FN(acc[s][r][1], w1, va[r], l);                                                    \
        }                                                                                      \
    } while (0)

/* The next n (2 or 4) halves of a row as the low lanes of a vector, reading only those. */
static inline float16x4_t qk_ld_f16_tail(const char *p, size_t n) {
    uint64_t v = 0;
    memcpy(&v, p, n * 2);   /* little-endian: lane 0 first */
    return vreinterpret_f16_u64(vcreate_u64(v));
}

/*
 * R rows (1..6) and S accumulator sets (k cycles through them; they are widened and added in a fixed order at the
 * end, so results depend only on the inputs) are constants in each inlined copy. Few rows leave the FMLA latency
 * exposed (2 accumulators per row), so R = 1 uses 4 sets and R = 2, 3 use 2.
 */
QK_TARGET_NEON_FP16 static inline __attribute__((always_inline)) void qk_body(const size_t R, const size_t S,
                                                                             size_t nc, size_t kc, const char *a,
                                                                             size_t a_stride, const uint16_t *w,
                                                                             char *c, size_t c_stride,
                                                                             const float *bias, uint32_t flags) {
    const char *ap[QK_MR];
    float16x8_t acc[4][QK_MR][2];
    QK_UNROLL for (size_t r = 0; r < R; r++) {
        ap[r] = a + r * a_stride;
        QK_UNROLL for (size_t s = 0; s < S; s++) {
            acc[s][r][0] = vreinterpretq_f16_u16(vdupq_n_u16(0));
            acc[s][r][1] = vreinterpretq_f16_u16(vdupq_n_u16(0));
        }
    }
    size_t k = kc;
    for (; k >= 8; k -= 8) {
        float16x8_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            va[r] = vreinterpretq_f16_u8(vld1q_u8((const uint8_t *)ap[r]));
            ap[r] += 16;
        }
        QK_STEP(QK_FMLA_LANEQ, va, 0, 0);
        QK_STEP(QK_FMLA_LANEQ, va, 1, 1 % S);
        QK_STEP(QK_FMLA_LANEQ, va, 2, 2 % S);
        QK_STEP(QK_FMLA_LANEQ, va, 3, 3 % S);
        QK_STEP(QK_FMLA_LANEQ, va, 4, 0);
        QK_STEP(QK_FMLA_LANEQ, va, 5, 1 % S);
        QK_STEP(QK_FMLA_LANEQ, va, 6, 2 % S);
        QK_STEP(QK_FMLA_LANEQ, va, 7, 3 % S);
    }
    if (k & 4) {
        float16x4_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            va[r] = vreinterpret_f16_u8(vld1_u8((const uint8_t *)ap[r]));
            ap[r] += 8;
        }
        QK_STEP(QK_FMLA_LANE, va, 0, 0);
        QK_STEP(QK_FMLA_LANE, va, 1, 1 % S);
        QK_STEP(QK_FMLA_LANE, va, 2, 2 % S);
        QK_STEP(QK_FMLA_LANE, va, 3, 3 % S);
    }
    if (k & 2) {
        float16x4_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            va[r] = qk_ld_f16_tail(ap[r], 2);
            ap[r] += 4;
        }
        QK_STEP(QK_FMLA_LANE, va, 0, 0);
        QK_STEP(QK_FMLA_LANE, va, 1, 1 % S);
    }
    if (k & 1) {
        float16x4_t va[QK_MR];
        QK_UNROLL for (size_t r = 0; r < R; r++) {
            uint16_t h;
            memcpy(&h, ap[r], 2);
            va[r] = vreinterpret_f16_u16(vdup_n_u16(h));
        }
        QK_STEP(QK_FMLA_LANE, va, 0, 0);
    }

    float32x4_t vb[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    if (bias) qk_load_cols((const char *)bias, nc, vb);
    QK_UNROLL for (size_t r = 0; r < R; r++) {
        float32x4_t y[4];
        y[0] = vcvt_f32_f16(vget_low_f16(acc[0][r][0]));
        y[1] = vcvt_high_f32_f16(acc[0][r][0]);
        y[2] = vcvt_f32_f16(vget_low_f16(acc[0][r][1]));
        y[3] = vcvt_high_f32_f16(acc[0][r][1]);
        QK_UNROLL for (size_t s = 1; s < S; s++) {
            y[0] = vaddq_f32(y[0], vcvt_f32_f16(vget_low_f16(acc[s][r][0])));
            y[1] = vaddq_f32(y[1], vcvt_high_f32_f16(acc[s][r][0]));
            y[2] = vaddq_f32(y[2], vcvt_f32_f16(vget_low_f16(acc[s][r][1])));
            y[3] = vaddq_f32(y[3], vcvt_high_f32_f16(acc[s][r][1]));
        }
        if (flags & QK_HALF_UK_ACCUMULATE) {
            float32x4_t vc[4];
            qk_load_cols(c + r * c_stride, nc, vc);
            QK_UNROLL for (size_t j = 0; j < 4; j++) y[j] = vaddq_f32(vc[j], y[j]);
        }
        QK_UNROLL for (size_t j = 0; j < 4; j++) QK_HALF_NEON_OUTPUT(y[j], vb[j], bias, flags);
        qk_store_cols(c + r * c_stride, nc, y);
    }
}

QK_TARGET_NEON_FP16 void qk_f16_gemm_ukernel_6x16__neonfp16arith(size_t mr, size_t nc, size_t kc, const void *a,
                                                                 size_t a_stride, const uint16_t *w, float *c,
                                                                 size_t c_stride, const float *bias,
                                                                 uint32_t flags) {
    const char *ab = (const char *)a;
    char *cb = (char *)c;
    if (mr == 0 || nc == 0) return;
    switch (mr) {
        case 1: qk_body(1, 4, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        case 2: qk_body(2, 2, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        case 3: qk_body(3, 2, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        case 4: qk_body(4, 1, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        case 5: qk_body(5, 1, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
        default: qk_body(6, 1, nc, kc, ab, a_stride, w, cb, c_stride, bias, flags); break;
    }
}

#endif /* __aarch64__ */
