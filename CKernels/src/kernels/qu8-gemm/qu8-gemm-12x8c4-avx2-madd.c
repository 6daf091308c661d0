/*
 * AVX2 u8 x s8 GEMM, 12x8c4, "fast": vpmaddubsw multiplies 4 activation bytes (broadcast) by 8 columns x 4 k of
 * packed weights and adds adjacent pairs into int16; vpmaddwd with ones adds the pairs into int32 column sums.
 * A pair sum a0*w0 + a1*w1 saturates int16 when activations exceed 127 (255*127*2 > 32767), so dispatch uses this
 * kernel only when every activation is <= 127 (|pair| <= 127*128*2 = 32512): then it is exact.
 * 12 accumulators + weights + ones + 1 temporary: 15 ymm; 2 multiplies per 32 MACs, the AVX2 limit.
 */
#if defined(__x86_64__) || defined(_M_X64)

#include <string.h>

#include "qu8-gemm-avx2-epilogue.h"

#define QK_MR 12
#define QK_UNROLL _Pragma("GCC unroll 12")

static QK_TARGET_AVX2 inline __attribute__((always_inline)) void qk_tile_12x8c4(
    const size_t mr, size_t kc, const uint8_t *a, size_t a_stride, const int8_t *w, __m256i *acc) {
    const uint8_t *ap[QK_MR];
    const __m256i ones = _mm256_set1_epi16(1);
    QK_UNROLL
    for (size_t i = 0; i < mr; i++) {
        ap[i] = a + i * a_stride;
        acc[i] = _mm256_setzero_si256();
    }
    size_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        const __m256i b = _mm256_loadu_si256((const __m256i *)w);
        w += 32;
        QK_UNROLL
        for (size_t i = 0; i < mr; i++) {
            const __m256i va = _mm256_set1_epi32(qk_gemm_load4(ap[i] + k));
            acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(va, b), ones));
        }
    }
    if (k < kc) {
        const __m256i b = _mm256_loadu_si256((const __m256i *)w);
        QK_UNROLL
        for (size_t i = 0; i < mr; i++) {
            const __m256i va = _mm256_set1_epi32(qk_gemm_load_tail(ap[i] + k, kc - k));
            acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(va, b), ones));
        }
    }
}

/*
 * The full 12-row tile in assembly (GCC's register allocation of the intrinsics spills). Rows are addressed from
 * four bases (rows 0, 3, 6, 9) plus 0, 1 or 2 strides, which leaves enough general registers.
 * ymm0-11 accumulators, ymm12 weights, ymm13/14 products, ymm15 int16 ones.
 */
#define QK_ROW2(addr0, addr1, c0, c1)                            \
    "vpbroadcastd " addr0 ", %%ymm13\n"                          \
    "vpbroadcastd " addr1 ", %%ymm14\n"                          \
    "vpmaddubsw %%ymm12, %%ymm13, %%ymm13\n"                     \
    "vpmaddubsw %%ymm12, %%ymm14, %%ymm14\n"                     \
    "vpmaddwd %%ymm15, %%ymm13, %%ymm13\n"                       \
    "vpmaddwd %%ymm15, %%ymm14, %%ymm14\n"                       \
    "vpaddd %%ymm13, %%ymm" #c0 ", %%ymm" #c0 "\n"               \
    "vpaddd %%ymm14, %%ymm" #c1 ", %%ymm" #c1 "\n"
#define QK_STORE(c, i) "vmovdqu %%ymm" #c ", " #i "*32(%[out])\n"

static QK_TARGET_AVX2 void qk_tile_12x8c4_full(size_t kc, const uint8_t *a, size_t a_stride, const int8_t *w,
                                               __m256i *out) {
    const uint8_t *b0 = a, *b3 = a + 3 * a_stride, *b6 = b3 + 3 * a_stride, *b9 = b6 + 3 * a_stride;
    size_t groups = kc / 4;
    __asm__ volatile(
        "vpxor %%xmm0, %%xmm0, %%xmm0\n vpxor %%xmm1, %%xmm1, %%xmm1\n vpxor %%xmm2, %%xmm2, %%xmm2\n"
        "vpxor %%xmm3, %%xmm3, %%xmm3\n vpxor %%xmm4, %%xmm4, %%xmm4\n vpxor %%xmm5, %%xmm5, %%xmm5\n"
        "vpxor %%xmm6, %%xmm6, %%xmm6\n vpxor %%xmm7, %%xmm7, %%xmm7\n vpxor %%xmm8, %%xmm8, %%xmm8\n"
        "vpxor %%xmm9, %%xmm9, %%xmm9\n vpxor %%xmm10, %%xmm10, %%xmm10\n vpxor %%xmm11, %%xmm11, %%xmm11\n"
        "vpcmpeqw %%ymm15, %%ymm15, %%ymm15\n"
        "vpsrlw $15, %%ymm15, %%ymm15\n"
        "test %[groups], %[groups]\n"
        "jz 2f\n"
        ".p2align 5\n"
        "1:\n"
        "vmovdqu (%[w]), %%ymm12\n"
        "add $32, %[w]\n"
        QK_ROW2("(%[b0])", "(%[b0],%[s],1)", 0, 1)
        QK_ROW2("(%[b0],%[s],2)", "(%[b3])", 2, 3)
        QK_ROW2("(%[b3],%[s],1)", "(%[b3],%[s],2)", 4, 5)
        QK_ROW2("(%[b6])", "(%[b6],%[s],1)", 6, 7)
        QK_ROW2("(%[b6],%[s],2)", "(%[b9])", 8, 9)
        QK_ROW2("(%[b9],%[s],1)", "(%[b9],%[s],2)", 10, 11)
        "add $4, %[b0]\n add $4, %[b3]\n add $4, %[b6]\n add $4, %[b9]\n"
        "dec %[groups]\n"
        "jnz 1b\n"
        "2:\n"
        QK_STORE(0, 0) QK_STORE(1, 1) QK_STORE(2, 2) QK_STORE(3, 3) QK_STORE(4, 4) QK_STORE(5, 5)
        QK_STORE(6, 6) QK_STORE(7, 7) QK_STORE(8, 8) QK_STORE(9, 9) QK_STORE(10, 10) QK_STORE(11, 11)
        : [w] "+r"(w), [groups] "+r"(groups), [b0] "+r"(b0), [b3] "+r"(b3), [b6] "+r"(b6), [b9] "+r"(b9)
        : [s] "r"(a_stride), [out] "r"(out)
        : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    const size_t k = kc / 4 * 4;
    if (k < kc) {   /* 1..3 k left: the packed group is zero-padded, the activation word too */
        const __m256i b = _mm256_loadu_si256((const __m256i *)w), ones = _mm256_set1_epi16(1);
        for (size_t i = 0; i < QK_MR; i++) {
            const __m256i va = _mm256_set1_epi32(qk_gemm_load_tail(a + i * a_stride + k, kc - k));
            out[i] = _mm256_add_epi32(out[i], _mm256_madd_epi16(_mm256_maddubs_epi16(va, b), ones));
        }
    }
}

QK_TARGET_AVX2 void qk_qu8_gemm_ukernel_12x8c4__avx2_madd(size_t mr, size_t nc, size_t kc, const uint8_t *a,
                                                          size_t a_stride, const void *w, void *c, size_t c_stride,
                                                          const qk_gemm_epilogue *e) {
    const int32_t *wcomp = (const int32_t *)w;
    const int8_t *wk = (const int8_t *)(wcomp + 8);
    __m256i acc[QK_MR];
    switch (mr) {
    case 1: qk_tile_12x8c4(1, kc, a, a_stride, wk, acc); break;
    case 2: qk_tile_12x8c4(2, kc, a, a_stride, wk, acc); break;
    case 3: qk_tile_12x8c4(3, kc, a, a_stride, wk, acc); break;
    case 4: qk_tile_12x8c4(4, kc, a, a_stride, wk, acc); break;
    case 5: qk_tile_12x8c4(5, kc, a, a_stride, wk, acc); break;
    case 6: qk_tile_12x8c4(6, kc, a, a_stride, wk, acc); break;
    case 7: qk_tile_12x8c4(7, kc, a, a_stride, wk, acc); break;
    case 8: qk_tile_12x8c4(8, kc, a, a_stride, wk, acc); break;
    case 9: qk_tile_12x8c4(9, kc, a, a_stride, wk, acc); break;
    case 10: qk_tile_12x8c4(10, kc, a, a_stride, wk, acc); break;
    case 11: qk_tile_12x8c4(11, kc, a, a_stride, wk, acc); break;
    default: qk_tile_12x8c4_full(kc, a, a_stride, wk, acc); break;
    }
    qk_gemm_avx2_store_rows(mr, nc, acc, wcomp, c, c_stride, e);
}

#endif
