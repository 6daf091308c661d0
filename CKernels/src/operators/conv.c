/*
 * Quantized convolution with any groups: validation, weight re-ordering, and the choice of path per handle.
 *
 * groups == in_channels is depthwise and runs the depthwise operator (dwconv.c) unchanged. Otherwise each group is
 * one int8 GEMM, y[rows, ocg] = A[rows, k] * W_g[ocg, k]^T with one row per output pixel: for 1x1 kernels with stride
 * 1 and no padding A is x itself (row stride in_channels, offset by the group's first channel); otherwise A is the
 * im2col matrix, whose row for output pixel (n, oy, ox) holds the group's input channels at every tap (ky, kx) in
 * that order, padded taps reading x_zero_point. The GEMM driver asks for those rows chunk by chunk (a few MB each)
 * through a fill callback that writes them directly in its kernel's format (uint16 for the exact AVX2 kernel), so
 * each row is written once and read from cache. The GEMM fixes its tiles from the problem alone, so results do not
 * depend on the thread count, and every path is exact, so they do not depend on the ISA level either.
 */
#include <stdlib.h>
#include <string.h>

#include "qk_conv.h"
#include "qk_internal.h"

/* Prepared im2col rows per chunk: large enough for whole row tiles on every thread, small enough to stay in L2/L3. */
#ifndef QK_CONV_CHUNK_BYTES
#define QK_CONV_CHUNK_BYTES ((size_t)2 << 20)
#endif

typedef uint8_t qk_conv_v16u8 __attribute__((vector_size(16)));
typedef uint16_t qk_conv_v16u16 __attribute__((vector_size(32)));

/* ------------------------------------------------------------------------------------------- weights */

void qk_qs8_conv2d_weights_destroy(qk_qs8_conv2d_weights *w) {
    if (!w) return;
    qk_qs8_dwconv_weights_destroy(w->dw);
    if (w->gemm)
        for (size_t g = 0; g < w->groups; g++) qk_qs8_gemm_weights_destroy(w->gemm[g]);
    free(w->gemm);
    free(w);
}

qk_status qk_qs8_conv2d_weights_create(size_t in_channels, size_t out_channels, size_t groups, size_t kernel_h,
                                       size_t kernel_w, const int8_t *weights, qk_qscheme qscheme,
                                       const float *scales, const int32_t *zero_points, const float *bias,
                                       qk_qs8_conv2d_weights **out) {
    if (!out) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output pointer for the convolution weights handle");
    *out = NULL;
    const qk_kernel_table *t = qk_kernels();
    if (!t) return qk_runtime_init();
    if (!in_channels || !out_channels || !groups || !kernel_h || !kernel_w)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "in_channels (%zu), out_channels (%zu), groups (%zu) and kernel size "
                       "(%zu x %zu) must be at least 1", in_channels, out_channels, groups, kernel_h, kernel_w);
    if (in_channels % groups || out_channels % groups)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "groups (%zu) must divide in_channels (%zu) and out_channels (%zu)",
                       groups, in_channels, out_channels);
    qk_status s = qk_check_weight_qscheme(qscheme);
    if (s) return s;
    const size_t icg = in_channels / groups, ocg = out_channels / groups;
    size_t k, total;
    if (!qk_mul_size(kernel_h, kernel_w, &k) || !qk_mul_size(k, icg, &k) || !qk_mul_size(k, out_channels, &total))
        return qk_fail(QK_ERROR_OVERFLOW, "convolution weights [%zu, %zu, %zu, %zu] overflow", out_channels, icg,
                       kernel_h, kernel_w);
    if (!weights) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null convolution weights");
    const int pc = qscheme == QK_QSCHEME_PER_CHANNEL;
    if ((s = qk_check_weight_qparams(pc ? out_channels : 1, scales, zero_points))) return s;

    qk_qs8_conv2d_weights *w = calloc(1, sizeof *w);
    if (!w) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for the convolution weights handle");
    w->in_channels = in_channels;
    w->out_channels = out_channels;
    w->groups = groups;
    w->kh = kernel_h;
    w->kw = kernel_w;
    w->icg = icg;
    w->ocg = ocg;
    w->k = k;
    /* depthwise: PyTorch's [out_channels, 1, kh, kw] is the depthwise layout. One input channel (a first layer on
     * grey images) is a plain GEMM with K = kh * kw instead: one pass over the input feeds every output channel. */
    if (groups == in_channels && in_channels > 1) {
        s = qk_qs8_dwconv_weights_create(in_channels, ocg, kernel_h, kernel_w, weights, qscheme, scales, zero_points,
                                         bias, &w->dw);
        if (s) {
            qk_qs8_conv2d_weights_destroy(w);
            return s;
        }
        w->packed_bytes = qk_qs8_dwconv_weights_packed_bytes(w->dw);
        *out = w;
        return QK_OK;
    }
    w->gemm = calloc(groups, sizeof *w->gemm);
    int8_t *wg = malloc(ocg * k);   /* one group's weights with K re-ordered (ky, kx, c) */
    if (!w->gemm || !wg) {
        free(wg);
        qk_qs8_conv2d_weights_destroy(w);
        return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for convolution weights of %zu bytes", total);
    }
    const size_t taps = kernel_h * kernel_w;
    for (size_t g = 0; g < groups && !s; g++) {
        for (size_t o = 0; o < ocg; o++) {
            const int8_t *src = weights + (g * ocg + o) * k;   /* [icg][kh][kw] */
            int8_t *dst = wg + o * k;
            for (size_t c = 0; c < icg; c++)
                for (size_t tap = 0; tap < taps; tap++) dst[tap * icg + c] = src[c * taps + tap];
        }
        const size_t q = pc ? g * ocg : 0;   /* this group's slice of the per-channel parameters */
        s = qk_qs8_gemm_weights_create(ocg, k, wg, qscheme, scales + q, zero_points ? zero_points + q : NULL,
                                       bias ? bias + g * ocg : NULL, &w->gemm[g]);
        if (!s) w->packed_bytes += qk_qs8_gemm_weights_packed_bytes(w->gemm[g]);
    }
    free(wg);
    if (s) {
        qk_qs8_conv2d_weights_destroy(w);
        return s;
    }
    *out = w;
    return QK_OK;
}

size_t qk_qs8_conv2d_weights_in_channels(const qk_qs8_conv2d_weights *w) { return w ? w->in_channels : 0; }
size_t qk_qs8_conv2d_weights_out_channels(const qk_qs8_conv2d_weights *w) { return w ? w->out_channels : 0; }
size_t qk_qs8_conv2d_weights_groups(const qk_qs8_conv2d_weights *w) { return w ? w->groups : 0; }
size_t qk_qs8_conv2d_weights_kernel_h(const qk_qs8_conv2d_weights *w) { return w ? w->kh : 0; }
size_t qk_qs8_conv2d_weights_kernel_w(const qk_qs8_conv2d_weights *w) { return w ? w->kw : 0; }
size_t qk_qs8_conv2d_weights_packed_bytes(const qk_qs8_conv2d_weights *w) { return w ? w->packed_bytes : 0; }

/* The names with their path, as static strings (the handle is shared by threads and the ISA level may change). */
#define QK__GEMM_NAMES(fn, mr, nr, kr, req, flags) {#fn, "1x1 gemm " #fn, "im2col gemm " #fn},
static const char *const gemm_names[][3] = {QK_GEMM_VARIANTS(QK__GEMM_NAMES)};
#undef QK__GEMM_NAMES
#define QK__DW_NAMES(fn, taps, layout, ct, req) {#fn, "depthwise " #fn},
static const char *const dw_names[][2] = {QK_QU8_DWCONV_VARIANTS(QK__DW_NAMES)};
#undef QK__DW_NAMES

const char *qk_qs8_conv2d_weights_kernel(const qk_qs8_conv2d_weights *w) {
    if (!w) return "none";
    if (w->dw) {
        const char *name = qk_qs8_dwconv_weights_kernel(w->dw);
        for (size_t i = 0; i < sizeof dw_names / sizeof *dw_names; i++)
            if (!strcmp(name, dw_names[i][0])) return dw_names[i][1];
        return "none";
    }
    const char *name = qk_qs8_gemm_weights_kernel(w->gemm[0], 0);
    for (size_t i = 0; i < sizeof gemm_names / sizeof *gemm_names; i++)
        if (!strcmp(name, gemm_names[i][0])) return gemm_names[i][w->kh == 1 && w->kw == 1 ? 1 : 2];
    return "none";
}

/* ------------------------------------------------------------------------------------------- im2col */

typedef struct im2col_op {
    const qk_conv2d_geometry *g;
    const uint8_t *x;       /* the group's first channel of pixel (0, 0, 0) */
    size_t ic, icg, oh, ow, k;
    uint8_t zero;           /* x_zero_point: what padded taps read */
    size_t small_w;         /* > 0: values in one padded input row for im2col_fill_small (else 0: not eligible) */
} im2col_op;

static void widen(uint16_t *d, const uint8_t *s, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        qk_conv_v16u8 v;
        memcpy(&v, s + i, sizeof v);
        const qk_conv_v16u16 w = __builtin_convertvector(v, qk_conv_v16u16);
        memcpy(d + i, &w, sizeof w);
    }
    for (; i < n; i++) d[i] = s[i];
}

static void fill16(uint16_t *d, uint16_t v, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = v;
}

/* Stack bytes im2col_fill_small may use for its kh padded input rows (+ 8 bytes of slack each). */
#define QK_IM2COL_SMALL_BYTES 4096

/* Whether the rows of this convolution can be made by im2col_fill_small: a kernel row of at most 64 values
 * (kw * icg: 3x3 on one channel is 3, on 16 channels 48), all channels in the group, unit dilation along x, and kh
 * padded input rows of uint16 that fit its stack buffer. Returns the padded row's values, or 0. */
static size_t im2col_small_width(const qk_conv2d_geometry *g, size_t ic, size_t icg, size_t ow) {
    if (icg != ic || g->dilation_w != 1 || g->kernel_w * icg > 64) return 0;
    const size_t wp = ((ow - 1) * g->stride_w + g->kernel_w) * icg;   /* every tap of every output column */
    if (g->kernel_h > QK_IM2COL_SMALL_BYTES / 16 || (2 * wp + 8) > QK_IM2COL_SMALL_BYTES / g->kernel_h) return 0;
    return wp;
}

/* Copies 8 * n8 bytes (n8 in 1..16) with a constant-size copy per case: inlined moves, where a loop of 8-byte copies
 * would become a memcpy call per kernel row. */
static inline void copy_8n(uint8_t *d, const uint8_t *s, size_t n8) {
#define QK__COPY(n) case n: memcpy(d, s, 8 * n); break;
    switch (n8) {
    QK__COPY(1) QK__COPY(2) QK__COPY(3) QK__COPY(4) QK__COPY(5) QK__COPY(6) QK__COPY(7) QK__COPY(8)
    QK__COPY(9) QK__COPY(10) QK__COPY(11) QK__COPY(12) QK__COPY(13) QK__COPY(14) QK__COPY(15)
    default: memcpy(d, s, 128); break;
    }
#undef QK__COPY
}

/*
 * im2col_fill for short kernel rows (im2col_small_width), in either format (quint8, or uint16 padded with zeros to
 * kg values): for each image row of outputs, the kh input rows it reads are copied once (widened for a16) into
 * zero-point-padded buffers, and each im2col row is then kh runs of 8-byte copies (each run's tail past its kernel
 * row is overwritten by the next run, the k-group padding or the next row). The per-tap bookkeeping and small memcpy
 * calls of the general fill cost about as much as the GEMM itself for 3x3 kernels on few channels. Same values.
 */
static void im2col_fill_small(const im2col_op *o, size_t row, size_t count, int a16, size_t kg, uint8_t *dst,
                              size_t dst_stride, int32_t *sums) {
    const qk_conv2d_geometry *g = o->g;
    const size_t es = a16 ? 2 : 1;   /* bytes per value */
    const size_t icg = o->icg, kh = g->kernel_h, K = o->k, wp = o->small_w;
    const size_t L = g->kernel_w * icg * es, bw = wp * es + 8;   /* bytes of a kernel row, of a buffer row */
    const size_t n8 = (L + 7) / 8;                                /* 8-byte copies per kernel row */
    const size_t sw = g->stride_w * icg * es, left = g->pad_left * icg, inner = g->in_w * icg;
    _Alignas(16) uint8_t buf[QK_IM2COL_SMALL_BYTES];
    size_t n = row / (o->oh * o->ow), oy = row / o->ow % o->oh, ox = row % o->ow;
    /* Rows from `last` on are written exactly, so no store passes the end of the rows this call owns. */
    const size_t spill = (kh - 1) * L + 8 * n8, tail = (spill + dst_stride - 1) / dst_stride;
    const size_t last = count > tail ? count - tail : 0;
    size_t r = 0;
    while (r < count) {
        for (size_t ky = 0; ky < kh; ky++) {
            uint8_t *p = buf + ky * bw;
            const size_t y = oy * g->stride_h + ky * g->dilation_h;
            const size_t l = left < wp ? left : wp;
            size_t c = 0;   /* values from the image; the rest of the row is padding */
            const uint8_t *s = NULL;
            if (y >= g->pad_top && y - g->pad_top < g->in_h) {
                s = o->x + (n * g->in_h + y - g->pad_top) * g->in_w * o->ic;
                c = wp - l < inner ? wp - l : inner;
            }
            if (a16) {
                uint16_t *p16 = (uint16_t *)p;
                fill16(p16, o->zero, l);
                if (c) widen(p16 + l, s, c);
                fill16(p16 + l + c, o->zero, wp - l - c + 4);
            } else {
                memset(p, o->zero, l);
                if (c) memcpy(p + l, s, c);
                memset(p + l + c, o->zero, wp - l - c + 8);
            }
        }
        const size_t run = count - r < o->ow - ox ? count - r : o->ow - ox;
        for (size_t i = 0; i < run; i++, r++) {
            uint8_t *d = dst + r * dst_stride;
            const uint8_t *p = buf + (ox + i) * sw;
            if (r < last) {
                for (size_t ky = 0; ky < kh; ky++) copy_8n(d + ky * L, p + ky * bw, n8);
            } else {
                for (size_t ky = 0; ky < kh; ky++) memcpy(d + ky * L, p + ky * bw, L);
            }
            uint32_t sum = 0;
            if (a16) {
                uint16_t *d16 = (uint16_t *)d;
                fill16(d16 + K, 0, kg - K);
                if (sums)
                    for (size_t j = 0; j < K; j++) sum += d16[j];
            } else if (sums) {
                for (size_t j = 0; j < K; j++) sum += d[j];
            }
            if (sums) sums[r] = (int32_t)sum;
        }
        ox = 0;
        if (++oy == o->oh) {
            oy = 0;
            n++;
        }
    }
}

/* Puts n values at position `at` of the row: from s (NULL: the zero point). */
static inline void put(uint8_t *row, int a16, size_t at, const uint8_t *s, uint8_t zero, size_t n) {
    if (a16) {
        uint16_t *d = (uint16_t *)row + at;
        if (s) widen(d, s, n);
        else fill16(d, zero, n);
    } else {
        if (s) memcpy(row + at, s, n);
        else memset(row + at, zero, n);
    }
}

/* Rows [row, row + count) of the im2col matrix (qk_gemm_fill_fn). */
static void im2col_fill(void *ctx, size_t row, size_t count, int a16, size_t kg, uint8_t *dst, size_t dst_stride,
                        int32_t *sums) {
    const im2col_op *o = ctx;
    if (o->small_w) {
        im2col_fill_small(o, row, count, a16, kg, dst, dst_stride, sums);
        return;
    }
    const qk_conv2d_geometry *g = o->g;
    const size_t kw = g->kernel_w, icg = o->icg, ic = o->ic, k = o->k;
    /* a tap run of whole pixels is one contiguous copy when the group is every channel and taps are adjacent */
    const int contiguous = icg == ic && g->dilation_w == 1;
    size_t n = row / (o->oh * o->ow), oy = row / o->ow % o->oh, ox = row % o->ow;
    for (size_t r = 0; r < count; r++) {
        uint8_t *d = dst + r * dst_stride;
        uint32_t sum = 0;
        /* taps kx in [kx0, kx1) read inside the image; the others the zero point */
        const size_t x0 = ox * g->stride_w;   /* padded coordinate of tap 0 */
        size_t kx0 = 0, kx1 = kw;
        while (kx0 < kw && x0 + kx0 * g->dilation_w < g->pad_left) kx0++;
        while (kx1 > kx0 && x0 + (kx1 - 1) * g->dilation_w - g->pad_left >= g->in_w) kx1--;
        for (size_t ky = 0; ky < g->kernel_h; ky++) {
            const size_t y = oy * g->stride_h + ky * g->dilation_h;
            const size_t at = ky * kw * icg;
            if (y < g->pad_top || y - g->pad_top >= g->in_h) {
                put(d, a16, at, NULL, o->zero, kw * icg);
                sum += (uint32_t)o->zero * (uint32_t)(kw * icg);
                continue;
            }
            if (kx0) put(d, a16, at, NULL, o->zero, kx0 * icg);
            if (kx1 < kw) put(d, a16, at + kx1 * icg, NULL, o->zero, (kw - kx1) * icg);
            sum += (uint32_t)o->zero * (uint32_t)((kw - (kx1 - kx0)) * icg);
            if (kx1 == kx0) continue;
            const uint8_t *s = o->x + ((n * g->in_h + y - g->pad_top) * g->in_w + x0 + kx0 * g->dilation_w -
                                       g->pad_left) * ic;
            if (contiguous) {
                put(d, a16, at + kx0 * icg, s, 0, (kx1 - kx0) * icg);
                if (sums)
                    for (size_t i = 0; i < (kx1 - kx0) * icg; i++) sum += s[i];
            } else {
                for (size_t kx = kx0; kx < kx1; kx++, s += g->dilation_w * ic) {
                    put(d, a16, at + kx * icg, s, 0, icg);
                    if (sums)
                        for (size_t i = 0; i < icg; i++) sum += s[i];
                }
            }
        }
        if (a16) fill16((uint16_t *)d + k, 0, kg - k);
        if (sums) sums[r] = (int32_t)sum;
        if (++ox == o->ow) {
            ox = 0;
            if (++oy == o->oh) {
                oy = 0;
                n++;
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------- run */

qk_status qk_qs8_conv2d_q8(const qk_qs8_conv2d_weights *w, const qk_conv2d_geometry *g, const uint8_t *x,
                           float x_scale, int32_t x_zero_point, uint8_t *y, float y_scale, int32_t y_zero_point,
                           uint32_t flags) {
    const qk_kernel_table *t = qk_kernels();
    if (!t) return qk_runtime_init();
    if (!w) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null convolution weights handle");
    size_t oh = 0, ow = 0;
    qk_status s = qk_conv2d_output_size(g, &oh, &ow);
    if (s) return s;
    if (g->kernel_h != w->kh || g->kernel_w != w->kw)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "geometry kernel %zu x %zu does not match the weights' %zu x %zu",
                       g->kernel_h, g->kernel_w, w->kh, w->kw);
    if (flags & ~(uint32_t)QK_CONV_RELU)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "unsupported flags 0x%x (allowed: QK_CONV_RELU)",
                       flags & ~(uint32_t)QK_CONV_RELU);
    if ((s = qk_check_scale(x_scale, "input scale")) || (s = qk_check_scale(y_scale, "output scale")) ||
        (s = qk_check_zero_point(QK_DTYPE_QUINT8, x_zero_point, "input zero point")) ||
        (s = qk_check_zero_point(QK_DTYPE_QUINT8, y_zero_point, "output zero point")))
        return s;
    size_t pixels, rows, b;
    if (!qk_mul_size(g->batch, g->in_h * g->in_w, &pixels) || !qk_mul_size(pixels, w->in_channels, &b) ||
        !qk_mul_size(g->batch, oh * ow, &rows) || !qk_mul_size(rows, w->out_channels, &b) ||
        !qk_mul_size(rows, w->k, &b) || !qk_mul_size(b, w->ocg, &b))
        return qk_fail(QK_ERROR_OVERFLOW, "convolution of %zu x %zu x %zu x %zu to %zu channels overflows", g->batch,
                       g->in_h, g->in_w, w->in_channels, w->out_channels);
    if (g->batch && !x) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null input");
    if (g->batch && !y) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output");
    if (!g->batch) return QK_OK;
    if (w->dw) return qk_qs8_dwconv_q8(w->dw, g, x, x_scale, x_zero_point, y, y_scale, y_zero_point, flags);

    const int direct = w->kh == 1 && w->kw == 1 && g->stride_h == 1 && g->stride_w == 1 && !g->pad_top &&
                       !g->pad_left && !g->pad_bottom && !g->pad_right;
    /* The 7-bit kernel, when there is one, if every input (and the padding) is <= 127: one scan of x for all groups
     * (kh * kw times fewer bytes than the im2col rows; it stops at the first byte > 127). */
    uint32_t im2col_flags = flags;
    if (!direct && strcmp(qk_qs8_gemm_weights_kernel(w->gemm[0], 1), qk_qs8_gemm_weights_kernel(w->gemm[0], 0)) &&
        x_zero_point <= 127 && qk_gemm_activations_7bit(1, pixels * w->in_channels, x, 0))   /* x is contiguous */
        im2col_flags |= QK_GEMM_ACTIVATIONS_7BIT;
    for (size_t gi = 0; gi < w->groups && !s; gi++) {
        const uint8_t *xg = x + gi * w->icg;
        uint8_t *yg = y + gi * w->ocg;
        if (direct) {   /* the GEMM reads x in place and checks for 7-bit activations itself */
            s = qk_qs8_gemm_q8(w->gemm[gi], rows, QK_DTYPE_QUINT8, xg, w->in_channels, x_scale, x_zero_point,
                               QK_DTYPE_QUINT8, yg, w->out_channels, y_scale, y_zero_point, flags);
            continue;
        }
        im2col_op o = {g, xg, w->in_channels, w->icg, oh, ow, w->k, (uint8_t)x_zero_point,
                       im2col_small_width(g, w->in_channels, w->icg, ow)};
        const qk_gemm_source src = {im2col_fill, &o, QK_CONV_CHUNK_BYTES};
        s = qk_gemm_q8_source(w->gemm[gi], rows, &src, x_scale, x_zero_point, yg, w->out_channels, y_scale,
                              y_zero_point, im2col_flags);
    }
    return s;
}
