/*
 * AVX-512 bf16 GEMM, 14x32c2, for CPUs without AVX512-BF16: a bf16 value is the top half of an fp32, so widening is
 * exact. Each 32-bit lane of the packed weights holds column j's pair (k even low, k odd high): vpslld 16 (memory
 * source) gives the even-k fp32 weights, a zero-masked vmovdqu16 keeping the high halves the odd-k ones. Widening A
 * in the loop would cost two integer ops per row and pair against four FMAs (and on Intel every 512-bit integer op
 * takes an FMA port), so A is widened once per chunk of 32 pairs into an fp32 buffer on the stack (7 KB), each value
 * stored twice: both FMAs of a row then take it as an embedded broadcast ({1to16}) from its own address, so no
 * broadcast register is needed (28 accumulators + 2 weights = 30 zmm; with a broadcast register GCC spilled an
 * accumulator). Products of two bf16 values are exact in fp32, so only the sums round. Rows and column vectors are
 * compile-time constants per instance (one function per row count and per 1 or 2 column vectors); with fewer than 4
 * rows the pairs are cut into 2 or 4 contiguous ranges with an accumulator set each, to keep enough FMA chains in
 * flight, summed in a fixed order at the end.
 */
#if defined(__x86_64__) || defined(_M_X64)

#include <string.h>

#include "f16-gemm/half-gemm-avx512-epilogue.h"
#include "qk_avx512.h"
#include "qk_kernels.h"

#define QK_MR 14
#define QK_NR 32
#define QK_KR 2
#define QK_CHUNK 32   /* pairs of A widened at a time: at most 14 rows x 128 floats = 7 KB of stack */
#define QK_ALWAYS_INLINE static inline __attribute__((always_inline))

/* n bf16 values (n even, <= 2 * QK_CHUNK) to fp32, each stored twice; reads exactly n values. */
QK_TARGET_AVX512 QK_ALWAYS_INLINE void qk_widen(const uint16_t *src, size_t n, float *dst) {
    const __m512i lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i hi = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    for (size_t t = 0; t < n; t += 16) {
        const __m256i v = n - t >= 16 ? _mm256_loadu_si256((const __m256i *)(src + t))
                                      : _mm256_maskz_loadu_epi16((__mmask16)((1u << (n - t)) - 1u), src + t);
        const __m512 f = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
        _mm512_store_ps(dst + 2 * t, _mm512_permutexvar_ps(lo, f));
        _mm512_store_ps(dst + 2 * t + 16, _mm512_permutexvar_ps(hi, f));
    }
}

QK_TARGET_AVX512 QK_ALWAYS_INLINE void qk_tile(const size_t mr, const size_t nv, const size_t ns, size_t nc,
                                               size_t kc, const uint16_t *a, size_t a_stride, const uint16_t *w,
                                               float *c, size_t c_stride, const float *bias, uint32_t flags) {
    const __mmask16 m0 = QK_HALF_AVX512_MASK0(nc), m1 = QK_HALF_AVX512_MASK1(nc);
    const int accumulate = (flags & QK_HALF_UK_ACCUMULATE) != 0;
    /* Widened A: row i of range s at buf[s * mr + i] (mr * ns <= 14), value x at [2 x] and [2 x + 1]. */
    float buf[QK_MR][4 * QK_CHUNK] __attribute__((aligned(64)));
    /* acc<i>_<s>_<j>: row i, pair range s, column vector j. Set 0 starts from c with QK_HALF_UK_ACCUMULATE. */
    QK_ROWS(QK_HALF_AVX512_ACC)

    /* Pair p (absolute) into set s, its activations at buf[s * mr + i][2 t], [2 t + 1]. */
#define QK_FMA(i, s, x, wx0, wx1)                                                                              \
    if (i < mr) {                                                                                              \
        acc##i##_##s##_0 = _mm512_fmadd_ps(_mm512_set1_ps(buf[(s) * mr + i][2 * (x)]), wx0, acc##i##_##s##_0);  \
        if (nv > 1)                                                                                            \
            acc##i##_##s##_1 = _mm512_fmadd_ps(_mm512_set1_ps(buf[(s) * mr + i][2 * (x) + 1]), wx1, acc##i##_##s##_1); \
    }
#define QK_ROWS_S(s, x, wx0, wx1)                                                                              \
    QK_FMA(0, s, x, wx0, wx1) QK_FMA(1, s, x, wx0, wx1) QK_FMA(2, s, x, wx0, wx1) QK_FMA(3, s, x, wx0, wx1)    \
    QK_FMA(4, s, x, wx0, wx1) QK_FMA(5, s, x, wx0, wx1) QK_FMA(6, s, x, wx0, wx1) QK_FMA(7, s, x, wx0, wx1)    \
    QK_FMA(8, s, x, wx0, wx1) QK_FMA(9, s, x, wx0, wx1) QK_FMA(10, s, x, wx0, wx1)                             \
    QK_FMA(11, s, x, wx0, wx1) QK_FMA(12, s, x, wx0, wx1) QK_FMA(13, s, x, wx0, wx1)
#define QK_PAIR(s, p, t)                                                                                       \
    {                                                                                                          \
        const uint16_t *wp = w + (p) * (QK_NR * QK_KR);                                                        \
        const __m512 we0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_loadu_si512(wp), 16));                 \
        const __m512 we1 =                                                                                     \
            nv > 1 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_loadu_si512(wp + 32), 16)) : we0;            \
        QK_ROWS_S(s, 2 * (t), we0, we1)                                                                        \
        const __m512 wo0 = _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(0xAAAAAAAAu, wp));                     \
        const __m512 wo1 = nv > 1 ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(0xAAAAAAAAu, wp + 32)) : wo0; \
        QK_ROWS_S(s, 2 * (t) + 1, wo0, wo1)                                                                    \
    }
#define QK_PAIR_IF(s, p, t)                                                                                    \
    if (s < ns) QK_PAIR(s, p, t)

    const uint16_t *ap[QK_MR];
    for (size_t i = 0; i < mr; i++) ap[i] = (const uint16_t *)((const char *)a + i * a_stride);
    /* Range s holds pairs [s q, s q + q); the np % ns rest continues the last range. */
    const size_t np = (kc + 1) / 2, q = np / ns;
    for (size_t p0 = 0; p0 < q; p0 += QK_CHUNK) {
        const size_t n = q - p0 < QK_CHUNK ? q - p0 : QK_CHUNK;
        for (size_t s = 0; s < ns; s++)
            for (size_t i = 0; i < mr; i++) qk_widen(ap[i] + 2 * (s * q + p0), 2 * n, buf[s * mr + i]);
        for (size_t t = 0; t < n; t++) {
            QK_PAIR_IF(0, p0 + t, t)
            QK_PAIR_IF(1, q + p0 + t, t)
            QK_PAIR_IF(2, 2 * q + p0 + t, t)
            QK_PAIR_IF(3, 3 * q + p0 + t, t)
        }
    }
    if (ns > 1 && ns * q < np) {
        const size_t n = np - ns * q;   /* < ns */
        for (size_t i = 0; i < mr; i++) qk_widen(ap[i] + 2 * ns * q, 2 * n, buf[(ns - 1) * mr + i]);
        for (size_t t = 0; t < n; t++) {
            if (ns == 2) QK_PAIR(1, 2 * q + t, t)
            if (ns == 4) QK_PAIR(3, 4 * q + t, t)
        }
    }

    /* Sets summed in order; + bias; ReLU (NaN stays NaN); masked stores of mr x nc. */
    QK_HALF_AVX512_STORE_TILE();
}

/* Tile functions for 1..14 rows: 4 pair ranges for 1 row, 2 for 2 and 3 rows, 1 from 4 rows on. */
QK_HALF_AVX512_TILES(QK_TARGET_AVX512, uint16_t, 4, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)

QK_TARGET_AVX512 void qk_bf16_gemm_ukernel_14x32c2__avx512(size_t mr, size_t nc, size_t kc, const void *a,
                                                           size_t a_stride, const uint16_t *w, float *c,
                                                           size_t c_stride, const float *bias, uint32_t flags) {
    if (mr == 0 || nc == 0) return;
    const size_t r = mr < QK_MR ? mr : QK_MR;
    qk_tiles[r - 1][nc > 16](nc, kc, (const uint16_t *)a, a_stride, w, c, c_stride, bias, flags);
}

#endif
