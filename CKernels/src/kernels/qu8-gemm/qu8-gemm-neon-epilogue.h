/* Shared by the aarch64 qu8 GEMM microkernels: the K-tail loader and the epilogue (output stages). Internal. */
#ifndef QK_QU8_GEMM_NEON_EPILOGUE_H
#define QK_QU8_GEMM_NEON_EPILOGUE_H

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#include "qk_kernels.h"

#define QK_NEON_GEMM_MAX_NR 16

/* The row/column loops have constant trip counts and must unroll fully so that the accumulators stay in registers
 * (GCC -O2 does not do it by itself). */
#define QK_UNROLL _Pragma("GCC unroll 16")

/* The last n (1..7) bytes of an A row as the low bytes of a vector, without reading past them. */
static inline uint8x8_t qk_neon_gemm_load_tail(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    size_t o = 0;
    if (n & 4) {
        uint32_t t;
        memcpy(&t, p, 4);
        v = t;
        o = 4;
    }
    if (n & 2) {
        uint16_t t;
        memcpy(&t, p + o, 2);
        v |= (uint64_t)t << (8 * o);
        o += 2;
    }
    if (n & 1) v |= (uint64_t)p[o] << (8 * o);
    return vcreate_u8(v);
}

/* Stores the first nc of nr bytes / ints / floats: whole vectors when the tile is full, else via a local copy. */
#define QK_NEON_GEMM_STORE_TAIL(dst, buf, nc, elem) memcpy((dst), (buf), (nc) * sizeof(elem))

/*
 * tile: mr rows of nr int32 sums of a'*w (row stride nr). The kernel passes the zero point and row-sum offset of the
 * A domain it multiplied in: raw = tile + za*wcomp[n] - zw[n]*(row_sums[m] - rs_sub), all modulo 2^32 as the
 * scalar reference. Then the output stage of e->kind. Reads only nc entries of the per-column arrays of e.
 */
static inline __attribute__((always_inline)) void qk_neon_gemm_epilogue(const size_t nr, size_t mr, size_t nc,
                                                                         const int32_t *tile,
                                                                         const int32_t *wcomp, int32_t za,
                                                                         uint32_t rs_sub, void *c,
                                                                         size_t c_stride,
                                                                         const qk_gemm_epilogue *e) {
    const int kind = e->kind;
    const int32_t *zw = e->w_zero_points;
    const float *p0 = NULL, *p1 = NULL; /* QU8/QS8: bias_term, multiplier; F32: bias, scale */
    if (kind == QK_GEMM_OUT_F32) {
        p0 = e->bias;
        p1 = e->scale;
    } else if (kind != QK_GEMM_OUT_S32) {
        p0 = e->bias_term;
        p1 = e->multiplier;
    }
    int32_t zwb[QK_NEON_GEMM_MAX_NR] = {0};
    float p0b[QK_NEON_GEMM_MAX_NR] = {0}, p1b[QK_NEON_GEMM_MAX_NR] = {0};
    if (nc < nr) { /* the per-column arrays hold only nc entries here */
        if (e->row_sums) {
            memcpy(zwb, zw, nc * sizeof(int32_t));
            zw = zwb;
        }
        if (p0) {
            memcpy(p0b, p0, nc * sizeof(float));
            memcpy(p1b, p1, nc * sizeof(float));
            p0 = p0b;
            p1 = p1b;
        }
    }
    for (size_t i = 0; i < mr; i++) {
        int32x4_t raw[QK_NEON_GEMM_MAX_NR / 4];
        QK_UNROLL for (size_t j = 0; j < nr / 4; j++)
            raw[j] = vmlaq_n_s32(vld1q_s32(tile + i * nr + 4 * j), vld1q_s32(wcomp + 4 * j), za);
        if (e->row_sums) {
            const int32_t rs = (int32_t)((uint32_t)e->row_sums[i] - rs_sub);
            QK_UNROLL for (size_t j = 0; j < nr / 4; j++) raw[j] = vmlsq_n_s32(raw[j], vld1q_s32(zw + 4 * j), rs);
        }
        char *crow = (char *)c + i * c_stride;
        if (kind == QK_GEMM_OUT_S32) {
            if (nc == nr) {
                QK_UNROLL for (size_t j = 0; j < nr / 4; j++) vst1q_s32((int32_t *)crow + 4 * j, raw[j]);
            } else {
                int32_t buf[QK_NEON_GEMM_MAX_NR];
                QK_UNROLL for (size_t j = 0; j < nr / 4; j++) vst1q_s32(buf + 4 * j, raw[j]);
                QK_NEON_GEMM_STORE_TAIL(crow, buf, nc, int32_t);
            }
        } else if (kind == QK_GEMM_OUT_F32) {
            /* one fused multiply-add, as fmaf((float)raw, scale, bias) */
            float32x4_t y[QK_NEON_GEMM_MAX_NR / 4];
            QK_UNROLL for (size_t j = 0; j < nr / 4; j++)
                y[j] = vfmaq_f32(vld1q_f32(p0 + 4 * j), vcvtq_f32_s32(raw[j]), vld1q_f32(p1 + 4 * j));
            if (e->relu) /* FMAXNM: NaN -> 0 and -0 -> +0, as qk_gemm_dequantize1 */
                QK_UNROLL for (size_t j = 0; j < nr / 4; j++) y[j] = vmaxnmq_f32(y[j], vdupq_n_f32(0.0f));
            if (nc == nr) {
                QK_UNROLL for (size_t j = 0; j < nr / 4; j++) vst1q_f32((float *)crow + 4 * j, y[j]);
            } else {
                float buf[QK_NEON_GEMM_MAX_NR];
                QK_UNROLL for (size_t j = 0; j < nr / 4; j++) vst1q_f32(buf + 4 * j, y[j]);
                QK_NEON_GEMM_STORE_TAIL(crow, buf, nc, float);
            }
        } else { /* QU8 / QS8: ((float)raw + bias_term) * mult, no FMA; clamp in float; RNE; + zp; low byte */
            const int32_t ozp = e->out_zero_point;
            const float32x4_t lo = vdupq_n_f32((float)(e->out_min - ozp));
            const float32x4_t hi = vdupq_n_f32((float)(e->out_max - ozp));
            const int32x4_t vzp = vdupq_n_s32(ozp);
            int8x8_t q8[QK_NEON_GEMM_MAX_NR / 8];
            QK_UNROLL for (size_t j = 0; j < nr / 8; j++) {
                int32x4_t q[2];
                QK_UNROLL for (size_t h = 0; h < 2; h++) {
                    const size_t jj = 2 * j + h;
                    float32x4_t f = vaddq_f32(vcvtq_f32_s32(raw[jj]), vld1q_f32(p0 + 4 * jj));
                    f = vmulq_f32(f, vld1q_f32(p1 + 4 * jj));
                    f = vminnmq_f32(vmaxnmq_f32(f, lo), hi); /* NaN -> lo, as qk_round_clamp_small */
                    q[h] = vaddq_s32(vcvtnq_s32_f32(f), vzp);
                }
                q8[j] = vmovn_s16(vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1])));
            }
            if (nc == nr) {
                QK_UNROLL for (size_t j = 0; j < nr / 8; j++) vst1_s8((int8_t *)crow + 8 * j, q8[j]);
            } else {
                int8_t buf[QK_NEON_GEMM_MAX_NR];
                QK_UNROLL for (size_t j = 0; j < nr / 8; j++) vst1_s8(buf + 8 * j, q8[j]);
                QK_NEON_GEMM_STORE_TAIL(crow, buf, nc, int8_t);
            }
        }
    }
}

#endif /* __aarch64__ */
#endif /* QK_QU8_GEMM_NEON_EPILOGUE_H */
