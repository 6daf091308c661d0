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

/*
 * Activation rows made on demand, for operators whose A is not a matrix in memory (convolution's im2col): the driver
 * works in chunks of at most chunk_bytes of rows and asks for each range of rows once, in parallel over disjoint
 * ranges: from the tile that reads them when a row tile spans every column, else in a pass before the chunk's tiles.
 * fill(context, row, count, a16, kg, dst, dst_stride, sums) writes rows [row, row + count) of A (absolute row numbers;
 * row i at dst + i * dst_stride bytes) in the format of the kernel the run uses, so they are written only once:
 * quint8 values (a16 = 0), or (a16 = 1, QK_GEMM_A16 kernels) the values as uint16 followed by zeros up to kg values;
 * and when sums != NULL, sums[i] = the sum of row i's K values (mod 2^32).
 */
typedef void qk_gemm_fill_fn(void *context, size_t row, size_t count, int a16, size_t kg, uint8_t *dst,
                             size_t dst_stride, int32_t *sums);
typedef struct qk_gemm_source {
    qk_gemm_fill_fn *fill;
    void *context;
    size_t chunk_bytes;   /* prepared rows per chunk at most (whole MR x NR tiles are kept) */
} qk_gemm_source;

/* qk_qs8_gemm_q8 for quint8 activations from a source (quint8 output, y row stride y_stride). flags: QK_GEMM_RELU,
 * QK_GEMM_ACTIVATIONS_7BIT (no scan happens here: without the flag the exact kernel runs). */
qk_status qk_gemm_q8_source(const qk_qs8_gemm_weights *w, size_t m, const qk_gemm_source *src, float a_scale,
                            int32_t a_zero_point, uint8_t *y, size_t y_stride, float y_scale, int32_t y_zero_point,
                            uint32_t flags);

/* Every activation of the m x k matrix (row stride a_stride bytes) <= 127? Stops at the first that is not. */
int qk_gemm_activations_7bit(size_t m, size_t k, const uint8_t *a, size_t a_stride);

#endif /* QK_GEMM_H */
