/* Calibration statistics: min/max reduction. */
#include <math.h>
#include <stdlib.h>

#include "qk_internal.h"
#include "qk_kernels.h"

#define QK_MINMAX_TILE ((size_t)1 << 18)

typedef struct minmax_op {
    const float *x;
    const qk_kernel_table *k;
    int finite_only;
    float *mins, *maxs;   /* one per tile, combined in tile order afterwards */
} minmax_op;

static void minmax_tile(void *ctx, size_t b, size_t e) {
    const minmax_op *o = ctx;
    const size_t t = b / QK_MINMAX_TILE;
    o->mins[t] = INFINITY;
    o->maxs[t] = -INFINITY;
    o->k->f32_minmax(e - b, o->x + b, o->finite_only, &o->mins[t], &o->maxs[t]);
}

qk_status qk_minmax_f32(size_t n, const float *x, uint32_t flags, float *min_out, float *max_out) {
    const qk_kernel_table *k = qk_kernels();
    if (!k) return qk_runtime_init();
    if (!min_out || !max_out || (n && !x))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null pointer passed to qk_minmax_f32");
    if (flags & ~(uint32_t)QK_MINMAX_FINITE_ONLY)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "unknown minmax flags 0x%x", (unsigned)flags);
    const int finite_only = (flags & QK_MINMAX_FINITE_ONLY) != 0;
    float lo = INFINITY, hi = -INFINITY;
    const size_t tiles = n / QK_MINMAX_TILE + (n % QK_MINMAX_TILE != 0);
    if (tiles <= 1) {
        if (n) k->f32_minmax(n, x, finite_only, &lo, &hi);
    } else {
        float *buf = malloc(2 * tiles * sizeof *buf);
        if (!buf) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu partial results", tiles);
        minmax_op o = {x, k, finite_only, buf, buf + tiles};
        qk_parallel_for_1d(n, QK_MINMAX_TILE, minmax_tile, &o);
        for (size_t t = 0; t < tiles; t++) {
            lo = o.mins[t] < lo ? o.mins[t] : lo;
            hi = o.maxs[t] > hi ? o.maxs[t] : hi;
        }
        free(buf);
    }
    *min_out = lo;
    *max_out = hi;
    return QK_OK;
}
