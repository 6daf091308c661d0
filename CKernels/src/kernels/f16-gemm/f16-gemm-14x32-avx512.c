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

#include "f16-gemm/half-gemm-avx512-epilogue.h"
#include "qk_avx512.h"
#include "qk_kernels.h"

#define QK_MR 14
#define QK_NR 32
#define QK_ALWAYS_INLINE static inline __attribute__((always_inline))

QK_TARGET_AVX512 QK_ALWAYS_INLINE void qk_tile(const size_t mr, const size_t nv, const size_t ns, size_t nc,
                                               size_t kc, const float *a, size_t a_stride, const uint16_t *w,
                                               float *c, size_t c_stride, const float *bias, uint32_t flags) {
    const __mmask16 m0 = QK_HALF_AVX512_MASK0(nc), m1 = QK_HALF_AVX512_MASK1(nc);
    const int accumulate = (flags & QK_HALF_UK_ACCUMULATE) != 0;
    /* acc<i>_<s>_<j>: row i, k range s, column vector j. Set 0 starts from c with QK_HALF_UK_ACCUMULATE. */
#define QK_DECL(i)                                                                                             \
    const float *a##i = a;                                                                                     \
    if (i < mr) a##i = (const float *)((const char *)a + i * a_stride);                                        \
    QK_HALF_AVX512_ACC(i)
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

    /* Sets summed in order; + bias; ReLU (NaN stays NaN); masked stores of mr x nc. */
    QK_HALF_AVX512_STORE_TILE();
}

/* Tile functions for 1..14 rows: 4 k ranges for 1 row, 2 for 2 and 3 rows, 1 from 4 rows on. */
QK_HALF_AVX512_TILES(QK_TARGET_AVX512, float, 4, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)

QK_TARGET_AVX512 void qk_f16_gemm_ukernel_14x32__avx512(size_t mr, size_t nc, size_t kc, const void *a,
                                                        size_t a_stride, const uint16_t *w, float *c,
                                                        size_t c_stride, const float *bias, uint32_t flags) {
    if (mr == 0 || nc == 0) return;
    const size_t r = mr < QK_MR ? mr : QK_MR;
    qk_tiles[r - 1][nc > 16](nc, kc, (const float *)a, a_stride, w, c, c_stride, bias, flags);
}

#endif
