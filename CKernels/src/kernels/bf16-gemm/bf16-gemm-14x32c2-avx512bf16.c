/*
 * AVX512-BF16 GEMM, 14x32c2: vdpbf16ps takes the packed weights as they are (each 32-bit lane holds column j's pair
 * of k) and one broadcast 32-bit pair of A per row, and adds both products to an fp32 lane: 16 columns x 2 k per
 * instruction, no widening at all. 28 accumulators + 2 weight vectors + the broadcast = 31 zmm. The instruction
 * treats bf16 subnormal inputs as zero and flushes subnormal results (SDM), as the public header says. Rows and
 * column vectors are compile-time constants per instance (one function per row count and per 1 or 2 column
 * vectors); with fewer than 6 rows the pairs are cut into 2 or 4 contiguous ranges with an accumulator set each, so
 * enough dot-product chains are in flight to cover its latency, summed in a fixed order at the end.
 */
#if defined(__x86_64__) || defined(_M_X64)

#include <string.h>

#include "f16-gemm/half-gemm-avx512-epilogue.h"
#include "qk_avx512.h"
#include "qk_kernels.h"

#define QK_MR 14
#define QK_NR 32
#define QK_KR 2
#define QK_ALWAYS_INLINE static inline __attribute__((always_inline))

QK_TARGET_AVX512BF16 QK_ALWAYS_INLINE void qk_tile(const size_t mr, const size_t nv, const size_t ns, size_t nc,
                                               size_t kc, const uint16_t *a, size_t a_stride, const uint16_t *w,
                                               float *c, size_t c_stride, const float *bias, uint32_t flags) {
    const __mmask16 m0 = QK_HALF_AVX512_MASK0(nc), m1 = QK_HALF_AVX512_MASK1(nc);
    const int accumulate = (flags & QK_HALF_UK_ACCUMULATE) != 0;
    /* acc<i>_<s>_<j>: row i, k range s, column vector j. Set 0 starts from c with QK_HALF_UK_ACCUMULATE. */
#define QK_DECL(i)                                                                                             \
    const char *a##i = (const char *)a;                                                                        \
    if (i < mr) a##i = (const char *)a + i * a_stride;                                                         \
    QK_HALF_AVX512_ACC(i)
    QK_ROWS(QK_DECL)

    /* Pair p (relative to the range start ps) into set s. */
#define QK_DOT(i, s)                                                                                           \
    if (i < mr) {                                                                                              \
        int32_t pair;                                                                                          \
        memcpy(&pair, a##i + 4 * (ps + p), 4);                                                                 \
        const __m512bh va = (__m512bh)_mm512_set1_epi32(pair);                                                 \
        acc##i##_##s##_0 = _mm512_dpbf16_ps(acc##i##_##s##_0, va, w0);                                         \
        if (nv > 1) acc##i##_##s##_1 = _mm512_dpbf16_ps(acc##i##_##s##_1, va, w1);                             \
    }
#define QK_ROWS_S(s) QK_DOT(0, s) QK_DOT(1, s) QK_DOT(2, s) QK_DOT(3, s) QK_DOT(4, s) QK_DOT(5, s) QK_DOT(6, s) \
    QK_DOT(7, s) QK_DOT(8, s) QK_DOT(9, s) QK_DOT(10, s) QK_DOT(11, s) QK_DOT(12, s) QK_DOT(13, s)
#define QK_WEIGHTS                                                                                             \
    const uint16_t *wp = w + (ps + p) * (QK_NR * QK_KR);                                                       \
    const __m512bh w0 = (__m512bh)_mm512_loadu_si512(wp);                                                      \
    const __m512bh w1 = nv > 1 ? (__m512bh)_mm512_loadu_si512(wp + 32) : w0;
#define QK_STEP(s)                                                                                             \
    if (s < ns) {                                                                                              \
        const size_t ps = s * q;                                                                               \
        QK_WEIGHTS                                                                                             \
        QK_ROWS_S(s)                                                                                           \
    }
    /* Range s holds pairs [s q, s q + q); the np % ns rest continues the last range. */
    const size_t np = (kc + 1) / 2, q = np / ns;
    for (size_t p = 0; p < q; p++) {
        QK_STEP(0)
        QK_STEP(1)
        QK_STEP(2)
        QK_STEP(3)
    }
    for (size_t p = q; ns > 1 && (ns - 1) * q + p < np; p++) {
        const size_t ps = (ns - 1) * q;
        QK_WEIGHTS
        if (ns == 2) { QK_ROWS_S(1) }
        if (ns == 4) { QK_ROWS_S(3) }
    }

    /* Sets summed in order; + bias; ReLU (NaN stays NaN); masked stores of mr x nc. */
    QK_HALF_AVX512_STORE_TILE();
}

/* Tile functions for 1..14 rows: 4 pair ranges for 1 and 2 rows, 2 for 3 to 5 rows, 1 from 6 rows on. */
QK_HALF_AVX512_TILES(QK_TARGET_AVX512BF16, uint16_t, 4, 4, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1)

QK_TARGET_AVX512BF16 void qk_bf16_gemm_ukernel_14x32c2__avx512bf16(size_t mr, size_t nc, size_t kc, const void *a,
                                                                   size_t a_stride, const uint16_t *w, float *c,
                                                                   size_t c_stride, const float *bias,
                                                                   uint32_t flags) {
    if (mr == 0 || nc == 0) return;
    const size_t r = mr < QK_MR ? mr : QK_MR;
    qk_tiles[r - 1][nc > 16](nc, kc, (const uint16_t *)a, a_stride, w, c, c_stride, bias, flags);
}

#endif
