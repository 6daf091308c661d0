/*
 * The microkernels: their signatures and the one list of every variant. Dispatch, the C tests and the benchmark
 * read this list, so they cannot drift apart.
 *
 * A microkernel processes one contiguous range on the calling thread. Validation, threading and the splitting of
 * tensors into ranges live in the operators (src/operators), never here.
 */
#ifndef QK_KERNELS_H
#define QK_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "quantkit.h"

/* ------------------------------------------------------------------------------------------- signatures */

/* quantize: y[i] = clamp(nearbyint(x[i] * inv_scale) + zp, dtype min, dtype max); NaN -> dtype min. */
typedef void qk_f32_qu8_quantize_fn(size_t n, const float *x, uint8_t *y, float inv_scale, int32_t zp);
typedef void qk_f32_qs8_quantize_fn(size_t n, const float *x, int8_t *y, float inv_scale, int32_t zp);
typedef void qk_f32_qs32_quantize_fn(size_t n, const float *x, int32_t *y, float inv_scale, int32_t zp);
/* "pc" (per channel): element i uses inv_scale[i], zp[i] (the channel axis is the contiguous one). */
typedef void qk_f32_qu8_quantize_pc_fn(size_t n, const float *x, uint8_t *y, const float *inv_scale,
                                          const int32_t *zp);
typedef void qk_f32_qs8_quantize_pc_fn(size_t n, const float *x, int8_t *y, const float *inv_scale,
                                          const int32_t *zp);
typedef void qk_f32_qs32_quantize_pc_fn(size_t n, const float *x, int32_t *y, const float *inv_scale,
                                           const int32_t *zp);

/* dequantize: y[i] = ((float)q[i] - (float)zp) * scale, no FMA. */
typedef void qk_qu8_f32_dequantize_fn(size_t n, const uint8_t *q, float *y, float scale, int32_t zp);
typedef void qk_qs8_f32_dequantize_fn(size_t n, const int8_t *q, float *y, float scale, int32_t zp);
typedef void qk_qs32_f32_dequantize_fn(size_t n, const int32_t *q, float *y, float scale, int32_t zp);
typedef void qk_qu8_f32_dequantize_pc_fn(size_t n, const uint8_t *q, float *y, const float *scale,
                                            const int32_t *zp);
typedef void qk_qs8_f32_dequantize_pc_fn(size_t n, const int8_t *q, float *y, const float *scale,
                                            const int32_t *zp);
typedef void qk_qs32_f32_dequantize_pc_fn(size_t n, const int32_t *q, float *y, const float *scale,
                                             const int32_t *zp);

/* requantize (fp32 scheme): y[i] = clamp(nearbyint((float)acc[i] * m) + zp, qmin, qmax); the caller guarantees
 * m finite > 0 and dtype min <= qmin <= qmax <= dtype max. */
typedef void qk_qs32_qu8_requantize_fn(size_t n, const int32_t *acc, uint8_t *y, float m, int32_t zp,
                                          int32_t qmin, int32_t qmax);
typedef void qk_qs32_qs8_requantize_fn(size_t n, const int32_t *acc, int8_t *y, float m, int32_t zp,
                                          int32_t qmin, int32_t qmax);
typedef void qk_qs32_qu8_requantize_pc_fn(size_t n, const int32_t *acc, uint8_t *y, const float *m, int32_t zp,
                                             int32_t qmin, int32_t qmax);
typedef void qk_qs32_qs8_requantize_pc_fn(size_t n, const int32_t *acc, int8_t *y, const float *m, int32_t zp,
                                             int32_t qmin, int32_t qmax);

/* fp16 <-> fp32 (bit patterns), round half to even; NaN keeps its sign and gets the quiet bit. */
typedef void qk_f32_f16_convert_fn(size_t n, const float *x, uint16_t *y);
/* Saturating to +-65504 (|x| > 65504 and infinities), NaN kept; returns the number of saturated values. */
typedef size_t qk_f32_f16_convert_sat_fn(size_t n, const float *x, uint16_t *y);
typedef void qk_f16_f32_convert_fn(size_t n, const uint16_t *x, float *y);

/* min/max: folds x into *min / *max (which the caller initialises); NaN skipped; finite_only skips +-inf too. */
typedef void qk_f32_minmax_fn(size_t n, const float *x, int finite_only, float *min, float *max);

/* ------------------------------------------------------------------------------------------- slots */

/* X(slot): one entry of the dispatch table per slot; its function type is qk_<slot>_fn. */
#define QK_SLOTS(X)               \
    X(f32_qu8_quantize)           \
    X(f32_qs8_quantize)           \
    X(f32_qs32_quantize)          \
    X(f32_qu8_quantize_pc)        \
    X(f32_qs8_quantize_pc)        \
    X(f32_qs32_quantize_pc)       \
    X(qu8_f32_dequantize)         \
    X(qs8_f32_dequantize)         \
    X(qs32_f32_dequantize)        \
    X(qu8_f32_dequantize_pc)      \
    X(qs8_f32_dequantize_pc)      \
    X(qs32_f32_dequantize_pc)     \
    X(qs32_qu8_requantize)        \
    X(qs32_qs8_requantize)        \
    X(qs32_qu8_requantize_pc)     \
    X(qs32_qs8_requantize_pc)     \
    X(f32_f16_convert)            \
    X(f32_f16_convert_sat)        \
    X(f16_f32_convert)            \
    X(f32_minmax)

/* ------------------------------------------------------------------------------------------- variants */

/* Feature sets a variant needs (QK_FEATURE_* of quantkit.h). */
#define QK_REQ_SCALAR 0u
#define QK_REQ_AVX2 (QK_FEATURE_AVX2)
#define QK_REQ_AVX512 (QK_FEATURE_AVX2 | QK_FEATURE_AVX512)
#define QK_REQ_NEON (QK_FEATURE_NEON)

/* The element-wise kernels, which every ISA implements: the file of ISA `isa` defines qk_<slot>__<isa>. */
#define QK_ELEMENTWISE_VARIANTS(X, isa, req)                          \
    X(f32_qu8_quantize, qk_f32_qu8_quantize__##isa, req)              \
    X(f32_qs8_quantize, qk_f32_qs8_quantize__##isa, req)              \
    X(f32_qs32_quantize, qk_f32_qs32_quantize__##isa, req)            \
    X(f32_qu8_quantize_pc, qk_f32_qu8_quantize_pc__##isa, req)        \
    X(f32_qs8_quantize_pc, qk_f32_qs8_quantize_pc__##isa, req)        \
    X(f32_qs32_quantize_pc, qk_f32_qs32_quantize_pc__##isa, req)      \
    X(qu8_f32_dequantize, qk_qu8_f32_dequantize__##isa, req)          \
    X(qs8_f32_dequantize, qk_qs8_f32_dequantize__##isa, req)          \
    X(qs32_f32_dequantize, qk_qs32_f32_dequantize__##isa, req)        \
    X(qu8_f32_dequantize_pc, qk_qu8_f32_dequantize_pc__##isa, req)    \
    X(qs8_f32_dequantize_pc, qk_qs8_f32_dequantize_pc__##isa, req)    \
    X(qs32_f32_dequantize_pc, qk_qs32_f32_dequantize_pc__##isa, req)  \
    X(qs32_qu8_requantize, qk_qs32_qu8_requantize__##isa, req)        \
    X(qs32_qs8_requantize, qk_qs32_qs8_requantize__##isa, req)        \
    X(qs32_qu8_requantize_pc, qk_qs32_qu8_requantize_pc__##isa, req)  \
    X(qs32_qs8_requantize_pc, qk_qs32_qs8_requantize_pc__##isa, req)  \
    X(f32_f16_convert, qk_f32_f16_convert__##isa, req)                \
    X(f32_f16_convert_sat, qk_f32_f16_convert_sat__##isa, req)        \
    X(f16_f32_convert, qk_f16_f32_convert__##isa, req)                \
    X(f32_minmax, qk_f32_minmax__##isa, req)

/*
 * QK_VARIANTS(X) calls X(slot, function, required features) for every variant compiled on this architecture, best
 * first within a slot; dispatch takes the first whose features the selected ISA level allows. The scalar variants
 * come last and always qualify: they are the references every test compares against.
 */
#if defined(__x86_64__) || defined(_M_X64)
#define QK_VARIANTS(X)                                    \
    QK_ELEMENTWISE_VARIANTS(X, avx512, QK_REQ_AVX512)     \
    QK_ELEMENTWISE_VARIANTS(X, avx2, QK_REQ_AVX2)         \
    QK_ELEMENTWISE_VARIANTS(X, scalar, QK_REQ_SCALAR)
#elif defined(__aarch64__)
#define QK_VARIANTS(X)                                    \
    QK_ELEMENTWISE_VARIANTS(X, neon, QK_REQ_NEON)         \
    QK_ELEMENTWISE_VARIANTS(X, scalar, QK_REQ_SCALAR)
#else
#define QK_VARIANTS(X) QK_ELEMENTWISE_VARIANTS(X, scalar, QK_REQ_SCALAR)
#endif

/* Declarations of every variant. */
#define QK__DECLARE_VARIANT(slot, fn, req) qk_##slot##_fn fn;
QK_VARIANTS(QK__DECLARE_VARIANT)
#undef QK__DECLARE_VARIANT

/* ------------------------------------------------------------------------------------------- int8 GEMM */

/*
 * u8 x s8 GEMM microkernels (one MR x NR output tile, full K). Weights are packed per panel of NR columns:
 *   int32 wcomp[NR]        wcomp[n] = K * zw[n] - sum_k w[n][k]   (mod 2^32)
 *   Kpad/KR groups of NR x KR int8 (column j's KR consecutive k values contiguous: "cKR"), Kpad = K rounded up to KR
 * with zeros for k >= K and n >= N; panel p starts at p * (NR * 4 + NR * Kpad). The kernel forms
 *   acc[i][j] = sum_k a[i][k] * w[j][k]   (exact int32, wrapping)
 *   raw = acc + za * wcomp[j] - zw[j] * row_sums[i]   (the last term only when row_sums != NULL; all mod 2^32)
 * and applies the output stage (qk_gemm_scalar.h defines it bit for bit):
 *   QU8/QS8  clamp(nearbyint(((float)raw + bias_term[j]) * multiplier[j]) + out_zp, out_min, out_max), no FMA
 *   F32      fmaf((float)raw, scale[j], bias[j]), then max(y, 0) when relu (NaN -> 0)
 *   S32      raw
 */
enum { QK_GEMM_OUT_QU8 = 0, QK_GEMM_OUT_QS8 = 1, QK_GEMM_OUT_F32 = 2, QK_GEMM_OUT_S32 = 3 };

typedef struct qk_gemm_epilogue {
    int kind;                      /* QK_GEMM_OUT_* */
    int32_t a_zero_point;          /* za (u8 domain) */
    const int32_t *row_sums;       /* [mr] sums of the tile's A rows, or NULL when every zw == 0 */
    const int32_t *w_zero_points;  /* [nc] the tile's columns; read only with row_sums */
    const float *bias_term, *multiplier;   /* [nc] QU8 / QS8 */
    int32_t out_zero_point, out_min, out_max;
    const float *scale, *bias;     /* [nc] F32 */
    int relu;                      /* F32 */
} qk_gemm_epilogue;

/*
 * mr <= MR rows, nc <= NR columns (nc >= 1, mr >= 1), kc = K (may be 0). Row i of A starts at a + i * a_stride
 * (bytes, any stride and alignment); w is the tile's packed panel; row i of C starts at c + i * c_stride (bytes;
 * element type by kind). Reads exactly kc bytes of each of the mr A rows and writes exactly mr x nc outputs.
 * Flags of a variant:
 *   QK_GEMM_FAST  exact only when every a <= 127 (vpmaddubsw pair sums stay inside int16)
 *   QK_GEMM_A16   A comes packed by the driver as uint16 (the u8 values zero-extended), each row holding
 *                 round_up(kc, KR) values with zeros past kc (the row is read in whole k-groups); a_stride in bytes.
 *                 Widening A once per row block instead of once per column panel is what makes the exact AVX2
 *                 kernel fast.
 */
typedef void qk_qu8_gemm_ukernel_fn(size_t mr, size_t nc, size_t kc, const uint8_t *a, size_t a_stride,
                                    const void *w, void *c, size_t c_stride, const qk_gemm_epilogue *e);

typedef struct qk_gemm_config {
    const char *name;
    qk_qu8_gemm_ukernel_fn *fn;
    uint32_t mr, nr, kr;
    uint32_t required;   /* QK_FEATURE_* the kernel needs */
    uint32_t flags;      /* QK_GEMM_FAST, QK_GEMM_A16 */
} qk_gemm_config;
#define QK_GEMM_FAST 1u
#define QK_GEMM_A16 2u

/*
 * The GEMM variants: X(function, MR, NR, KR, required features, flags), best first per ISA. Dispatch takes, per ISA
 * level, the first exact (non-fast) variant the level allows, and the first fast variant with the same NR and KR
 * (the packing layout). Sub-lists per ISA so that the emulated AVX-512 test can swap the list.
 */
#define QK_GEMM_VARIANTS_SCALAR(X)                                              \
    X(qk_qu8_gemm_ukernel_2x8c4__scalar, 2, 8, 4, QK_REQ_SCALAR, 0)             \
    X(qk_qu8_gemm_ukernel_2x4c1__scalar, 2, 4, 1, QK_REQ_SCALAR, 0)
#if defined(__x86_64__) || defined(_M_X64)
/* The avx512vnni level also allows AVX-VNNI, so the zmm kernel comes first. */
#define QK_GEMM_VARIANTS_AVX512(X)                                                                   \
    X(qk_qu8_gemm_ukernel_8x48c4__avx512vnni, 8, 48, 4, QK_REQ_AVX512 | QK_FEATURE_AVX512VNNI, 0)  \
    X(qk_qu8_gemm_ukernel_6x16c4__avxvnni, 6, 16, 4, QK_REQ_AVX2 | QK_FEATURE_AVXVNNI, 0)
#define QK_GEMM_VARIANTS_AVX2(X)                                                \
    X(qk_qu8_gemm_ukernel_12x8c4__avx2_madd, 12, 8, 4, QK_REQ_AVX2, QK_GEMM_FAST)          \
    X(qk_qu8_gemm_ukernel_6x8c4__avx2, 6, 8, 4, QK_REQ_AVX2, QK_GEMM_A16)
#define QK_GEMM_VARIANTS(X) QK_GEMM_VARIANTS_AVX512(X) QK_GEMM_VARIANTS_AVX2(X) QK_GEMM_VARIANTS_SCALAR(X)
#elif defined(__aarch64__)
#define QK_GEMM_VARIANTS_NEON(X)                                                                          \
    X(qk_qu8_gemm_ukernel_4x16c8__neoni8mm, 4, 16, 8, QK_FEATURE_NEON | QK_FEATURE_NEON_I8MM, 0)          \
    X(qk_qu8_gemm_ukernel_4x16c4__neondot, 4, 16, 4, QK_FEATURE_NEON | QK_FEATURE_NEON_DOTPROD, 0)        \
    X(qk_qu8_gemm_ukernel_8x8c1__neon, 8, 8, 1, QK_REQ_NEON, 0)
#define QK_GEMM_VARIANTS(X) QK_GEMM_VARIANTS_NEON(X) QK_GEMM_VARIANTS_SCALAR(X)
#else
#define QK_GEMM_VARIANTS(X) QK_GEMM_VARIANTS_SCALAR(X)
#endif

#define QK__DECLARE_GEMM(fn, mr, nr, kr, req, flags) qk_qu8_gemm_ukernel_fn fn;
QK_GEMM_VARIANTS(QK__DECLARE_GEMM)
#undef QK__DECLARE_GEMM

/* ------------------------------------------------------------------------------------------- half-precision GEMM */

/*
 * fp16 / bf16 weight GEMM microkernels (one MR x NR output tile over one K block). Weights are packed per panel of NR
 * columns: Kpad/KR groups of NR x KR 16-bit values (column j's KR consecutive k values contiguous: "cKR"),
 * Kpad = K rounded up to KR, zeros for k >= K and n >= N; panel p starts at p * NR * Kpad values. A K block starting
 * at k0 (a multiple of KR) is the panel pointer + k0 * NR.
 *
 * A: fp32 rows (kernels without QK_HALF_A_HALF), reading exactly kc floats per row; or, with QK_HALF_A_HALF, rows
 * already rounded by the driver to the weight type (bf16, or fp16 for fp16-arithmetic kernels), each holding
 * round_up(kc, KR) values with zeros past kc. a_stride and c_stride are in bytes, any alignment.
 *
 *   acc[i][j] = sum_k a[i][k] * w[j][k]       (fp32; order and FMA use are the kernel's own)
 *   start:  acc from 0, or from c[i][j] with QK_HALF_UK_ACCUMULATE (K blocks after the first)
 *   end:    + bias[j] when bias != NULL (the driver passes it with the last K block only)
 *           then y < 0 ? 0 : y with QK_HALF_UK_RELU (NaN stays NaN: max_ps(zero, y) does this)
 * mr <= MR rows, 1 <= nc <= NR columns, kc >= 1; writes exactly mr x nc floats.
 */
enum { QK_HALF_UK_ACCUMULATE = 1, QK_HALF_UK_RELU = 2 };
typedef void qk_half_gemm_ukernel_fn(size_t mr, size_t nc, size_t kc, const void *a, size_t a_stride,
                                     const uint16_t *w, float *c, size_t c_stride, const float *bias, uint32_t flags);

/* Variant flags. */
#define QK_HALF_A_HALF 1u        /* A comes rounded to the weight type (see above) */
#define QK_HALF_FP16_ARITH 2u    /* fp16 multiply-accumulate: QK_HALF_GEMM_FP16_ARITHMETIC only (fp16 weights) */

typedef struct qk_half_gemm_config {
    const char *name;
    qk_half_gemm_ukernel_fn *fn;
    uint32_t type;       /* QK_HALF_FP16 or QK_HALF_BF16 */
    uint32_t mr, nr, kr;
    uint32_t required;   /* QK_FEATURE_* the kernel needs */
    uint32_t flags;      /* QK_HALF_A_HALF, QK_HALF_FP16_ARITH */
} qk_half_gemm_config;

/*
 * X(function, type, MR, NR, KR, required features, flags), best first per ISA. Dispatch takes, per level and type,
 * the first variant without QK_HALF_FP16_ARITH the level allows, and the first QK_HALF_FP16_ARITH variant with the
 * same NR and KR. Files: kernels/f16-gemm/f16-gemm-<MR>x<NR>-<isa>.c, kernels/bf16-gemm/bf16-gemm-<MR>x<NR>c2-<isa>.c.
 */
#define QK_HALF_GEMM_VARIANTS_SCALAR(X)                                                             \
    X(qk_f16_gemm_ukernel_4x16__scalar, QK_HALF_FP16, 4, 16, 1, QK_REQ_SCALAR, 0)                     \
    X(qk_bf16_gemm_ukernel_4x16c2__scalar, QK_HALF_BF16, 4, 16, 2, QK_REQ_SCALAR, QK_HALF_A_HALF)
#if defined(__x86_64__) || defined(_M_X64)
#define QK_HALF_GEMM_VARIANTS_AVX512(X)                                                                           \
    X(qk_bf16_gemm_ukernel_14x32c2__avx512bf16, QK_HALF_BF16, 14, 32, 2, QK_REQ_AVX512 | QK_FEATURE_AVX512BF16,  \
      QK_HALF_A_HALF)                                                                                             \
    X(qk_f16_gemm_ukernel_14x32__avx512, QK_HALF_FP16, 14, 32, 1, QK_REQ_AVX512, 0)                               \
    X(qk_bf16_gemm_ukernel_14x32c2__avx512, QK_HALF_BF16, 14, 32, 2, QK_REQ_AVX512, QK_HALF_A_HALF)
#define QK_HALF_GEMM_VARIANTS_AVX2(X)                                                               \
    X(qk_f16_gemm_ukernel_6x16__avx2, QK_HALF_FP16, 6, 16, 1, QK_REQ_AVX2, 0)                       \
    X(qk_bf16_gemm_ukernel_6x16c2__avx2, QK_HALF_BF16, 6, 16, 2, QK_REQ_AVX2, QK_HALF_A_HALF)
#define QK_HALF_GEMM_VARIANTS(X) \
    QK_HALF_GEMM_VARIANTS_AVX512(X) QK_HALF_GEMM_VARIANTS_AVX2(X) QK_HALF_GEMM_VARIANTS_SCALAR(X)
#elif defined(__aarch64__)
#define QK_HALF_GEMM_VARIANTS_NEON(X)                                                                             \
    X(qk_f16_gemm_ukernel_6x16__neonfp16arith, QK_HALF_FP16, 6, 16, 1, QK_REQ_NEON | QK_FEATURE_NEON_FP16,       \
      QK_HALF_A_HALF | QK_HALF_FP16_ARITH)                                                                        \
    X(qk_f16_gemm_ukernel_6x16__neon, QK_HALF_FP16, 6, 16, 1, QK_REQ_NEON, 0)                                     \
    X(qk_bf16_gemm_ukernel_6x16c2__neonbf16, QK_HALF_BF16, 6, 16, 2, QK_REQ_NEON | QK_FEATURE_NEON_BF16,         \
      QK_HALF_A_HALF)                                                                                             \
    X(qk_bf16_gemm_ukernel_6x16c2__neon, QK_HALF_BF16, 6, 16, 2, QK_REQ_NEON, QK_HALF_A_HALF)
#define QK_HALF_GEMM_VARIANTS(X) QK_HALF_GEMM_VARIANTS_NEON(X) QK_HALF_GEMM_VARIANTS_SCALAR(X)
#else
#define QK_HALF_GEMM_VARIANTS(X) QK_HALF_GEMM_VARIANTS_SCALAR(X)
#endif

#define QK__DECLARE_HALF_GEMM(fn, type, mr, nr, kr, req, flags) qk_half_gemm_ukernel_fn fn;
QK_HALF_GEMM_VARIANTS(QK__DECLARE_HALF_GEMM)
#undef QK__DECLARE_HALF_GEMM

/* ------------------------------------------------------------------------------------------- depthwise convolution */

/*
 * Depthwise convolution microkernels, XNNPACK's unipass design: one call computes output_width pixels of `channels`
 * channels (NHWC, output pixel p at output + p * channels). Indirection: pixel p reads tap t (t < taps) from the row
 * a = input[p * input_stride + t]; a pointer equal to `zero` (the padding row) is used as it is, any other gets
 * input_offset BYTES added (so one indirection row serves every batch image and interior output row). Taps are
 * column-major, t = kx * kernel_h + ky, so that neighbouring pixels share pointers. Each row is read for exactly
 * `channels` elements (never past them), any alignment.
 *
 * Per-channel arrays (packed weights, params) hold Cp = round_up(channels, QK_DW_CPAD) entries, zero padded, so
 * kernels may load whole vectors of them.
 *
 * quint8 (u8 activations x int8 weights, exact):
 *   acc[c] = comp[c] + sum_t row_t[c] * w'[t][c]    (mod 2^32), w' = w - zw as int16 (in [-255, 255])
 *   y[c]   = clamp(nearbyint(((float)acc + bias_term[c]) * multiplier[c]) + out_zero_point, out_min, out_max)
 *            (qk_round_clamp_small: clamp in float first, NaN -> out_min, no FMA)
 * Weight layouts (the variant's `layout`):
 *   QK_DW_LAYOUT_C      int16 w'[t][Cp]; params in channel order.
 *   QK_DW_LAYOUT_PAIRS  per tile of ct channels (ct = 32 or 64; tile i at i * ceil(taps / 2) * ct * 4 bytes):
 *                       ceil(taps / 2) groups of 4 vectors of ct / 4 int32 words; word (g, v, e) holds
 *                       (uint16)w'[2g][ch] | (uint16)w'[2g + 1][ch] << 16 (0 past taps) for the channel
 *                       ch = 16 * (e / 4) + 4 * v + e % 4 of the tile: what vpunpck{l,h}bw of two taps' rows
 *                       and then of each half with zero produce per 128-bit lane, ready for vpmaddwd. The params
 *                       are permuted alike: entry tile * ct + v * ct / 4 + e belongs to that channel.
 * fp32 (layout C only): weights = bias[Cp] then w[t][Cp]; y[c] = bias[c] + sum_t row_t[c] * w[t][c] (order and FMA
 * are the kernel's), then y < 0 ? 0 : y when relu (NaN stays NaN).
 */
#define QK_DW_CPAD 64
enum { QK_DW_LAYOUT_C = 0, QK_DW_LAYOUT_PAIRS = 1 };

typedef struct qk_dwconv_qparams {
    const int32_t *comp;            /* -x_zero_point * sum_t w'[t][c] (mod 2^32) */
    const float *bias_term, *multiplier;
    int32_t out_zero_point, out_min, out_max;
} qk_dwconv_qparams;

typedef void qk_qu8_dwconv_ukernel_fn(size_t channels, size_t output_width, size_t taps, const uint8_t **input,
                                      size_t input_stride, size_t input_offset, const uint8_t *zero,
                                      const void *weights, uint8_t *output, const qk_dwconv_qparams *params);
typedef void qk_f32_dwconv_ukernel_fn(size_t channels, size_t output_width, size_t taps, const float **input,
                                      size_t input_stride, size_t input_offset, const float *zero,
                                      const float *weights, float *output, int relu);

typedef struct qk_qu8_dwconv_config {
    const char *name;
    qk_qu8_dwconv_ukernel_fn *fn;
    uint32_t taps;       /* the only tap count it handles (9: the 3x3 fast path), or 0 for any */
    uint32_t layout, ct; /* weight layout and channel tile */
    uint32_t required;   /* QK_FEATURE_* the kernel needs */
} qk_qu8_dwconv_config;

typedef struct qk_f32_dwconv_config {
    const char *name;
    qk_f32_dwconv_ukernel_fn *fn;
    uint32_t taps;       /* 9, or 0 for any */
    uint32_t ct;
    uint32_t required;
} qk_f32_dwconv_config;

/*
 * X(function, taps, layout, channel tile, required features) and X(function, taps, channel tile, required), best
 * first. Dispatch takes, per level, the first allowed variant for 9 taps (taps 9 or 0) and for any tap count (taps
 * 0). Files: kernels/qu8-dwconv/qu8-dwconv-<taps>p<ct>c-<isa>.c ("kp": any taps), likewise f32-dwconv.
 */
#define QK_QU8_DWCONV_VARIANTS_SCALAR(X) X(qk_qu8_dwconv_ukernel_kp1c__scalar, 0, QK_DW_LAYOUT_C, 1, QK_REQ_SCALAR)
#define QK_F32_DWCONV_VARIANTS_SCALAR(X) X(qk_f32_dwconv_ukernel_kp1c__scalar, 0, 1, QK_REQ_SCALAR)
#if defined(__x86_64__) || defined(_M_X64)
#define QK_QU8_DWCONV_VARIANTS_AVX512(X)                                                                         \
    X(qk_qu8_dwconv_ukernel_9p64c__avx512vnni, 9, QK_DW_LAYOUT_PAIRS, 64, QK_REQ_AVX512 | QK_FEATURE_AVX512VNNI) \
    X(qk_qu8_dwconv_ukernel_kp64c__avx512vnni, 0, QK_DW_LAYOUT_PAIRS, 64, QK_REQ_AVX512 | QK_FEATURE_AVX512VNNI) \
    X(qk_qu8_dwconv_ukernel_9p64c__avx512, 9, QK_DW_LAYOUT_PAIRS, 64, QK_REQ_AVX512)                             \
    X(qk_qu8_dwconv_ukernel_kp64c__avx512, 0, QK_DW_LAYOUT_PAIRS, 64, QK_REQ_AVX512)
#define QK_QU8_DWCONV_VARIANTS_AVX2(X)                                                      \
    X(qk_qu8_dwconv_ukernel_9p32c__avx2, 9, QK_DW_LAYOUT_PAIRS, 32, QK_REQ_AVX2)            \
    X(qk_qu8_dwconv_ukernel_kp32c__avx2, 0, QK_DW_LAYOUT_PAIRS, 32, QK_REQ_AVX2)
#define QK_F32_DWCONV_VARIANTS_AVX512(X)                                 \
    X(qk_f32_dwconv_ukernel_9p32c__avx512, 9, 32, QK_REQ_AVX512)         \
    X(qk_f32_dwconv_ukernel_kp32c__avx512, 0, 32, QK_REQ_AVX512)
#define QK_F32_DWCONV_VARIANTS_AVX2(X)                                   \
    X(qk_f32_dwconv_ukernel_9p16c__avx2, 9, 16, QK_REQ_AVX2)             \
    X(qk_f32_dwconv_ukernel_kp16c__avx2, 0, 16, QK_REQ_AVX2)
#define QK_QU8_DWCONV_VARIANTS(X) \
    QK_QU8_DWCONV_VARIANTS_AVX512(X) QK_QU8_DWCONV_VARIANTS_AVX2(X) QK_QU8_DWCONV_VARIANTS_SCALAR(X)
#define QK_F32_DWCONV_VARIANTS(X) \
    QK_F32_DWCONV_VARIANTS_AVX512(X) QK_F32_DWCONV_VARIANTS_AVX2(X) QK_F32_DWCONV_VARIANTS_SCALAR(X)
#elif defined(__aarch64__)
#define QK_QU8_DWCONV_VARIANTS_NEON(X)                                                   \
    X(qk_qu8_dwconv_ukernel_9p16c__neon, 9, QK_DW_LAYOUT_C, 16, QK_REQ_NEON)             \
    X(qk_qu8_dwconv_ukernel_kp16c__neon, 0, QK_DW_LAYOUT_C, 16, QK_REQ_NEON)
#define QK_F32_DWCONV_VARIANTS_NEON(X)                                   \
    X(qk_f32_dwconv_ukernel_9p8c__neon, 9, 8, QK_REQ_NEON)               \
    X(qk_f32_dwconv_ukernel_kp8c__neon, 0, 8, QK_REQ_NEON)
#define QK_QU8_DWCONV_VARIANTS(X) QK_QU8_DWCONV_VARIANTS_NEON(X) QK_QU8_DWCONV_VARIANTS_SCALAR(X)
#define QK_F32_DWCONV_VARIANTS(X) QK_F32_DWCONV_VARIANTS_NEON(X) QK_F32_DWCONV_VARIANTS_SCALAR(X)
#else
#define QK_QU8_DWCONV_VARIANTS(X) QK_QU8_DWCONV_VARIANTS_SCALAR(X)
#define QK_F32_DWCONV_VARIANTS(X) QK_F32_DWCONV_VARIANTS_SCALAR(X)
#endif

#define QK__DECLARE_QU8_DWCONV(fn, taps, layout, ct, req) qk_qu8_dwconv_ukernel_fn fn;
QK_QU8_DWCONV_VARIANTS(QK__DECLARE_QU8_DWCONV)
#undef QK__DECLARE_QU8_DWCONV
#define QK__DECLARE_F32_DWCONV(fn, taps, ct, req) qk_f32_dwconv_ukernel_fn fn;
QK_F32_DWCONV_VARIANTS(QK__DECLARE_F32_DWCONV)
#undef QK__DECLARE_F32_DWCONV

/* ------------------------------------------------------------------------------------------- fake quantization */

/*
 * Fake quantization (kernels/fake-quantize). Parameters of one channel or of the whole tensor, as floats: zero_point,
 * qmin and qmax are integers with |.| <= 2^23, so every sum and difference below is exact; inv_scale = 1.0f / scale.
 * The kernels follow PyTorch's CPU kernels bit for bit (fake_quantize_tensor_cachemask and
 * fake_quantize_learnable_*_grad_kernel_cpu); the element formulas are in fake-quantize-scalar.c.
 */
typedef struct qk_fq_params {
    float scale, inv_scale, zero_point;
    float qmin, qmax;
    float grad_factor;   /* learnable backward only */
} qk_fq_params;

/* grad_scale / grad_zero_point of one learnable segment: element i adds its float contribution, widened to double,
 * to lane i % QK_FQ_LANES (in element order); the lanes are then added in order 0, 1, ..., 15. */
#define QK_FQ_LANES 16

/* forward: y[i] and (mask != NULL) mask[i] in {0, 1}. */
typedef void qk_f32_fq_fn(size_t n, const float *x, float *y, uint8_t *mask, const qk_fq_params *p);
/* per channel along the contiguous axis: element i uses scale[i], inv_scale[i], zero_point[i]; p gives qmin/qmax. */
typedef void qk_f32_fq_pc_fn(size_t n, const float *x, float *y, uint8_t *mask, const float *scale,
                             const float *inv_scale, const float *zero_point, const qk_fq_params *p);
/* straight-through backward: dx[i] = dy[i] * (mask[i] ? 1.0f : 0.0f). */
typedef void qk_f32_fq_mask_backward_fn(size_t n, const float *dy, const uint8_t *mask, float *dx);
/* learnable backward of one segment: dx, and the segment's sums of the grad_scale / grad_zero_point contributions
 * (written, in the lane order above). */
typedef void qk_f32_fq_learnable_backward_fn(size_t n, const float *x, const float *dy, float *dx,
                                             const qk_fq_params *p, double *grad_scale, double *grad_zero_point);
/* the same per channel along the contiguous axis: adds element i's contributions to acc_scale[i] / acc_zero_point[i]. */
typedef void qk_f32_fq_learnable_backward_pc_fn(size_t n, const float *x, const float *dy, float *dx,
                                                const float *scale, const float *inv_scale, const float *zero_point,
                                                const qk_fq_params *p, double *acc_scale, double *acc_zero_point);

#define QK_FAKE_QUANT_SLOTS(X)        \
    X(f32_fq)                         \
    X(f32_fq_pc)                      \
    X(f32_fq_mask_backward)           \
    X(f32_fq_learnable_backward)      \
    X(f32_fq_learnable_backward_pc)

/* X(slot, function, required features) for one ISA's file kernels/fake-quantize/fake-quantize-<isa>.c. */
#define QK_FAKE_QUANT_ISA_VARIANTS(X, isa, req)                                       \
    X(f32_fq, qk_f32_fq__##isa, req)                                                  \
    X(f32_fq_pc, qk_f32_fq_pc__##isa, req)                                            \
    X(f32_fq_mask_backward, qk_f32_fq_mask_backward__##isa, req)                      \
    X(f32_fq_learnable_backward, qk_f32_fq_learnable_backward__##isa, req)            \
    X(f32_fq_learnable_backward_pc, qk_f32_fq_learnable_backward_pc__##isa, req)

/* Every fake-quantization variant of this architecture, best first (read by dispatch like QK_VARIANTS; a list of its
 * own so that the element-wise test, which covers QK_VARIANTS, stays as it is). */
#if defined(__x86_64__) || defined(_M_X64)
#define QK_FAKE_QUANT_VARIANTS(X)                         \
    QK_FAKE_QUANT_ISA_VARIANTS(X, avx512, QK_REQ_AVX512)  \
    QK_FAKE_QUANT_ISA_VARIANTS(X, avx2, QK_REQ_AVX2)      \
    QK_FAKE_QUANT_ISA_VARIANTS(X, scalar, QK_REQ_SCALAR)
#elif defined(__aarch64__)
#define QK_FAKE_QUANT_VARIANTS(X)                         \
    QK_FAKE_QUANT_ISA_VARIANTS(X, neon, QK_REQ_NEON)      \
    QK_FAKE_QUANT_ISA_VARIANTS(X, scalar, QK_REQ_SCALAR)
#else
#define QK_FAKE_QUANT_VARIANTS(X) QK_FAKE_QUANT_ISA_VARIANTS(X, scalar, QK_REQ_SCALAR)
#endif

#define QK__DECLARE_FQ_VARIANT(slot, fn, req) qk_##slot##_fn fn;
QK_FAKE_QUANT_VARIANTS(QK__DECLARE_FQ_VARIANT)
#undef QK__DECLARE_FQ_VARIANT

/* ------------------------------------------------------------------------------------------- calibration statistics */

/*
 * Histogram accumulation with torch.histc's CPU binning (PyTorch 2.15, HistogramKernel.cpp, LINEAR_INTERPOLATION):
 * v = x (|x| with `absolute`) with lo <= v <= hi goes to bin
 *     b = (uint32_t)(((v - lo) * (float)bins) / (hi - lo))      fp32, in this order, truncated
 * and a quotient that is not below bins (v == hi; overflow) to bins - 1. NaN and values outside [lo, hi] are not
 * counted. The caller guarantees lo < hi, both finite, 1 <= bins <= QK_HISTOGRAM_MAX_BINS and n < 2^32.
 * counts holds QK_HISTOGRAM_WAYS ways of bins + 1 uint32 counters (way w at counts + w * (bins + 1)): a counted
 * element increments counter b of some way, a skipped one counter `bins` of some way; the caller zeroes the
 * counters and sums the ways. (Several ways keep increments of one bin from waiting on each other.) Unless min is
 * NULL (max is then ignored too), the kernel also folds the finite raw x (not |x|) into *min / *max as
 * qk_f32_minmax does.
 */
#define QK_HISTOGRAM_WAYS 4
#define QK_HISTOGRAM_BLOCK 256   /* indices the SIMD variants compute before incrementing their counters */
#define QK_HISTOGRAM_MAX_BINS ((size_t)1 << 24)
typedef void qk_f32_histogram_fn(size_t n, const float *x, float lo, float hi, uint32_t bins, int absolute,
                                 uint32_t *counts, float *min, float *max);
/* Element-wise running min/max: min[i] = x[i] < min[i] ? x[i] : min[i] (max likewise); NaN skipped, and +-inf with
 * finite_only. Bit for bit the same on every ISA (no lanes are folded). */
typedef void qk_f32_vminmax_fn(size_t n, const float *x, int finite_only, float *min, float *max);

/* Slots and variants of the calibration statistics, kept apart from QK_VARIANTS (whose every slot test_kernels.c
 * tests) and tested by test_statistics.c. */
#define QK_STATISTICS_SLOTS(X) \
    X(f32_histogram)           \
    X(f32_vminmax)
#define QK_STATISTICS_KERNELS(X, isa, req)              \
    X(f32_histogram, qk_f32_histogram__##isa, req)      \
    X(f32_vminmax, qk_f32_vminmax__##isa, req)
#if defined(__x86_64__) || defined(_M_X64)
#define QK_STATISTICS_VARIANTS(X)                         \
    QK_STATISTICS_KERNELS(X, avx512, QK_REQ_AVX512)       \
    QK_STATISTICS_KERNELS(X, avx2, QK_REQ_AVX2)           \
    QK_STATISTICS_KERNELS(X, scalar, QK_REQ_SCALAR)
#elif defined(__aarch64__)
#define QK_STATISTICS_VARIANTS(X)                         \
    QK_STATISTICS_KERNELS(X, neon, QK_REQ_NEON)           \
    QK_STATISTICS_KERNELS(X, scalar, QK_REQ_SCALAR)
#else
#define QK_STATISTICS_VARIANTS(X) QK_STATISTICS_KERNELS(X, scalar, QK_REQ_SCALAR)
#endif

#define QK__DECLARE_STATISTICS(slot, fn, req) qk_##slot##_fn fn;
QK_STATISTICS_VARIANTS(QK__DECLARE_STATISTICS)
#undef QK__DECLARE_STATISTICS

/* The dispatch table: one pointer per slot, filled once per ISA level and then read-only. */
typedef struct qk_kernel_table {
#define QK__TABLE_FIELD(slot) qk_##slot##_fn *slot;
    QK_SLOTS(QK__TABLE_FIELD)
    QK_FAKE_QUANT_SLOTS(QK__TABLE_FIELD)
    QK_STATISTICS_SLOTS(QK__TABLE_FIELD)
#undef QK__TABLE_FIELD
    const qk_gemm_config *gemm;        /* best exact GEMM of the level (never NULL) */
    const qk_gemm_config *gemm_fast;   /* best fast GEMM with gemm's layout, or NULL */
    const qk_half_gemm_config *half_gemm[2];        /* per qk_half_type: best variant (never NULL) */
    const qk_half_gemm_config *half_gemm_fp16arith; /* fp16-arithmetic variant with half_gemm[FP16]'s layout, or NULL */
    const qk_qu8_dwconv_config *qu8_dwconv[2];   /* depthwise, best of the level: [0] any taps, [1] 9 taps */
    const qk_f32_dwconv_config *f32_dwconv[2];
} qk_kernel_table;

/* Every GEMM variant of QK_GEMM_VARIANTS, in list order. */
extern const qk_gemm_config qk_gemm_configs[];
extern const size_t qk_gemm_config_count;
/* Every variant of QK_HALF_GEMM_VARIANTS, in list order. */
extern const qk_half_gemm_config qk_half_gemm_configs[];
extern const size_t qk_half_gemm_config_count;
/* Every depthwise variant of QK_QU8_DWCONV_VARIANTS / QK_F32_DWCONV_VARIANTS, in list order. */
extern const qk_qu8_dwconv_config qk_qu8_dwconv_configs[];
extern const size_t qk_qu8_dwconv_config_count;
extern const qk_f32_dwconv_config qk_f32_dwconv_configs[];
extern const size_t qk_f32_dwconv_config_count;

/* The table of the selected ISA level, initialising it on first use; NULL if QUANTKIT_ISA was invalid (the
 * thread's last error message then says why). */
const qk_kernel_table *qk_kernels(void);

#endif /* QK_KERNELS_H */
