/* fp32 <-> fp16 and fp32 <-> bf16 conversion operators. */
#include <stdatomic.h>

#include "qk_internal.h"
#include "qk_kernels.h"
#include "qk_scalar_math.h"

typedef struct convert_op {
    const void *x;
    void *y;
    const qk_kernel_table *k;
    atomic_size_t saturated;
} convert_op;

static void to_f16_tile(void *ctx, size_t b, size_t e) {
    convert_op *o = ctx;
    o->k->f32_f16_convert(e - b, (const float *)o->x + b, (uint16_t *)o->y + b);
}

static void to_f16_sat_tile(void *ctx, size_t b, size_t e) {
    convert_op *o = ctx;
    const size_t n = o->k->f32_f16_convert_sat(e - b, (const float *)o->x + b, (uint16_t *)o->y + b);
    if (n) atomic_fetch_add_explicit(&o->saturated, n, memory_order_relaxed);   /* a sum: order does not matter */
}

static void to_f32_tile(void *ctx, size_t b, size_t e) {
    convert_op *o = ctx;
    o->k->f16_f32_convert(e - b, (const uint16_t *)o->x + b, (float *)o->y + b);
}

/* bf16 is integer bit work that compilers vectorise; no per-ISA kernels needed. */
static void to_bf16_tile(void *ctx, size_t b, size_t e) {
    convert_op *o = ctx;
    const float *x = (const float *)o->x;
    uint16_t *y = (uint16_t *)o->y;
    for (size_t i = b; i < e; i++) y[i] = qk_f32_to_bf16_bits(x[i]);
}

static void from_bf16_tile(void *ctx, size_t b, size_t e) {
    convert_op *o = ctx;
    const uint16_t *x = (const uint16_t *)o->x;
    float *y = (float *)o->y;
    for (size_t i = b; i < e; i++) y[i] = qk_bf16_bits_to_f32(x[i]);
}

static qk_status run(size_t n, const void *x, void *y, qk_task_1d task, size_t *saturated) {
    const qk_kernel_table *k = qk_kernels();
    if (!k) return qk_runtime_init();
    if (n && (!x || !y)) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null data pointer for %zu elements", n);
    convert_op o = {x, y, k, 0};
    atomic_init(&o.saturated, 0);
    qk_parallel_for_1d(n, QK_STREAM_TILE, task, &o);
    if (saturated) *saturated = atomic_load(&o.saturated);
    return QK_OK;
}

qk_status qk_f32_to_f16(size_t n, const float *x, uint16_t *y) { return run(n, x, y, to_f16_tile, NULL); }

qk_status qk_f16_to_f32(size_t n, const uint16_t *x, float *y) { return run(n, x, y, to_f32_tile, NULL); }

qk_status qk_f32_to_f16_saturate(size_t n, const float *x, uint16_t *y, size_t *saturated_count) {
    return run(n, x, y, to_f16_sat_tile, saturated_count);
}

qk_status qk_f32_to_bf16(size_t n, const float *x, uint16_t *y) { return run(n, x, y, to_bf16_tile, NULL); }

qk_status qk_bf16_to_f32(size_t n, const uint16_t *x, float *y) { return run(n, x, y, from_bf16_tile, NULL); }
