/*
 * Fake quantization operators (quantization-aware training): validation, PyTorch's zero-point rounding for the
 * learnable forms, FBGEMM's qparam choice of the fused observer, tiling and threading. The math is in
 * kernels/fake-quantize.
 *
 * Learnable reductions: grad_scale / grad_zero_point are sums of per-element float contributions, accumulated in
 * double. A channel slice of `inner` contiguous elements is cut into runs of QK_STREAM_TILE elements; each run is
 * summed in QK_FQ_LANES interleaved lanes (qk_kernels.h) and the runs are added in memory order. With the channel
 * axis innermost (inner == 1), each channel adds its contributions one row at a time, rows in order, in blocks of
 * rows whose partial sums are then added in order. The cuts depend on the shape only, so the sums are the same on
 * every ISA level and for every thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qk_internal.h"
#include "qk_kernels.h"

/* |quant_min|, |quant_max| bound: sums and differences of integers up to 2^24 are exact in float. */
#define QK_FQ_RANGE_LIMIT (1 << 23)
#define QK_FQ_TILE QK_STREAM_TILE

#define QK_KERNELS_OR_FAIL(k)                        \
    const qk_kernel_table *k = qk_kernels();         \
    if (!k) return qk_runtime_init();

/* ------------------------------------------------------------------------------------------ validation */

static qk_status check_scale(float s, size_t index, int indexed) {
    if (isfinite(s) && s > 0.0f && isfinite(1.0f / s)) return QK_OK;
    if (indexed)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "scales[%zu] must be finite and > 0 (at least 2.9e-39), got %g",
                       index, (double)s);
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "scale must be finite and > 0 (at least 2.9e-39), got %g", (double)s);
}

static qk_status check_range(int32_t qmin, int32_t qmax, int must_contain_zero) {
    if (qmin > qmax || qmin < -QK_FQ_RANGE_LIMIT || qmax > QK_FQ_RANGE_LIMIT)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "quant range [%d, %d] must be ordered and within +-%d", qmin, qmax,
                       QK_FQ_RANGE_LIMIT);
    if (must_contain_zero && (qmin > 0 || qmax < 0))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "quant range [%d, %d] must contain 0 (quant_min <= 0 <= quant_max) "
                       "for the learnable backward", qmin, qmax);
    return QK_OK;
}

static qk_status check_zero_point(int32_t zp, int32_t qmin, int32_t qmax, size_t index, int indexed) {
    if (zp >= qmin && zp <= qmax) return QK_OK;
    if (indexed)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "zero_points[%zu] = %d must be between quant_min %d and quant_max %d",
                       index, zp, qmin, qmax);
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "zero point %d must be between quant_min %d and quant_max %d", zp, qmin,
                   qmax);
}

static qk_status check_float_zero_point(float zp, size_t index, int indexed) {
    if (isfinite(zp)) return QK_OK;
    if (indexed)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "zero_points[%zu] must be finite, got %g", index, (double)zp);
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "zero point must be finite, got %g", (double)zp);
}

static qk_status check_pointers(size_t n, int count, const void *a, const void *b, const void *c) {
    if (n == 0) return QK_OK;
    if (a && b && (count < 3 || c)) return QK_OK;
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null data pointer for %zu elements", n);
}

static qk_status check_view(size_t outer, size_t channels, size_t inner, size_t *n) {
    size_t oc, bytes;
    if (!qk_mul_size(outer, channels, &oc) || !qk_mul_size(oc, inner, n) || !qk_mul_size(*n, 8, &bytes))
        return qk_fail(QK_ERROR_OVERFLOW, "tensor size %zu x %zu x %zu overflows", outer, channels, inner);
    return QK_OK;
}

/* ------------------------------------------------------------------------------------------ zero-point rounding */

/* PyTorch's _get_zero_point_from_tensor: std::min(std::max(z, qmin), qmax) in float, then int64 truncation. */
static float clamp_like_std(float z, int32_t qmin, int32_t qmax) {
    const float lo = (float)qmin, hi = (float)qmax;
    z = z < lo ? lo : z;
    z = hi < z ? hi : z;
    return z;
}

/* learnable per tensor, forward: (int64)clamp(nearbyint(zp)) */
static float learnable_forward_zero_point(float zp, int32_t qmin, int32_t qmax) {
    return truncf(clamp_like_std(nearbyintf(zp), qmin, qmax));
}

/* learnable per tensor, backward: (int64)clamp(zp + 0.5f), truncation toward zero (zp = -68.5 gives -68) */
static float learnable_backward_zero_point(float zp, int32_t qmin, int32_t qmax) {
    const float z = zp + 0.5f;
    return truncf(clamp_like_std(z, qmin, qmax));
}

/* learnable per channel, forward and backward: zero_point.round().clamp_(qmin, qmax) */
static float learnable_channel_zero_point(float zp, int32_t qmin, int32_t qmax) {
    return clamp_like_std(nearbyintf(zp), qmin, qmax);
}

/* ------------------------------------------------------------------------------------------ forward */

typedef struct fq_op {
    const qk_kernel_table *k;
    const float *x, *dy;
    float *y;                 /* y (forward) or dx (backward) */
    uint8_t *mask;
    size_t channels, inner, nseg;
    qk_fq_params p;           /* per tensor, or qmin / qmax / grad_factor for per channel */
    const qk_fq_params *pc;   /* per channel parameters (slices), or NULL */
    const float *scale, *inv_scale, *zero_point;   /* [channels] (rows, inner == 1) */
    double *partial;          /* learnable: 2 per run (slices) or 2 * channels per row block (rows) */
    size_t row_block;
} fq_op;

static void forward_tile(void *ctx, size_t b, size_t e) {
    const fq_op *o = ctx;
    o->k->f32_fq(e - b, o->x + b, o->y + b, o->mask ? o->mask + b : NULL, &o->p);
}

static void forward_rows(void *ctx, size_t b, size_t e) {   /* inner == 1: rows of `channels` */
    const fq_op *o = ctx;
    const size_t c = o->channels;
    for (size_t r = b; r < e; r++)
        o->k->f32_fq_pc(c, o->x + r * c, o->y + r * c, o->mask ? o->mask + r * c : NULL, o->scale, o->inv_scale,
                        o->zero_point, &o->p);
}

static void forward_slices(void *ctx, size_t b, size_t e) {   /* slices of `inner` */
    const fq_op *o = ctx;
    const size_t n = o->inner;
    for (size_t sl = b; sl < e; sl++)
        o->k->f32_fq(n, o->x + sl * n, o->y + sl * n, o->mask ? o->mask + sl * n : NULL, &o->pc[sl % o->channels]);
}

static void mask_backward_tile(void *ctx, size_t b, size_t e) {
    const fq_op *o = ctx;
    o->k->f32_fq_mask_backward(e - b, o->dy + b, o->mask + b, o->y + b);
}

static qk_fq_params params_of(float scale, float zero_point, int32_t qmin, int32_t qmax, float grad_factor) {
    qk_fq_params p = {scale, 1.0f / scale, zero_point, (float)qmin, (float)qmax, grad_factor};
    return p;
}

static qk_status forward_per_tensor(size_t n, const float *x, float *y, uint8_t *mask, float scale, float zero_point,
                                    int32_t qmin, int32_t qmax) {
    QK_KERNELS_OR_FAIL(k)
    fq_op o;
    memset(&o, 0, sizeof o);
    o.k = k;
    o.x = x;
    o.y = y;
    o.mask = mask;
    o.p = params_of(scale, zero_point, qmin, qmax, 1.0f);
    qk_parallel_for_1d(n, QK_FQ_TILE, forward_tile, &o);
    return QK_OK;
}

/* Per-channel parameters as floats; zero_points as integer-valued floats. One allocation, freed by the caller. */
static qk_status channel_params(size_t channels, const float *scales, const float *zps, int32_t qmin, int32_t qmax,
                                float grad_factor, qk_fq_params **pc, float **arrays) {
    *pc = malloc(channels * sizeof **pc);
    *arrays = malloc(3 * channels * sizeof **arrays);
    if (!*pc || !*arrays) {
        free(*pc);
        free(*arrays);
        return qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu channel parameters", channels);
    }
    for (size_t c = 0; c < channels; c++) {
        (*pc)[c] = params_of(scales[c], zps[c], qmin, qmax, grad_factor);
        (*arrays)[c] = (*pc)[c].scale;
        (*arrays)[channels + c] = (*pc)[c].inv_scale;
        (*arrays)[2 * channels + c] = (*pc)[c].zero_point;
    }
    return QK_OK;
}

static qk_status forward_per_channel(size_t outer, size_t channels, size_t inner, const float *x, float *y,
                                     uint8_t *mask, const float *scales, const float *zps, int32_t qmin,
                                     int32_t qmax) {
    QK_KERNELS_OR_FAIL(k)
    const size_t n = outer * channels * inner;
    if (n == 0) return QK_OK;
    if (channels == 1) return forward_per_tensor(n, x, y, mask, scales[0], zps[0], qmin, qmax);
    qk_fq_params *pc;
    float *arrays;
    qk_status s = channel_params(channels, scales, zps, qmin, qmax, 1.0f, &pc, &arrays);
    if (s) return s;
    fq_op o;
    memset(&o, 0, sizeof o);
    o.k = k;
    o.x = x;
    o.y = y;
    o.mask = mask;
    o.channels = channels;
    o.inner = inner;
    o.p = params_of(1.0f, 0.0f, qmin, qmax, 1.0f);
    o.pc = pc;
    o.scale = arrays;
    o.inv_scale = arrays + channels;
    o.zero_point = arrays + 2 * channels;
    if (inner == 1) {
        const size_t tile = channels >= QK_FQ_TILE ? 1 : QK_FQ_TILE / channels;
        qk_parallel_for_1d(outer, tile, forward_rows, &o);
    } else {
        const size_t tile = inner >= QK_FQ_TILE ? 1 : QK_FQ_TILE / inner;
        qk_parallel_for_1d(outer * channels, tile, forward_slices, &o);
    }
    free(pc);
    free(arrays);
    return QK_OK;
}

qk_status qk_fake_quantize_per_tensor_f32(size_t n, const float *x, float *y, uint8_t *mask, float scale,
                                          int32_t zero_point, int32_t quant_min, int32_t quant_max) {
    qk_status s;
    if ((s = check_range(quant_min, quant_max, 0)) || (s = check_scale(scale, 0, 0)) ||
        (s = check_zero_point(zero_point, quant_min, quant_max, 0, 0)) || (s = check_pointers(n, 2, x, y, NULL)))
        return s;
    return forward_per_tensor(n, x, y, mask, scale, (float)zero_point, quant_min, quant_max);
}

qk_status qk_fake_quantize_per_channel_f32(size_t outer, size_t channels, size_t inner, const float *x, float *y,
                                           uint8_t *mask, const float *scales, const int32_t *zero_points,
                                           int32_t quant_min, int32_t quant_max) {
    size_t n = 0;
    qk_status s;
    if ((s = check_view(outer, channels, inner, &n)) || (s = check_range(quant_min, quant_max, 0)) ||
        (s = check_pointers(n, 2, x, y, NULL)))
        return s;
    if (channels && (!scales || !zero_points))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null per-channel parameter array for %zu channels", channels);
    for (size_t c = 0; c < channels; c++)
        if ((s = check_scale(scales[c], c, 1)) || (s = check_zero_point(zero_points[c], quant_min, quant_max, c, 1)))
            return s;
    if (n == 0) return QK_OK;
    float *zps = malloc(channels * sizeof *zps);
    if (!zps) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu channel parameters", channels);
    for (size_t c = 0; c < channels; c++) zps[c] = (float)zero_points[c];
    s = forward_per_channel(outer, channels, inner, x, y, mask, scales, zps, quant_min, quant_max);
    free(zps);
    return s;
}

qk_status qk_fake_quantize_backward_f32(size_t n, const float *grad_y, const uint8_t *mask, float *grad_x) {
    QK_KERNELS_OR_FAIL(k)
    qk_status s;
    if ((s = check_pointers(n, 3, grad_y, mask, grad_x))) return s;
    fq_op o;
    memset(&o, 0, sizeof o);
    o.k = k;
    o.dy = grad_y;
    o.mask = (uint8_t *)mask;
    o.y = grad_x;
    qk_parallel_for_1d(n, QK_FQ_TILE, mask_backward_tile, &o);
    return QK_OK;
}

/* ------------------------------------------------------------------------------------------ learnable */

qk_status qk_fake_quantize_learnable_per_tensor_f32(size_t n, const float *x, float *y, uint8_t *mask, float scale,
                                                    float zero_point, int32_t quant_min, int32_t quant_max) {
    qk_status s;
    if ((s = check_range(quant_min, quant_max, 0)) || (s = check_scale(scale, 0, 0)) ||
        (s = check_float_zero_point(zero_point, 0, 0)) || (s = check_pointers(n, 2, x, y, NULL)))
        return s;
    return forward_per_tensor(n, x, y, mask, scale, learnable_forward_zero_point(zero_point, quant_min, quant_max),
                              quant_min, quant_max);
}

static qk_status check_learnable_channels(size_t channels, const float *scales, const float *zero_points) {
    qk_status s;
    if (channels && (!scales || !zero_points))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null per-channel parameter array for %zu channels", channels);
    for (size_t c = 0; c < channels; c++)
        if ((s = check_scale(scales[c], c, 1)) || (s = check_float_zero_point(zero_points[c], c, 1))) return s;
    return QK_OK;
}

qk_status qk_fake_quantize_learnable_per_channel_f32(size_t outer, size_t channels, size_t inner, const float *x,
                                                     float *y, uint8_t *mask, const float *scales,
                                                     const float *zero_points, int32_t quant_min, int32_t quant_max) {
    size_t n = 0;
    qk_status s;
    if ((s = check_view(outer, channels, inner, &n)) || (s = check_range(quant_min, quant_max, 0)) ||
        (s = check_pointers(n, 2, x, y, NULL)) || (s = check_learnable_channels(channels, scales, zero_points)))
        return s;
    if (n == 0) return QK_OK;
    float *zps = malloc(channels * sizeof *zps);
    if (!zps) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu channel parameters", channels);
    for (size_t c = 0; c < channels; c++) zps[c] = learnable_channel_zero_point(zero_points[c], quant_min, quant_max);
    s = forward_per_channel(outer, channels, inner, x, y, mask, scales, zps, quant_min, quant_max);
    free(zps);
    return s;
}

/* Runs of one slice: run j of slice sl starts at sl * inner + j * QK_FQ_TILE. */
static void learnable_runs(void *ctx, size_t b, size_t e) {
    const fq_op *o = ctx;
    for (size_t id = b; id < e; id++) {
        const size_t sl = id / o->nseg, j = id % o->nseg;
        const size_t start = sl * o->inner + j * QK_FQ_TILE;
        const size_t len = o->inner - j * QK_FQ_TILE < QK_FQ_TILE ? o->inner - j * QK_FQ_TILE : QK_FQ_TILE;
        o->k->f32_fq_learnable_backward(len, o->x + start, o->dy + start, o->y + start, &o->pc[sl % o->channels],
                                        &o->partial[2 * id], &o->partial[2 * id + 1]);
    }
}

/* inner == 1: rows r0.. (nr of them, one row block) x channels c0.. (nc); partial sums of the block per channel. */
static void learnable_rows(void *ctx, size_t r0, size_t c0, size_t nr, size_t nc) {
    const fq_op *o = ctx;
    const size_t C = o->channels;
    double *ps = o->partial + (r0 / o->row_block) * 2 * C, *pz = ps + C;
    memset(ps + c0, 0, nc * sizeof *ps);
    memset(pz + c0, 0, nc * sizeof *pz);
    for (size_t r = r0; r < r0 + nr; r++) {
        const size_t off = r * C + c0;
        o->k->f32_fq_learnable_backward_pc(nc, o->x + off, o->dy + off, o->y + off, o->scale + c0,
                                           o->inv_scale + c0, o->zero_point + c0, &o->p, ps + c0, pz + c0);
    }
}

/* The learnable backward of [outer, channels, inner] with zero points already rounded (integer-valued floats). */
static qk_status learnable_backward(size_t outer, size_t channels, size_t inner, const float *x, const float *dy,
                                    float *dx, const float *scales, const float *zps, int32_t qmin, int32_t qmax,
                                    float grad_factor, float *grad_scales, float *grad_zps) {
    QK_KERNELS_OR_FAIL(k)
    const size_t n = outer * channels * inner;
    for (size_t c = 0; c < channels; c++) grad_scales[c] = grad_zps[c] = 0.0f;
    if (n == 0) return QK_OK;
    qk_fq_params *pc;
    float *arrays;
    qk_status s = channel_params(channels, scales, zps, qmin, qmax, grad_factor, &pc, &arrays);
    if (s) return s;
    fq_op o;
    memset(&o, 0, sizeof o);
    o.k = k;
    o.x = x;
    o.dy = dy;
    o.y = dx;
    o.channels = channels;
    o.inner = inner;
    o.p = params_of(1.0f, 0.0f, qmin, qmax, grad_factor);
    o.pc = pc;
    o.scale = arrays;
    o.inv_scale = arrays + channels;
    o.zero_point = arrays + 2 * channels;
    if (inner == 1 && channels > 1) {
        /* row blocks of at least 16 rows keep the partial sums at most 16 bytes per 16 elements */
        const size_t rb0 = channels >= QK_FQ_TILE / 16 ? 16 : QK_FQ_TILE / channels;
        const size_t blocks = (outer + rb0 - 1) / rb0;
        o.row_block = rb0;
        o.partial = malloc(blocks * 2 * channels * sizeof *o.partial);
        if (!o.partial) {
            s = qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu partial sums", blocks * 2 * channels);
        } else {
            const size_t cb = channels <= QK_FQ_TILE / rb0 ? channels : QK_FQ_TILE / rb0;
            qk_parallel_for_2d(outer, rb0, channels, cb, learnable_rows, &o);
            for (size_t c = 0; c < channels; c++) {
                double ts = 0.0, tz = 0.0;
                for (size_t bl = 0; bl < blocks; bl++) {
                    ts += o.partial[bl * 2 * channels + c];
                    tz += o.partial[bl * 2 * channels + channels + c];
                }
                grad_scales[c] = (float)ts;
                grad_zps[c] = (float)tz;
            }
        }
    } else {
        o.nseg = (inner + QK_FQ_TILE - 1) / QK_FQ_TILE;
        const size_t runs = outer * channels * o.nseg;
        o.partial = malloc(2 * runs * sizeof *o.partial);
        if (!o.partial) {
            s = qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu partial sums", 2 * runs);
        } else {
            const size_t tile = inner >= QK_FQ_TILE ? 1 : QK_FQ_TILE / inner;
            qk_parallel_for_1d(runs, tile, learnable_runs, &o);
            for (size_t c = 0; c < channels; c++) {
                double ts = 0.0, tz = 0.0;
                for (size_t r = 0; r < outer; r++)
                    for (size_t j = 0; j < o.nseg; j++) {
                        const size_t id = (r * channels + c) * o.nseg + j;
                        ts += o.partial[2 * id];
                        tz += o.partial[2 * id + 1];
                    }
                grad_scales[c] = (float)ts;
                grad_zps[c] = (float)tz;
            }
        }
    }
    free(o.partial);
    free(pc);
    free(arrays);
    return s;
}

qk_status qk_fake_quantize_learnable_per_tensor_backward_f32(size_t n, const float *x, const float *grad_y,
                                                             float *grad_x, float scale, float zero_point,
                                                             int32_t quant_min, int32_t quant_max, float grad_factor,
                                                             float *grad_scale, float *grad_zero_point) {
    qk_status s;
    if ((s = check_range(quant_min, quant_max, 1)) || (s = check_scale(scale, 0, 0)) ||
        (s = check_float_zero_point(zero_point, 0, 0)) || (s = check_pointers(n, 3, x, grad_y, grad_x)))
        return s;
    if (!grad_scale || !grad_zero_point)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null grad_scale / grad_zero_point output");
    if (!isfinite(grad_factor))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "grad_factor must be finite, got %g", (double)grad_factor);
    const float zp = learnable_backward_zero_point(zero_point, quant_min, quant_max);
    return learnable_backward(1, 1, n, x, grad_y, grad_x, &scale, &zp, quant_min, quant_max, grad_factor, grad_scale,
                              grad_zero_point);
}

qk_status qk_fake_quantize_learnable_per_channel_backward_f32(size_t outer, size_t channels, size_t inner,
                                                              const float *x, const float *grad_y, float *grad_x,
                                                              const float *scales, const float *zero_points,
                                                              int32_t quant_min, int32_t quant_max, float grad_factor,
                                                              float *grad_scales, float *grad_zero_points) {
    size_t n = 0;
    qk_status s;
    if ((s = check_view(outer, channels, inner, &n)) || (s = check_range(quant_min, quant_max, 1)) ||
        (s = check_pointers(n, 3, x, grad_y, grad_x)) || (s = check_learnable_channels(channels, scales, zero_points)))
        return s;
    if (channels && (!grad_scales || !grad_zero_points))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null grad_scales / grad_zero_points output");
    if (!isfinite(grad_factor))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "grad_factor must be finite, got %g", (double)grad_factor);
    if (channels == 0) return QK_OK;
    float *zps = malloc(channels * sizeof *zps);
    if (!zps) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu channel parameters", channels);
    for (size_t c = 0; c < channels; c++) zps[c] = learnable_channel_zero_point(zero_points[c], quant_min, quant_max);
    s = learnable_backward(outer, channels, inner, x, grad_y, grad_x, scales, zps, quant_min, quant_max, grad_factor,
                           grad_scales, grad_zero_points);
    free(zps);
    return s;
}

/* ------------------------------------------------------------------------------------------ fused observer qparams */

/* FBGEMM's SMALL_SCALE_THRESHOLD (a float constant). */
static const float qk_fbgemm_small_scale = 6.1e-5f;

/*
 * fbgemm::ChooseQuantizationParams(min, max, qmin, qmax, preserve_sparsity = symmetric, force_scale_power_of_two =
 * false), statement for statement with its float / double / int types (fused_moving_avg_obs_fake_quant on x86).
 * Returns 0 when the range is not finite.
 */
static int fbgemm_choose_qparams(float min, float max, int32_t qmin, int32_t qmax, int symmetric, float *scale_out,
                                 int32_t *zp_out) {
    if (min < 0 && max > 0 && symmetric) {
        const int32_t sym_qmin = -((qmax - qmin) / 2 + 1);
        const int32_t sym_qmax = (qmax - qmin) / 2;
        const float a = fabsf(min / (float)sym_qmin), b = fabsf(max / (float)sym_qmax);
        const double max_scale = a < b ? b : a;   /* std::max(a, b) */
        min = (float)(max_scale * sym_qmin);
        max = (float)(max_scale * sym_qmax);
    }
    min = 0.0f < min ? 0.0f : min;   /* std::min(min, 0.f) */
    max = max < 0.0f ? 0.0f : max;   /* std::max(max, 0.f) */
    if (!isfinite(min) || !isfinite(max)) return 0;
    float scale = (float)(((double)max - min) / (qmax - qmin));
    if (scale == 0.0f || isinf(1.0f / scale)) scale = 0.1f;
    if (scale < qk_fbgemm_small_scale) {
        const float org_scale = scale;
        scale = qk_fbgemm_small_scale;
        if (min == 0.0f) {
            max = qk_fbgemm_small_scale * (float)(qmax - qmin);
        } else if (max == 0.0f) {
            min = -qk_fbgemm_small_scale * (float)(qmax - qmin);
        } else {
            const float amplifier = qk_fbgemm_small_scale / org_scale;
            min *= amplifier;
            max *= amplifier;
        }
    }
    const double zp_from_min = qmin - min / (double)scale;
    const double zp_from_max = qmax - max / (double)scale;
    const double zp_from_min_error = abs(qmin) + fabs(min / (double)scale);   /* FBGEMM adds (ATen subtracts) */
    const double zp_from_max_error = abs(qmax) + fabs(max / (double)scale);
    double initial = zp_from_min_error < zp_from_max_error ? zp_from_min : zp_from_max;
    if (min < 0 && max > 0 && symmetric) initial = (double)(qmin + qmax) / 2;
    int32_t zp;
    if (initial < qmin) zp = qmin;
    else if (initial > qmax) zp = qmax;
    else zp = (int32_t)nearbyint(initial);
    *scale_out = scale;
    *zp_out = zp;
    return 1;
}

qk_status qk_fake_quant_choose_qparams(float min, float max, int32_t quant_min, int32_t quant_max, uint32_t flags,
                                       float *scale, int32_t *zero_point) {
    qk_status s;
    if (!scale || !zero_point) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output pointer for the qparams");
    if (flags & ~(uint32_t)QK_FAKE_QUANT_SYMMETRIC)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "unsupported flags 0x%x (allowed here: QK_FAKE_QUANT_SYMMETRIC)",
                       (unsigned)(flags & ~(uint32_t)QK_FAKE_QUANT_SYMMETRIC));
    if ((s = check_range(quant_min, quant_max, 0))) return s;
    if (quant_min == quant_max)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "quant range [%d, %d] must hold more than one value", quant_min,
                       quant_max);
    if (isnan(min) || isnan(max))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "min %g / max %g: expected numbers, not NaN", (double)min,
                       (double)max);
    if (!fbgemm_choose_qparams(min, max, quant_min, quant_max, (flags & QK_FAKE_QUANT_SYMMETRIC) != 0, scale,
                               zero_point))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "the range [%g, %g] extended to 0 is not finite", (double)min,
                       (double)max);
    return QK_OK;
}
