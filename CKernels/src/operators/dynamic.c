/*
 * Dynamic quantized linear: fp32 activations get their qparams from their own min/max (PyTorch's rule), are
 * quantized to quint8 and run through the int8 GEMM with the fp32 output stage.
 *   per tensor  one (scale, zero point) for the whole input: exactly torch.ops.quantized.linear_dynamic (x86)
 *   per row     one per row (per token), fused: each row's min/max and quantization run while it is in L1. The GEMM
 *               then runs with za = 0 into y as int32, and a second pass over y forms raw = raw0 + za[m] * wcomp[n]
 *               and fmaf(raw, x_scale[m] * w_scale[n], bias[n]): one extra read and write of M x N (O(MN) next to
 *               the GEMM's O(MNK)).
 * Tiles are fixed by the problem, so results do not depend on the thread count.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "qk_gemm.h"
#include "qk_gemm_scalar.h"
#include "qk_internal.h"

/* FBGEMM / ATen SMALL_SCALE_THRESHOLD (a float constant). */
static const float qk_small_scale = 6.1e-5f;

/*
 * ATen quant_utils::ChooseQuantizationParams(min, max, qmin, qmax, preserve_sparsity = false,
 * force_scale_power_of_two = false, reduce_range), statement for statement with its float / double / int types;
 * min and max must be finite or skipped (+inf / -inf of an all-NaN or empty input). Returns 0 if the extended range
 * is not finite.
 */
static int choose_qparams(float min, float max, int32_t qmin, int32_t qmax, int reduce_range, float *scale_out,
                          int32_t *zp_out) {
    if (reduce_range) {
        qmin = qmin / 2;
        qmax = qmax / 2;
    }
    min = 0.0f < min ? 0.0f : min;   /* std::min(min, 0.f) */
    max = max < 0.0f ? 0.0f : max;   /* std::max(max, 0.f) */
    if (!isfinite(min) || !isfinite(max)) return 0;
    double scale = ((double)max - min) / (qmax - qmin);
    if ((float)scale == 0.0f || isinf(1.0f / (float)scale)) scale = 0.1;
    if (scale < qk_small_scale) {
        const float org_scale = (float)scale;
        scale = qk_small_scale;
        if (min == 0.0f) {
            max = qk_small_scale * (float)(qmax - qmin);
        } else if (max == 0.0f) {
            min = -qk_small_scale * (float)(qmax - qmin);
        } else {
            const float amplifier = qk_small_scale / org_scale;
            min *= amplifier;
            max *= amplifier;
        }
    }
    const double zp_from_min = qmin - min / scale;
    const double zp_from_max = qmax - max / scale;
    /* ATen's "error" terms subtract (FBGEMM's own copy adds); kept as ATen has them */
    const double zp_from_min_error = abs(qmin) - fabs(min / scale);
    const double zp_from_max_error = abs(qmax) - fabs(max / scale);
    const double initial = zp_from_min_error < zp_from_max_error ? zp_from_min : zp_from_max;
    int32_t zp;
    if (initial < qmin) zp = qmin;
    else if (initial > qmax) zp = qmax;
    else zp = (int32_t)nearbyint(initial);
    *scale_out = (float)scale;
    *zp_out = zp;
    return 1;
}

qk_status qk_dynamic_qparams(float min, float max, uint32_t flags, float *scale, int32_t *zero_point) {
    if (!scale || !zero_point) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output pointer for the qparams");
    if (flags & ~(uint32_t)QK_DYNAMIC_REDUCE_RANGE)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "unsupported flags 0x%x (allowed here: QK_DYNAMIC_REDUCE_RANGE)",
                       (unsigned)(flags & ~(uint32_t)QK_DYNAMIC_REDUCE_RANGE));
    if (isnan(min) || isnan(max))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "min %g / max %g: expected numbers, not NaN", (double)min,
                       (double)max);
    if (!choose_qparams(min, max, 0, 255, (flags & QK_DYNAMIC_REDUCE_RANGE) != 0, scale, zero_point))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "dynamic quantization needs a finite range, got [%g, %g]",
                       (double)min, (double)max);
    return QK_OK;
}

/* ------------------------------------------------------------------------------------------ the operator */

typedef struct dyn_op {
    const qk_kernel_table *t;
    size_t k, n;
    const float *x;
    size_t x_stride;
    uint8_t *q;                 /* [m, k] quantized activations */
    int reduce_range;
    /* per tensor */
    float *tile_min, *tile_max; /* one per row tile */
    size_t rows_per_tile;
    float inv_scale;
    int32_t zero_point;
    /* per row */
    float *row_scale;
    int32_t *row_zp;
    atomic_int any_8bit;        /* some quantized activation > 127 */
    atomic_size_t bad_row;      /* first row with an infinity (SIZE_MAX: none) */
    /* per-row epilogue */
    float *y;
    size_t y_stride;
    const int32_t *wcomp;       /* [n] */
    const float *w_scales, *bias;   /* [n]; bias may be NULL */
    int relu;
    int use_avx2;
} dyn_op;

static void minmax_rows(void *ctx, size_t b, size_t e) {
    dyn_op *o = ctx;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = b; i < e; i++) o->t->f32_minmax(o->k, o->x + i * o->x_stride, 0, &lo, &hi);
    o->tile_min[b / o->rows_per_tile] = lo;
    o->tile_max[b / o->rows_per_tile] = hi;
}

static void quantize_rows(void *ctx, size_t b, size_t e) {
    dyn_op *o = ctx;
    for (size_t i = b; i < e; i++)
        o->t->f32_qu8_quantize(o->k, o->x + i * o->x_stride, o->q + i * o->k, o->inv_scale, o->zero_point);
}

static void atomic_min_size(atomic_size_t *a, size_t v) {
    size_t cur = atomic_load(a);
    while (v < cur && !atomic_compare_exchange_weak(a, &cur, v)) {
    }
}

/* Per row: min/max, qparams, quantize, while the row is in L1. */
static void minmax_quantize_rows(void *ctx, size_t b, size_t e) {
    dyn_op *o = ctx;
    for (size_t i = b; i < e; i++) {
        const float *row = o->x + i * o->x_stride;
        float lo = INFINITY, hi = -INFINITY, scale;
        int32_t zp;
        o->t->f32_minmax(o->k, row, 0, &lo, &hi);
        if (!choose_qparams(lo, hi, 0, 255, o->reduce_range, &scale, &zp)) {
            atomic_min_size(&o->bad_row, i);
            continue;
        }
        const float inv = 1.0f / scale;
        o->t->f32_qu8_quantize(o->k, row, o->q + i * o->k, inv, zp);
        /* quantize is monotonic, so the row's largest code is the code of its (extended) maximum */
        const float top = hi > 0.0f ? hi : 0.0f;
        uint8_t qtop;
        o->t->f32_qu8_quantize(1, &top, &qtop, inv, zp);
        if (qtop > 127) atomic_store_explicit(&o->any_8bit, 1, memory_order_relaxed);
        o->row_scale[i] = scale;
        o->row_zp[i] = zp;
    }
}

/* y (holding raw0 as int32) -> fmaf(raw0 + za * wcomp, x_scale * w_scale, bias), in place. */
#define QK_ROW_EPILOGUE_BODY                                                                   \
    for (size_t i = b; i < e; i++) {                                                           \
        float *yr = o->y + i * o->y_stride;                                                    \
        const float xs = o->row_scale[i];                                                      \
        const uint32_t za = (uint32_t)o->row_zp[i];                                            \
        for (size_t j = 0; j < n; j++) {                                                       \
            int32_t raw0;                                                                      \
            memcpy(&raw0, yr + j, 4);                                                          \
            const int32_t raw = (int32_t)((uint32_t)raw0 + za * (uint32_t)o->wcomp[j]);        \
            const float s = xs * o->w_scales[j];                                               \
            yr[j] = qk_gemm_dequantize1(raw, s, o->bias ? o->bias[j] : 0.0f, o->relu);        \
        }                                                                                      \
    }

static void row_epilogue_portable(const dyn_op *o, size_t b, size_t e) {
    const size_t n = o->n;
    QK_ROW_EPILOGUE_BODY
}

#if defined(__x86_64__) || defined(_M_X64)
/* The same C with FMA enabled: fmaf becomes one instruction instead of a libm call (results identical). */
static QK_TARGET_AVX2 void row_epilogue_avx2(const dyn_op *o, size_t b, size_t e) {
    const size_t n = o->n;
    QK_ROW_EPILOGUE_BODY
}
#endif

static void row_epilogue(void *ctx, size_t b, size_t e) {
    const dyn_op *o = ctx;
#if defined(__x86_64__) || defined(_M_X64)
    if (o->use_avx2) {
        row_epilogue_avx2(o, b, e);
        return;
    }
#endif
    row_epilogue_portable(o, b, e);
}

/* Rows per tile for a pass over rows of `width` elements: about QK_STREAM_TILE elements per tile. */
static size_t row_tile(size_t width) {
    const size_t r = QK_STREAM_TILE / (width ? width : 1);
    return r ? r : 1;
}

qk_status qk_dynamic_linear_f32(const qk_qs8_gemm_weights *w, size_t m, const float *x, size_t x_stride, float *y,
                                size_t y_stride, uint32_t flags) {
    const qk_kernel_table *t = qk_kernels();
    if (!t) return qk_runtime_init();
    const uint32_t allowed = QK_GEMM_RELU | QK_DYNAMIC_REDUCE_RANGE | QK_DYNAMIC_PER_ROW;
    if (!w) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null packed weights handle");
    if (flags & ~allowed)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "unsupported flags 0x%x (allowed here: QK_GEMM_RELU, "
                       "QK_DYNAMIC_REDUCE_RANGE, QK_DYNAMIC_PER_ROW)", (unsigned)(flags & ~allowed));
    const size_t n = w->n, k = w->k;
    if (x_stride < k)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "input row stride %zu is less than K = %zu", x_stride, k);
    if (y_stride < n)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "output row stride %zu is less than N = %zu", y_stride, n);
    size_t mk, tmp;
    if (!qk_mul_size(m, k, &mk) || (m && (!qk_mul_size(m - 1, x_stride, &tmp) || __builtin_add_overflow(tmp, k, &tmp) ||
                                          !qk_mul_size(tmp, sizeof(float), &tmp))))
        return qk_fail(QK_ERROR_OVERFLOW, "input of %zu rows x %zu (stride %zu) overflows", m, k, x_stride);
    if (mk && !x) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null input for %zu x %zu", m, k);
    if (m && n && !y) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output for %zu x %zu", m, n);
    if (!m || !n) return QK_OK;

    const int per_row = (flags & QK_DYNAMIC_PER_ROW) != 0;
    dyn_op o;
    memset(&o, 0, sizeof o);
    o.t = t;
    o.k = k;
    o.n = n;
    o.x = x;
    o.x_stride = x_stride;
    o.reduce_range = (flags & QK_DYNAMIC_REDUCE_RANGE) != 0;
    atomic_init(&o.any_8bit, 0);
    atomic_init(&o.bad_row, SIZE_MAX);
    const size_t rows = row_tile(k);
    const size_t tiles = m / rows + (m % rows != 0);

    /* one allocation: q [m*k] | per-tensor tile min/max or per-row scale, zp | wcomp [n] */
    size_t bytes = mk + 16, extra;
    const size_t per_row_bytes = per_row ? m * 8 + n * 4 : tiles * 8;
    if (__builtin_add_overflow(bytes, per_row_bytes, &extra))
        return qk_fail(QK_ERROR_OVERFLOW, "scratch size for %zu x %zu overflows", m, k);
    unsigned char *scratch = malloc(extra);
    if (!scratch) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for %zu bytes of quantized activations", extra);
    float *aux = (float *)(scratch + (mk + 15) / 16 * 16);
    o.q = scratch;
    qk_status s;

    if (!per_row) {
        o.rows_per_tile = rows;
        o.tile_min = aux;
        o.tile_max = aux + tiles;
        qk_parallel_for_1d(m, rows, minmax_rows, &o);
        float lo = INFINITY, hi = -INFINITY;   /* min/max are exact, so the combination order does not matter */
        for (size_t i = 0; i < tiles; i++) {
            lo = o.tile_min[i] < lo ? o.tile_min[i] : lo;
            hi = o.tile_max[i] > hi ? o.tile_max[i] : hi;
        }
        float scale;
        int32_t zp;
        if (!choose_qparams(lo, hi, 0, 255, o.reduce_range, &scale, &zp)) {
            free(scratch);
            return qk_fail(QK_ERROR_INVALID_ARGUMENT, "the input holds an infinity (range [%g, %g]); dynamic "
                           "quantization needs finite inputs", (double)lo, (double)hi);
        }
        o.inv_scale = 1.0f / scale;
        o.zero_point = zp;
        qk_parallel_for_1d(m, rows, quantize_rows, &o);
        const float top = hi > 0.0f ? hi : 0.0f;
        uint8_t qtop;
        t->f32_qu8_quantize(1, &top, &qtop, o.inv_scale, zp);
        const uint32_t gemm_flags = (flags & QK_GEMM_RELU) | (qtop <= 127 ? QK_GEMM_ACTIVATIONS_7BIT : 0);
        s = qk_qs8_gemm_f32(w, m, QK_DTYPE_QUINT8, o.q, k, scale, zp, y, y_stride, gemm_flags);
        free(scratch);
        return s;
    }

    o.row_scale = aux;
    o.row_zp = (int32_t *)(aux + m);
    int32_t *wcomp = o.row_zp + m;
    qk_parallel_for_1d(m, rows, minmax_quantize_rows, &o);
    const size_t bad = atomic_load(&o.bad_row);
    if (bad != SIZE_MAX) {
        free(scratch);
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "input row %zu holds an infinity; dynamic quantization needs finite "
                       "inputs", bad);
    }
    /* The GEMM writes raw0 = sum_k a * (w - zw) (za = 0) into y as int32; y has 4-byte elements either way. */
    const uint32_t gemm_flags = atomic_load(&o.any_8bit) ? 0 : QK_GEMM_ACTIVATIONS_7BIT;
    s = qk_qs8_gemm_s32(w, m, QK_DTYPE_QUINT8, o.q, k, 0, (int32_t *)(void *)y, y_stride, gemm_flags);
    if (s) {
        free(scratch);
        return s;
    }
    /* wcomp[n] = K * zw[n] - sum_k w[n][k] from the packed panels (layout of the handle's exact kernel) */
    const size_t nr = w->exact->nr;
    for (size_t j = 0; j < n; j++)
        memcpy(&wcomp[j], (const unsigned char *)w->packed + (j / nr) * w->panel_bytes + (j % nr) * 4, 4);
    o.y = y;
    o.y_stride = y_stride;
    o.wcomp = wcomp;
    o.w_scales = w->w_scales;
    o.bias = w->bias;
    o.relu = (flags & QK_GEMM_RELU) != 0;
    o.use_avx2 = (t->gemm->required & QK_FEATURE_AVX2) != 0;
    qk_parallel_for_1d(m, row_tile(n), row_epilogue, &o);
    free(scratch);
    return QK_OK;
}
