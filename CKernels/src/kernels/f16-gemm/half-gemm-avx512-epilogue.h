/*
 * Shared by the AVX-512 half-precision GEMM microkernels (f16-gemm-14x32-avx512.c, bf16-gemm-14x32c2-avx512.c,
 * bf16-gemm-14x32c2-avx512bf16.c): accumulator setup, the output stage (+ bias, ReLU, masked stores) and the table of
 * tile functions per row count. The tiles keep their accumulators in named variables acc<i>_<s>_<j> (row i < 14, k
 * range s < 4, 16-column vector j < 2) so that they stay in zmm registers, hence macros; they use the tile
 * function's own names: mr, nv (column vectors, 1 or 2), ns (k ranges), c, c_stride, bias, flags, the column masks
 * m0, m1 and accumulate (flags & QK_HALF_UK_ACCUMULATE). Internal; included inside the kernels' x86 guard as
 * "f16-gemm/half-gemm-avx512-epilogue.h", and through qk_avx512.h it also builds with QK_SIMDE_EMULATION.
 */
#ifndef QK_HALF_GEMM_AVX512_EPILOGUE_H
#define QK_HALF_GEMM_AVX512_EPILOGUE_H

#if defined(__x86_64__) || defined(_M_X64)

#include "qk_avx512.h"
#include "qk_kernels.h"

/* One statement per row (folded away for rows >= mr) or per k range. */
#define QK_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define QK_SETS(X, i) X(i, 0) X(i, 1) X(i, 2) X(i, 3)

/* The lanes of column vector 0 (columns 0-15) and 1 (columns 16-31) that hold one of the nc (1..32) columns. */
#define QK_HALF_AVX512_MASK0(nc) ((nc) >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nc)) - 1u))
#define QK_HALF_AVX512_MASK1(nc)                                                                               \
    ((nc) >= 32 ? (__mmask16)0xFFFF : (nc) > 16 ? (__mmask16)((1u << ((nc) - 16)) - 1u) : (__mmask16)0)

/* Declares row i's accumulators at zero; set 0 starts from c (masked to the nc columns) when accumulate. */
#define QK_HALF_AVX512_DECL_SET(i, s)                                                                          \
    __m512 acc##i##_##s##_0 = _mm512_setzero_ps(), acc##i##_##s##_1 = acc##i##_##s##_0;
#define QK_HALF_AVX512_ACC(i)                                                                                  \
    QK_SETS(QK_HALF_AVX512_DECL_SET, i)                                                                        \
    if (i < mr && accumulate) {                                                                                \
        const float *ci = (const float *)((const char *)c + i * c_stride);                                     \
        acc##i##_0_0 = _mm512_maskz_loadu_ps(m0, ci);                                                          \
        if (nv > 1) acc##i##_0_1 = _mm512_maskz_loadu_ps(m1, ci + 16);                                         \
    }

/*
 * Column vector j of row i: the ns k-range sets summed in a fixed order; + bias; ReLU as max(0, y) with y second (NaN
 * stays NaN); masked store of the nc columns.
 */
#define QK_HALF_AVX512_OUT(i, j)                                                                               \
    if (j < nv) {                                                                                              \
        __m512 y = acc##i##_0_##j;                                                                             \
        if (ns > 1) y = _mm512_add_ps(y, acc##i##_1_##j);                                                      \
        if (ns > 2) y = _mm512_add_ps(_mm512_add_ps(y, acc##i##_2_##j), acc##i##_3_##j);                       \
        if (bias != NULL) y = _mm512_add_ps(y, b##j);                                                          \
        if (relu) y = _mm512_max_ps(zero, y);                                                                  \
        _mm512_mask_storeu_ps(ci + 16 * j, m##j, y);                                                           \
    }
#define QK_HALF_AVX512_STORE_ROW(i)                                                                            \
    if (i < mr) {                                                                                              \
        float *ci = (float *)((char *)c + i * c_stride);                                                       \
        QK_HALF_AVX512_OUT(i, 0) QK_HALF_AVX512_OUT(i, 1)                                                      \
    }

/* The end of a tile function: every row through QK_HALF_AVX512_OUT, writing exactly mr x nc floats. */
#define QK_HALF_AVX512_STORE_TILE()                                                                            \
    do {                                                                                                       \
        __m512 b0 = _mm512_setzero_ps(), b1 = b0;                                                              \
        if (bias != NULL) {                                                                                    \
            b0 = _mm512_maskz_loadu_ps(m0, bias);                                                              \
            if (nv > 1) b1 = _mm512_maskz_loadu_ps(m1, bias + 16);                                             \
        }                                                                                                      \
        const int relu = (flags & QK_HALF_UK_RELU) != 0;                                                       \
        const __m512 zero = _mm512_setzero_ps();                                                               \
        QK_ROWS(QK_HALF_AVX512_STORE_ROW)                                                                      \
    } while (0)

/*
 * A kernel's out-of-line tile functions (each with its own register allocation): qk_tile<r>_<v> runs the kernel's
 * qk_tile(r, v, s_r, ...) for r = 1..14 rows, v = 1 or 2 column vectors and s_r k ranges; TARGET is the kernel's
 * target attribute, AT the element type of A. qk_tiles[r - 1][v - 1] holds them for the microkernel to pick.
 */
#define QK_HALF_AVX512_TILE_FN(TARGET, AT, r, v, s)                                                            \
    TARGET static __attribute__((noinline)) void qk_tile##r##_##v(                                             \
        size_t nc, size_t kc, const AT *a, size_t a_stride, const uint16_t *w, float *c, size_t c_stride,      \
        const float *bias, uint32_t flags) {                                                                   \
        qk_tile(r, v, s, nc, kc, a, a_stride, w, c, c_stride, bias, flags);                                    \
    }
#define QK_HALF_AVX512_TILE_FNS(TARGET, AT, r, s)                                                              \
    QK_HALF_AVX512_TILE_FN(TARGET, AT, r, 1, s) QK_HALF_AVX512_TILE_FN(TARGET, AT, r, 2, s)
#define QK_HALF_AVX512_TILE_ROW(r) {qk_tile##r##_1, qk_tile##r##_2},
#define QK_HALF_AVX512_TILES(TARGET, AT, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14)          \
    QK_HALF_AVX512_TILE_FNS(TARGET, AT, 1, s1) QK_HALF_AVX512_TILE_FNS(TARGET, AT, 2, s2)                      \
    QK_HALF_AVX512_TILE_FNS(TARGET, AT, 3, s3) QK_HALF_AVX512_TILE_FNS(TARGET, AT, 4, s4)                      \
    QK_HALF_AVX512_TILE_FNS(TARGET, AT, 5, s5) QK_HALF_AVX512_TILE_FNS(TARGET, AT, 6, s6)                      \
    QK_HALF_AVX512_TILE_FNS(TARGET, AT, 7, s7) QK_HALF_AVX512_TILE_FNS(TARGET, AT, 8, s8)                      \
    QK_HALF_AVX512_TILE_FNS(TARGET, AT, 9, s9) QK_HALF_AVX512_TILE_FNS(TARGET, AT, 10, s10)                    \
    QK_HALF_AVX512_TILE_FNS(TARGET, AT, 11, s11) QK_HALF_AVX512_TILE_FNS(TARGET, AT, 12, s12)                  \
    QK_HALF_AVX512_TILE_FNS(TARGET, AT, 13, s13) QK_HALF_AVX512_TILE_FNS(TARGET, AT, 14, s14)                  \
    typedef void qk_tile_fn(size_t nc, size_t kc, const AT *a, size_t a_stride, const uint16_t *w, float *c,   \
                            size_t c_stride, const float *bias, uint32_t flags);                               \
    static qk_tile_fn *const qk_tiles[14][2] = {                                                               \
        QK_HALF_AVX512_TILE_ROW(1) QK_HALF_AVX512_TILE_ROW(2) QK_HALF_AVX512_TILE_ROW(3)                       \
        QK_HALF_AVX512_TILE_ROW(4) QK_HALF_AVX512_TILE_ROW(5) QK_HALF_AVX512_TILE_ROW(6)                       \
        QK_HALF_AVX512_TILE_ROW(7) QK_HALF_AVX512_TILE_ROW(8) QK_HALF_AVX512_TILE_ROW(9)                       \
        QK_HALF_AVX512_TILE_ROW(10) QK_HALF_AVX512_TILE_ROW(11) QK_HALF_AVX512_TILE_ROW(12)                    \
        QK_HALF_AVX512_TILE_ROW(13) QK_HALF_AVX512_TILE_ROW(14)                                                \
    };

#endif
#endif /* QK_HALF_GEMM_AVX512_EPILOGUE_H */
