/* int8 GEMM weights: validation and packing into the panel layout of qk_kernels.h, once per handle. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qk_gemm.h"
#include "qk_internal.h"

size_t qk_gemm_packed_size(uint32_t nr, uint32_t kr, size_t n, size_t k, int *ok) {
    size_t kpad, panel, bytes;
    const size_t panels = n / nr + (n % nr != 0);
    *ok = !__builtin_add_overflow(k, (size_t)kr - 1, &kpad);
    kpad -= kpad % kr;
    *ok = *ok && qk_mul_size(kpad, nr, &panel) && !__builtin_add_overflow(panel, (size_t)nr * 4, &panel) &&
          qk_mul_size(panel, panels, &bytes);
    return *ok ? bytes : 0;
}

typedef struct pack_op {
    uint32_t nr, kr;
    size_t n, k, kpad, panel_bytes;
    const int8_t *w;
    const int32_t *zw;
    unsigned char *packed;
} pack_op;

static void pack_panels(void *ctx, size_t begin, size_t end) {
    const pack_op *o = ctx;
    const size_t nr = o->nr, kr = o->kr;
    for (size_t p = begin; p < end; p++) {
        unsigned char *panel = o->packed + p * o->panel_bytes;
        int8_t *q = (int8_t *)(panel + nr * 4);
        memset(panel, 0, o->panel_bytes);   /* padding rows and columns are zero */
        for (size_t j = 0; j < nr; j++) {
            const size_t col = p * nr + j;
            if (col >= o->n) break;
            const int8_t *row = o->w + col * o->k;
            uint32_t sum = 0;
            for (size_t kk = 0; kk < o->k; kk++) {
                sum += (uint32_t)(int32_t)row[kk];
                q[(kk / kr) * nr * kr + j * kr + kk % kr] = row[kk];
            }
            /* wcomp = K * zw - sum w, mod 2^32 like every int32 term of the GEMM */
            const int32_t wcomp = (int32_t)((uint32_t)o->k * (uint32_t)o->zw[col] - sum);
            memcpy(panel + j * 4, &wcomp, 4);
        }
    }
}

void qk_gemm_pack(uint32_t nr, uint32_t kr, size_t n, size_t k, const int8_t *w, const int32_t *zw, void *packed) {
    int ok;
    const size_t kpad = (k + kr - 1) / kr * kr;
    pack_op o = {nr, kr, n, k, kpad, (size_t)nr * 4 + (size_t)nr * kpad, w, zw, packed};
    (void)qk_gemm_packed_size(nr, kr, n, k, &ok);
    const size_t panels = n / nr + (n % nr != 0);
    const size_t per_tile = (QK_STREAM_TILE / (o.panel_bytes ? o.panel_bytes : 1)) + 1;
    qk_parallel_for_1d(panels, per_tile, pack_panels, &o);
}

qk_status qk_gemm_weights_create_with(const qk_gemm_config *exact, const qk_gemm_config *fast, int pinned, size_t n,
                                      size_t k, const int8_t *weights, qk_qscheme qscheme, const float *scales,
                                      const int32_t *zero_points, const float *bias, qk_qs8_gemm_weights **out) {
    if (!out) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null output pointer for the packed weights handle");
    *out = NULL;
    qk_status s = qk_check_weight_qscheme(qscheme);
    if (s) return s;
    size_t nk, nbytes;
    if (!qk_mul_size(n, k, &nk) || !qk_mul_size(n, 8, &nbytes))
        return qk_fail(QK_ERROR_OVERFLOW, "weight size %zu x %zu overflows", n, k);
    if (nk && !weights) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null weights for a %zu x %zu matrix", n, k);
    const int pc = qscheme == QK_QSCHEME_PER_CHANNEL;
    s = qk_check_weight_qparams(pc ? n : 1, scales, zero_points);
    if (s) return s;
    int ok;
    const size_t packed_bytes = qk_gemm_packed_size(exact->nr, exact->kr, n, k, &ok);
    if (!ok) return qk_fail(QK_ERROR_OVERFLOW, "packed size of a %zu x %zu weight matrix overflows", n, k);

    qk_qs8_gemm_weights *w = calloc(1, sizeof *w);
    if (!w) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for the packed weights handle");
    const size_t arrays = n ? n : 1;
    w->w_scales = malloc(arrays * sizeof(float));
    w->w_zero_points = malloc(arrays * sizeof(int32_t));
    w->bias = bias ? malloc(arrays * sizeof(float)) : NULL;
    /* 64-byte alignment; aligned_alloc wants a multiple of the alignment */
    const size_t alloc = (packed_bytes + 63) / 64 * 64;
    w->packed = alloc >= packed_bytes ? aligned_alloc(64, alloc ? alloc : 64) : NULL;
    if (!w->w_scales || !w->w_zero_points || (bias && !w->bias) || !w->packed) {
        qk_qs8_gemm_weights_destroy(w);
        return qk_fail(QK_ERROR_OUT_OF_MEMORY, "out of memory for %zu bytes of packed weights", packed_bytes);
    }
    w->n = n;
    w->k = k;
    w->kpad = (k + exact->kr - 1) / exact->kr * exact->kr;
    w->panel_bytes = (size_t)exact->nr * 4 + (size_t)exact->nr * w->kpad;
    w->packed_bytes = packed_bytes;
    w->exact = exact;
    w->fast = fast;
    w->pinned = pinned;
    w->per_channel = pc;
    for (size_t i = 0; i < n; i++) {
        w->w_scales[i] = scales[pc ? i : 0];
        w->w_zero_points[i] = zero_points ? zero_points[pc ? i : 0] : 0;
        w->any_zero_point |= w->w_zero_points[i] != 0;
        if (bias) w->bias[i] = bias[i];
    }
    qk_gemm_pack(exact->nr, exact->kr, n, k, weights, w->w_zero_points, w->packed);
    *out = w;
    return QK_OK;
}

qk_status qk_qs8_gemm_weights_create(size_t n, size_t k, const int8_t *weights, qk_qscheme qscheme,
                                     const float *scales, const int32_t *zero_points, const float *bias,
                                     qk_qs8_gemm_weights **out) {
    const qk_kernel_table *t = qk_kernels();
    if (!t) {
        if (out) *out = NULL;
        return qk_runtime_init();
    }
    return qk_gemm_weights_create_with(t->gemm, t->gemm_fast, 0, n, k, weights, qscheme, scales, zero_points, bias,
                                       out);
}

void qk_qs8_gemm_weights_destroy(qk_qs8_gemm_weights *w) {
    if (!w) return;
    free(w->w_scales);
    free(w->w_zero_points);
    free(w->bias);
    free(w->packed);
    free(w);
}

size_t qk_qs8_gemm_weights_n(const qk_qs8_gemm_weights *w) { return w ? w->n : 0; }
size_t qk_qs8_gemm_weights_k(const qk_qs8_gemm_weights *w) { return w ? w->k : 0; }
size_t qk_qs8_gemm_weights_packed_bytes(const qk_qs8_gemm_weights *w) { return w ? w->packed_bytes : 0; }
