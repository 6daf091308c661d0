/*
 * Scalar u8 x s8 GEMM microkernels: the reference. MRxNRcKR instances of one generic body; 2x8c4 shares the AVX2
 * packing (so QUANTKIT_ISA=scalar runs handles packed for AVX2), 2x4c1 is the plain row layout.
 */
#include "qk_gemm_scalar.h"

static inline void qk_qu8_gemm_scalar(size_t MR, size_t NR, size_t KR, size_t mr, size_t nc, size_t kc,
                                      const uint8_t *a, size_t a_stride, const void *w, void *c, size_t c_stride,
                                      const qk_gemm_epilogue *e, uint32_t *acc) {
    (void)MR;
    const int32_t *wcomp = (const int32_t *)w;
    const int8_t *wk = (const int8_t *)(wcomp + NR);
    for (size_t i = 0; i < mr * NR; i++) acc[i] = 0;
    for (size_t k = 0; k < kc; k++) {
        const int8_t *wg = wk + (k / KR) * NR * KR + k % KR;   /* column j at wg[j * KR] */
        for (size_t i = 0; i < mr; i++) {
            const uint32_t av = a[i * a_stride + k];
            for (size_t j = 0; j < NR; j++) acc[i * NR + j] += av * (uint32_t)(int32_t)wg[j * KR];
        }
    }
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nc; j++) qk_gemm_store1(e, wcomp, i, j, (int32_t)acc[i * NR + j], c, c_stride);
}

#define QK_QU8_GEMM_SCALAR(MR, NR, KR)                                                                          \
    void qk_qu8_gemm_ukernel_##MR##x##NR##c##KR##__scalar(size_t mr, size_t nc, size_t kc, const uint8_t *a,      \
                                                         size_t a_stride, const void *w, void *c, size_t c_stride, \
                                                         const qk_gemm_epilogue *e) {                             \
        uint32_t acc[MR * NR];                                                                                    \
        qk_qu8_gemm_scalar(MR, NR, KR, mr, nc, kc, a, a_stride, w, c, c_stride, e, acc);                          \
    }

QK_QU8_GEMM_SCALAR(2, 8, 4)
QK_QU8_GEMM_SCALAR(2, 4, 1)
