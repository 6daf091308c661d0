/*
 * AVX2 u8 x s8 depthwise convolution, 9 taps (3x3, or any kernel of 9 taps), 32 channels per step. The scheme of
 * qu8-dwconv-avx2.h, with the full 32-channel tile in assembly: compilers reassociate the 18 vpaddd of the
 * intrinsics version into a tree and spill. ymm12-14 are temporaries, ymm15 zero, and four operands hold the
 * accumulators; the 9th tap, which has no partner, is widened straight to int32 lanes with vpshufb (4 shuffles
 * instead of 6). Rows are resolved once per pixel (no add at all when input_offset is 0, as the operator passes).
 */
#include "qu8-dwconv-avx2.h"

#if defined(__x86_64__) || defined(_M_X64)

/* vpshufb masks widening bytes 4v..4v+3 of each 128-bit lane to the dwords of accumulator v. */
#define QK_Z 0x80
#define QK_MASK(v)                                                                                             \
    {4 * v, QK_Z, QK_Z, QK_Z, 4 * v + 1, QK_Z, QK_Z, QK_Z, 4 * v + 2, QK_Z, QK_Z, QK_Z, 4 * v + 3, QK_Z, QK_Z, QK_Z, \
     4 * v, QK_Z, QK_Z, QK_Z, 4 * v + 1, QK_Z, QK_Z, QK_Z, 4 * v + 2, QK_Z, QK_Z, QK_Z, 4 * v + 3, QK_Z, QK_Z, QK_Z}
static const uint8_t qk_dw9_masks[4][32] __attribute__((aligned(32))) = {QK_MASK(0), QK_MASK(1), QK_MASK(2),
                                                                         QK_MASK(3)};

/* Taps A and B of the tile at channel c against the 4 weight vectors at byte offset G of the tile. */
#define QK_PAIR(A, B, G)                                                  \
    "vmovdqu (%[" A "],%[c]), %%ymm12\n\t"                                \
    "vmovdqu (%[" B "],%[c]), %%ymm14\n\t"                                \
    "vpunpckhbw %%ymm14, %%ymm12, %%ymm13\n\t"                            \
    "vpunpcklbw %%ymm14, %%ymm12, %%ymm12\n\t"                            \
    "vpunpcklbw %%ymm15, %%ymm12, %%ymm14\n\t"                            \
    "vpunpckhbw %%ymm15, %%ymm12, %%ymm12\n\t"                            \
    "vpmaddwd " G "(%[w]), %%ymm14, %%ymm14\n\t"                          \
    "vpmaddwd " G "+32(%[w]), %%ymm12, %%ymm12\n\t"                       \
    "vpaddd %%ymm14, %[a0], %[a0]\n\t"                                    \
    "vpaddd %%ymm12, %[a1], %[a1]\n\t"                                    \
    "vpunpcklbw %%ymm15, %%ymm13, %%ymm14\n\t"                            \
    "vpunpckhbw %%ymm15, %%ymm13, %%ymm13\n\t"                            \
    "vpmaddwd " G "+64(%[w]), %%ymm14, %%ymm14\n\t"                       \
    "vpmaddwd " G "+96(%[w]), %%ymm13, %%ymm13\n\t"                       \
    "vpaddd %%ymm14, %[a2], %[a2]\n\t"                                    \
    "vpaddd %%ymm13, %[a3], %[a3]\n\t"
#define QK_SINGLE(V, G)                                                   \
    "vpshufb %[m" #V "], %%ymm12, %%ymm13\n\t"                            \
    "vpmaddwd " G "(%[w]), %%ymm13, %%ymm13\n\t"                          \
    "vpaddd %%ymm13, %[a" #V "], %[a" #V "]\n\t"

/* acc = comp + the 9 taps' products for the 32 channels at c (exact int32). */
static QK_TARGET_AVX2 inline __attribute__((always_inline)) void qk_dw9_tile(const uint8_t *const r[9], size_t c,
                                                                             const int32_t *w, const int32_t *comp,
                                                                             const __m256i m[4], __m256i acc[4]) {
    __m256i a0, a1, a2, a3;
    __asm__(
        "vmovdqu (%[comp],%[c],4), %[a0]\n\t"
        "vmovdqu 32(%[comp],%[c],4), %[a1]\n\t"
        "vmovdqu 64(%[comp],%[c],4), %[a2]\n\t"
        "vmovdqu 96(%[comp],%[c],4), %[a3]\n\t"
        "vpxor %%xmm15, %%xmm15, %%xmm15\n\t"
        QK_PAIR("r0", "r1", "0") QK_PAIR("r2", "r3", "128") QK_PAIR("r4", "r5", "256") QK_PAIR("r6", "r7", "384")
        "vmovdqu (%[r8],%[c]), %%ymm12\n\t"
        QK_SINGLE(0, "512") QK_SINGLE(1, "544") QK_SINGLE(2, "576") QK_SINGLE(3, "608")
        : [a0] "=&x"(a0), [a1] "=&x"(a1), [a2] "=&x"(a2), [a3] "=&x"(a3)
        : [r0] "r"(r[0]), [r1] "r"(r[1]), [r2] "r"(r[2]), [r3] "r"(r[3]), [r4] "r"(r[4]), [r5] "r"(r[5]),
          [r6] "r"(r[6]), [r7] "r"(r[7]), [r8] "r"(r[8]), [c] "r"(c), [w] "r"(w), [comp] "r"(comp),
          [m0] "x"(m[0]), [m1] "x"(m[1]), [m2] "x"(m[2]), [m3] "x"(m[3])
        : "xmm12", "xmm13", "xmm14", "xmm15", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

static QK_TARGET_AVX2 inline __attribute__((always_inline)) void qk_dw9(
    const int offset, size_t channels, size_t output_width, const uint8_t **input, size_t input_stride,
    size_t input_offset, const uint8_t *zero, const void *weights, uint8_t *output, const qk_dwconv_qparams *params) {
    const int32_t *comp = params->comp;
    const float *bt = params->bias_term, *mult = params->multiplier;
    const qk_dw_avx2_out out = qk_dw_avx2_out_init(params);
    const size_t full = channels - channels % QK_DW_CT;
    const qk_dw_avx2_tail tail = qk_dw_avx2_tail_init(channels % QK_DW_CT);
    __m256i masks[4];
    QK_UNROLL for (int v = 0; v < 4; v++) masks[v] = _mm256_load_si256((const __m256i *)qk_dw9_masks[v]);
    for (size_t p = 0; p < output_width; p++) {
        const uint8_t **in = input + p * input_stride;
        const uint8_t *rows[9];
        QK_UNROLL for (size_t t = 0; t < 9; t++) rows[t] = offset ? qk_dw_row(in[t], zero, input_offset) : in[t];
        const int32_t *w = weights;
        size_t c = 0;
        for (; c < full; c += QK_DW_CT, w += 5 * 4 * 8) {
            __m256i acc[4];
            qk_dw9_tile(rows, c, w, comp, masks, acc);
            _mm256_storeu_si256((__m256i *)(output + c), qk_dw_avx2_requant(acc, bt + c, mult + c, &out));
        }
        if (tail.r) {
#define QK_DW_ROW9(t) rows[t]
            __m256i result;
            QK_DW_AVX2_TILE(9, QK_DW_ROW9, QK_DW_LOADT);
#undef QK_DW_ROW9
            qk_dw_avx2_store_tail(output + c, result, &tail);
        }
        output += channels;
    }
}

QK_TARGET_AVX2 void qk_qu8_dwconv_ukernel_9p32c__avx2(size_t channels, size_t output_width, size_t taps,
                                                      const uint8_t **input, size_t input_stride, size_t input_offset,
                                                      const uint8_t *zero, const void *weights, uint8_t *output,
                                                      const qk_dwconv_qparams *params) {
    (void)taps;
    if (input_offset)
        qk_dw9(1, channels, output_width, input, input_stride, input_offset, zero, weights, output, params);
    else
        qk_dw9(0, channels, output_width, input, input_stride, 0, zero, weights, output, params);
}

#endif
