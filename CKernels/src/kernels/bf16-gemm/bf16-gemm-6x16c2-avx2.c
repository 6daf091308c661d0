/*
 * AVX2 bf16 GEMM, 6x16c2, without BF16 instructions: a bf16 value is the top half of an fp32, so widening is one
 * integer op. Each 32-bit lane of the packed weights holds column j's pair (k even low, k odd high): vpand
 * 0xFFFF0000 leaves the odd-k fp32 weights, and the even-k ones are the same vpand on the lane read 2 bytes early
 * (see the assembly tiles). A arrives as bf16 pairs (QK_HALF_A_HALF, rows padded to whole pairs); each row's value
 * is a vbroadcastss of 4 bytes widened the same way. Products of two bf16 values are exact in fp32, so vfmadd231ps
 * rounds only the sum. The 6-row tile (and the 3-row one) run in assembly, the even k of a pair for all rows and
 * then the odd k: 12 accumulators + mask + 2 weights + 1 activation = 16 ymm. Tiles of 1-3 rows keep even and odd k
 * (1 row: 4 contiguous ranges of pairs, also 4 weight streams for GEMV) in separate accumulator sets, summed in a
 * fixed order at the end, so enough FMA chains are in flight to cover the FMA latency.
 */
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>
#include <string.h>

#include "f16-gemm/half-gemm-avx2-epilogue.h"
#include "qk_internal.h"
#include "qk_kernels.h"

#define QK_MR 6
#define QK_NR 16
#define QK_KR 2
#define QK_ALWAYS_INLINE static inline __attribute__((always_inline))
#define QK_UNROLL _Pragma("GCC unroll 16")

/* The 32 bits at p in every lane. */
QK_TARGET_AVX2 QK_ALWAYS_INLINE __m256i qk_bcast32(const char *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/*
 * Rows 1-5. Widening as in the full tile below: pair 0 with shifts, later pairs with vpand on loads 2 bytes early.
 * EO = 2 keeps even and odd k in separate accumulator sets; pairs 1.. are cut into NS contiguous ranges with sets of
 * their own (separate weight streams help the prefetchers when the weights come from memory). The sets are summed
 * in a fixed order. MR, EO and NS are compile-time constants in each instance, so the loops unroll into registers.
 */
QK_TARGET_AVX2 QK_ALWAYS_INLINE void qk_tile(const size_t mr, const size_t eo, const size_t ns, size_t kc,
                                             const uint16_t *a, size_t a_stride, const uint16_t *w, __m256 *acc) {
    const char *ap[QK_MR];
    const char *wb = (const char *)w;
    __m256 v[4][2 * QK_MR];
    __m256i hi = _mm256_set1_epi32((int32_t)0xFFFF0000u);
    /* Opaque to the compiler: clang would otherwise turn vpand into vpblendw, which takes the FMA port too. */
    __asm__("" : "+x"(hi));
    QK_UNROLL
    for (size_t i = 0; i < mr; i++) ap[i] = (const char *)a + i * a_stride;
    QK_UNROLL
    for (size_t s = 0; s < eo * ns; s++) {
        QK_UNROLL
        for (size_t i = 0; i < 2 * mr; i++) v[s][i] = s == 0 ? acc[i] : _mm256_setzero_ps();
    }
    /* Even k of pair p into set s, odd k into set s + (EO > 1); x0/x1 are the weights' even k, ax(i) row i's. */
#define QK_PAIR(p, s, x0, x1, ax)                                                                              \
    do {                                                                                                       \
        const size_t so = (s) + (eo > 1);                                                                      \
        const __m256 we0 = _mm256_castsi256_ps(x0), we1 = _mm256_castsi256_ps(x1);                             \
        QK_UNROLL                                                                                              \
        for (size_t i = 0; i < mr; i++) {                                                                      \
            const __m256 ae = _mm256_castsi256_ps(ax(i));                                                      \
            v[s][2 * i] = _mm256_fmadd_ps(ae, we0, v[s][2 * i]);                                               \
            v[s][2 * i + 1] = _mm256_fmadd_ps(ae, we1, v[s][2 * i + 1]);                                       \
        }                                                                                                      \
        const __m256 wo0 = _mm256_castsi256_ps(QK_AND_W(p, 0));                                                \
        const __m256 wo1 = _mm256_castsi256_ps(QK_AND_W(p, 32));                                               \
        QK_UNROLL                                                                                              \
        for (size_t i = 0; i < mr; i++) {                                                                      \
            const __m256 ao = _mm256_castsi256_ps(_mm256_and_si256(qk_bcast32(ap[i] + 4 * (p)), hi));          \
            v[so][2 * i] = _mm256_fmadd_ps(ao, wo0, v[so][2 * i]);                                             \
            v[so][2 * i + 1] = _mm256_fmadd_ps(ao, wo1, v[so][2 * i + 1]);                                     \
        }                                                                                                      \
    } while (0)
#define QK_AND_W(p, off) _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(wb + 64 * (p) + (off))), hi)
#define QK_SHL_A(i) _mm256_slli_epi32(qk_bcast32(ap[i]), 16)
#define QK_AND_A(i) _mm256_and_si256(qk_bcast32(ap[i] + 4 * pp - 2), hi)
    QK_PAIR(0, 0, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)wb), 16),
            _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(wb + 32)), 16), QK_SHL_A);
    const size_t rest = (kc + 1) / 2 - 1, q = rest / ns;   /* pairs after the first; range r: [1 + r q, 1 + r q + q) */
    for (size_t j = 0; j < q; j++) {
        QK_UNROLL
        for (size_t r = 0; r < ns; r++) {
            const size_t pp = 1 + r * q + j;
            QK_PAIR(pp, r * eo, QK_AND_W(pp, -2), QK_AND_W(pp, 30), QK_AND_A);
        }
    }
    for (size_t pp = 1 + ns * q; pp <= rest; pp++)   /* the rest % ns pairs continue the last range */
        QK_PAIR(pp, (ns - 1) * eo, QK_AND_W(pp, -2), QK_AND_W(pp, 30), QK_AND_A);
#undef QK_PAIR
#undef QK_SHL_A
#undef QK_AND_W
#undef QK_AND_A
    QK_UNROLL
    for (size_t i = 0; i < 2 * mr; i++) {
        __m256 t = v[0][i];
        QK_UNROLL
        for (size_t s = 1; s < eo * ns; s++) t = _mm256_add_ps(t, v[s][i]);
        acc[i] = t;
    }
}

/*
 * Assembly tiles (spill-free with GCC and clang; clang's allocator shuffles and spills 12 intrinsic accumulators):
 * ymm0-11 accumulators, ymm12 = 0xFFFF0000, ymm13/14 weights, ymm15 activation. Shifts compete with the FMAs for an
 * FMA port on Zen while vpand runs on any vector port, so after the first pair the even k values are read 2 bytes
 * early: the 32-bit lane there holds (x[k] << 16 | the previous 16 bits), and vpand leaves exactly the fp32 of x[k].
 * The bytes before the first pair are never read (it is peeled, with shifts).
 */
#define QK_ROW(p, c0, c1, off, op)                            \
    "vbroadcastss " #off "(%[" #p "],%[k]), %%ymm15\n"        \
    op                                                        \
    "vfmadd231ps %%ymm13, %%ymm15, %%ymm" #c0 "\n"            \
    "vfmadd231ps %%ymm14, %%ymm15, %%ymm" #c1 "\n"
#define QK_SHL "vpslld $16, %%ymm15, %%ymm15\n"
#define QK_AND "vpand %%ymm12, %%ymm15, %%ymm15\n"
/* 6 rows (row i: ymm 2i, 2i+1), even and odd k into the same accumulators. */
#define QK_ROWS6_EVEN(off, op)                                                                         \
    QK_ROW(a0, 0, 1, off, op) QK_ROW(a1, 2, 3, off, op) QK_ROW(a2, 4, 5, off, op)                      \
    QK_ROW(a3, 6, 7, off, op) QK_ROW(a4, 8, 9, off, op) QK_ROW(a5, 10, 11, off, op)
#define QK_ROWS6_ODD(off, op) QK_ROWS6_EVEN(off, op)
/* 3 rows: even k into ymm0-5, odd k into ymm6-11. */
#define QK_ROWS3_EVEN(off, op) QK_ROW(a0, 0, 1, off, op) QK_ROW(a1, 2, 3, off, op) QK_ROW(a2, 4, 5, off, op)
#define QK_ROWS3_ODD(off, op) QK_ROW(a0, 6, 7, off, op) QK_ROW(a1, 8, 9, off, op) QK_ROW(a2, 10, 11, off, op)

#define QK_TILE_ASM(EVEN, ODD, ...)                                                                    \
    __asm__ volatile(                                                                                  \
        "vmovups 0*32(%[t]), %%ymm0\n vmovups 1*32(%[t]), %%ymm1\n vmovups 2*32(%[t]), %%ymm2\n"        \
        "vmovups 3*32(%[t]), %%ymm3\n vmovups 4*32(%[t]), %%ymm4\n vmovups 5*32(%[t]), %%ymm5\n"        \
        "vmovups 6*32(%[t]), %%ymm6\n vmovups 7*32(%[t]), %%ymm7\n vmovups 8*32(%[t]), %%ymm8\n"        \
        "vmovups 9*32(%[t]), %%ymm9\n vmovups 10*32(%[t]), %%ymm10\n vmovups 11*32(%[t]), %%ymm11\n"    \
        "vpcmpeqd %%ymm12, %%ymm12, %%ymm12\n"                                                         \
        "vpslld $16, %%ymm12, %%ymm12\n"                                                               \
        "vmovdqu (%[w]), %%ymm13\n" /* VEX vpslld has no memory form */                                \
        "vmovdqu 32(%[w]), %%ymm14\n"                                                                  \
        "vpslld $16, %%ymm13, %%ymm13\n"                                                               \
        "vpslld $16, %%ymm14, %%ymm14\n"                                                               \
        EVEN(0, QK_SHL)                                                                                \
        "vpand (%[w]), %%ymm12, %%ymm13\n"                                                             \
        "vpand 32(%[w]), %%ymm12, %%ymm14\n"                                                           \
        ODD(0, QK_AND)                                                                                 \
        "add $64, %[w]\n"                                                                              \
        "add $4, %[k]\n"                                                                               \
        "cmp %[kend], %[k]\n"                                                                          \
        "jae 2f\n"                                                                                     \
        ".p2align 5\n"                                                                                 \
        "1:\n"                                                                                         \
        "vpand -2(%[w]), %%ymm12, %%ymm13\n"                                                           \
        "vpand 30(%[w]), %%ymm12, %%ymm14\n"                                                           \
        EVEN(-2, QK_AND)                                                                               \
        "vpand (%[w]), %%ymm12, %%ymm13\n"                                                             \
        "vpand 32(%[w]), %%ymm12, %%ymm14\n"                                                           \
        ODD(0, QK_AND)                                                                                 \
        "add $64, %[w]\n"                                                                              \
        "add $4, %[k]\n"                                                                               \
        "cmp %[kend], %[k]\n"                                                                          \
        "jb 1b\n"                                                                                      \
        "2:\n"                                                                                         \
        "vmovups %%ymm0, 0*32(%[t])\n vmovups %%ymm1, 1*32(%[t])\n vmovups %%ymm2, 2*32(%[t])\n"        \
        "vmovups %%ymm3, 3*32(%[t])\n vmovups %%ymm4, 4*32(%[t])\n vmovups %%ymm5, 5*32(%[t])\n"        \
        "vmovups %%ymm6, 6*32(%[t])\n vmovups %%ymm7, 7*32(%[t])\n vmovups %%ymm8, 8*32(%[t])\n"        \
        "vmovups %%ymm9, 9*32(%[t])\n vmovups %%ymm10, 10*32(%[t])\n vmovups %%ymm11, 11*32(%[t])\n"    \
        : [w] "+r"(w), [k] "+r"(k)                                                                     \
        : __VA_ARGS__                                                                                  \
        : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", \
          "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15")

static QK_TARGET_AVX2 void qk_tile6(size_t kc, const uint16_t *a, size_t a_stride, const uint16_t *w,
                                    __m256 *acc) {
    const char *a0 = (const char *)a, *a1 = a0 + a_stride, *a2 = a1 + a_stride, *a3 = a2 + a_stride,
               *a4 = a3 + a_stride, *a5 = a4 + a_stride;
    const size_t kend = (kc + 1) / 2 * 4;   /* bytes of a padded row */
    size_t k = 0;
    QK_TILE_ASM(QK_ROWS6_EVEN, QK_ROWS6_ODD, [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [a4] "r"(a4),
                [a5] "r"(a5), [kend] "r"(kend), [t] "r"(acc));
}

static QK_TARGET_AVX2 void qk_tile3(size_t kc, const uint16_t *a, size_t a_stride, const uint16_t *w,
                                    __m256 *acc) {
    __m256 t[12];
    for (size_t i = 0; i < 6; i++) {
        t[i] = acc[i];
        t[6 + i] = _mm256_setzero_ps();
    }
    const char *a0 = (const char *)a, *a1 = a0 + a_stride, *a2 = a1 + a_stride;
    const size_t kend = (kc + 1) / 2 * 4;
    size_t k = 0;
    QK_TILE_ASM(QK_ROWS3_EVEN, QK_ROWS3_ODD, [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [kend] "r"(kend),
                [t] "r"(t));
    for (size_t i = 0; i < 6; i++) acc[i] = _mm256_add_ps(t[i], t[6 + i]);
}

/* One out-of-line function per row count, each with its own register allocation. */
#define QK_TILE_FN(r, eo, ns)                                                                                  \
    static QK_TARGET_AVX2 __attribute__((noinline)) void qk_tile##r(size_t kc, const uint16_t *a,               \
                                                                     size_t a_stride, const uint16_t *w,        \
                                                                     __m256 *acc) {                            \
        qk_tile(r, eo, ns, kc, a, a_stride, w, acc);                                                           \
    }
QK_TILE_FN(1, 1, 4)
QK_TILE_FN(2, 2, 1)
QK_TILE_FN(4, 1, 1)
QK_TILE_FN(5, 1, 1)

QK_TARGET_AVX2 void qk_bf16_gemm_ukernel_6x16c2__avx2(size_t mr, size_t nc, size_t kc, const void *a,
                                                      size_t a_stride, const uint16_t *w, float *c, size_t c_stride,
                                                      const float *bias, uint32_t flags) {
    __m256 acc[2 * QK_MR];
    if (mr > QK_MR) mr = QK_MR;
    qk_half_avx2_init(mr, nc, c, c_stride, flags, acc);
    switch (kc == 0 ? 0 : mr) {   /* the tiles peel the first pair */
    case 0: break;
    case 1: qk_tile1(kc, a, a_stride, w, acc); break;
    case 2: qk_tile2(kc, a, a_stride, w, acc); break;
    case 3: qk_tile3(kc, a, a_stride, w, acc); break;
    case 4: qk_tile4(kc, a, a_stride, w, acc); break;
    case 5: qk_tile5(kc, a, a_stride, w, acc); break;
    default: qk_tile6(kc, a, a_stride, w, acc); break;
    }
    qk_half_avx2_store(mr, nc, acc, c, c_stride, bias, flags);
}

#endif
