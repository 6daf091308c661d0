/* AVX2 fake quantization, bit-identical to fake-quantize-scalar.c (tails through zero-padded stack copies). */
#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>
#include <string.h>

#include "qk_avx2.h"
#include "qk_internal.h"
#include "qk_kernels.h"
#include "qk_fake_quantize.h"

#define QK_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* Forward of 8 elements: y, and the mask as int32 lanes 0 / 1. max_ps returns its second operand (qmin) for NaN. */
static QK_TARGET_AVX2 inline __m256 qk_fq8(__m256 x, __m256 s, __m256 inv, __m256 zp, __m256 lo, __m256 hi,
                                           __m256i *m) {
    const __m256 qf = _mm256_add_ps(_mm256_round_ps(_mm256_mul_ps(x, inv), QK_RNE), zp);
    const __m256 in = _mm256_and_ps(_mm256_cmp_ps(qf, lo, _CMP_GE_OQ), _mm256_cmp_ps(qf, hi, _CMP_LE_OQ));
    *m = _mm256_and_si256(_mm256_castps_si256(in), _mm256_set1_epi32(1));
    const __m256 c = _mm256_min_ps(_mm256_max_ps(qf, lo), hi);
    return _mm256_mul_ps(_mm256_sub_ps(c, zp), s);
}

QK_TARGET_AVX2 void qk_f32_fq__avx2(size_t n, const float *x, float *y, uint8_t *mask, const qk_fq_params *p) {
    const __m256 s = _mm256_set1_ps(p->scale), inv = _mm256_set1_ps(p->inv_scale), zp = _mm256_set1_ps(p->zero_point);
    const __m256 lo = _mm256_set1_ps(p->qmin), hi = _mm256_set1_ps(p->qmax);
    const __m256i flip = _mm256_setzero_si256();
    __m256i m0, m1, m2, m3;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm256_storeu_ps(y + i, qk_fq8(_mm256_loadu_ps(x + i), s, inv, zp, lo, hi, &m0));
        _mm256_storeu_ps(y + i + 8, qk_fq8(_mm256_loadu_ps(x + i + 8), s, inv, zp, lo, hi, &m1));
        _mm256_storeu_ps(y + i + 16, qk_fq8(_mm256_loadu_ps(x + i + 16), s, inv, zp, lo, hi, &m2));
        _mm256_storeu_ps(y + i + 24, qk_fq8(_mm256_loadu_ps(x + i + 24), s, inv, zp, lo, hi, &m3));
        if (mask) _mm256_storeu_si256((__m256i *)(mask + i), qk_avx2_pack8(m0, m1, m2, m3, flip));
    }
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, qk_fq8(_mm256_loadu_ps(x + i), s, inv, zp, lo, hi, &m0));
        if (mask) qk_avx2_store8(mask + i, m0, flip);
    }
    /* The tail is the scalar reference (element-wise, so the same bits). */
    if (i < n) qk_f32_fq__scalar(n - i, x + i, y + i, mask ? mask + i : NULL, p);
}

QK_TARGET_AVX2 void qk_f32_fq_pc__avx2(size_t n, const float *x, float *y, uint8_t *mask, const float *scale,
                                       const float *inv_scale, const float *zero_point, const qk_fq_params *p) {
    const __m256 lo = _mm256_set1_ps(p->qmin), hi = _mm256_set1_ps(p->qmax);
    const __m256i flip = _mm256_setzero_si256();
    __m256i m;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, qk_fq8(_mm256_loadu_ps(x + i), _mm256_loadu_ps(scale + i),
                                       _mm256_loadu_ps(inv_scale + i), _mm256_loadu_ps(zero_point + i), lo, hi, &m));
        if (mask) qk_avx2_store8(mask + i, m, flip);
    }
    /* The tail is the scalar reference (element-wise, so the same bits). */
    if (i < n) qk_f32_fq_pc__scalar(n - i, x + i, y + i, mask ? mask + i : NULL, scale + i,
                                     inv_scale + i, zero_point + i, p);
}

static QK_TARGET_AVX2 inline __m256 qk_mask8(const uint8_t *m) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)m)));
}

QK_TARGET_AVX2 void qk_f32_fq_mask_backward__avx2(size_t n, const float *dy, const uint8_t *mask, float *dx) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), qk_mask8(mask + i)));
        _mm256_storeu_ps(dx + i + 8, _mm256_mul_ps(_mm256_loadu_ps(dy + i + 8), qk_mask8(mask + i + 8)));
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), qk_mask8(mask + i)));
    /* The tail is the scalar reference (element-wise, so the same bits). */
    if (i < n) qk_f32_fq_mask_backward__scalar(n - i, dy + i, mask + i, dx + i);
}

/* Learnable backward of 8 elements: returns dx, sets the grad_scale / grad_zero_point contributions (the scalar
 * branch formulas, both computed and blended). */
static QK_TARGET_AVX2 inline __m256 qk_fql8(__m256 x, __m256 dy, __m256 s, __m256 inv, __m256 zp, __m256 lo,
                                            __m256 hi, __m256 g, __m256 *ds, __m256 *dz) {
    const __m256 xq = _mm256_round_ps(_mm256_add_ps(_mm256_mul_ps(x, inv), zp), QK_RNE);
    const __m256 in = _mm256_and_ps(_mm256_cmp_ps(xq, lo, _CMP_GE_OQ), _mm256_cmp_ps(xq, hi, _CMP_LE_OQ));
    const __m256 above = _mm256_cmp_ps(xq, hi, _CMP_GT_OQ);
    const __m256 xfq = _mm256_mul_ps(_mm256_sub_ps(xq, zp), s);
    const __m256 ds_in = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dy, _mm256_sub_ps(xfq, x)), inv), g);
    const __m256 bound = _mm256_blendv_ps(lo, hi, above);
    const __m256 ds_out = _mm256_mul_ps(_mm256_mul_ps(dy, _mm256_sub_ps(bound, zp)), g);
    const __m256 ndy = _mm256_xor_ps(dy, _mm256_set1_ps(-0.0f));
    *ds = _mm256_blendv_ps(ds_out, ds_in, in);
    *dz = _mm256_andnot_ps(in, _mm256_mul_ps(_mm256_mul_ps(ndy, s), g));
    return _mm256_mul_ps(dy, _mm256_and_ps(in, _mm256_set1_ps(1.0f)));
}

/* acc[0..3] += ds lanes 0-3, acc[4..7] += lanes 4-7, widened exactly to double. */
static QK_TARGET_AVX2 inline void qk_acc8(__m256d *a, __m256d *b, __m256 v) {
    *a = _mm256_add_pd(*a, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *b = _mm256_add_pd(*b, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

QK_TARGET_AVX2 void qk_f32_fq_learnable_backward__avx2(size_t n, const float *x, const float *dy, float *dx,
                                                       const qk_fq_params *p, double *grad_scale,
                                                       double *grad_zero_point) {
    const __m256 s = _mm256_set1_ps(p->scale), inv = _mm256_set1_ps(p->inv_scale), zp = _mm256_set1_ps(p->zero_point);
    const __m256 lo = _mm256_set1_ps(p->qmin), hi = _mm256_set1_ps(p->qmax), g = _mm256_set1_ps(p->grad_factor);
    /* lanes 0-3, 4-7, 8-11, 12-15 of QK_FQ_LANES */
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0, z0 = s0, z1 = s0, z2 = s0, z3 = s0;
    __m256 ds, dz;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(dx + i, qk_fql8(_mm256_loadu_ps(x + i), _mm256_loadu_ps(dy + i), s, inv, zp, lo, hi, g,
                                         &ds, &dz));
        qk_acc8(&s0, &s1, ds);
        qk_acc8(&z0, &z1, dz);
        _mm256_storeu_ps(dx + i + 8, qk_fql8(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(dy + i + 8), s, inv, zp,
                                             lo, hi, g, &ds, &dz));
        qk_acc8(&s2, &s3, ds);
        qk_acc8(&z2, &z3, dz);
    }
    if (i < n) { /* x = 0, dy = 0 padding adds +-0 to the lanes, which leaves them unchanged */
        const size_t r = n - i;
        float xb[16] = {0}, db[16] = {0}, ob[16];
        memcpy(xb, x + i, r * sizeof(float));
        memcpy(db, dy + i, r * sizeof(float));
        _mm256_storeu_ps(ob, qk_fql8(_mm256_loadu_ps(xb), _mm256_loadu_ps(db), s, inv, zp, lo, hi, g, &ds, &dz));
        qk_acc8(&s0, &s1, ds);
        qk_acc8(&z0, &z1, dz);
        _mm256_storeu_ps(ob + 8, qk_fql8(_mm256_loadu_ps(xb + 8), _mm256_loadu_ps(db + 8), s, inv, zp, lo, hi, g,
                                         &ds, &dz));
        qk_acc8(&s2, &s3, ds);
        qk_acc8(&z2, &z3, dz);
        memcpy(dx + i, ob, r * sizeof(float));
    }
    double ls[QK_FQ_LANES], lz[QK_FQ_LANES];
    _mm256_storeu_pd(ls, s0);
    _mm256_storeu_pd(ls + 4, s1);
    _mm256_storeu_pd(ls + 8, s2);
    _mm256_storeu_pd(ls + 12, s3);
    _mm256_storeu_pd(lz, z0);
    _mm256_storeu_pd(lz + 4, z1);
    _mm256_storeu_pd(lz + 8, z2);
    _mm256_storeu_pd(lz + 12, z3);
    *grad_scale = qk_fq_sum_lanes(ls);
    *grad_zero_point = qk_fq_sum_lanes(lz);
}

static QK_TARGET_AVX2 inline void qk_fql8_pc(const float *x, const float *dy, float *dx, const float *scale,
                                             const float *inv_scale, const float *zero_point, __m256 lo, __m256 hi,
                                             __m256 g, double *acc_s, double *acc_z) {
    __m256 ds, dz;
    _mm256_storeu_ps(dx, qk_fql8(_mm256_loadu_ps(x), _mm256_loadu_ps(dy), _mm256_loadu_ps(scale),
                                 _mm256_loadu_ps(inv_scale), _mm256_loadu_ps(zero_point), lo, hi, g, &ds, &dz));
    __m256d a = _mm256_loadu_pd(acc_s), b = _mm256_loadu_pd(acc_s + 4);
    qk_acc8(&a, &b, ds);
    _mm256_storeu_pd(acc_s, a);
    _mm256_storeu_pd(acc_s + 4, b);
    a = _mm256_loadu_pd(acc_z);
    b = _mm256_loadu_pd(acc_z + 4);
    qk_acc8(&a, &b, dz);
    _mm256_storeu_pd(acc_z, a);
    _mm256_storeu_pd(acc_z + 4, b);
}

QK_TARGET_AVX2 void qk_f32_fq_learnable_backward_pc__avx2(size_t n, const float *x, const float *dy, float *dx,
                                                          const float *scale, const float *inv_scale,
                                                          const float *zero_point, const qk_fq_params *p,
                                                          double *acc_scale, double *acc_zero_point) {
    const __m256 lo = _mm256_set1_ps(p->qmin), hi = _mm256_set1_ps(p->qmax), g = _mm256_set1_ps(p->grad_factor);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        qk_fql8_pc(x + i, dy + i, dx + i, scale + i, inv_scale + i, zero_point + i, lo, hi, g, acc_scale + i,
                   acc_zero_point + i);
    /* The tail is the scalar reference: every element has its own accumulators, so the bits are the same. */
    qk_f32_fq_learnable_backward_pc__scalar(n - i, x + i, dy + i, dx + i, scale + i, inv_scale + i,
                                            zero_point + i, p, acc_scale + i, acc_zero_point + i);
}

#endif
