/*
 * int8 GEMM driver: validation, the per-call epilogue arrays, kernel choice (exact, or the fast kernel for 7-bit
 * activations), 2D tiling and threading. Tiles are MR-row x NR-column aligned and sized from the problem only, and
 * every output is produced by one kernel call over the full K, so results do not depend on the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qk_gemm.h"
#include "qk_internal.h"

/* Packed weights of a column tile (nc x Kpad) stay in L2 (1 MB here; half of it leaves room for A and C). */
#define QK_GEMM_L2_BUDGET ((size_t)512 * 1024)
/* Rows per tile; a multiple of MR is taken. */
#define QK_GEMM_TILE_ROWS 96
/* Below this many multiply-adds the whole problem is one tile (threading would cost more than it saves). */
#define QK_GEMM_SMALL ((size_t)1 << 20)
/* Largest MR a variant may have (the row-sum buffer of a tile). */
#define QK_GEMM_MAX_MR 64

typedef struct gemm_op {
    const qk_qs8_gemm_weights *w;
    const qk_gemm_config *cfg;
    size_t k;
    const uint8_t *a;           /* quint8 rows, or qint8 rows when a_signed */
    const qk_gemm_source *src;  /* rows made on demand instead of a (then always prepared) */
    int fill_in_tile;           /* src with one column tile: each tile makes its own rows, no separate pass */
    size_t a_stride;            /* bytes */
    int a_signed;
    int row_sums;               /* compute activation row sums (some zw != 0) */
    unsigned char *y;
    size_t y_stride, y_elem;    /* bytes */
    qk_gemm_epilogue e;         /* per-column arrays cover all N columns */
    /* Rows [row0, row0 + rows) of A as the kernel wants them, prepared once per chunk (NULL: the kernel reads a). */
    size_t row0;
    uint8_t *pa;
    size_t pa_stride;           /* bytes */
    int32_t *sums;              /* [rows] activation row sums (u8 domain), when row_sums */
} gemm_op;

/* Activation rows a chunk prepares at most: the buffer stays near L3 size, and large M still gets whole tiles. */
#ifndef QK_GEMM_PREPARED_BYTES   /* the tests shrink it to exercise chunking */
#define QK_GEMM_PREPARED_BYTES ((size_t)16 << 20)
#endif

/*
 * Rows [begin, end) of the chunk as the kernel wants them: qint8 becomes quint8 (a ^ 0x80 = a + 128), QK_GEMM_A16
 * kernels get uint16 rows padded with zeros to whole k-groups; row sums (u8 domain) from the same pass. Done once per
 * row rather than once per column tile.
 */
static void prepare_rows(void *ctx, size_t begin, size_t end) {
    const gemm_op *o = ctx;
    const size_t K = o->k;
    const uint8_t flip = o->a_signed ? 0x80 : 0;
    const int a16 = (o->cfg->flags & QK_GEMM_A16) != 0;
    const size_t kg = (K + o->cfg->kr - 1) / o->cfg->kr * o->cfg->kr;
    for (size_t i = begin; i < end; i++) {
        const uint8_t *row = o->a + (o->row0 + i) * o->a_stride;
        uint32_t s = 0;
        if (a16) {
            uint16_t *d = (uint16_t *)(o->pa + i * o->pa_stride);
            for (size_t k = 0; k < K; k++) {
                const uint8_t v = row[k] ^ flip;
                d[k] = v;
                s += v;
            }
            for (size_t k = K; k < kg; k++) d[k] = 0;
        } else {
            uint8_t *d = o->pa + i * o->pa_stride;
            for (size_t k = 0; k < K; k++) {
                const uint8_t v = row[k] ^ flip;
                d[k] = v;
                s += v;
            }
        }
        if (o->sums) o->sums[i] = (int32_t)s;
    }
}

/* Rows [begin, end) of the chunk from the caller's source, written straight in the kernel's format. */
static void fill_rows(void *ctx, size_t begin, size_t end) {
    const gemm_op *o = ctx;
    const size_t kg = (o->k + o->cfg->kr - 1) / o->cfg->kr * o->cfg->kr;
    o->src->fill(o->src->context, o->row0 + begin, end - begin, (o->cfg->flags & QK_GEMM_A16) != 0, kg,
                 o->pa + begin * o->pa_stride, o->pa_stride, o->sums ? o->sums + begin : NULL);
}

/* Row sums only (quint8 rows the kernel reads in place). */
static void sum_rows(void *ctx, size_t begin, size_t end) {
    const gemm_op *o = ctx;
    for (size_t i = begin; i < end; i++) {
        const uint8_t *row = o->a + (o->row0 + i) * o->a_stride;
        uint32_t s = 0;
        for (size_t k = 0; k < o->k; k++) s += row[k];
        o->sums[i] = (int32_t)s;
    }
}

/* One tile; i0 is relative to the chunk (row0). */
static void gemm_tile(void *ctx, size_t i0, size_t j0, size_t ni, size_t nj) {
    gemm_op *o = ctx;
    if (o->fill_in_tile) fill_rows(o, i0, i0 + ni);
    const qk_gemm_config *cfg = o->cfg;
    const size_t MR = cfg->mr, NR = cfg->nr, K = o->k;
    const unsigned char *packed = o->w->packed;
    static const int32_t zeros[QK_GEMM_MAX_MR];
    for (size_t m0 = i0; m0 < i0 + ni; m0 += MR) {
        const size_t mr = i0 + ni - m0 < MR ? i0 + ni - m0 : MR;
        const uint8_t *a = o->pa ? o->pa + m0 * o->pa_stride : o->a + (o->row0 + m0) * o->a_stride;
        const size_t a_stride = o->pa ? o->pa_stride : o->a_stride;
        qk_gemm_epilogue e = o->e;
        e.row_sums = o->row_sums ? (K ? o->sums + m0 : zeros) : NULL;
        for (size_t n0 = j0; n0 < j0 + nj; n0 += NR) {
            const size_t nc = j0 + nj - n0 < NR ? j0 + nj - n0 : NR;
            qk_gemm_epilogue en = e;
            en.w_zero_points = o->e.w_zero_points + n0;
            if (o->e.bias_term) en.bias_term = o->e.bias_term + n0;
            if (o->e.multiplier) en.multiplier = o->e.multiplier + n0;
            if (o->e.scale) en.scale = o->e.scale + n0;
            if (o->e.bias) en.bias = o->e.bias + n0;
            cfg->fn(mr, nc, K, a, a_stride, packed + (n0 / NR) * o->w->panel_bytes,
                    o->y + (o->row0 + m0) * o->y_stride + n0 * o->y_elem, o->y_stride, &en);
        }
    }
}

/* Every activation <= 127? Early exit at the first that is not. */
int qk_gemm_activations_7bit(size_t m, size_t k, const uint8_t *a, size_t a_stride) {
    for (size_t i = 0; i < m; i++) {
        const uint8_t *row = a + i * a_stride;
        size_t j = 0;
        uint64_t any = 0;
        for (; j + 8 <= k; j += 8) {
            uint64_t v;
            memcpy(&v, row + j, 8);
            any |= v;
            if ((j & 511) == 0 && (any & 0x8080808080808080ull)) return 0;
        }
        for (; j < k; j++) any |= row[j];
        if (any & 0x8080808080808080ull) return 0;
    }
    return 1;
}

/* The kernels a run uses: the current level's when they share the handle's packing layout, else the handle's. */
static void pick_kernels(const qk_kernel_table *t, const qk_qs8_gemm_weights *w, const qk_gemm_config **exact,
                         const qk_gemm_config **fast) {
    *exact = w->exact;
    *fast = w->fast;
    if (!w->pinned && t->gemm->nr == w->exact->nr && t->gemm->kr == w->exact->kr) {
        *exact = t->gemm;
        *fast = t->gemm_fast;
    }
}

const char *qk_qs8_gemm_weights_kernel(const qk_qs8_gemm_weights *w, int seven_bit) {
    const qk_kernel_table *t = qk_kernels();
    if (!w || !t) return "none";
    const qk_gemm_config *exact, *fast;
    pick_kernels(t, w, &exact, &fast);
    return seven_bit && fast ? fast->name : exact->name;
}

static qk_status check_8bit_dtype(qk_dtype d, const char *what) {
    if (d == QK_DTYPE_QUINT8 || d == QK_DTYPE_QINT8) return QK_OK;
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "%s dtype %d is not supported; expected QK_DTYPE_QUINT8 or "
                   "QK_DTYPE_QINT8", what, (int)d);
}

/* Shapes, strides, pointers and flags shared by the three entry points. */
static qk_status check_run(const qk_qs8_gemm_weights *w, size_t m, qk_dtype a_dtype, const void *a, size_t a_stride,
                           int32_t a_zero_point, const void *y, size_t y_stride, size_t y_elem, uint32_t flags,
                           uint32_t allowed_flags) {
    if (!w) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null packed weights handle");
    qk_status s;
    if ((s = check_8bit_dtype(a_dtype, "activation")) || (s = qk_check_zero_point(a_dtype, a_zero_point,
                                                                               "activation zero point")))
        return s;
    if (flags & ~allowed_flags)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "unsupported flags 0x%x (allowed here: 0x%x)", flags & ~allowed_flags,
                       allowed_flags);
    const size_t n = w->n, k = w->k;
    if (a_stride < k)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "activation row stride %zu is less than K = %zu", a_stride, k);
    if (y_stride < n)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "output row stride %zu is less than N = %zu", y_stride, n);
    size_t t;
    if (m && (!qk_mul_size(m - 1, a_stride, &t) || __builtin_add_overflow(t, k, &t) ||
              !qk_mul_size(m - 1, y_stride, &t) || __builtin_add_overflow(t, n, &t) || !qk_mul_size(t, y_elem, &t) ||
              !qk_mul_size(m, k, &t) || !qk_mul_size(t, n, &t)))
        return qk_fail(QK_ERROR_OVERFLOW, "GEMM of %zu x %zu x %zu with strides %zu, %zu overflows", m, n, k, a_stride,
                       y_stride);
    if (m && k && !a) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null activations for %zu x %zu", m, k);
    if (m && n && !y) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output for %zu x %zu", m, n);
    return QK_OK;
}

/* a (a_stride elements per row) or, when src != NULL, rows from src; y_stride in elements of y_elem bytes. */
static qk_status run(const qk_kernel_table *t, const qk_qs8_gemm_weights *w, size_t m, qk_dtype a_dtype,
                     const void *a, size_t a_stride, const qk_gemm_source *src, int32_t a_zero_point, void *y,
                     size_t y_stride, size_t y_elem, uint32_t flags, qk_gemm_epilogue *e) {
    const size_t n = w->n, k = w->k;
    const qk_gemm_config *exact, *fast;
    pick_kernels(t, w, &exact, &fast);
    const qk_gemm_config *cfg = exact;
    const int a_signed = a_dtype == QK_DTYPE_QINT8;
    if (fast && !a_signed) {
        /* Both kernels are exact on 7-bit data, so scanning changes speed only; it pays when N is not tiny. */
        if ((flags & QK_GEMM_ACTIVATIONS_7BIT) ||
            (!src && n >= 4 * (size_t)fast->nr && qk_gemm_activations_7bit(m, k, a, a_stride)))
            cfg = fast;
    }
    if (cfg->mr > QK_GEMM_MAX_MR)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "GEMM kernel %s has MR %u > %d", cfg->name, cfg->mr, QK_GEMM_MAX_MR);

    static const uint8_t dummy = 0;   /* K == 0: no byte is read, but row pointers stay valid */
    gemm_op o;
    memset(&o, 0, sizeof o);
    o.w = w;
    o.cfg = cfg;
    o.k = k;
    o.a = a ? (const uint8_t *)a : &dummy;
    o.a_stride = a ? a_stride : 0;
    o.a_signed = a_signed;
    o.src = src;
    o.row_sums = w->any_zero_point;
    o.y = y;
    o.y_stride = y_stride * y_elem;
    o.y_elem = y_elem;
    o.e = *e;
    o.e.a_zero_point = a_signed ? a_zero_point + 128 : a_zero_point;
    o.e.w_zero_points = w->w_zero_points;

    const size_t MR = cfg->mr, NR = cfg->nr;
    const size_t m_all = (m + MR - 1) / MR * MR, n_all = (n + NR - 1) / NR * NR;
    size_t mc = m_all, nc = n_all;
    if (m * n * k > QK_GEMM_SMALL) {
        mc = (QK_GEMM_TILE_ROWS + MR - 1) / MR * MR;
        nc = w->kpad ? QK_GEMM_L2_BUDGET / w->kpad / NR * NR : n_all;
        if (nc < NR) nc = NR;
        if (mc > m_all) mc = m_all;
        if (nc > n_all) nc = n_all;
    }

    /* Rows from a source are made by their tile when it is the only one to read them (one column tile): they are
     * then still in cache when the kernel reads them, and the chunk needs one parallel pass instead of two. */
    o.fill_in_tile = src && k && nc >= n;

    /* Rows per chunk: all of M when the prepared rows fit the budget, else whole tiles of it. */
    const int prepare = k && (src || (cfg->flags & QK_GEMM_A16) || a_signed);
    const size_t kg = (k + cfg->kr - 1) / cfg->kr * cfg->kr;
    const size_t budget = src ? src->chunk_bytes : QK_GEMM_PREPARED_BYTES;
    o.pa_stride = (cfg->flags & QK_GEMM_A16) ? kg * 2 : k;
    size_t chunk = m;
    if (prepare && o.pa_stride && budget / o.pa_stride < m) {
        chunk = budget / o.pa_stride / mc * mc;
        if (chunk < mc) chunk = mc;
    }
    uint8_t *buf = NULL;
    if (prepare || o.row_sums) {
        size_t bytes = prepare ? chunk * o.pa_stride : 0;
        const size_t sums_at = (bytes + 63) / 64 * 64;
        bytes = sums_at + (chunk ? chunk : 1) * sizeof(int32_t);
        buf = malloc(bytes);
        if (!buf)
            return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for %zu bytes of prepared activation rows", bytes);
        o.pa = prepare ? buf : NULL;
        o.sums = o.row_sums ? (int32_t *)(buf + sums_at) : NULL;
    }
    const size_t row_bytes = (prepare ? o.pa_stride : k) + 1;
    for (size_t r0 = 0; r0 < m; r0 += chunk) {
        const size_t rows = m - r0 < chunk ? m - r0 : chunk;
        o.row0 = r0;
        if (src) {
            if (k && !o.fill_in_tile) qk_parallel_for_1d(rows, QK_STREAM_TILE / row_bytes + 1, fill_rows, &o);
        } else if (prepare) qk_parallel_for_1d(rows, QK_STREAM_TILE / row_bytes + 1, prepare_rows, &o);
        else if (o.row_sums && k) qk_parallel_for_1d(rows, QK_STREAM_TILE / row_bytes + 1, sum_rows, &o);
        qk_parallel_for_2d(rows, mc, n, nc, gemm_tile, &o);
    }
    free(buf);
    return QK_OK;
}

#define QK_KERNELS_OR_FAIL(t)                \
    const qk_kernel_table *t = qk_kernels(); \
    if (!t) return qk_runtime_init();

/* The requantizing output stage's per-column arrays, then the run (a matrix, or rows from src). */
static qk_status run_q8(const qk_kernel_table *t, const qk_qs8_gemm_weights *w, size_t m, qk_dtype a_dtype,
                        const void *a, size_t a_stride, const qk_gemm_source *src, float a_scale, int32_t a_zero_point,
                        qk_dtype y_dtype, void *y, size_t y_stride, float y_scale, int32_t y_zero_point,
                        uint32_t flags) {
    const size_t n = w->n;
    if (!m || !n) return QK_OK;
    float *arrays = malloc(2 * n * sizeof(float));
    if (!arrays) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for %zu output-stage parameters", 2 * n);
    float *bias_term = arrays, *mult = arrays + n;
    for (size_t j = 0; j < n; j++) {
        const float aws = a_scale * w->w_scales[j];
        mult[j] = aws / y_scale;
        if (!w->bias) bias_term[j] = 0.0f;
        else if (w->per_channel) bias_term[j] = w->bias[j] / aws;
        else bias_term[j] = w->bias[j] * (float)(1.0 / (double)aws);
    }
    qk_gemm_epilogue e;
    memset(&e, 0, sizeof e);
    e.kind = y_dtype == QK_DTYPE_QUINT8 ? QK_GEMM_OUT_QU8 : QK_GEMM_OUT_QS8;
    e.bias_term = bias_term;
    e.multiplier = mult;
    e.out_zero_point = y_zero_point;
    e.out_min = (flags & QK_GEMM_RELU) ? y_zero_point : (y_dtype == QK_DTYPE_QUINT8 ? 0 : -128);
    e.out_max = y_dtype == QK_DTYPE_QUINT8 ? 255 : 127;
    const qk_status s = run(t, w, m, a_dtype, a, a_stride, src, a_zero_point, y, y_stride, 1, flags, &e);
    free(arrays);
    return s;
}

qk_status qk_qs8_gemm_q8(const qk_qs8_gemm_weights *w, size_t m, qk_dtype a_dtype, const void *a, size_t a_stride,
                         float a_scale, int32_t a_zero_point, qk_dtype y_dtype, void *y, size_t y_stride,
                         float y_scale, int32_t y_zero_point, uint32_t flags) {
    QK_KERNELS_OR_FAIL(t)
    qk_status s;
    if ((s = check_run(w, m, a_dtype, a, a_stride, a_zero_point, y, y_stride, 1, flags,
                       QK_GEMM_RELU | QK_GEMM_ACTIVATIONS_7BIT)) ||
        (s = qk_check_scale(a_scale, "activation scale")) || (s = check_8bit_dtype(y_dtype, "output")) ||
        (s = qk_check_scale(y_scale, "output scale")) || (s = qk_check_zero_point(y_dtype, y_zero_point,
                                                                            "output zero point")))
        return s;
    return run_q8(t, w, m, a_dtype, a, a_stride, NULL, a_scale, a_zero_point, y_dtype, y, y_stride, y_scale,
                  y_zero_point, flags);
}

qk_status qk_gemm_q8_source(const qk_qs8_gemm_weights *w, size_t m, const qk_gemm_source *src, float a_scale,
                            int32_t a_zero_point, uint8_t *y, size_t y_stride, float y_scale, int32_t y_zero_point,
                            uint32_t flags) {
    QK_KERNELS_OR_FAIL(t)
    qk_status s;
    if (!src || !src->fill || !src->chunk_bytes)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "GEMM activation source without a fill function or chunk size");
    /* the activation checks see a stride of K: the rows are made to measure */
    if ((s = check_run(w, m, QK_DTYPE_QUINT8, src, w ? w->k : 0, a_zero_point, y, y_stride, 1, flags,
                       QK_GEMM_RELU | QK_GEMM_ACTIVATIONS_7BIT)) ||
        (s = qk_check_scale(a_scale, "activation scale")) || (s = qk_check_scale(y_scale, "output scale")) ||
        (s = qk_check_zero_point(QK_DTYPE_QUINT8, y_zero_point, "output zero point")))
        return s;
    return run_q8(t, w, m, QK_DTYPE_QUINT8, NULL, 0, src, a_scale, a_zero_point, QK_DTYPE_QUINT8, y, y_stride,
                  y_scale, y_zero_point, flags);
}

qk_status qk_qs8_gemm_f32(const qk_qs8_gemm_weights *w, size_t m, qk_dtype a_dtype, const void *a, size_t a_stride,
                          float a_scale, int32_t a_zero_point, float *y, size_t y_stride, uint32_t flags) {
    QK_KERNELS_OR_FAIL(t)
    qk_status s;
    if ((s = check_run(w, m, a_dtype, a, a_stride, a_zero_point, y, y_stride, sizeof(float), flags,
                       QK_GEMM_RELU | QK_GEMM_ACTIVATIONS_7BIT)) ||
        (s = qk_check_scale(a_scale, "activation scale")))
        return s;
    const size_t n = w->n;
    if (!m || !n) return QK_OK;
    float *arrays = malloc(2 * n * sizeof(float));
    if (!arrays) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for %zu output-stage parameters", 2 * n);
    float *scale = arrays, *bias = arrays + n;
    for (size_t j = 0; j < n; j++) {
        scale[j] = a_scale * w->w_scales[j];
        bias[j] = w->bias ? w->bias[j] : 0.0f;
    }
    qk_gemm_epilogue e;
    memset(&e, 0, sizeof e);
    e.kind = QK_GEMM_OUT_F32;
    e.scale = scale;
    e.bias = bias;
    e.relu = (flags & QK_GEMM_RELU) != 0;
    s = run(t, w, m, a_dtype, a, a_stride, NULL, a_zero_point, y, y_stride, sizeof(float), flags, &e);
    free(arrays);
    return s;
}

qk_status qk_qs8_gemm_s32(const qk_qs8_gemm_weights *w, size_t m, qk_dtype a_dtype, const void *a, size_t a_stride,
                          int32_t a_zero_point, int32_t *y, size_t y_stride, uint32_t flags) {
    QK_KERNELS_OR_FAIL(t)
    qk_status s = check_run(w, m, a_dtype, a, a_stride, a_zero_point, y, y_stride, sizeof(int32_t), flags,
                            QK_GEMM_ACTIVATIONS_7BIT);
    if (s) return s;
    if (!m || !w->n) return QK_OK;
    qk_gemm_epilogue e;
    memset(&e, 0, sizeof e);
    e.kind = QK_GEMM_OUT_S32;
    return run(t, w, m, a_dtype, a, a_stride, NULL, a_zero_point, y, y_stride, sizeof(int32_t), flags, &e);
}
