/*
 * AVX2 fp16-weight GEMM, 6x16 (FBGEMM's FbgemmFP16 shape): per k, vcvtph2ps widens the 16 packed weights into two
 * ymm, and each row broadcasts its fp32 activation (vbroadcastss) into two vfmadd231ps. 12 accumulators + 2 weight
 * vectors + the broadcast fill 15 of the 16 ymm registers. The 6-row tile and the 3-row tile run in assembly (GCC
 * and clang both keep them spill-free that way); 1, 2, 4 and 5 rows are intrinsics. With fewer than 4 rows there
 * are too few independent FMA chains to cover the FMA latency, so k is cut into 2 or 4 contiguous ranges with an
 * accumulator set each, summed in a fixed order at the end (deterministic). The ranges are also separate weight
 * streams, which keeps more memory requests in flight for M = 1 (GEMV, bound by the weight stream).
 */
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>
#include <string.h>

#include "f16-gemm/half-gemm-avx2-epilogue.h"
#include "qk_internal.h"
#include "qk_kernels.h"

#define QK_MR 6
#define QK_NR 16
#define QK_ALWAYS_INLINE static inline __attribute__((always_inline))
#define QK_UNROLL _Pragma("GCC unroll 16")

/*
 * Rows 1-5: MR rows, k cut into NS contiguous ranges with one accumulator set each (set 0 starts from acc; the last
 * range takes the kc % NS rest). Separate ranges are separate weight streams, which the hardware prefetchers serve
 * better than one when the weights come from memory (GEMV). MR and NS are compile-time constants in each instance,
 * so the loops unroll into named registers.
 */
QK_TARGET_AVX2 QK_ALWAYS_INLINE void qk_tile(const size_t mr, const size_t ns, size_t kc, const float *a,
                                             size_t a_stride, const uint16_t *w, __m256 *acc) {
    const float *ap[QK_MR];
    __m256 v[4][2 * QK_MR];
    const size_t q = kc / ns;
    QK_UNROLL
    for (size_t i = 0; i < mr; i++) ap[i] = (const float *)((const char *)a + i * a_stride);
    QK_UNROLL
    for (size_t s = 0; s < ns; s++) {
        QK_UNROLL
        for (size_t i = 0; i < 2 * mr; i++) v[s][i] = s == 0 ? acc[i] : _mm256_setzero_ps();
    }
#define QK_STEP(s, k)                                                                                          \
    do {                                                                                                       \
        const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + (k) * QK_NR)));                 \
        const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + (k) * QK_NR + 8)));             \
        QK_UNROLL                                                                                              \
        for (size_t i = 0; i < mr; i++) {                                                                      \
            const __m256 va = _mm256_broadcast_ss(ap[i] + (k));                                                \
            v[s][2 * i] = _mm256_fmadd_ps(va, w0, v[s][2 * i]);                                                \
            v[s][2 * i + 1] = _mm256_fmadd_ps(va, w1, v[s][2 * i + 1]);                                        \
        }                                                                                                      \
    } while (0)
    for (size_t k = 0; k < q; k++) {
        QK_UNROLL
        for (size_t s = 0; s < ns; s++) QK_STEP(s, s * q + k);
    }
    for (size_t k = ns * q; k < kc; k++) QK_STEP(ns - 1, k);
#undef QK_STEP
    QK_UNROLL
    for (size_t i = 0; i < 2 * mr; i++) {
        __m256 t = v[0][i];
        QK_UNROLL
        for (size_t s = 1; s < ns; s++) t = _mm256_add_ps(t, v[s][i]);
        acc[i] = t;
    }
}

/*
 * Assembly tiles (GCC and clang both keep them spill-free; clang's allocator shuffles and spills the intrinsics
 * version of 3 rows x 2 sets): ymm0-11 accumulators, ymm12/13 weights, ymm14 activation.
 */
#define QK_W(disp, base) "vcvtph2ps " #disp base ", %%ymm12\n vcvtph2ps " #disp "+16" base ", %%ymm13\n"
#define QK_ROW(p, c0, c1, off)                                \
    "vbroadcastss " #off "(%[" #p "],%[k]), %%ymm14\n"        \
    "vfmadd231ps %%ymm12, %%ymm14, %%ymm" #c0 "\n"            \
    "vfmadd231ps %%ymm13, %%ymm14, %%ymm" #c1 "\n"
#define QK_ACC_LOAD(t)                                                                                 \
    "vmovups 0*32(%[" t "]), %%ymm0\n vmovups 1*32(%[" t "]), %%ymm1\n vmovups 2*32(%[" t "]), %%ymm2\n"  \
    "vmovups 3*32(%[" t "]), %%ymm3\n vmovups 4*32(%[" t "]), %%ymm4\n vmovups 5*32(%[" t "]), %%ymm5\n"  \
    "vmovups 6*32(%[" t "]), %%ymm6\n vmovups 7*32(%[" t "]), %%ymm7\n vmovups 8*32(%[" t "]), %%ymm8\n"  \
    "vmovups 9*32(%[" t "]), %%ymm9\n vmovups 10*32(%[" t "]), %%ymm10\n vmovups 11*32(%[" t "]), %%ymm11\n"
#define QK_ACC_STORE(t)                                                                                \
    "vmovups %%ymm0, 0*32(%[" t "])\n vmovups %%ymm1, 1*32(%[" t "])\n vmovups %%ymm2, 2*32(%[" t "])\n"  \
    "vmovups %%ymm3, 3*32(%[" t "])\n vmovups %%ymm4, 4*32(%[" t "])\n vmovups %%ymm5, 5*32(%[" t "])\n"  \
    "vmovups %%ymm6, 6*32(%[" t "])\n vmovups %%ymm7, 7*32(%[" t "])\n vmovups %%ymm8, 8*32(%[" t "])\n"  \
    "vmovups %%ymm9, 9*32(%[" t "])\n vmovups %%ymm10, 10*32(%[" t "])\n vmovups %%ymm11, 11*32(%[" t "])\n"
#define QK_CLOBBERS                                                                                     \
    "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
        "xmm11", "xmm12", "xmm13", "xmm14"

/* 6 rows (row i: ymm 2i, 2i+1); k unrolled by 2. */
#define QK_STEP6(woff, aoff)                                                                           \
    QK_W(woff, "(%[w])")                                                                               \
    QK_ROW(a0, 0, 1, aoff) QK_ROW(a1, 2, 3, aoff) QK_ROW(a2, 4, 5, aoff) QK_ROW(a3, 6, 7, aoff)        \
    QK_ROW(a4, 8, 9, aoff) QK_ROW(a5, 10, 11, aoff)

static QK_TARGET_AVX2 void qk_tile6(size_t kc, const float *a, size_t a_stride, const uint16_t *w, __m256 *acc) {
    const char *a0 = (const char *)a, *a1 = a0 + a_stride, *a2 = a1 + a_stride, *a3 = a2 + a_stride,
               *a4 = a3 + a_stride, *a5 = a4 + a_stride;
    const size_t kend2 = (kc & ~(size_t)1) * 4, kend = kc * 4;   /* bytes of a row: pairs, all */
    size_t k = 0;
    __asm__ volatile(
        QK_ACC_LOAD("acc")
        "cmp %[kend2], %[k]\n"
        "jae 2f\n"
        ".p2align 5\n"
        "1:\n"
        QK_STEP6(0, 0) QK_STEP6(32, 4)
        "add $64, %[w]\n"
        "add $8, %[k]\n"
        "cmp %[kend2], %[k]\n"
        "jb 1b\n"
        "2:\n"
        "cmp %[kend], %[k]\n"
        "jae 3f\n"
        QK_STEP6(0, 0)
        "3:\n"
        QK_ACC_STORE("acc")
        : [w] "+r"(w), [k] "+r"(k)
        : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [a4] "r"(a4), [a5] "r"(a5), [kend2] "r"(kend2),
          [kend] "r"(kend), [acc] "r"(acc)
        : QK_CLOBBERS);
}

/*
 * 3 rows, k in two halves (set 0: ymm0-5 over [0, q), set 1: ymm6-11 over [q, kc)). The second half's weights are
 * at w + 32 q bytes = (w, qb, 8) with qb = 4 q, its activations at b = a + qb; an odd kc leaves one k for set 1.
 */
static QK_TARGET_AVX2 void qk_tile3(size_t kc, const float *a, size_t a_stride, const uint16_t *w, __m256 *acc) {
    __m256 t[12];
    for (size_t i = 0; i < 6; i++) {
        t[i] = acc[i];
        t[6 + i] = _mm256_setzero_ps();
    }
    const size_t qb = kc / 2 * 4;
    const char *a0 = (const char *)a, *a1 = a0 + a_stride, *a2 = a1 + a_stride;
    const char *b0 = a0 + qb, *b1 = a1 + qb, *b2 = a2 + qb;
    size_t k = 0;
    __asm__ volatile(
        QK_ACC_LOAD("t")
        "test %[qb], %[qb]\n"
        "jz 2f\n"
        ".p2align 5\n"
        "1:\n"
        QK_W(0, "(%[w])") QK_ROW(a0, 0, 1, 0) QK_ROW(a1, 2, 3, 0) QK_ROW(a2, 4, 5, 0)
        QK_W(0, "(%[w],%[qb],8)") QK_ROW(b0, 6, 7, 0) QK_ROW(b1, 8, 9, 0) QK_ROW(b2, 10, 11, 0)
        "add $32, %[w]\n"
        "add $4, %[k]\n"
        "cmp %[qb], %[k]\n"
        "jb 1b\n"
        "2:\n"
        "testq $1, %[kc]\n"
        "jz 3f\n"
        QK_W(0, "(%[w],%[qb],8)") QK_ROW(b0, 6, 7, 0) QK_ROW(b1, 8, 9, 0) QK_ROW(b2, 10, 11, 0)
        "3:\n"
        QK_ACC_STORE("t")
        : [w] "+r"(w), [k] "+r"(k)
        : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [b0] "r"(b0), [b1] "r"(b1), [b2] "r"(b2), [qb] "r"(qb),
          [kc] "rm"(kc), [t] "r"(t)
        : QK_CLOBBERS);
    for (size_t i = 0; i < 6; i++) acc[i] = _mm256_add_ps(t[i], t[6 + i]);
}

/* One out-of-line function per row count, each with its own register allocation. */
#define QK_TILE_FN(r, s)                                                                                       \
    static QK_TARGET_AVX2 __attribute__((noinline)) void qk_tile##r(size_t kc, const float *a, size_t a_stride, \
                                                                     const uint16_t *w, __m256 *acc) {          \
        qk_tile(r, s, kc, a, a_stride, w, acc);                                                                \
    }
QK_TILE_FN(1, 4)
QK_TILE_FN(2, 2)
QK_TILE_FN(4, 1)
QK_TILE_FN(5, 1)

QK_TARGET_AVX2 void qk_f16_gemm_ukernel_6x16__avx2(size_t mr, size_t nc, size_t kc, const void *a, size_t a_stride,
                                                   const uint16_t *w, float *c, size_t c_stride, const float *bias,
                                                   uint32_t flags) {
    __m256 acc[2 * QK_MR];
    if (mr > QK_MR) mr = QK_MR;
    qk_half_avx2_init(mr, nc, c, c_stride, flags, acc);
    switch (mr) {
    case 0: return;
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
