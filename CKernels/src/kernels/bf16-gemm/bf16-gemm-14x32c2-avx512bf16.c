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

#include "qk_avx512.h"
#include "qk_kernels.h"

#define QK_MR 14
#define QK_NR 32
#define QK_KR 2
#define QK_ALWAYS_INLINE static inline __attribute__((always_inline))

/* The tile is written with named registers: QK_ROWS expands one statement per row, folded away for rows >= mr. */
#define QK_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define QK_SETS(X, i) X(i, 0) X(i, 1) X(i, 2) X(i, 3)

QK_TARGET_AVX512BF16 QK_ALWAYS_INLINE void qk_tile(const size_t mr, const size_t nv, const size_t ns, size_t nc,
                                               size_t kc, const uint16_t *a, size_t a_stride, const uint16_t *w,
                                               float *c, size_t c_stride, const float *bias, uint32_t flags) {
    const __mmask16 m0 = nc >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nc) - 1u);
    const __mmask16 m1 = nc >= 32 ? (__mmask16)0xFFFF : nc > 16 ? (__mmask16)((1u << (nc - 16)) - 1u) : 0;
    const int accumulate = (flags & QK_HALF_UK_ACCUMULATE) != 0;
    /* acc<i>_<s>_<j>: row i, k range s, column vector j. Set 0 starts from c with QK_HALF_UK_ACCUMULATE. */
#define QK_DECL_SET(i, s) __m512 acc##i##_##s##_0 = _mm512_setzero_ps(), acc##i##_##s##_1 = acc##i##_##s##_0;
#define QK_DECL(i)                                                                                             \
    const char *a##i = (const char *)a;                                                                        \
    if (i < mr) a##i = (const char *)a + i * a_stride;                                                         \
    QK_SETS(QK_DECL_SET, i)                                                                                    \
    if (i < mr && accumulate) {                                                                                \
        const float *ci = (const float *)((const char *)c + i * c_stride);                                     \
        acc##i##_0_0 = _mm512_maskz_loadu_ps(m0, ci);                                                            \
        if (nv > 1) acc##i##_0_1 = _mm512_maskz_loadu_ps(m1, ci + 16);                                           \
    }
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

/* Row count r, column vectors v, pair ranges s. */
#define QK_TILE_FN(r, v, s)                                                                                    \
    QK_TARGET_AVX512BF16 static __attribute__((noinline)) void qk_tile##r##_##v(                              \
        size_t nc, size_t kc, const uint16_t *a, size_t a_stride, const uint16_t *w, float *c, size_t c_stride, \
        const float *bias, uint32_t flags) {                                                                   \
        qk_tile(r, v, s, nc, kc, a, a_stride, w, c, c_stride, bias, flags);                                    \
    }
#define QK_TILE_FNS(r, s) QK_TILE_FN(r, 1, s) QK_TILE_FN(r, 2, s)
QK_TILE_FNS(1, 4)
QK_TILE_FNS(2, 4)
QK_TILE_FNS(3, 2)
QK_TILE_FNS(4, 2)
QK_TILE_FNS(5, 2)
QK_TILE_FNS(6, 1)
QK_TILE_FNS(7, 1)
QK_TILE_FNS(8, 1)
QK_TILE_FNS(9, 1)
QK_TILE_FNS(10, 1)
QK_TILE_FNS(11, 1)
QK_TILE_FNS(12, 1)
QK_TILE_FNS(13, 1)
QK_TILE_FNS(14, 1)

typedef void qk_tile_fn(size_t nc, size_t kc, const uint16_t *a, size_t a_stride, const uint16_t *w, float *c,
                        size_t c_stride, const float *bias, uint32_t flags);
#define QK_TILE_ROW(r) {qk_tile##r##_1, qk_tile##r##_2},
static qk_tile_fn *const qk_tiles[QK_MR][2] = {
    QK_TILE_ROW(1) QK_TILE_ROW(2) QK_TILE_ROW(3) QK_TILE_ROW(4) QK_TILE_ROW(5) QK_TILE_ROW(6) QK_TILE_ROW(7)
    QK_TILE_ROW(8) QK_TILE_ROW(9) QK_TILE_ROW(10) QK_TILE_ROW(11) QK_TILE_ROW(12) QK_TILE_ROW(13) QK_TILE_ROW(14)
};

QK_TARGET_AVX512BF16 void qk_bf16_gemm_ukernel_14x32c2__avx512bf16(size_t mr, size_t nc, size_t kc, const void *a,
                                                                   size_t a_stride, const uint16_t *w, float *c,
                                                                   size_t c_stride, const float *bias,
                                                                   uint32_t flags) {
    if (mr == 0 || nc == 0) return;
    const size_t r = mr < QK_MR ? mr : QK_MR;
    qk_tiles[r - 1][nc > 16](nc, kc, (const uint16_t *)a, a_stride, w, c, c_stride, bias, flags);
}

#endif
