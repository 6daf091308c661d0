/*
 * AVX-512 fp16-weight GEMM, 14x32 (FBGEMM's AVX-512 shape): per k, two vcvtph2ps widen the 32 packed weights into
 * two zmm, and each row broadcasts its fp32 activation into two vfmadd231ps: 28 accumulators + 2 weights + the
 * broadcast = 31 of the 32 zmm registers. Rows and column vectors are compile-time constants in each instance (one
 * out-of-line function per row count and per 1 or 2 column vectors, so a last panel with nc <= 16 does half the
 * work). With fewer than 4 rows there are too few independent FMA chains to cover the FMA latency, so k is cut into
 * 2 or 4 contiguous ranges with an accumulator set each (separate weight streams also suit the prefetchers in GEMV),
 * summed in a fixed order at the end.
 */
#if defined(__x86_64__) || defined(_M_X64)

#include <string.h>

#include "qk_avx512.h"
#include "qk_kernels.h"

#define QK_MR 14
#define QK_NR 32
#define QK_ALWAYS_INLINE static inline __attribute__((always_inline))

/* The tile is written with named registers: QK_ROWS expands one statement per row, folded away for rows >= mr. */
#define QK_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define QK_SETS(X, i) X(i, 0) X(i, 1) X(i, 2) X(i, 3)

QK_TARGET_AVX512 QK_ALWAYS_INLINE void qk_tile(const size_t mr, const size_t nv, const size_t ns, size_t nc,
                                               size_t kc, const float *a, size_t a_stride, const uint16_t *w,
                                               float *c, size_t c_stride, const float *bias, uint32_t flags) {
    const __mmask16 m0 = nc >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nc) - 1u);
    const __mmask16 m1 = nc >= 32 ? (__mmask16)0xFFFF : nc > 16 ? (__mmask16)((1u << (nc - 16)) - 1u) : 0;
    const int accumulate = (flags & QK_HALF_UK_ACCUMULATE) != 0;
    /* acc<i>_<s>_<j>: row i, k range s, column vector j. Set 0 starts from c with QK_HALF_UK_ACCUMULATE. */
#define QK_DECL_SET(i, s) __m512 acc##i##_##s##_0 = _mm512_setzero_ps(), acc##i##_##s##_1 = acc##i##_##s##_0;
#define QK_DECL(i)                                                                                             \
    const float *a##i = a;                                                                                     \
    if (i < mr) a##i = (const float *)((const char *)a + i * a_stride);                                        \
    QK_SETS(QK_DECL_SET, i)                                                                                    \
    if (i < mr && accumulate) {                                                                                \
        const float *ci = (const float *)((const char *)c + i * c_stride);                                     \
        acc##i##_0_0 = _mm512_maskz_loadu_ps(m0, ci);                                                            \
        if (nv > 1) acc##i##_0_1 = _mm512_maskz_loadu_ps(m1, ci + 16);                                           \
    }
    QK_ROWS(QK_DECL)

    /* Weights of k (relative to the range start ks) into set s. */
#define QK_FMA(i, s)                                                                                           \
    if (i < mr) {                                                                                              \
        const __m512 va = _mm512_set1_ps(a##i[ks + k]);                                                        \
        acc##i##_##s##_0 = _mm512_fmadd_ps(va, w0, acc##i##_##s##_0);                                                 \
        if (nv > 1) acc##i##_##s##_1 = _mm512_fmadd_ps(va, w1, acc##i##_##s##_1);                                      \
    }
#define QK_STEP(s)                                                                                             \
    if (s < ns) {                                                                                              \
        const size_t ks = s * q;                                                                               \
        const uint16_t *wk = w + (ks + k) * QK_NR;                                                             \
        const __m512 w0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)wk));                            \
        const __m512 w1 = nv > 1 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wk + 16))) : w0;       \
        QK_ROWS_S(s)                                                                                           \
    }
#define QK_ROWS_S(s) QK_FMA(0, s) QK_FMA(1, s) QK_FMA(2, s) QK_FMA(3, s) QK_FMA(4, s) QK_FMA(5, s) QK_FMA(6, s) \
    QK_FMA(7, s) QK_FMA(8, s) QK_FMA(9, s) QK_FMA(10, s) QK_FMA(11, s) QK_FMA(12, s) QK_FMA(13, s)
    const size_t q = kc / ns;
    for (size_t k = 0; k < q; k++) {
        QK_STEP(0)
        QK_STEP(1)
        QK_STEP(2)
        QK_STEP(3)
    }
    /* The kc % ns rest continues the last range. */
    for (size_t k = q; ns > 1 && (ns - 1) * q + k < kc; k++) {
        const size_t ks = (ns - 1) * q;
        const uint16_t *wk = w + (ks + k) * QK_NR;
        const __m512 w0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)wk));
        const __m512 w1 = nv > 1 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wk + 16))) : w0;
        if (ns == 2) { QK_ROWS_S(1) }
        if (ns == 4) { QK_ROWS_S(3) }
    }

    /* Sets summed in order; + bias; ReLU as max(0, y) with y second (NaN stays NaN); masked stores. */
    __m512 b0 = _mm512_setzero_ps(), b1 = b0;
    if (bias != NULL) {
        b0 = _mm512_maskz_loadu_ps(m0, bias);
        if (nv > 1) b1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    const int relu = (flags & QK_HALF_UK_RELU) != 0;
    const __m512 zero = _mm512_setzero_ps();
#define QK_OUT(i, j)                                                                                           \
    if (j < nv) {                                                                                              \
        __m512 y = acc##i##_0_##j;                                                                               \
        if (ns > 1) y = _mm512_add_ps(y, acc##i##_1_##j);                                                        \
        if (ns > 2) y = _mm512_add_ps(_mm512_add_ps(y, acc##i##_2_##j), acc##i##_3_##j);                           \
        if (bias != NULL) y = _mm512_add_ps(y, b##j);                                                          \
        if (relu) y = _mm512_max_ps(zero, y);                                                                  \
        _mm512_mask_storeu_ps(ci + 16 * j, m##j, y);                                                           \
    }
#define QK_STORE(i)                                                                                            \
    if (i < mr) {                                                                                              \
        float *ci = (float *)((char *)c + i * c_stride);                                                       \
        QK_OUT(i, 0) QK_OUT(i, 1)                                                                              \
    }
    QK_ROWS(QK_STORE)
}

/* Row count r, column vectors v, k ranges s. */
#define QK_TILE_FN(r, v, s)                                                                                    \
    QK_TARGET_AVX512 static __attribute__((noinline)) void qk_tile##r##_##v(                                  \
        size_t nc, size_t kc, const float *a, size_t a_stride, const uint16_t *w, float *c, size_t c_stride,   \
        const float *bias, uint32_t flags) {                                                                   \
        qk_tile(r, v, s, nc, kc, a, a_stride, w, c, c_stride, bias, flags);                                    \
    }
#define QK_TILE_FNS(r, s) QK_TILE_FN(r, 1, s) QK_TILE_FN(r, 2, s)
QK_TILE_FNS(1, 4)
QK_TILE_FNS(2, 2)
QK_TILE_FNS(3, 2)
QK_TILE_FNS(4, 1)
QK_TILE_FNS(5, 1)
QK_TILE_FNS(6, 1)
QK_TILE_FNS(7, 1)
QK_TILE_FNS(8, 1)
QK_TILE_FNS(9, 1)
QK_TILE_FNS(10, 1)
QK_TILE_FNS(11, 1)
QK_TILE_FNS(12, 1)
QK_TILE_FNS(13, 1)
QK_TILE_FNS(14, 1)

typedef void qk_tile_fn(size_t nc, size_t kc, const float *a, size_t a_stride, const uint16_t *w, float *c,
                        size_t c_stride, const float *bias, uint32_t flags);
#define QK_TILE_ROW(r) {qk_tile##r##_1, qk_tile##r##_2},
static qk_tile_fn *const qk_tiles[QK_MR][2] = {
    QK_TILE_ROW(1) QK_TILE_ROW(2) QK_TILE_ROW(3) QK_TILE_ROW(4) QK_TILE_ROW(5) QK_TILE_ROW(6) QK_TILE_ROW(7)
    QK_TILE_ROW(8) QK_TILE_ROW(9) QK_TILE_ROW(10) QK_TILE_ROW(11) QK_TILE_ROW(12) QK_TILE_ROW(13) QK_TILE_ROW(14)
};

QK_TARGET_AVX512 void qk_f16_gemm_ukernel_14x32__avx512(size_t mr, size_t nc, size_t kc, const void *a,
                                                        size_t a_stride, const uint16_t *w, float *c,
                                                        size_t c_stride, const float *bias, uint32_t flags) {
    if (mr == 0 || nc == 0) return;
    const size_t r = mr < QK_MR ? mr : QK_MR;
    qk_tiles[r - 1][nc > 16](nc, kc, (const float *)a, a_stride, w, c, c_stride, bias, flags);
}

#endif
