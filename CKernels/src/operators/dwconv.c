/*
 * Depthwise convolution operator: geometry and weight validation, packing (once per handle, for every kernel layout
 * the CPU can run), and per call the indirection rows, the per-channel output-stage arrays, the zero-point row and
 * the threading over batch x output rows.
 *
 * Indirection (XNNPACK's scheme): an output row's tap pointers are laid out column-major so that neighbouring
 * pixels share columns (stride <= kernel width, no dilation), or one set per pixel otherwise, and padded taps point
 * at the zero-point row. Each tile fills one row of pointers per output row just before the kernel call (about
 * kernel_h * stride_w pointers per pixel, from per-call column offsets), so the kernels get input_offset 0 and
 * nothing proportional to the whole output is allocated. Every output row is one kernel call whatever the tiling,
 * so results do not depend on the thread count.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "qk_dwconv.h"
#include "qk_internal.h"

/* Multiply-adds per tile of output rows, and below which a whole call runs as one tile. */
#define QK_DW_TILE_WORK ((size_t)1 << 17)
#define QK_DW_SMALL ((size_t)1 << 18)
typedef float qk_dw_v4f __attribute__((vector_size(16)));

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

/* ------------------------------------------------------------------------------------------- geometry */

/* The checks of qk_conv2d_output_size, plus taps = kh * kw and the input/output element counts (for channels c). */
static qk_status check_geometry(const qk_conv2d_geometry *g, size_t *oh, size_t *ow) {
    if (!g) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null convolution geometry");
    if (!g->in_h || !g->in_w)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "input size %zu x %zu must be at least 1 x 1", g->in_h, g->in_w);
    if (!g->kernel_h || !g->kernel_w)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "kernel size %zu x %zu must be at least 1 x 1", g->kernel_h,
                       g->kernel_w);
    if (!g->stride_h || !g->stride_w)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "stride %zu x %zu must be at least 1 x 1", g->stride_h, g->stride_w);
    if (!g->dilation_h || !g->dilation_w)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "dilation %zu x %zu must be at least 1 x 1", g->dilation_h,
                       g->dilation_w);
    const size_t in[2] = {g->in_h, g->in_w}, k[2] = {g->kernel_h, g->kernel_w}, d[2] = {g->dilation_h, g->dilation_w};
    const size_t pa[2] = {g->pad_top, g->pad_left}, pb[2] = {g->pad_bottom, g->pad_right};
    const size_t s[2] = {g->stride_h, g->stride_w};
    size_t out[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        size_t padded, span;
        if (__builtin_add_overflow(in[i], pa[i], &padded) || __builtin_add_overflow(padded, pb[i], &padded) ||
            !qk_mul_size(d[i], k[i] - 1, &span) || __builtin_add_overflow(span, 1, &span))
            return qk_fail(QK_ERROR_OVERFLOW, "convolution %s size overflows", i ? "width" : "height");
        if (span > padded)
            return qk_fail(QK_ERROR_INVALID_ARGUMENT, "dilated kernel %s %zu (kernel %zu, dilation %zu) is larger "
                           "than the padded input %s %zu", i ? "width" : "height", span, k[i], d[i],
                           i ? "width" : "height", padded);
        out[i] = (padded - span) / s[i] + 1;
    }
    size_t t;
    if (!qk_mul_size(g->kernel_h, g->kernel_w, &t) || !qk_mul_size(out[0], out[1], &t) ||
        !qk_mul_size(g->in_h, g->in_w, &t) || !qk_mul_size(t, g->batch ? g->batch : 1, &t))
        return qk_fail(QK_ERROR_OVERFLOW, "convolution size overflows");
    *oh = out[0];
    *ow = out[1];
    return QK_OK;
}

qk_status qk_conv2d_output_size(const qk_conv2d_geometry *g, size_t *out_h, size_t *out_w) {
    if (!out_h || !out_w) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output size pointer");
    size_t oh = 0, ow = 0;
    qk_status s = check_geometry(g, &oh, &ow);
    if (s) return s;
    *out_h = oh;
    *out_w = ow;
    return QK_OK;
}

/* ------------------------------------------------------------------------------------------- layouts */

size_t qk_dw_packed_size(uint32_t layout, uint32_t ct, size_t cpad, size_t taps) {
    if (layout == QK_DW_LAYOUT_C) return taps * cpad * sizeof(int16_t);
    (void)ct;
    return (taps + 1) / 2 * cpad * 4;
}

void qk_dw_pack(uint32_t layout, uint32_t ct, size_t out_channels, size_t cpad, size_t taps, const int16_t *wp,
                void *dst) {
    memset(dst, 0, qk_dw_packed_size(layout, ct, cpad, taps));
    if (layout == QK_DW_LAYOUT_C) {
        int16_t *d = dst;
        for (size_t o = 0; o < out_channels; o++)
            for (size_t t = 0; t < taps; t++) d[t * cpad + o] = wp[o * taps + t];
        return;
    }
    /* per tile: groups x 4 vectors x ct/4 words; word (g, v, e) pairs taps 2g and 2g+1 of position v * ct/4 + e */
    uint32_t *d = dst;
    const size_t groups = (taps + 1) / 2;
    for (size_t i = 0; i < cpad; i++) {
        const size_t o = qk_dw_position_channel(layout, ct, i);
        if (o >= out_channels) continue;
        const size_t tile = i / ct, r = i % ct;
        uint32_t *tw = d + tile * groups * ct;
        for (size_t g = 0; g < groups; g++) {
            const uint16_t a = (uint16_t)wp[o * taps + 2 * g];
            const uint16_t b = 2 * g + 1 < taps ? (uint16_t)wp[o * taps + 2 * g + 1] : 0;
            tw[g * ct + r] = (uint32_t)a | (uint32_t)b << 16;
        }
    }
}

/* ------------------------------------------------------------------------------------------- weights */

static qk_status check_dw_shape(size_t channels, size_t multiplier, size_t kh, size_t kw, size_t *out_channels,
                                size_t *taps, size_t *cpad) {
    if (!channels || !multiplier || !kh || !kw)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "channels (%zu), depth multiplier (%zu) and kernel size (%zu x %zu) "
                       "must be at least 1", channels, multiplier, kh, kw);
    size_t b;
    if (!qk_mul_size(channels, multiplier, out_channels) || !qk_mul_size(kh, kw, taps) ||
        *out_channels > SIZE_MAX / 2 - QK_DW_CPAD || !qk_mul_size(round_up(*out_channels, QK_DW_CPAD), *taps + 1, &b) ||
        !qk_mul_size(b, 8, &b))
        return qk_fail(QK_ERROR_OVERFLOW, "depthwise weights of %zu x %zu channels, kernel %zu x %zu overflow",
                       channels, multiplier, kh, kw);
    *cpad = round_up(*out_channels, QK_DW_CPAD);
    return QK_OK;
}

static void *aligned_zalloc(size_t bytes) {
    const size_t alloc = round_up(bytes ? bytes : 1, 64);
    void *p = aligned_alloc(64, alloc);
    if (p) memset(p, 0, alloc);
    return p;
}

void qk_qs8_dwconv_weights_destroy(qk_qs8_dwconv_weights *w) {
    if (!w) return;
    free(w->w_scales);
    free(w->bias);
    free(w->wsum);
    for (int i = 0; i < QK_DW_PACK_COUNT; i++) free(w->packed[i]);
    free(w);
}

qk_status qk_qs8_dwconv_weights_create(size_t channels, size_t multiplier, size_t kh, size_t kw,
                                       const int8_t *weights, qk_qscheme qscheme, const float *scales,
                                       const int32_t *zero_points, const float *bias, qk_qs8_dwconv_weights **out) {
    if (!out) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output pointer for the depthwise weights handle");
    *out = NULL;
    const qk_kernel_table *t = qk_kernels();
    if (!t) return qk_runtime_init();
    size_t oc, taps, cpad;
    qk_status s = check_dw_shape(channels, multiplier, kh, kw, &oc, &taps, &cpad);
    if (s) return s;
    if ((s = qk_check_weight_qscheme(qscheme))) return s;
    if (!weights) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null depthwise weights");
    const int pc = qscheme == QK_QSCHEME_PER_CHANNEL;
    if ((s = qk_check_weight_qparams(pc ? oc : 1, scales, zero_points))) return s;
    qk_qs8_dwconv_weights *w = calloc(1, sizeof *w);
    int16_t *wp = malloc(oc * taps * sizeof(int16_t));
    if (w) {   /* padded to cpad (scale 1, sum 0, bias 0) so the per-call loops run over whole blocks */
        w->w_scales = malloc(cpad * sizeof(float));
        w->wsum = calloc(cpad, sizeof(int32_t));
        w->bias = bias ? calloc(cpad, sizeof(float)) : NULL;
    }
    if (!w || !wp || !w->w_scales || !w->wsum || (bias && !w->bias)) {
        free(wp);
        qk_qs8_dwconv_weights_destroy(w);
        return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for depthwise weights (%zu channels x %zu taps)", oc,
                       taps);
    }
    w->channels = channels;
    w->multiplier = multiplier;
    w->out_channels = oc;
    w->kh = kh;
    w->kw = kw;
    w->taps = taps;
    w->cpad = cpad;
    w->per_channel = pc;
    /* w' = w - zw, taps column-major (t = kx * kh + ky) from PyTorch's row-major [o][ky][kx] */
    for (size_t o = 0; o < oc; o++) {
        const int32_t zw = zero_points ? zero_points[pc ? o : 0] : 0;
        uint32_t sum = 0;   /* mod 2^32, like every int32 term of the sum */
        for (size_t ky = 0; ky < kh; ky++)
            for (size_t kx = 0; kx < kw; kx++) {
                const int32_t v = (int32_t)weights[(o * kh + ky) * kw + kx] - zw;
                wp[o * taps + kx * kh + ky] = (int16_t)v;
                sum += (uint32_t)v;
            }
        w->wsum[o] = (int32_t)sum;
        w->w_scales[o] = scales[pc ? o : 0];
        if (bias) w->bias[o] = bias[o];
    }
    for (size_t o = oc; o < cpad; o++) w->w_scales[o] = 1.0f;
    /* Pack for every layout a variant runnable on this CPU uses (always layout C: the scalar reference). */
    const uint32_t cpu = qk_cpu_features();
    int want[QK_DW_PACK_COUNT] = {1, 0, 0};
    uint32_t want_ct[QK_DW_PACK_COUNT] = {1, 32, 64};
    for (size_t i = 0; i < qk_qu8_dwconv_config_count; i++) {
        const qk_qu8_dwconv_config *c = &qk_qu8_dwconv_configs[i];
        if (c->required & ~cpu) continue;
        want[qk_dw_pack_slot(c->layout, c->ct)] = 1;
    }
    for (int i = 0; i < QK_DW_PACK_COUNT; i++) {
        if (!want[i]) continue;
        const uint32_t layout = i == QK_DW_PACK_C ? QK_DW_LAYOUT_C : QK_DW_LAYOUT_PAIRS;
        const size_t bytes = qk_dw_packed_size(layout, want_ct[i], cpad, taps);
        w->packed[i] = aligned_zalloc(bytes);
        if (!w->packed[i]) {
            free(wp);
            qk_qs8_dwconv_weights_destroy(w);
            return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for %zu bytes of packed depthwise weights", bytes);
        }
        qk_dw_pack(layout, want_ct[i], oc, cpad, taps, wp, w->packed[i]);
        w->packed_bytes += bytes;
    }
    free(wp);
    (void)t;
    *out = w;
    return QK_OK;
}

size_t qk_qs8_dwconv_weights_channels(const qk_qs8_dwconv_weights *w) { return w ? w->channels : 0; }
size_t qk_qs8_dwconv_weights_depth_multiplier(const qk_qs8_dwconv_weights *w) { return w ? w->multiplier : 0; }
size_t qk_qs8_dwconv_weights_kernel_h(const qk_qs8_dwconv_weights *w) { return w ? w->kh : 0; }
size_t qk_qs8_dwconv_weights_kernel_w(const qk_qs8_dwconv_weights *w) { return w ? w->kw : 0; }
size_t qk_qs8_dwconv_weights_packed_bytes(const qk_qs8_dwconv_weights *w) { return w ? w->packed_bytes : 0; }

static const qk_qu8_dwconv_config *pick_qu8(const qk_kernel_table *t, const qk_qs8_dwconv_weights *w) {
    if (w->pinned) return w->pinned;
    const qk_qu8_dwconv_config *c = t->qu8_dwconv[w->taps == 9];
    /* a handle made before the CPU's features were known cannot lack a layout; fall back to C all the same */
    if (!w->packed[qk_dw_pack_slot(c->layout, c->ct)]) c = &qk_qu8_dwconv_configs[qk_qu8_dwconv_config_count - 1];
    return c;
}

const char *qk_qs8_dwconv_weights_kernel(const qk_qs8_dwconv_weights *w) {
    const qk_kernel_table *t = qk_kernels();
    if (!w || !t) return "none";
    return pick_qu8(t, w)->name;
}

void qk_f32_dwconv_weights_destroy(qk_f32_dwconv_weights *w) {
    if (!w) return;
    free(w->packed);
    free(w);
}

qk_status qk_f32_dwconv_weights_create(size_t channels, size_t multiplier, size_t kh, size_t kw,
                                       const float *weights, const float *bias, qk_f32_dwconv_weights **out) {
    if (!out) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output pointer for the depthwise weights handle");
    *out = NULL;
    const qk_kernel_table *t = qk_kernels();
    if (!t) return qk_runtime_init();
    size_t oc, taps, cpad;
    qk_status s = check_dw_shape(channels, multiplier, kh, kw, &oc, &taps, &cpad);
    if (s) return s;
    if (!weights) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null depthwise weights");
    qk_f32_dwconv_weights *w = calloc(1, sizeof *w);
    const size_t bytes = (taps + 1) * cpad * sizeof(float);
    if (w) w->packed = aligned_zalloc(bytes);
    if (!w || !w->packed) {
        qk_f32_dwconv_weights_destroy(w);
        return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for %zu bytes of packed depthwise weights", bytes);
    }
    w->channels = channels;
    w->multiplier = multiplier;
    w->out_channels = oc;
    w->kh = kh;
    w->kw = kw;
    w->taps = taps;
    w->cpad = cpad;
    w->packed_bytes = bytes;
    for (size_t o = 0; o < oc; o++) {
        w->packed[o] = bias ? bias[o] : 0.0f;
        for (size_t ky = 0; ky < kh; ky++)
            for (size_t kx = 0; kx < kw; kx++)
                w->packed[(1 + kx * kh + ky) * cpad + o] = weights[(o * kh + ky) * kw + kx];
    }
    *out = w;
    return QK_OK;
}

size_t qk_f32_dwconv_weights_channels(const qk_f32_dwconv_weights *w) { return w ? w->channels : 0; }
size_t qk_f32_dwconv_weights_depth_multiplier(const qk_f32_dwconv_weights *w) { return w ? w->multiplier : 0; }
size_t qk_f32_dwconv_weights_kernel_h(const qk_f32_dwconv_weights *w) { return w ? w->kh : 0; }
size_t qk_f32_dwconv_weights_kernel_w(const qk_f32_dwconv_weights *w) { return w ? w->kw : 0; }
size_t qk_f32_dwconv_weights_packed_bytes(const qk_f32_dwconv_weights *w) { return w ? w->packed_bytes : 0; }

static const qk_f32_dwconv_config *pick_f32(const qk_kernel_table *t, const qk_f32_dwconv_weights *w) {
    return w->pinned ? w->pinned : t->f32_dwconv[w->taps == 9];
}

const char *qk_f32_dwconv_weights_kernel(const qk_f32_dwconv_weights *w) {
    const qk_kernel_table *t = qk_kernels();
    if (!w || !t) return "none";
    return pick_f32(t, w)->name;
}

/* ------------------------------------------------------------------------------------------- indirection */

typedef struct dw_plan {
    size_t n, h, w, c;             /* input batch, size, channels (after the depth-multiplier expansion) */
    size_t oh, ow, kh, kw, taps;
    size_t elem;                   /* bytes per element */
    size_t stride;                 /* pointers per output pixel */
    size_t cols;                   /* pointer columns (of kh pointers) per output row */
    size_t row_len;                /* cols * kh */
    const qk_conv2d_geometry *g;
    ptrdiff_t *colx;               /* [cols] byte offset of the column's pixel in an input row, or -1 (padding) */
} dw_plan;

static qk_status dw_prepare(const qk_conv2d_geometry *g, size_t oh, size_t ow, size_t c, size_t elem, dw_plan *p) {
    memset(p, 0, sizeof *p);
    p->g = g;
    p->n = g->batch;
    p->h = g->in_h;
    p->w = g->in_w;
    p->c = c;
    p->oh = oh;
    p->ow = ow;
    p->kh = g->kernel_h;
    p->kw = g->kernel_w;
    p->taps = g->kernel_h * g->kernel_w;
    p->elem = elem;
    /* shared: pixel x's columns are x * stride_w .. + kw - 1, overlapping its neighbours'; else kw columns each */
    const int shared = g->dilation_w == 1 && g->stride_w <= g->kernel_w;
    p->cols = shared ? (ow - 1) * g->stride_w + g->kernel_w : ow * g->kernel_w;
    p->stride = (shared ? g->stride_w : g->kernel_w) * g->kernel_h;
    if (!qk_mul_size(p->cols, p->kh, &p->row_len) || p->row_len > SIZE_MAX / sizeof(void *))
        return qk_fail(QK_ERROR_OVERFLOW, "depthwise indirection row of %zu x %zu pointers overflows", p->cols, p->kh);
    p->colx = malloc(p->cols * sizeof(ptrdiff_t));
    if (!p->colx) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for %zu indirection columns", p->cols);
    for (size_t j = 0; j < p->cols; j++) {
        const size_t x = shared ? j : (j / p->kw) * g->stride_w + (j % p->kw) * g->dilation_w;
        p->colx[j] = x >= g->pad_left && x - g->pad_left < p->w ? (ptrdiff_t)((x - g->pad_left) * c * elem) : -1;
    }
    return QK_OK;
}

static void dw_plan_free(dw_plan *p) { free(p->colx); }

/* Fills the pointers of output row (n, oy) for element type T; taps in the padding point at `zero`. */
#define QK_DW_FILL(T)                                                                                          \
    static void dw_fill_##T(const dw_plan *p, const T *x, const T *zero, size_t n, size_t oy, const T **r) {   \
        const qk_conv2d_geometry *g = p->g;                                                                    \
        const size_t kh = p->kh;                                                                               \
        for (size_t ky = 0; ky < kh; ky++) {                                                                   \
            const size_t y = oy * g->stride_h + ky * g->dilation_h;                                            \
            if (y < g->pad_top || y - g->pad_top >= p->h) {                                                    \
                for (size_t j = 0; j < p->cols; j++) r[j * kh + ky] = zero;                                    \
                continue;                                                                                      \
            }                                                                                                  \
            const unsigned char *base =                                                                        \
                (const unsigned char *)x + ((n * p->h + y - g->pad_top) * p->w) * p->c * p->elem;              \
            for (size_t j = 0; j < p->cols; j++) {                                                             \
                const ptrdiff_t off = p->colx[j];                                                              \
                r[j * kh + ky] = off < 0 ? zero : (const T *)(base + off);                                     \
            }                                                                                                  \
        }                                                                                                      \
    }
QK_DW_FILL(uint8_t)
QK_DW_FILL(float)

/* Rows per parallel tile; the whole call as one tile when it is small. */
static void dw_tiles(const dw_plan *p, size_t *tile_n, size_t *tile_rows) {
    const size_t row_work = p->ow * p->c * p->taps;
    if (p->n * p->oh * row_work <= QK_DW_SMALL) {
        *tile_n = p->n;
        *tile_rows = p->oh;
        return;
    }
    *tile_n = 1;
    size_t r = QK_DW_TILE_WORK / (row_work ? row_work : 1);
    *tile_rows = r < 1 ? 1 : r > p->oh ? p->oh : r;
}

/* Depth multiplier > 1: each input channel repeated `m` times, so the kernels see one input channel per output. */
typedef struct expand_op {
    const unsigned char *x;
    unsigned char *xe;
    size_t c, m, elem;
} expand_op;

static void expand_pixels(void *ctx, size_t begin, size_t end) {
    const expand_op *o = ctx;
    const size_t e = o->elem;
    for (size_t px = begin; px < end; px++) {
        const unsigned char *s = o->x + px * o->c * e;
        unsigned char *d = o->xe + px * o->c * o->m * e;
        for (size_t ch = 0; ch < o->c; ch++)
            for (size_t j = 0; j < o->m; j++) memcpy(d + (ch * o->m + j) * e, s + ch * e, e);
    }
}

static const void *expand_input(const qk_conv2d_geometry *g, const void *x, size_t c, size_t m, size_t elem,
                                void **buf) {
    *buf = NULL;
    if (m == 1) return x;
    const size_t pixels = g->batch * g->in_h * g->in_w;
    *buf = malloc(pixels * c * m * elem);   /* sizes were checked by the caller */
    if (!*buf) return NULL;
    expand_op o = {x, *buf, c, m, elem};
    qk_parallel_for_1d(pixels, QK_STREAM_TILE / (c * m * elem) + 1, expand_pixels, &o);
    return *buf;
}

/* Validation shared by the two entry points; returns the output size. */
static qk_status check_run(const qk_conv2d_geometry *g, size_t kh, size_t kw, size_t channels, size_t oc,
                           const void *x, const void *y, size_t elem, uint32_t flags, size_t *oh, size_t *ow) {
    qk_status s = check_geometry(g, oh, ow);
    if (s) return s;
    if (g->kernel_h != kh || g->kernel_w != kw)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "geometry kernel %zu x %zu does not match the weights' %zu x %zu",
                       g->kernel_h, g->kernel_w, kh, kw);
    if (flags & ~(uint32_t)QK_CONV_RELU)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "unsupported flags 0x%x (allowed: QK_CONV_RELU)",
                       flags & ~(uint32_t)QK_CONV_RELU);
    size_t t;
    /* input (expanded when multiplier > 1) and output element counts, in bytes */
    if (!qk_mul_size(g->batch, g->in_h * g->in_w, &t) || !qk_mul_size(t, oc, &t) || !qk_mul_size(t, elem, &t) ||
        !qk_mul_size(g->batch, *oh * *ow, &t) || !qk_mul_size(t, oc, &t) || !qk_mul_size(t, elem, &t) ||
        !qk_mul_size(*oh * *ow, g->kernel_h * g->kernel_w, &t) || !qk_mul_size(t, oc, &t))
        return qk_fail(QK_ERROR_OVERFLOW, "depthwise convolution of %zu x %zu x %zu x %zu overflows", g->batch,
                       g->in_h, g->in_w, channels);
    if (g->batch && !x) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null input");
    if (g->batch && !y) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output");
    return QK_OK;
}

/* ------------------------------------------------------------------------------------------- int8 run */

typedef struct qu8_op {
    const qk_qu8_dwconv_config *cfg;
    const dw_plan *p;
    const uint8_t *x, *zero;
    const void *packed;
    uint8_t *y;
    qk_dwconv_qparams qp;
    atomic_int out_of_memory;
} qu8_op;

static void qu8_rows(void *ctx, size_t n0, size_t oy0, size_t nn, size_t noy) {
    qu8_op *o = ctx;
    const dw_plan *p = o->p;
    const uint8_t **rows = malloc(p->row_len * sizeof *rows);
    if (!rows) {
        atomic_store(&o->out_of_memory, 1);
        return;
    }
    for (size_t n = n0; n < n0 + nn; n++)
        for (size_t oy = oy0; oy < oy0 + noy; oy++) {
            dw_fill_uint8_t(p, o->x, o->zero, n, oy, rows);
            o->cfg->fn(p->c, p->ow, p->taps, rows, p->stride, 0, o->zero, o->packed,
                       o->y + ((n * p->oh + oy) * p->ow) * p->c, &o->qp);
        }
    free(rows);
}

qk_status qk_qs8_dwconv_q8(const qk_qs8_dwconv_weights *w, const qk_conv2d_geometry *g, const uint8_t *x,
                           float x_scale, int32_t x_zero_point, uint8_t *y, float y_scale, int32_t y_zero_point,
                           uint32_t flags) {
    const qk_kernel_table *t = qk_kernels();
    if (!t) return qk_runtime_init();
    if (!w) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null depthwise weights handle");
    size_t oh = 0, ow = 0;
    qk_status s;
    if ((s = check_run(g, w->kh, w->kw, w->channels, w->out_channels, x, y, 1, flags, &oh, &ow)) ||
        (s = qk_check_scale(x_scale, "input scale")) || (s = qk_check_scale(y_scale, "output scale")) ||
        (s = qk_check_zero_point(QK_DTYPE_QUINT8, x_zero_point, "input zero point")) ||
        (s = qk_check_zero_point(QK_DTYPE_QUINT8, y_zero_point, "output zero point")))
        return s;
    if (!g->batch) return QK_OK;
    const qk_qu8_dwconv_config *cfg = pick_qu8(t, w);
    const size_t oc = w->out_channels, cpad = w->cpad;
    dw_plan p;
    if ((s = dw_prepare(g, oh, ow, oc, 1, &p))) {
        dw_plan_free(&p);
        return s;
    }
    void *xbuf = NULL;
    /* One block: comp, bias_term, multiplier in the kernel's order, the same three in channel order (the kernel's
     * own for layout C), then the zero-point row. */
    unsigned char *block = malloc(6 * cpad * sizeof(float) + cpad + QK_DW_CPAD);
    const uint8_t *xin = block ? expand_input(g, x, w->channels, w->multiplier, 1, &xbuf) : NULL;
    if (!xin) {
        s = qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for the depthwise call buffers");
    } else {
        int32_t *ncomp = (int32_t *)block;
        float *nbt = (float *)(ncomp + cpad), *nmult = nbt + cpad;
        int32_t *comp = (int32_t *)(nmult + cpad);
        float *bt = (float *)(comp + cpad), *mult = bt + cpad;
        uint8_t *zero = (uint8_t *)(mult + cpad);
        /* qk_qs8_gemm_q8's formulas, 4 channels at a time (vector extensions: IEEE division like the scalar one) */
        const float *ws = w->w_scales, *bias = w->bias;
        const int32_t *wsum = w->wsum;
        const uint32_t zx = (uint32_t)x_zero_point;
        const float aws0 = x_scale * ws[0], inv0 = (float)(1.0 / (double)aws0);
        for (size_t o = 0; o < cpad; o += 4) {
            qk_dw_v4f wv, b = {0.0f, 0.0f, 0.0f, 0.0f}, aws, m, bt4;
            memcpy(&wv, ws + o, sizeof wv);
            if (bias) memcpy(&b, bias + o, sizeof b);
            aws = x_scale * wv;
            m = aws / y_scale;
            bt4 = w->per_channel ? b / aws : b * inv0;
            memcpy(nmult + o, &m, sizeof m);
            memcpy(nbt + o, &bt4, sizeof bt4);
        }
        for (size_t o = 0; o < cpad; o++) ncomp[o] = (int32_t)(0u - zx * (uint32_t)wsum[o]);
        if (cfg->layout == QK_DW_LAYOUT_C) {
            comp = ncomp;
            bt = nbt;
            mult = nmult;
        } else {   /* qk_dw_position_channel without its divisions */
            const size_t ct = cfg->ct, q = ct / 4;
            for (size_t tile = 0; tile < cpad; tile += ct)
                for (size_t v = 0; v < 4; v++)
                    for (size_t e = 0; e < q; e++) {
                        const size_t i = tile + v * q + e, o = tile + 16 * (e / 4) + 4 * v + e % 4;
                        comp[i] = ncomp[o];
                        bt[i] = nbt[o];
                        mult[i] = nmult[o];
                    }
        }
        memset(zero, x_zero_point, cpad + QK_DW_CPAD);
        qu8_op o;
        o.cfg = cfg;
        o.p = &p;
        o.x = xin;
        o.zero = zero;
        atomic_init(&o.out_of_memory, 0);
        o.packed = w->packed[qk_dw_pack_slot(cfg->layout, cfg->ct)];
        o.y = y;
        o.qp.comp = comp;
        o.qp.bias_term = bt;
        o.qp.multiplier = mult;
        o.qp.out_zero_point = y_zero_point;
        o.qp.out_min = (flags & QK_CONV_RELU) ? y_zero_point : 0;
        o.qp.out_max = 255;
        size_t tn, tr;
        dw_tiles(&p, &tn, &tr);
        qk_parallel_for_2d(p.n, tn, p.oh, tr, qu8_rows, &o);
        if (atomic_load(&o.out_of_memory))
            s = qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for an indirection row; the output is incomplete");
    }
    free(block);
    free(xbuf);
    dw_plan_free(&p);
    return s;
}

/* ------------------------------------------------------------------------------------------- fp32 run */

typedef struct f32_op {
    const qk_f32_dwconv_config *cfg;
    const dw_plan *p;
    const float *x, *zero;
    const float *packed;
    float *y;
    int relu;
    atomic_int out_of_memory;
} f32_op;

static void f32_rows(void *ctx, size_t n0, size_t oy0, size_t nn, size_t noy) {
    f32_op *o = ctx;
    const dw_plan *p = o->p;
    const float **rows = malloc(p->row_len * sizeof *rows);
    if (!rows) {
        atomic_store(&o->out_of_memory, 1);
        return;
    }
    for (size_t n = n0; n < n0 + nn; n++)
        for (size_t oy = oy0; oy < oy0 + noy; oy++) {
            dw_fill_float(p, o->x, o->zero, n, oy, rows);
            o->cfg->fn(p->c, p->ow, p->taps, rows, p->stride, 0, o->zero, o->packed,
                       o->y + ((n * p->oh + oy) * p->ow) * p->c, o->relu);
        }
    free(rows);
}

qk_status qk_f32_dwconv(const qk_f32_dwconv_weights *w, const qk_conv2d_geometry *g, const float *x, float *y,
                        uint32_t flags) {
    const qk_kernel_table *t = qk_kernels();
    if (!t) return qk_runtime_init();
    if (!w) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null depthwise weights handle");
    size_t oh = 0, ow = 0;
    qk_status s = check_run(g, w->kh, w->kw, w->channels, w->out_channels, x, y, sizeof(float), flags, &oh, &ow);
    if (s) return s;
    if (!g->batch) return QK_OK;
    dw_plan p;
    if ((s = dw_prepare(g, oh, ow, w->out_channels, sizeof(float), &p))) {
        dw_plan_free(&p);
        return s;
    }
    void *xbuf = NULL;
    float *zero = calloc(w->cpad + QK_DW_CPAD, sizeof(float));
    const float *xin = zero ? expand_input(g, x, w->channels, w->multiplier, sizeof(float), &xbuf) : NULL;
    if (!xin) {
        s = qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for the depthwise call buffers");
    } else {
        f32_op o;
        o.cfg = pick_f32(t, w);
        o.p = &p;
        o.x = xin;
        o.zero = zero;
        o.packed = w->packed;
        o.y = y;
        o.relu = (flags & QK_CONV_RELU) != 0;
        atomic_init(&o.out_of_memory, 0);
        size_t tn, tr;
        dw_tiles(&p, &tn, &tr);
        qk_parallel_for_2d(p.n, tn, p.oh, tr, f32_rows, &o);
        if (atomic_load(&o.out_of_memory))
            s = qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for an indirection row; the output is incomplete");
    }
    free(zero);
    free(xbuf);
    dw_plan_free(&p);
    return s;
}
