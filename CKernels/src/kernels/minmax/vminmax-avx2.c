/* AVX2 element-wise running min/max, bit for bit vminmax-scalar.c: minps(x, acc) is x < acc ? x : acc, so it keeps
 * acc on ties and for a NaN x; finite_only turns +-inf into NaN first. */
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>
#include <math.h>

#include "qk_internal.h"
#include "qk_kernels.h"

QK_TARGET_AVX2 void qk_f32_vminmax__avx2(size_t n, const float *x, int finite_only, float *min, float *max) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 bound = _mm256_set1_ps(finite_only ? INFINITY : NAN);   /* NaN bound: no lane is masked */
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        v = _mm256_or_ps(v, _mm256_cmp_ps(_mm256_and_ps(v, abs_mask), bound, _CMP_EQ_OQ));
        _mm256_storeu_ps(min + i, _mm256_min_ps(v, _mm256_loadu_ps(min + i)));
        _mm256_storeu_ps(max + i, _mm256_max_ps(v, _mm256_loadu_ps(max + i)));
    }
    for (; i < n; i++) {
        const float v = x[i];
        if (v != v) continue;
        if (finite_only && isinf(v)) continue;
        min[i] = v < min[i] ? v : min[i];
        max[i] = v > max[i] ? v : max[i];
    }
}

#endif
