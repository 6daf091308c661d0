/* Quantize, dequantize and requantize operators: validation, tiling, threading; the microkernels do the math. */
#include <math.h>
#include <stdlib.h>

#include "qk_internal.h"
#include "qk_kernels.h"

static const char *dtype_name(qk_dtype d) {
    switch (d) {
    case QK_DTYPE_QUINT8: return "quint8";
    case QK_DTYPE_QINT8: return "qint8";
    case QK_DTYPE_QINT32: return "qint32";
    }
    return "?";
}

static qk_status check_dtype(qk_dtype d, int allow_qint32) {
    if (d == QK_DTYPE_QUINT8 || d == QK_DTYPE_QINT8 || (allow_qint32 && d == QK_DTYPE_QINT32)) return QK_OK;
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "dtype %d is not supported here; expected quint8, qint8%s", (int)d,
                   allow_qint32 ? " or qint32" : "");
}

static void dtype_range(qk_dtype d, int64_t *lo, int64_t *hi) {
    switch (d) {
    case QK_DTYPE_QUINT8: *lo = 0; *hi = 255; return;
    case QK_DTYPE_QINT8: *lo = -128; *hi = 127; return;
    default: *lo = INT32_MIN; *hi = INT32_MAX; return;
    }
}

/* scale finite, > 0, with a finite reciprocal (quantize multiplies by 1.0f / scale, as PyTorch). */
static qk_status check_scale(float s, const char *what, size_t index, int indexed) {
    if (isfinite(s) && s > 0.0f && isfinite(1.0f / s)) return QK_OK;
    if (indexed)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "%s[%zu] must be finite and > 0 (at least 2.9e-39), got %g", what,
                       index, (double)s);
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "%s must be finite and > 0 (at least 2.9e-39), got %g", what, (double)s);
}

static qk_status check_zero_point(qk_dtype d, int32_t zp, size_t index, int indexed) {
    int64_t lo, hi;
    dtype_range(d, &lo, &hi);
    if (zp >= lo && zp <= hi) return QK_OK;
    if (indexed)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "zero_points[%zu] = %d is outside the %s range [%lld, %lld]", index,
                       zp, dtype_name(d), (long long)lo, (long long)hi);
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "zero point %d is outside the %s range [%lld, %lld]", zp, dtype_name(d),
                   (long long)lo, (long long)hi);
}

static qk_status check_pointers(size_t n, const void *a, const void *b) {
    if (n == 0 || (a && b)) return QK_OK;
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null data pointer for %zu elements", n);
}

/* [outer, channels, inner] -> element count, with overflow and pointer checks. */
static qk_status check_channel_view(size_t outer, size_t channels, size_t inner, const void *a, const void *b,
                                    const void *params, const void *zero_points, size_t *n) {
    size_t oc;
    if (!qk_mul_size(outer, channels, &oc) || !qk_mul_size(oc, inner, n) || !qk_mul_size(*n, 4, &oc))
        return qk_fail(QK_ERROR_OVERFLOW, "tensor size %zu x %zu x %zu overflows", outer, channels, inner);
    if (channels == 0 && *n == 0) return QK_OK;
    if (channels && (!params || !zero_points))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null per-channel parameter array for %zu channels", channels);
    return check_pointers(*n, a, b);
}

/* ------------------------------------------------------------------------------------------ per tensor */

typedef struct stream_op {
    qk_dtype dtype;
    const void *x;
    void *y;
    const qk_kernel_table *k;
    float s;                /* inv_scale (quantize), scale (dequantize), multiplier (requantize) */
    int32_t zp, qmin, qmax;
} stream_op;

static void quantize_tile(void *ctx, size_t b, size_t e) {
    const stream_op *o = ctx;
    const float *x = (const float *)o->x + b;
    switch (o->dtype) {
    case QK_DTYPE_QUINT8: o->k->f32_qu8_quantize(e - b, x, (uint8_t *)o->y + b, o->s, o->zp); break;
    case QK_DTYPE_QINT8: o->k->f32_qs8_quantize(e - b, x, (int8_t *)o->y + b, o->s, o->zp); break;
    case QK_DTYPE_QINT32: o->k->f32_qs32_quantize(e - b, x, (int32_t *)o->y + b, o->s, o->zp); break;
    }
}

static void dequantize_tile(void *ctx, size_t b, size_t e) {
    const stream_op *o = ctx;
    float *y = (float *)o->y + b;
    switch (o->dtype) {
    case QK_DTYPE_QUINT8: o->k->qu8_f32_dequantize(e - b, (const uint8_t *)o->x + b, y, o->s, o->zp); break;
    case QK_DTYPE_QINT8: o->k->qs8_f32_dequantize(e - b, (const int8_t *)o->x + b, y, o->s, o->zp); break;
    case QK_DTYPE_QINT32: o->k->qs32_f32_dequantize(e - b, (const int32_t *)o->x + b, y, o->s, o->zp); break;
    }
}

static void requantize_tile(void *ctx, size_t b, size_t e) {
    const stream_op *o = ctx;
    const int32_t *acc = (const int32_t *)o->x + b;
    if (o->dtype == QK_DTYPE_QUINT8)
        o->k->qs32_qu8_requantize(e - b, acc, (uint8_t *)o->y + b, o->s, o->zp, o->qmin, o->qmax);
    else
        o->k->qs32_qs8_requantize(e - b, acc, (int8_t *)o->y + b, o->s, o->zp, o->qmin, o->qmax);
}

#define QK_KERNELS_OR_FAIL(k)                        \
    const qk_kernel_table *k = qk_kernels();         \
    if (!k) return qk_runtime_init();

qk_status qk_quantize_per_tensor(qk_dtype dtype, size_t n, const float *x, void *y, float scale, int32_t zero_point) {
    QK_KERNELS_OR_FAIL(k)
    qk_status s;
    if ((s = check_dtype(dtype, 1)) || (s = check_scale(scale, "scale", 0, 0)) ||
        (s = check_zero_point(dtype, zero_point, 0, 0)) || (s = check_pointers(n, x, y)))
        return s;
    stream_op o = {dtype, x, y, k, 1.0f / scale, zero_point, 0, 0};
    qk_parallel_for_1d(n, QK_STREAM_TILE, quantize_tile, &o);
    return QK_OK;
}

qk_status qk_dequantize_per_tensor(qk_dtype dtype, size_t n, const void *q, float *y, float scale,
                                   int32_t zero_point) {
    QK_KERNELS_OR_FAIL(k)
    qk_status s;
    if ((s = check_dtype(dtype, 1)) || (s = check_scale(scale, "scale", 0, 0)) ||
        (s = check_zero_point(dtype, zero_point, 0, 0)) || (s = check_pointers(n, q, y)))
        return s;
    stream_op o = {dtype, q, y, k, scale, zero_point, 0, 0};
    qk_parallel_for_1d(n, QK_STREAM_TILE, dequantize_tile, &o);
    return QK_OK;
}

static qk_status check_multiplier(float multiplier, size_t index, int indexed) {
    if (isfinite(multiplier) && multiplier > 0.0f) return QK_OK;
    if (indexed)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "multipliers[%zu] must be finite and > 0, got %g", index,
                       (double)multiplier);
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "multiplier must be finite and > 0, got %g", (double)multiplier);
}

static qk_status check_clamp(qk_dtype d, int32_t zp, int32_t qmin, int32_t qmax) {
    qk_status s = check_zero_point(d, zp, 0, 0);
    if (s) return s;
    int64_t lo, hi;
    dtype_range(d, &lo, &hi);
    if (qmin < lo || qmax > hi || qmin > qmax)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "clamp range [%d, %d] must be ordered and inside the %s range "
                       "[%lld, %lld]", qmin, qmax, dtype_name(d), (long long)lo, (long long)hi);
    return QK_OK;
}

qk_status qk_requantize(qk_dtype out_dtype, size_t n, const int32_t *acc, void *y, float multiplier,
                        int32_t zero_point, int32_t qmin, int32_t qmax) {
    QK_KERNELS_OR_FAIL(k)
    qk_status s;
    if ((s = check_dtype(out_dtype, 0)) || (s = check_multiplier(multiplier, 0, 0)) ||
        (s = check_clamp(out_dtype, zero_point, qmin, qmax)) || (s = check_pointers(n, acc, y)))
        return s;
    stream_op o = {out_dtype, acc, y, k, multiplier, zero_point, qmin, qmax};
    qk_parallel_for_1d(n, QK_STREAM_TILE, requantize_tile, &o);
    return QK_OK;
}

/* ------------------------------------------------------------------------------------------ per channel */

/*
 * [outer, channels, inner]. With inner == 1 the channel is the contiguous axis and rows of `channels` elements go
 * to the "pc" kernels with the parameter arrays; otherwise each (outer, channel) slice of `inner` contiguous
 * elements goes to the per-tensor kernel with that channel's parameters.
 */
typedef struct channel_op {
    qk_dtype dtype;
    const void *x;
    void *y;
    const qk_kernel_table *k;
    size_t channels, inner;
    const float *s;         /* inv_scales, scales or multipliers, one per channel */
    const int32_t *zp;      /* one per channel (NULL for requantize) */
    int32_t out_zp, qmin, qmax;
} channel_op;

static void quantize_rows(void *ctx, size_t b, size_t e) {   /* inner == 1: rows b..e of `channels` */
    const channel_op *o = ctx;
    const size_t c = o->channels;
    for (size_t r = b; r < e; r++) {
        const float *x = (const float *)o->x + r * c;
        switch (o->dtype) {
        case QK_DTYPE_QUINT8: o->k->f32_qu8_quantize_pc(c, x, (uint8_t *)o->y + r * c, o->s, o->zp); break;
        case QK_DTYPE_QINT8: o->k->f32_qs8_quantize_pc(c, x, (int8_t *)o->y + r * c, o->s, o->zp); break;
        case QK_DTYPE_QINT32: o->k->f32_qs32_quantize_pc(c, x, (int32_t *)o->y + r * c, o->s, o->zp); break;
        }
    }
}

static void quantize_slices(void *ctx, size_t b, size_t e) {   /* slices b..e of `inner` */
    const channel_op *o = ctx;
    const size_t n = o->inner;
    for (size_t sl = b; sl < e; sl++) {
        const size_t ch = sl % o->channels;
        const float *x = (const float *)o->x + sl * n;
        switch (o->dtype) {
        case QK_DTYPE_QUINT8: o->k->f32_qu8_quantize(n, x, (uint8_t *)o->y + sl * n, o->s[ch], o->zp[ch]); break;
        case QK_DTYPE_QINT8: o->k->f32_qs8_quantize(n, x, (int8_t *)o->y + sl * n, o->s[ch], o->zp[ch]); break;
        case QK_DTYPE_QINT32: o->k->f32_qs32_quantize(n, x, (int32_t *)o->y + sl * n, o->s[ch], o->zp[ch]); break;
        }
    }
}

static void dequantize_rows(void *ctx, size_t b, size_t e) {
    const channel_op *o = ctx;
    const size_t c = o->channels;
    for (size_t r = b; r < e; r++) {
        float *y = (float *)o->y + r * c;
        switch (o->dtype) {
        case QK_DTYPE_QUINT8: o->k->qu8_f32_dequantize_pc(c, (const uint8_t *)o->x + r * c, y, o->s, o->zp); break;
        case QK_DTYPE_QINT8: o->k->qs8_f32_dequantize_pc(c, (const int8_t *)o->x + r * c, y, o->s, o->zp); break;
        case QK_DTYPE_QINT32: o->k->qs32_f32_dequantize_pc(c, (const int32_t *)o->x + r * c, y, o->s, o->zp); break;
        }
    }
}

static void dequantize_slices(void *ctx, size_t b, size_t e) {
    const channel_op *o = ctx;
    const size_t n = o->inner;
    for (size_t sl = b; sl < e; sl++) {
        const size_t ch = sl % o->channels;
        float *y = (float *)o->y + sl * n;
        switch (o->dtype) {
        case QK_DTYPE_QUINT8: o->k->qu8_f32_dequantize(n, (const uint8_t *)o->x + sl * n, y, o->s[ch], o->zp[ch]); break;
        case QK_DTYPE_QINT8: o->k->qs8_f32_dequantize(n, (const int8_t *)o->x + sl * n, y, o->s[ch], o->zp[ch]); break;
        case QK_DTYPE_QINT32: o->k->qs32_f32_dequantize(n, (const int32_t *)o->x + sl * n, y, o->s[ch], o->zp[ch]); break;
        }
    }
}

static void requantize_rows(void *ctx, size_t b, size_t e) {
    const channel_op *o = ctx;
    const size_t c = o->channels;
    for (size_t r = b; r < e; r++) {
        const int32_t *acc = (const int32_t *)o->x + r * c;
        if (o->dtype == QK_DTYPE_QUINT8)
            o->k->qs32_qu8_requantize_pc(c, acc, (uint8_t *)o->y + r * c, o->s, o->out_zp, o->qmin, o->qmax);
        else
            o->k->qs32_qs8_requantize_pc(c, acc, (int8_t *)o->y + r * c, o->s, o->out_zp, o->qmin, o->qmax);
    }
}

static void requantize_slices(void *ctx, size_t b, size_t e) {
    const channel_op *o = ctx;
    const size_t n = o->inner;
    for (size_t sl = b; sl < e; sl++) {
        const float m = o->s[sl % o->channels];
        const int32_t *acc = (const int32_t *)o->x + sl * n;
        if (o->dtype == QK_DTYPE_QUINT8)
            o->k->qs32_qu8_requantize(n, acc, (uint8_t *)o->y + sl * n, m, o->out_zp, o->qmin, o->qmax);
        else
            o->k->qs32_qs8_requantize(n, acc, (int8_t *)o->y + sl * n, m, o->out_zp, o->qmin, o->qmax);
    }
}

/* Runs a channel op: rows when inner == 1, else slices; tiles of about QK_STREAM_TILE elements. */
static void run_channel_op(channel_op *o, size_t outer, qk_task_1d rows, qk_task_1d slices) {
    if (o->inner == 1) {
        const size_t tile = o->channels >= QK_STREAM_TILE ? 1 : QK_STREAM_TILE / o->channels;
        qk_parallel_for_1d(outer, tile, rows, o);
    } else {
        const size_t tile = o->inner >= QK_STREAM_TILE ? 1 : QK_STREAM_TILE / o->inner;
        qk_parallel_for_1d(outer * o->channels, tile, slices, o);
    }
}

static qk_status check_channel_params(qk_dtype dtype, size_t channels, const float *scales,
                                      const int32_t *zero_points) {
    qk_status s;
    for (size_t c = 0; c < channels; c++)
        if ((s = check_scale(scales[c], "scales", c, 1)) || (s = check_zero_point(dtype, zero_points[c], c, 1)))
            return s;
    return QK_OK;
}

qk_status qk_quantize_per_channel(qk_dtype dtype, size_t outer, size_t channels, size_t inner, const float *x, void *y,
                                  const float *scales, const int32_t *zero_points) {
    QK_KERNELS_OR_FAIL(k)
    size_t n = 0;
    qk_status s;
    if ((s = check_dtype(dtype, 1)) ||
        (s = check_channel_view(outer, channels, inner, x, y, scales, zero_points, &n)) ||
        (s = check_channel_params(dtype, channels, scales, zero_points)))
        return s;
    if (n == 0) return QK_OK;
    float *inv = malloc(channels * sizeof *inv);
    if (!inv) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu channel parameters", channels);
    for (size_t c = 0; c < channels; c++) inv[c] = 1.0f / scales[c];
    channel_op o = {dtype, x, y, k, channels, inner, inv, zero_points, 0, 0, 0};
    run_channel_op(&o, outer, quantize_rows, quantize_slices);
    free(inv);
    return QK_OK;
}

qk_status qk_dequantize_per_channel(qk_dtype dtype, size_t outer, size_t channels, size_t inner, const void *q,
                                    float *y, const float *scales, const int32_t *zero_points) {
    QK_KERNELS_OR_FAIL(k)
    size_t n = 0;
    qk_status s;
    if ((s = check_dtype(dtype, 1)) ||
        (s = check_channel_view(outer, channels, inner, q, y, scales, zero_points, &n)) ||
        (s = check_channel_params(dtype, channels, scales, zero_points)))
        return s;
    if (n == 0) return QK_OK;
    channel_op o = {dtype, q, y, k, channels, inner, scales, zero_points, 0, 0, 0};
    run_channel_op(&o, outer, dequantize_rows, dequantize_slices);
    return QK_OK;
}

qk_status qk_requantize_per_channel(qk_dtype out_dtype, size_t outer, size_t channels, size_t inner,
                                    const int32_t *acc, void *y, const float *multipliers, int32_t zero_point,
                                    int32_t qmin, int32_t qmax) {
    QK_KERNELS_OR_FAIL(k)
    size_t n = 0;
    qk_status s;
    if ((s = check_dtype(out_dtype, 0)) ||
        (s = check_channel_view(outer, channels, inner, acc, y, multipliers, multipliers, &n)) ||
        (s = check_clamp(out_dtype, zero_point, qmin, qmax)))
        return s;
    for (size_t c = 0; c < channels; c++)
        if ((s = check_multiplier(multipliers[c], c, 1))) return s;
    if (n == 0) return QK_OK;
    channel_op o = {out_dtype, acc, y, k, channels, inner, multipliers, NULL, zero_point, qmin, qmax};
    run_channel_op(&o, outer, requantize_rows, requantize_slices);
    return QK_OK;
}
