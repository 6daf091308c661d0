/*
 * The output side of the AVX2 half-precision GEMM microkernels (f16-gemm-6x16-avx2.c, bf16-gemm-6x16c2-avx2.c): a
 * 16-column tile of fp32 accumulators, two ymm per row, started from c or zero and finished with bias, ReLU and
 * stores of mr x nc. Internal; included inside the kernels' x86 guard as "f16-gemm/half-gemm-avx2-epilogue.h".
 */
#ifndef QK_HALF_GEMM_AVX2_EPILOGUE_H
#define QK_HALF_GEMM_AVX2_EPILOGUE_H

#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#include "qk_internal.h"
#include "qk_kernels.h"

/* loadu(qk_half_avx2_mask_table + 8 - n): the first n of 8 lanes set. */
static const int32_t qk_half_avx2_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

QK_TARGET_AVX2 static inline __attribute__((always_inline)) __m256i qk_half_avx2_lanes(size_t n) {
    return _mm256_loadu_si256((const __m256i *)(qk_half_avx2_mask_table + 8 - n));
}

/* acc[2i], acc[2i+1] = columns 0-7, 8-15 of row i: c (masked to nc columns) or zero. */
QK_TARGET_AVX2 static inline __attribute__((always_inline)) void qk_half_avx2_init(size_t mr, size_t nc,
                                                                                   const float *c, size_t c_stride,
                                                                                   uint32_t flags, __m256 *acc) {
    if (!(flags & QK_HALF_UK_ACCUMULATE)) {
        for (size_t i = 0; i < 2 * mr; i++) acc[i] = _mm256_setzero_ps();
        return;
    }
    const size_t n0 = nc < 8 ? nc : 8;
    const __m256i m0 = qk_half_avx2_lanes(n0), m1 = qk_half_avx2_lanes(nc - n0);
    for (size_t i = 0; i < mr; i++) {
        const float *ci = (const float *)((const char *)c + i * c_stride);
        if (nc == 16) {
            acc[2 * i] = _mm256_loadu_ps(ci);
            acc[2 * i + 1] = _mm256_loadu_ps(ci + 8);
        } else {   /* vmaskmovps never touches masked-out elements */
            acc[2 * i] = _mm256_maskload_ps(ci, m0);
            acc[2 * i + 1] = _mm256_maskload_ps(ci + 8, m1);
        }
    }
}

/* + bias, ReLU as max(0, y) with y second (NaN stays NaN), store mr x nc. */
QK_TARGET_AVX2 static inline __attribute__((always_inline)) void qk_half_avx2_store(size_t mr, size_t nc,
                                                                                    const __m256 *acc, float *c,
                                                                                    size_t c_stride,
                                                                                    const float *bias,
                                                                                    uint32_t flags) {
    const size_t n0 = nc < 8 ? nc : 8;
    const __m256i m0 = qk_half_avx2_lanes(n0), m1 = qk_half_avx2_lanes(nc - n0);
    __m256 b0 = _mm256_setzero_ps(), b1 = b0;
    if (bias != NULL) {
        b0 = _mm256_maskload_ps(bias, m0);
        b1 = _mm256_maskload_ps(bias + 8, m1);
    }
    const __m256 zero = _mm256_setzero_ps();
    for (size_t i = 0; i < mr; i++) {
        __m256 y0 = acc[2 * i], y1 = acc[2 * i + 1];
        if (bias != NULL) {
            y0 = _mm256_add_ps(y0, b0);
            y1 = _mm256_add_ps(y1, b1);
        }
        if (flags & QK_HALF_UK_RELU) {
            y0 = _mm256_max_ps(zero, y0);
            y1 = _mm256_max_ps(zero, y1);
        }
        float *ci = (float *)((char *)c + i * c_stride);
        if (nc == 16) {
            _mm256_storeu_ps(ci, y0);
            _mm256_storeu_ps(ci + 8, y1);
        } else {
            _mm256_maskstore_ps(ci, m0, y0);
            _mm256_maskstore_ps(ci + 8, m1, y1);
        }
    }
}

#endif
#endif /* QK_HALF_GEMM_AVX2_EPILOGUE_H */
