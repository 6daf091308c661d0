/*
 * AVX2 u8 x s8 GEMM, 6x8c4, exact for all inputs: activations and weights are int16 and multiplied with vpmaddwd
 * (pair sums of at most 2 * 255 * 128 never saturate). A arrives widened to uint16 by the driver (QK_GEMM_A16), so
 * per 4 k a row costs one vpbroadcastq load giving (a0 a1 a2 a3) x 4; the 32 packed weight bytes (8 columns x 4 k)
 * become two int16 vectors [c0 k0-3 | c1 | c2 | c3] and [c4 .. c7]. Each int32 lane then holds half of one column's
 * 4-k sum; the halves are added once per tile (hadd). 12 accumulators + 2 weight vectors + activation + product
 * fill the 16 ymm registers.
 */
#if defined(__x86_64__) || defined(_M_X64)

#include <string.h>

#include "qu8-gemm-avx2-epilogue.h"

#define QK_MR 6
#define QK_UNROLL _Pragma("GCC unroll 12")

static QK_TARGET_AVX2 inline __attribute__((always_inline)) void qk_tile_6x8c4(
    const size_t mr, size_t kc, const uint8_t *a, size_t a_stride, const int8_t *w, __m256i *out) {
    const uint8_t *ap[QK_MR];
    __m256i acc0[QK_MR], acc1[QK_MR];
    QK_UNROLL
    for (size_t i = 0; i < mr; i++) {
        ap[i] = a + i * a_stride;
        acc0[i] = _mm256_setzero_si256();
        acc1[i] = _mm256_setzero_si256();
    }
    /* Whole groups only: the packed A rows hold round_up(kc, 4) values. */
    for (size_t k = 0; k < kc; k += 4) {
        const __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w));
        const __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16)));
        w += 32;
        QK_UNROLL
        for (size_t i = 0; i < mr; i++) {
            int64_t v;
            memcpy(&v, ap[i] + 2 * k, 8);
            const __m256i va = _mm256_set1_epi64x(v);
            acc0[i] = _mm256_add_epi32(acc0[i], _mm256_madd_epi16(va, b0));
            acc1[i] = _mm256_add_epi32(acc1[i], _mm256_madd_epi16(va, b1));
        }
    }
    /* hadd: [c0 c1 c4 c5 | c2 c3 c6 c7]; permuting the 64-bit pairs gives c0 .. c7. */
    QK_UNROLL
    for (size_t i = 0; i < mr; i++) out[i] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc0[i], acc1[i]), 0xD8);
}

/*
 * The full 6-row tile in assembly: GCC hoists the broadcasts of the intrinsics version and spills accumulators.
 * ymm0-11 accumulators (row i: ymm 2i, 2i+1), ymm12/13 weights, ymm14 activations, ymm15 product.
 */
#define QK_ROW(p, c0, c1)                                     \
    "vpbroadcastq (%[" #p "],%[k]), %%ymm14\n"                \
    "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n"                    \
    "vpaddd %%ymm15, %%ymm" #c0 ", %%ymm" #c0 "\n"            \
    "vpmaddwd %%ymm13, %%ymm14, %%ymm15\n"                    \
    "vpaddd %%ymm15, %%ymm" #c1 ", %%ymm" #c1 "\n"
#define QK_REDUCE(c0, c1, i)                                  \
    "vphaddd %%ymm" #c1 ", %%ymm" #c0 ", %%ymm" #c0 "\n"      \
    "vpermq $0xD8, %%ymm" #c0 ", %%ymm" #c0 "\n"              \
    "vmovdqu %%ymm" #c0 ", " #i "*32(%[out])\n"

static QK_TARGET_AVX2 void qk_tile_6x8c4_full(size_t kc, const uint8_t *a, size_t a_stride, const int8_t *w,
                                              __m256i *out) {
    const uint8_t *a0 = a, *a1 = a + a_stride, *a2 = a1 + a_stride, *a3 = a2 + a_stride, *a4 = a3 + a_stride,
                  *a5 = a4 + a_stride;
    const size_t kend = (kc + 3) / 4 * 8;   /* bytes of a packed row */
    size_t k = 0;
    __asm__ volatile(
        "vpxor %%xmm0, %%xmm0, %%xmm0\n vpxor %%xmm1, %%xmm1, %%xmm1\n vpxor %%xmm2, %%xmm2, %%xmm2\n"
        "vpxor %%xmm3, %%xmm3, %%xmm3\n vpxor %%xmm4, %%xmm4, %%xmm4\n vpxor %%xmm5, %%xmm5, %%xmm5\n"
        "vpxor %%xmm6, %%xmm6, %%xmm6\n vpxor %%xmm7, %%xmm7, %%xmm7\n vpxor %%xmm8, %%xmm8, %%xmm8\n"
        "vpxor %%xmm9, %%xmm9, %%xmm9\n vpxor %%xmm10, %%xmm10, %%xmm10\n vpxor %%xmm11, %%xmm11, %%xmm11\n"
        "cmp %[kend], %[k]\n"
        "jae 2f\n"
        ".p2align 5\n"
        "1:\n"
        "vpmovsxbw (%[w]), %%ymm12\n"
        "vpmovsxbw 16(%[w]), %%ymm13\n"
        "add $32, %[w]\n"
        QK_ROW(a0, 0, 1) QK_ROW(a1, 2, 3) QK_ROW(a2, 4, 5) QK_ROW(a3, 6, 7) QK_ROW(a4, 8, 9) QK_ROW(a5, 10, 11)
        "add $8, %[k]\n"
        "cmp %[kend], %[k]\n"
        "jb 1b\n"
        "2:\n"
        QK_REDUCE(0, 1, 0) QK_REDUCE(2, 3, 1) QK_REDUCE(4, 5, 2) QK_REDUCE(6, 7, 3) QK_REDUCE(8, 9, 4)
        QK_REDUCE(10, 11, 5)
        : [w] "+r"(w), [k] "+r"(k)
        : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [a4] "r"(a4), [a5] "r"(a5), [kend] "r"(kend),
          [out] "r"(out)
        : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

QK_TARGET_AVX2 void qk_qu8_gemm_ukernel_6x8c4__avx2(size_t mr, size_t nc, size_t kc, const uint8_t *a,
                                                    size_t a_stride, const void *w, void *c, size_t c_stride,
                                                    const qk_gemm_epilogue *e) {
    const int32_t *wcomp = (const int32_t *)w;
    const int8_t *wk = (const int8_t *)(wcomp + 8);
    __m256i acc[QK_MR];
    switch (mr) {   /* one instance per row count, so the row loops unroll with constant bounds */
    case 1: qk_tile_6x8c4(1, kc, a, a_stride, wk, acc); break;
    case 2: qk_tile_6x8c4(2, kc, a, a_stride, wk, acc); break;
    case 3: qk_tile_6x8c4(3, kc, a, a_stride, wk, acc); break;
    case 4: qk_tile_6x8c4(4, kc, a, a_stride, wk, acc); break;
    case 5: qk_tile_6x8c4(5, kc, a, a_stride, wk, acc); break;
    default: qk_tile_6x8c4_full(kc, a, a_stride, wk, acc); break;
    }
    qk_gemm_avx2_store_rows(mr, nc, acc, wcomp, c, c_stride, e);
}

#endif
