/* int8 GEMM internals shared by the packing code, the driver and the C tests. Not installed. */
#ifndef QK_GEMM_H
#define QK_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "qk_kernels.h"
#include "quantkit.h"

struct qk_qs8_gemm_weights {
    size_t n, k;
    size_t kpad;                 /* k rounded up to the layout's KR */
    size_t panel_bytes;          /* nr * 4 + nr * kpad */
    size_t packed_bytes;         /* panels * panel_bytes */
    const qk_gemm_config *exact; /* the kernels chosen when packing; they define the layout (nr, kr) */
    const qk_gemm_config *fast;  /* may be NULL */
    int pinned;                  /* 1: always run exact / fast above, whatever the ISA level (tests) */
    int per_channel;
    int any_zero_point;          /* some zw != 0: the driver computes activation row sums */
    float *w_scales;             /* [n] (per tensor: the one scale repeated) */
    int32_t *w_zero_points;      /* [n] */
    float *bias;                 /* [n] or NULL */
    void *packed;                /* 64-byte aligned */
};

/* Bytes of the packed weights for a layout, or 0 on overflow (*ok = 0). */
size_t qk_gemm_packed_size(uint32_t nr, uint32_t kr, size_t n, size_t k, int *ok);

/* Packs w [n, k] (row-major, row stride k) with zero points zw[n] into `packed` (qk_gemm_packed_size bytes). */
void qk_gemm_pack(uint32_t nr, uint32_t kr, size_t n, size_t k, const int8_t *w, const int32_t *zw, void *packed);

/* qk_qs8_gemm_weights_create with explicit kernels (exact must be non-fast; fast NULL or of the same layout).
 * pinned = 1 makes every run use exactly these kernels (the tests compare variants this way). */
qk_status qk_gemm_weights_create_with(const qk_gemm_config *exact, const qk_gemm_config *fast, int pinned, size_t n,
                                      size_t k, const int8_t *weights, qk_qscheme qscheme, const float *scales,
                                      const int32_t *zero_points, const float *bias, qk_qs8_gemm_weights **out);

#endif /* QK_GEMM_H */
