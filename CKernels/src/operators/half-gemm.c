/*
 * Half-precision (fp16 / bf16 weight) GEMM: packing, validation, kernel choice, cache blocking and threading.
 *
 * Blocking: the output is cut into mc x nc tiles (2D parallel-for); inside a tile, K runs in blocks of kc (the A rows
 * of one MR group stay in L1, the tile's nc x kc weights in L2), MR row groups, then NR panels. Later K blocks
 * accumulate into the output; the bias and ReLU come with the last. Tile and block sizes depend on the problem only,
 * so every output sees the same sequence of operations whatever the thread count.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "qk_internal.h"
#include "qk_kernels.h"
#include "qk_scalar_math.h"

struct qk_half_gemm_weights {
    qk_half_type type;
    size_t n, k;
    size_t kpad;                      /* k rounded up to the layout's KR */
    size_t panel_elems;               /* nr * kpad */
    size_t packed_bytes;
    const qk_half_gemm_config *cfg;   /* the kernel packed for; defines the layout (nr, kr) */
    const qk_half_gemm_config *fast;  /* fp16-arithmetic kernel of the same layout, or NULL */
    float *bias;                      /* [n] or NULL */
    uint16_t *packed;                 /* 64-byte aligned */
};

/* Elements of A per MR-row group and K block: MR x kc fp32 values in half of a 32 KB L1. */
#define QK_HALF_L1_A_BYTES ((size_t)16 * 1024)
/* Weights of a tile (nc x kc halves) stay in L2 (1 MB per core here; half leaves room for A and C). */
#define QK_HALF_L2_BUDGET ((size_t)512 * 1024)
/* Rows per tile, rounded to a multiple of MR. */
#define QK_HALF_TILE_ROWS 96
/* Below this many multiply-adds the whole problem is one tile. */
#define QK_HALF_SMALL ((size_t)1 << 20)
/* At least this many column tiles per thread when M is small (GEMV): weights stream on every core. */
#define QK_HALF_MIN_COLUMN_TILES 8

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* ------------------------------------------------------------------------------------------- packing */

typedef struct pack_op {
    const qk_half_gemm_weights *w;
    const float *src_f32;             /* [n, k] fp32, or NULL */
    const uint16_t *src_half;         /* [n, k] half bits, or NULL */
    const qk_kernel_table *t;
    atomic_size_t saturated;
    atomic_int out_of_memory;
} pack_op;

static void pack_panels(void *ctx, size_t begin, size_t end) {
    pack_op *o = ctx;
    const qk_half_gemm_weights *w = o->w;
    const size_t NR = w->cfg->nr, KR = w->cfg->kr, K = w->k;
    uint16_t *row = NULL;
    if (o->src_f32 && K) {
        row = malloc(K * sizeof(uint16_t));
        if (!row) { atomic_store(&o->out_of_memory, 1); return; }
    }
    size_t saturated = 0;
    for (size_t p = begin; p < end; p++) {
        uint16_t *panel = w->packed + p * w->panel_elems;
        memset(panel, 0, w->panel_elems * sizeof(uint16_t));   /* padding rows and columns are zero */
        for (size_t j = 0; j < NR; j++) {
            const size_t col = p * NR + j;
            if (col >= w->n) break;
            const uint16_t *h = o->src_half ? o->src_half + col * K : row;
            if (o->src_f32 && K) {
                const float *src = o->src_f32 + col * K;
                if (w->type == QK_HALF_FP16) saturated += o->t->f32_f16_convert_sat(K, src, row);
                else for (size_t kk = 0; kk < K; kk++) row[kk] = qk_f32_to_bf16_bits(src[kk]);
            }
            for (size_t kk = 0; kk < K; kk++) panel[(kk / KR) * NR * KR + j * KR + kk % KR] = h[kk];
        }
    }
    if (saturated) atomic_fetch_add_explicit(&o->saturated, saturated, memory_order_relaxed);
    free(row);
}

static qk_status create(qk_half_type type, size_t n, size_t k, const float *wf, const uint16_t *wh,
                        const float *bias, size_t *saturated_count, qk_half_gemm_weights **out) {
    if (saturated_count) *saturated_count = 0;
    if (!out) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output pointer for the packed weights handle");
    *out = NULL;
    const qk_kernel_table *t = qk_kernels();
    if (!t) return qk_runtime_init();
    if (type != QK_HALF_FP16 && type != QK_HALF_BF16)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "half type %d is not supported; expected QK_HALF_FP16 (0) or "
                       "QK_HALF_BF16 (1)", (int)type);
    const qk_half_gemm_config *cfg = t->half_gemm[type];
    const size_t NR = cfg->nr, KR = cfg->kr;
    size_t nk, kpad, panel_elems, bytes;
    const size_t panels = n / NR + (n % NR != 0);
    if (!qk_mul_size(n, k, &nk) || __builtin_add_overflow(k, KR - 1, &kpad) ||
        !qk_mul_size(kpad - kpad % KR, NR, &panel_elems) || !qk_mul_size(panel_elems, panels, &bytes) ||
        !qk_mul_size(bytes, sizeof(uint16_t), &bytes) || bytes > SIZE_MAX - 64)
        return qk_fail(QK_ERROR_OVERFLOW, "packed size of a %zu x %zu weight matrix overflows", n, k);
    kpad -= kpad % KR;
    if (nk && !wf && !wh) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null weights for a %zu x %zu matrix", n, k);

    qk_half_gemm_weights *w = calloc(1, sizeof *w);
    if (!w) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for the packed weights handle");
    w->bias = bias ? malloc((n ? n : 1) * sizeof(float)) : NULL;
    w->packed = aligned_alloc(64, bytes ? round_up(bytes, 64) : 64);   /* a multiple of the alignment */
    if ((bias && !w->bias) || !w->packed) {
        qk_half_gemm_weights_destroy(w);
        return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for %zu bytes of packed weights", bytes);
    }
    w->type = type;
    w->n = n;
    w->k = k;
    w->kpad = kpad;
    w->panel_elems = panel_elems;
    w->packed_bytes = bytes;
    w->cfg = cfg;
    w->fast = type == QK_HALF_FP16 ? t->half_gemm_fp16arith : NULL;
    if (bias) memcpy(w->bias, bias, n * sizeof(float));

    pack_op o;
    o.w = w;
    o.src_f32 = wf;
    o.src_half = wh;
    o.t = t;
    atomic_init(&o.saturated, 0);
    atomic_init(&o.out_of_memory, 0);
    const size_t panel_bytes = panel_elems * sizeof(uint16_t);
    qk_parallel_for_1d(panels, QK_STREAM_TILE / (panel_bytes ? panel_bytes : 1) + 1, pack_panels, &o);
    if (atomic_load(&o.out_of_memory)) {
        qk_half_gemm_weights_destroy(w);
        return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for a weight row of K = %zu", k);
    }
    if (saturated_count) *saturated_count = atomic_load(&o.saturated);
    *out = w;
    return QK_OK;
}

qk_status qk_half_gemm_weights_create(qk_half_type type, size_t n, size_t k, const float *weights, const float *bias,
                                      size_t *saturated_count, qk_half_gemm_weights **out) {
    return create(type, n, k, weights, NULL, bias, saturated_count, out);
}

qk_status qk_half_gemm_weights_create_from_half(qk_half_type type, size_t n, size_t k, const uint16_t *weights,
                                                const float *bias, qk_half_gemm_weights **out) {
    if (!weights && n && k) {
        if (out) *out = NULL;
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null weights for a %zu x %zu matrix", n, k);
    }
    static const uint16_t none = 0;
    return create(type, n, k, NULL, weights ? weights : &none, bias, NULL, out);
}

void qk_half_gemm_weights_destroy(qk_half_gemm_weights *w) {
    if (!w) return;
    free(w->bias);
    free(w->packed);
    free(w);
}

qk_half_type qk_half_gemm_weights_type(const qk_half_gemm_weights *w) { return w ? w->type : QK_HALF_FP16; }
size_t qk_half_gemm_weights_n(const qk_half_gemm_weights *w) { return w ? w->n : 0; }
size_t qk_half_gemm_weights_k(const qk_half_gemm_weights *w) { return w ? w->k : 0; }
size_t qk_half_gemm_weights_packed_bytes(const qk_half_gemm_weights *w) { return w ? w->packed_bytes : 0; }

qk_status qk_half_gemm_weights_copy_half(const qk_half_gemm_weights *w, uint16_t *out) {
    if (!w) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null packed weights handle");
    if (w->n && w->k && !out) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output for %zu x %zu weights", w->n, w->k);
    const size_t NR = w->cfg->nr, KR = w->cfg->kr;
    for (size_t col = 0; col < w->n; col++) {
        const uint16_t *panel = w->packed + (col / NR) * w->panel_elems;
        const size_t j = col % NR;
        for (size_t kk = 0; kk < w->k; kk++) out[col * w->k + kk] = panel[(kk / KR) * NR * KR + j * KR + kk % KR];
    }
    return QK_OK;
}

int qk_half_gemm_weights_copy_bias(const qk_half_gemm_weights *w, float *out) {
    if (!w || !w->bias) return 0;
    if (out) memcpy(out, w->bias, w->n * sizeof(float));
    return 1;
}

/* ------------------------------------------------------------------------------------------- running */

/* The kernel a run uses: the current level's when it shares the handle's layout, else the handle's own. */
static const qk_half_gemm_config *pick_kernel(const qk_kernel_table *t, const qk_half_gemm_weights *w,
                                              uint32_t flags) {
    const qk_half_gemm_config *level = t->half_gemm[w->type];
    const int same_layout = level->nr == w->cfg->nr && level->kr == w->cfg->kr;
    if ((flags & QK_HALF_GEMM_FP16_ARITHMETIC) && w->type == QK_HALF_FP16) {
        if (same_layout && t->half_gemm_fp16arith) return t->half_gemm_fp16arith;
        if (!same_layout && w->fast) return w->fast;
    }
    return same_layout ? level : w->cfg;
}

const char *qk_half_gemm_weights_kernel(const qk_half_gemm_weights *w, uint32_t flags) {
    const qk_kernel_table *t = qk_kernels();
    if (!w || !t) return "none";
    return pick_kernel(t, w, flags)->name;
}

typedef struct half_op {
    const qk_half_gemm_weights *w;
    const qk_half_gemm_config *cfg;
    const qk_kernel_table *t;
    const float *x;
    size_t x_stride;                  /* bytes */
    float *y;
    size_t y_stride;                  /* bytes */
    size_t kc;                        /* K block (a multiple of KR) */
    int relu;
    atomic_int out_of_memory;
} half_op;

/* MR rows of A, K block [k0, k0 + kb), rounded to the weight type and zero-padded to whole KR groups. */
static void convert_rows(const half_op *o, size_t m0, size_t mr, size_t k0, size_t kb, size_t kbp, uint16_t *dst) {
    for (size_t i = 0; i < mr; i++) {
        const float *src = (const float *)((const char *)o->x + (m0 + i) * o->x_stride) + k0;
        uint16_t *d = dst + i * kbp;
        if (o->w->type == QK_HALF_FP16) o->t->f32_f16_convert(kb, src, d);
        else for (size_t kk = 0; kk < kb; kk++) d[kk] = qk_f32_to_bf16_bits(src[kk]);
        for (size_t kk = kb; kk < kbp; kk++) d[kk] = 0;
    }
}

static void half_tile(void *ctx, size_t i0, size_t j0, size_t ni, size_t nj) {
    half_op *o = ctx;
    const qk_half_gemm_config *cfg = o->cfg;
    const qk_half_gemm_weights *w = o->w;
    const size_t MR = cfg->mr, NR = cfg->nr, KR = cfg->kr, K = w->k;
    const int a_half = (cfg->flags & QK_HALF_A_HALF) != 0;
    uint16_t *buf = NULL;
    if (a_half && K) {
        buf = malloc(MR * round_up(o->kc, KR) * sizeof(uint16_t));
        if (!buf) { atomic_store(&o->out_of_memory, 1); return; }
    }
    const uint32_t relu = o->relu ? QK_HALF_UK_RELU : 0;
    if (!K) {   /* y = bias (or 0), ReLU applied: one kernel call per tile with an all-zero A is not possible, so here */
        for (size_t i = i0; i < i0 + ni; i++) {
            float *yi = (float *)((char *)o->y + i * o->y_stride);
            for (size_t j = j0; j < j0 + nj; j++) {
                float v = w->bias ? w->bias[j] : 0.0f;
                if (relu && v < 0.0f) v = 0.0f;
                yi[j] = v;
            }
        }
        return;
    }
    for (size_t k0 = 0; k0 < K; k0 += o->kc) {
        const size_t kb = K - k0 < o->kc ? K - k0 : o->kc;
        const size_t kbp = round_up(kb, KR);
        const int last = k0 + kb == K;
        const uint32_t flags = (k0 ? QK_HALF_UK_ACCUMULATE : 0) | (last ? relu : 0);
        for (size_t m0 = i0, mr; m0 < i0 + ni; m0 += mr) {
            const size_t rem = i0 + ni - m0;
            /* MR + 1 rows as two near-halves: a 1-row tile has too few FMA chains to keep the units busy */
            mr = rem < MR ? rem : rem == MR + 1 && MR > 2 ? (rem + 1) / 2 : MR;
            const void *a;
            size_t a_stride;
            if (a_half) {
                convert_rows(o, m0, mr, k0, kb, kbp, buf);
                a = buf;
                a_stride = kbp * sizeof(uint16_t);
            } else {
                a = (const char *)o->x + m0 * o->x_stride + k0 * sizeof(float);
                a_stride = o->x_stride;
            }
            for (size_t n0 = j0; n0 < j0 + nj; n0 += NR) {
                const size_t nc = j0 + nj - n0 < NR ? j0 + nj - n0 : NR;
                const uint16_t *panel = w->packed + (n0 / NR) * w->panel_elems + k0 * NR;
                cfg->fn(mr, nc, kb, a, a_stride, panel, (float *)((char *)o->y + m0 * o->y_stride) + n0, o->y_stride,
                        last && w->bias ? w->bias + n0 : NULL, flags);
            }
        }
    }
    free(buf);
}

qk_status qk_half_gemm_f32(const qk_half_gemm_weights *w, size_t m, const float *x, size_t x_stride, float *y,
                           size_t y_stride, uint32_t flags) {
    const qk_kernel_table *t = qk_kernels();
    if (!t) return qk_runtime_init();
    if (!w) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null packed weights handle");
    const uint32_t allowed = QK_GEMM_RELU | QK_HALF_GEMM_FP16_ARITHMETIC;
    if (flags & ~allowed)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "unsupported flags 0x%x (allowed here: 0x%x)", flags & ~allowed,
                       allowed);
    const size_t n = w->n, k = w->k;
    if (x_stride < k) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "activation row stride %zu is less than K = %zu",
                                     x_stride, k);
    if (y_stride < n) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "output row stride %zu is less than N = %zu",
                                     y_stride, n);
    size_t s;
    if (m && (!qk_mul_size(m - 1, x_stride, &s) || __builtin_add_overflow(s, k, &s) ||
              !qk_mul_size(s, sizeof(float), &s) || !qk_mul_size(m - 1, y_stride, &s) ||
              __builtin_add_overflow(s, n, &s) || !qk_mul_size(s, sizeof(float), &s) || !qk_mul_size(m, k, &s) ||
              !qk_mul_size(s, n, &s)))
        return qk_fail(QK_ERROR_OVERFLOW, "GEMM of %zu x %zu x %zu with strides %zu, %zu overflows", m, n, k, x_stride,
                       y_stride);
    if (m && k && !x) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null activations for %zu x %zu", m, k);
    if (m && n && !y) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output for %zu x %zu", m, n);
    if (!m || !n) return QK_OK;

    half_op o;
    o.w = w;
    o.cfg = pick_kernel(t, w, flags);
    o.t = t;
    o.x = x;
    o.x_stride = x_stride * sizeof(float);
    o.y = y;
    o.y_stride = y_stride * sizeof(float);
    o.relu = (flags & QK_GEMM_RELU) != 0;
    atomic_init(&o.out_of_memory, 0);

    const size_t MR = o.cfg->mr, NR = o.cfg->nr, KR = o.cfg->kr;
    /* K block: MR rows of fp32 A in half of L1; whole K when it is not much more, and for GEMV-like shapes, where
     * the weights stream from memory and long contiguous runs of each panel matter more than A in L1. */
    size_t kc = QK_HALF_L1_A_BYTES / (MR * sizeof(float));
    kc = kc < 256 ? 256 : kc;
    if (k <= kc + kc / 2 || m <= 2 * MR) kc = k;
    kc = round_up(kc ? kc : 1, KR);
    o.kc = kc;

    const size_t m_all = round_up(m, MR), n_all = round_up(n, NR);
    size_t mc = m_all, nc = n_all;
    if (m * n * k > QK_HALF_SMALL) {
        mc = round_up(QK_HALF_TILE_ROWS, MR);
        nc = QK_HALF_L2_BUDGET / (kc * sizeof(uint16_t)) / NR * NR;
        if (m <= 2 * MR) {   /* GEMV-like: columns are the only parallelism, and the weights stream from memory */
            const size_t tiles = (size_t)QK_HALF_MIN_COLUMN_TILES * 4;
            const size_t per = round_up((n + tiles - 1) / tiles, NR);
            if (per < nc) nc = per;
        }
        if (nc < NR) nc = NR;
        if (mc > m_all) mc = m_all;
        if (nc > n_all) nc = n_all;
    }
    qk_parallel_for_2d(m, mc, n, nc, half_tile, &o);
    if (atomic_load(&o.out_of_memory))
        return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for an activation row buffer; the output is incomplete");
    return QK_OK;
}
