/*
 * The AVX-512 u8 x s8 depthwise body: qu8-dwconv-avx2.h on zmm registers, 64 channels per step (layout
 * QK_DW_LAYOUT_PAIRS with a 64-channel tile: vpunpck{l,h}bw work per 128-bit lane, so the channel order inside a
 * lane is the AVX2 one). With QK_DW_VNNI the vpmaddwd + vpaddd pairs become one vpdpwssd (exact: no saturation).
 * Channel tails use byte-masked loads and stores. Included by the qu8-dwconv-*-avx512*.c files only, after they
 * define QK_DW_VNNI (0 or 1) and QK_DW_TARGET.
 */
#ifndef QU8_DWCONV_AVX512_H
#define QU8_DWCONV_AVX512_H

#if defined(__x86_64__) || defined(_M_X64)

#include "qk_avx512.h"
#include "qk_kernels.h"

#define QK_INLINE static QK_DW_TARGET inline __attribute__((always_inline))
#define QK_UNROLL _Pragma("GCC unroll 16")

QK_INLINE __m512i qk_dw512_madd_add(__m512i acc, __m512i a, __m512i w) {
#if QK_DW_VNNI
    return _mm512_dpwssd_epi32(acc, a, w);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, w));
#endif
}

QK_INLINE void qk_dw512_pair(__m512i acc[4], __m512i xa, __m512i xb, const int32_t *w) {
    const __m512i z = _mm512_setzero_si512();
    const __m512i lo = _mm512_unpacklo_epi8(xa, xb), hi = _mm512_unpackhi_epi8(xa, xb);
    acc[0] = qk_dw512_madd_add(acc[0], _mm512_unpacklo_epi8(lo, z), _mm512_loadu_si512(w));
    acc[1] = qk_dw512_madd_add(acc[1], _mm512_unpackhi_epi8(lo, z), _mm512_loadu_si512(w + 16));
    acc[2] = qk_dw512_madd_add(acc[2], _mm512_unpacklo_epi8(hi, z), _mm512_loadu_si512(w + 32));
    acc[3] = qk_dw512_madd_add(acc[3], _mm512_unpackhi_epi8(hi, z), _mm512_loadu_si512(w + 48));
}

QK_INLINE __m512i qk_dw512_requant(const __m512i acc[4], const float *bt, const float *m, __m512 lo, __m512 hi,
                                   __m512i zp16) {
    __m512i q[4];
    QK_UNROLL for (int v = 0; v < 4; v++) {
        __m512 f = _mm512_add_ps(_mm512_cvtepi32_ps(acc[v]), _mm512_loadu_ps(bt + 16 * v));
        f = _mm512_mul_ps(f, _mm512_loadu_ps(m + 16 * v));
        f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);   /* f first: NaN takes lo */
        q[v] = _mm512_cvtps_epi32(f);
    }
    const __m512i a = _mm512_add_epi16(_mm512_packs_epi32(q[0], q[1]), zp16);
    const __m512i b = _mm512_add_epi16(_mm512_packs_epi32(q[2], q[3]), zp16);
    return _mm512_packus_epi16(a, b);
}

QK_INLINE const uint8_t *qk_dw512_row(const uint8_t *a, const uint8_t *zero, size_t offset) {
    return a == zero ? zero : a + offset;
}

#define QK_DW512_TILE(T, ROW, LOAD)                                                                    \
    do {                                                                                               \
        __m512i acc[4];                                                                                \
        QK_UNROLL for (int v_ = 0; v_ < 4; v_++) acc[v_] = _mm512_loadu_si512(comp + c + 16 * v_);     \
        const int32_t *wg = w;                                                                         \
        size_t t_ = 0;                                                                                 \
        QK_UNROLL for (; t_ + 2 <= (T); t_ += 2, wg += 4 * 16) {                                       \
            const __m512i xa = LOAD(ROW(t_) + c), xb = LOAD(ROW(t_ + 1) + c);                          \
            qk_dw512_pair(acc, xa, xb, wg);                                                            \
        }                                                                                              \
        if (t_ < (T)) qk_dw512_pair(acc, LOAD(ROW(t_) + c), _mm512_setzero_si512(), wg);               \
        result = qk_dw512_requant(acc, bt + c, mult + c, lo, hi, zp16);                                \
    } while (0)

#define QK_DW512_LOADU(p) _mm512_loadu_si512((const void *)(p))
#define QK_DW512_LOADT(p) _mm512_maskz_loadu_epi8(tail, (const void *)(p))

QK_INLINE void qk_dw512(const size_t T, const int fixed, size_t channels, size_t output_width, const uint8_t **input,
                        size_t input_stride, size_t input_offset, const uint8_t *zero, const void *weights,
                        uint8_t *output, const qk_dwconv_qparams *params) {
    const int32_t *comp = params->comp;
    const float *bt = params->bias_term, *mult = params->multiplier;
    const int32_t ozp = params->out_zero_point;
    const __m512 lo = _mm512_set1_ps((float)(params->out_min - ozp));
    const __m512 hi = _mm512_set1_ps((float)(params->out_max - ozp));
    const __m512i zp16 = _mm512_set1_epi16((short)ozp);
    const size_t tile_words = (T + 1) / 2 * 4 * 16;
    const size_t full = channels - channels % 64, r = channels % 64;
    const __mmask64 tail = r ? (__mmask64)((1ull << r) - 1) : 0;
    for (size_t p = 0; p < output_width; p++) {
        const uint8_t **in = input + p * input_stride;
        const uint8_t *rows[16];
        if (fixed)
            QK_UNROLL for (size_t t = 0; t < T; t++) rows[t] = qk_dw512_row(in[t], zero, input_offset);
#define QK_DW512_ROW(t) (fixed ? rows[t] : qk_dw512_row(in[t], zero, input_offset))
        const int32_t *w = weights;
        size_t c = 0;
        for (; c < full; c += 64, w += tile_words) {
            __m512i result;
            QK_DW512_TILE(T, QK_DW512_ROW, QK_DW512_LOADU);
            _mm512_storeu_si512((void *)(output + c), result);
        }
        if (r) {
            __m512i result;
            QK_DW512_TILE(T, QK_DW512_ROW, QK_DW512_LOADT);
            _mm512_mask_storeu_epi8(output + c, tail, result);
        }
#undef QK_DW512_ROW
        output += channels;
    }
}

#endif
#endif /* QU8_DWCONV_AVX512_H */
