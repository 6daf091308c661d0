/*
 * The AVX2 u8 x s8 depthwise body shared by qu8-dwconv-9p32c-avx2.c (taps fixed at 9, unrolled) and
 * qu8-dwconv-kp32c-avx2.c (any tap count). Included by those files only.
 *
 * Exact int32 sums without vpmaddubsw (whose int16 pair sums saturate for u8 x s8): per pair of taps and 32
 * channels, vpunpck{l,h}bw interleaves the two rows byte-wise, a second vpunpck{l,h}bw with zero widens each half to
 * int16 pairs (row_a[c], row_b[c]), and vpmaddwd with the packed (w'_a, w'_b) int16 pairs gives
 * row_a * w'_a + row_b * w'_b per channel in int32 (|.| <= 2 * 255 * 255, no saturation). An odd last tap pairs with
 * a zero row. Per pair: 2 loads, 6 shuffles, 4 vpmaddwd, 4 vpaddd; the 4 accumulators hold channels
 * 16 * (e / 4) + 4 * v + e % 4 (layout QK_DW_LAYOUT_PAIRS), and vpackssdw + vpackuswb restore the natural order.
 * Channel tails (< 32) load with vpmaskmovd plus 1-3 single bytes, so no byte past a row is read.
 */
#ifndef QU8_DWCONV_AVX2_H
#define QU8_DWCONV_AVX2_H

#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>
#include <string.h>

#include "qk_internal.h"
#include "qk_kernels.h"

#define QK_DW_CT 32
#define QK_INLINE static QK_TARGET_AVX2 inline __attribute__((always_inline))
/* Loops with constant trip counts must unroll fully so that accumulators and rows stay in registers (GCC -O2 does
 * not do it by itself). */
#define QK_UNROLL _Pragma("GCC unroll 16")

QK_INLINE void qk_dw_avx2_pair(__m256i acc[4], __m256i xa, __m256i xb, const int32_t *w) {
    const __m256i z = _mm256_setzero_si256();
    const __m256i lo = _mm256_unpacklo_epi8(xa, xb), hi = _mm256_unpackhi_epi8(xa, xb);
    const __m256i *wv = (const __m256i *)w;
    acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(_mm256_unpacklo_epi8(lo, z), _mm256_loadu_si256(wv)));
    acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(_mm256_unpackhi_epi8(lo, z), _mm256_loadu_si256(wv + 1)));
    acc[2] = _mm256_add_epi32(acc[2], _mm256_madd_epi16(_mm256_unpacklo_epi8(hi, z), _mm256_loadu_si256(wv + 2)));
    acc[3] = _mm256_add_epi32(acc[3], _mm256_madd_epi16(_mm256_unpackhi_epi8(hi, z), _mm256_loadu_si256(wv + 3)));
}

/*
 * The output stage of qk_round_clamp_small for 32 channels, with one float clamp: min(hi, v) keeps NaN (v second)
 * and caps the top; vcvtps2dq turns NaN and values below -2^31 into INT32_MIN; the saturating packs and adds carry
 * everything below the range to <= 0 or at least below out_min, and vpmaxub raises it to out_min. This equals
 * clamping to [lo, hi] before rounding (lo is an integer), NaN going to out_min.
 */
typedef struct qk_dw_avx2_out {
    __m256 hi;        /* out_max - zp */
    __m256i zp16;
    __m256i min8;     /* out_min bytes */
} qk_dw_avx2_out;

QK_INLINE qk_dw_avx2_out qk_dw_avx2_out_init(const qk_dwconv_qparams *params) {
    qk_dw_avx2_out o;
    o.hi = _mm256_set1_ps((float)(params->out_max - params->out_zero_point));
    o.zp16 = _mm256_set1_epi16((short)params->out_zero_point);
    o.min8 = _mm256_set1_epi8((char)params->out_min);
    return o;
}

QK_INLINE __m256i qk_dw_avx2_requant(const __m256i acc[4], const float *bt, const float *m, const qk_dw_avx2_out *o) {
    __m256i q[4];
    QK_UNROLL for (int v = 0; v < 4; v++) {
        __m256 f = _mm256_add_ps(_mm256_cvtepi32_ps(acc[v]), _mm256_loadu_ps(bt + 8 * v));
        f = _mm256_mul_ps(f, _mm256_loadu_ps(m + 8 * v));
        q[v] = _mm256_cvtps_epi32(_mm256_min_ps(o->hi, f));
    }
    const __m256i a = _mm256_adds_epi16(_mm256_packs_epi32(q[0], q[1]), o->zp16);
    const __m256i b = _mm256_adds_epi16(_mm256_packs_epi32(q[2], q[3]), o->zp16);
    return _mm256_max_epu8(_mm256_packus_epi16(a, b), o->min8);
}

/* The first r (1..31) bytes at p, zero-filled: whole dwords by vpmaskmovd (masked-out dwords are not accessed), the
 * last r % 4 bytes one by one. */
typedef struct qk_dw_avx2_tail {
    size_t r, r4;
    __m256i dwords, last;   /* dwords below r / 4; the dword r / 4 */
} qk_dw_avx2_tail;

QK_INLINE qk_dw_avx2_tail qk_dw_avx2_tail_init(size_t r) {
    qk_dw_avx2_tail t;
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    t.r = r;
    t.r4 = r & ~(size_t)3;
    t.dwords = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(r / 4)), idx);
    t.last = _mm256_cmpeq_epi32(_mm256_set1_epi32((int)(r / 4)), idx);
    return t;
}

QK_INLINE __m256i qk_dw_avx2_load_tail(const uint8_t *p, const qk_dw_avx2_tail *t) {
    __m256i v = _mm256_maskload_epi32((const int *)p, t->dwords);
    const size_t k = t->r - t->r4;
    if (k) {
        uint32_t b = p[t->r4];
        if (k > 1) b |= (uint32_t)p[t->r4 + 1] << 8;
        if (k > 2) b |= (uint32_t)p[t->r4 + 2] << 16;
        v = _mm256_or_si256(v, _mm256_and_si256(_mm256_set1_epi32((int)b), t->last));
    }
    return v;
}

QK_INLINE void qk_dw_avx2_store_tail(uint8_t *p, __m256i v, const qk_dw_avx2_tail *t) {
    _mm256_maskstore_epi32((int *)p, t->dwords, v);
    const size_t k = t->r - t->r4;
    if (k) {
        uint8_t b[32];
        _mm256_storeu_si256((__m256i *)b, v);
        for (size_t i = 0; i < k; i++) p[t->r4 + i] = b[t->r4 + i];
    }
}

QK_INLINE const uint8_t *qk_dw_row(const uint8_t *a, const uint8_t *zero, size_t offset) {
    return a == zero ? zero : a + offset;
}

/* One pixel's channel tile at c: the taps' rows are row(t) + c, loaded by `load`. */
#define QK_DW_AVX2_TILE(T, ROW, LOAD)                                                                   \
    do {                                                                                                \
        __m256i acc[4];                                                                                 \
        QK_UNROLL for (int v_ = 0; v_ < 4; v_++) acc[v_] = _mm256_loadu_si256((const __m256i *)(comp + c) + v_); \
        const int32_t *wg = w;                                                                          \
        size_t t_ = 0;                                                                                  \
        QK_UNROLL for (; t_ + 2 <= (T); t_ += 2, wg += 4 * 8) {                                                   \
            const __m256i xa = LOAD(ROW(t_) + c), xb = LOAD(ROW(t_ + 1) + c);                           \
            qk_dw_avx2_pair(acc, xa, xb, wg);                                                           \
        }                                                                                               \
        if (t_ < (T)) qk_dw_avx2_pair(acc, LOAD(ROW(t_) + c), _mm256_setzero_si256(), wg);              \
        result = qk_dw_avx2_requant(acc, bt + c, mult + c, &out);                                       \
    } while (0)

#define QK_DW_LOADU(p) _mm256_loadu_si256((const __m256i *)(p))
#define QK_DW_LOADT(p) qk_dw_avx2_load_tail((p), &tail)

/*
 * fixed != 0: T is a compile-time constant (<= 16) and each pixel resolves its rows once; otherwise rows are
 * resolved per tile from the indirection (any T).
 */
QK_INLINE void qk_dw_avx2(const size_t T, const int fixed, size_t channels, size_t output_width, const uint8_t **input,
                          size_t input_stride, size_t input_offset, const uint8_t *zero, const void *weights,
                          uint8_t *output, const qk_dwconv_qparams *params) {
    const int32_t *comp = params->comp;
    const float *bt = params->bias_term, *mult = params->multiplier;
    const qk_dw_avx2_out out = qk_dw_avx2_out_init(params);
    const size_t tile_words = (T + 1) / 2 * 4 * 8;   /* int32 words of packed weights per tile */
    const size_t full = channels - channels % QK_DW_CT;
    const qk_dw_avx2_tail tail = qk_dw_avx2_tail_init(channels % QK_DW_CT);
    for (size_t p = 0; p < output_width; p++) {
        const uint8_t **in = input + p * input_stride;
        const uint8_t *rows[16];
        if (fixed)
            QK_UNROLL for (size_t t = 0; t < T; t++) rows[t] = qk_dw_row(in[t], zero, input_offset);
#define QK_DW_ROW(t) (fixed ? rows[t] : qk_dw_row(in[t], zero, input_offset))
        const int32_t *w = weights;
        size_t c = 0;
        for (; c < full; c += QK_DW_CT, w += tile_words) {
            __m256i result;
            QK_DW_AVX2_TILE(T, QK_DW_ROW, QK_DW_LOADU);
            _mm256_storeu_si256((__m256i *)(output + c), result);
        }
        if (tail.r) {
            __m256i result;
            QK_DW_AVX2_TILE(T, QK_DW_ROW, QK_DW_LOADT);
            qk_dw_avx2_store_tail(output + c, result, &tail);
        }
#undef QK_DW_ROW
        output += channels;
    }
}

#endif
#endif /* QU8_DWCONV_AVX2_H */
