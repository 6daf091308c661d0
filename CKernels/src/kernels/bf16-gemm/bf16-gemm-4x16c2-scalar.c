/*
 * Scalar bf16 GEMM microkernel: the reference. 4x16c2 shares the AVX2 and NEON packing, so QUANTKIT_ISA=scalar runs
 * handles packed for those levels. A arrives as bf16 (QK_HALF_A_HALF, rows padded to whole pairs). bf16 products
 * are exact in fp32; sums in fp32, k in order.
 */
#include <string.h>

#include "qk_kernels.h"
#include "qk_scalar_math.h"

#define QK_MR 4
#define QK_NR 16
#define QK_KR 2

void qk_bf16_gemm_ukernel_4x16c2__scalar(size_t mr, size_t nc, size_t kc, const void *a, size_t a_stride,
                                         const uint16_t *w, float *c, size_t c_stride, const float *bias,
                                         uint32_t flags) {
    float acc[QK_MR][QK_NR];
    for (size_t i = 0; i < mr; i++) {
        float *ci = (float *)((char *)c + i * c_stride);
        for (size_t j = 0; j < QK_NR; j++) acc[i][j] = 0.0f;
        if (flags & QK_HALF_UK_ACCUMULATE) memcpy(acc[i], ci, nc * sizeof(float));
    }
    for (size_t k = 0; k < kc; k++) {
        const uint16_t *wg = w + (k / QK_KR) * QK_NR * QK_KR + k % QK_KR;   /* column j at wg[j * KR] */
        for (size_t i = 0; i < mr; i++) {
            uint16_t ab;
            memcpy(&ab, (const char *)a + i * a_stride + k * 2, 2);
            const float av = qk_bf16_bits_to_f32(ab);
            for (size_t j = 0; j < QK_NR; j++) acc[i][j] += av * qk_bf16_bits_to_f32(wg[j * QK_KR]);
        }
    }
    for (size_t i = 0; i < mr; i++) {
        float *ci = (float *)((char *)c + i * c_stride);
        for (size_t j = 0; j < nc; j++) {
            float y = acc[i][j];
            if (bias) y += bias[j];
            if ((flags & QK_HALF_UK_RELU) && y < 0.0f) y = 0.0f;
            memcpy(ci + j, &y, sizeof y);
        }
    }
}
