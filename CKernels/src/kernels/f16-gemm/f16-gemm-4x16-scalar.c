/*
 * Scalar fp16-weight GEMM microkernel: the reference. 4x16 shares the AVX2 and NEON packing (NR 16, KR 1), so
 * QUANTKIT_ISA=scalar runs handles packed for those levels. Weights are widened exactly; products and sums in fp32,
 * k in order.
 */
#include <string.h>

#include "qk_kernels.h"
#include "qk_scalar_math.h"

#define QK_MR 4
#define QK_NR 16

void qk_f16_gemm_ukernel_4x16__scalar(size_t mr, size_t nc, size_t kc, const void *a, size_t a_stride,
                                      const uint16_t *w, float *c, size_t c_stride, const float *bias,
                                      uint32_t flags) {
    float acc[QK_MR][QK_NR];
    for (size_t i = 0; i < mr; i++) {
        float *ci = (float *)((char *)c + i * c_stride);
        for (size_t j = 0; j < QK_NR; j++) acc[i][j] = 0.0f;
        if (flags & QK_HALF_UK_ACCUMULATE) memcpy(acc[i], ci, nc * sizeof(float));
    }
    for (size_t k = 0; k < kc; k++) {
        float wk[QK_NR];
        for (size_t j = 0; j < QK_NR; j++) wk[j] = qk_f16_bits_to_f32(w[k * QK_NR + j]);
        for (size_t i = 0; i < mr; i++) {
            float av;
            memcpy(&av, (const char *)a + i * a_stride + k * sizeof(float), sizeof av);
            for (size_t j = 0; j < QK_NR; j++) acc[i][j] += av * wk[j];
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
