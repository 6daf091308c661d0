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

/* The dispatch table: one pointer per slot, filled once per ISA level and then read-only. */
typedef struct qk_kernel_table {
#define QK__TABLE_FIELD(slot) qk_##slot##_fn *slot;
    QK_SLOTS(QK__TABLE_FIELD)
#undef QK__TABLE_FIELD
} qk_kernel_table;

/* The table of the selected ISA level, initialising it on first use; NULL if QUANTKIT_ISA was invalid (the
 * thread's last error message then says why). */
const qk_kernel_table *qk_kernels(void);

#endif /* QK_KERNELS_H */
