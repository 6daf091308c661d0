/* AVX-512 fake quantization, bit-identical to fake-quantize-scalar.c (tails through masked loads and stores). */
#if defined(__x86_64__) || defined(_M_X64)


#include "qk_avx512.h"
#include "qk_kernels.h"
#include "qk_fake_quantize.h"

#define QK_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define QK_TAIL16(r) ((__mmask16)((1u << (r)) - 1u))

/* Forward of 16 elements: y, and the in-range mask. max_ps returns its second operand (qmin) for NaN. */
static QK_TARGET_AVX512 inline __m512 qk_fq16(__m512 x, __m512 s, __m512 inv, __m512 zp, __m512 lo, __m512 hi,
                                              __mmask16 *in) {
    const __m512 qf = _mm512_add_ps(_mm512_roundscale_ps(_mm512_mul_ps(x, inv), QK_RNE), zp);
    *in = (__mmask16)(_mm512_cmp_ps_mask(qf, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(qf, hi, _CMP_LE_OQ));
    const __m512 c = _mm512_min_ps(_mm512_max_ps(qf, lo), hi);
    return _mm512_mul_ps(_mm512_sub_ps(c, zp), s);
}

/* mask bytes 0 / 1 of the lanes selected by k */
static QK_TARGET_AVX512 inline void qk_store_mask16(uint8_t *mask, __mmask16 k, __mmask16 in) {
    _mm512_mask_cvtepi32_storeu_epi8(mask, k, _mm512_maskz_mov_epi32(in, _mm512_set1_epi32(1)));
}

QK_TARGET_AVX512 void qk_f32_fq__avx512(size_t n, const float *x, float *y, uint8_t *mask, const qk_fq_params *p) {
    const __m512 s = _mm512_set1_ps(p->scale), inv = _mm512_set1_ps(p->inv_scale), zp = _mm512_set1_ps(p->zero_point);
    const __m512 lo = _mm512_set1_ps(p->qmin), hi = _mm512_set1_ps(p->qmax);
    __mmask16 in;
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : QK_TAIL16(n - i);
        const __m512 v = qk_fq16(_mm512_maskz_loadu_ps(k, x + i), s, inv, zp, lo, hi, &in);
        _mm512_mask_storeu_ps(y + i, k, v);
        if (mask) qk_store_mask16(mask + i, k, in);
    }
}

QK_TARGET_AVX512 void qk_f32_fq_pc__avx512(size_t n, const float *x, float *y, uint8_t *mask, const float *scale,
                                           const float *inv_scale, const float *zero_point, const qk_fq_params *p) {
    const __m512 lo = _mm512_set1_ps(p->qmin), hi = _mm512_set1_ps(p->qmax);
    __mmask16 in;
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : QK_TAIL16(n - i);
        const __m512 v = qk_fq16(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, scale + i),
                                 _mm512_maskz_loadu_ps(k, inv_scale + i), _mm512_maskz_loadu_ps(k, zero_point + i),
                                 lo, hi, &in);
        _mm512_mask_storeu_ps(y + i, k, v);
        if (mask) qk_store_mask16(mask + i, k, in);
    }
}

QK_TARGET_AVX512 void qk_f32_fq_mask_backward__avx512(size_t n, const float *dy, const uint8_t *mask, float *dx) {
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : QK_TAIL16(n - i);
        const __m512 m = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, mask + i)));
        _mm512_mask_storeu_ps(dx + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, dy + i), m));
    }
}

/* Learnable backward of 16 elements (the scalar branch formulas, both computed and blended); returns dx. */
static QK_TARGET_AVX512 inline __m512 qk_fql16(__m512 x, __m512 dy, __m512 s, __m512 inv, __m512 zp, __m512 lo,
                                               __m512 hi, __m512 g, __m512 *ds, __m512 *dz) {
    const __m512 xq = _mm512_roundscale_ps(_mm512_add_ps(_mm512_mul_ps(x, inv), zp), QK_RNE);
    const __mmask16 in = (__mmask16)(_mm512_cmp_ps_mask(xq, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(xq, hi, _CMP_LE_OQ));
    const __mmask16 above = _mm512_cmp_ps_mask(xq, hi, _CMP_GT_OQ);
    const __m512 xfq = _mm512_mul_ps(_mm512_sub_ps(xq, zp), s);
    const __m512 ds_in = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dy, _mm512_sub_ps(xfq, x)), inv), g);
    const __m512 bound = _mm512_mask_blend_ps(above, lo, hi);
    const __m512 ds_out = _mm512_mul_ps(_mm512_mul_ps(dy, _mm512_sub_ps(bound, zp)), g);
    const __m512 ndy = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(dy),
                                                            _mm512_set1_epi32((int32_t)0x80000000u)));
    *ds = _mm512_mask_blend_ps(in, ds_out, ds_in);
    *dz = _mm512_maskz_mov_ps((__mmask16)~in, _mm512_mul_ps(_mm512_mul_ps(ndy, s), g));
    return _mm512_mul_ps(dy, _mm512_maskz_mov_ps(in, _mm512_set1_ps(1.0f)));
}

static QK_TARGET_AVX512 inline void qk_acc16(__m512d *a, __m512d *b, __m512 v) {
    *a = _mm512_add_pd(*a, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    *b = _mm512_add_pd(*b, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

QK_TARGET_AVX512 void qk_f32_fq_learnable_backward__avx512(size_t n, const float *x, const float *dy, float *dx,
                                                           const qk_fq_params *p, double *grad_scale,
                                                           double *grad_zero_point) {
    const __m512 s = _mm512_set1_ps(p->scale), inv = _mm512_set1_ps(p->inv_scale), zp = _mm512_set1_ps(p->zero_point);
    const __m512 lo = _mm512_set1_ps(p->qmin), hi = _mm512_set1_ps(p->qmax), g = _mm512_set1_ps(p->grad_factor);
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, z0 = s0, z1 = s0;   /* lanes 0-7 and 8-15 */
    __m512 ds, dz;
    /* Padding (masked-off x = 0, dy = 0) adds +-0 to the lanes, which leaves them unchanged. */
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : QK_TAIL16(n - i);
        const __m512 v = qk_fql16(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, dy + i), s, inv, zp, lo,
                                  hi, g, &ds, &dz);
        _mm512_mask_storeu_ps(dx + i, k, v);
        qk_acc16(&s0, &s1, ds);
        qk_acc16(&z0, &z1, dz);
    }
    double ls[QK_FQ_LANES], lz[QK_FQ_LANES];
    _mm512_storeu_pd(ls, s0);
    _mm512_storeu_pd(ls + 8, s1);
    _mm512_storeu_pd(lz, z0);
    _mm512_storeu_pd(lz + 8, z1);
    *grad_scale = qk_fq_sum_lanes(ls);
    *grad_zero_point = qk_fq_sum_lanes(lz);
}

static QK_TARGET_AVX512 inline void qk_fql16_pc(const float *x, const float *dy, float *dx, const float *scale,
                                                const float *inv_scale, const float *zero_point, __m512 lo, __m512 hi,
                                                __m512 g, double *acc_s, double *acc_z) {
    __m512 ds, dz;
    _mm512_storeu_ps(dx, qk_fql16(_mm512_loadu_ps(x), _mm512_loadu_ps(dy), _mm512_loadu_ps(scale),
                                  _mm512_loadu_ps(inv_scale), _mm512_loadu_ps(zero_point), lo, hi, g, &ds, &dz));
    __m512d a = _mm512_loadu_pd(acc_s), b = _mm512_loadu_pd(acc_s + 8);
    qk_acc16(&a, &b, ds);
    _mm512_storeu_pd(acc_s, a);
    _mm512_storeu_pd(acc_s + 8, b);
    a = _mm512_loadu_pd(acc_z);
    b = _mm512_loadu_pd(acc_z + 8);
    qk_acc16(&a, &b, dz);
    _mm512_storeu_pd(acc_z, a);
    _mm512_storeu_pd(acc_z + 8, b);
}

QK_TARGET_AVX512 void qk_f32_fq_learnable_backward_pc__avx512(size_t n, const float *x, const float *dy, float *dx,
                                                              const float *scale, const float *inv_scale,
                                                              const float *zero_point, const qk_fq_params *p,
                                                              double *acc_scale, double *acc_zero_point) {
    const __m512 lo = _mm512_set1_ps(p->qmin), hi = _mm512_set1_ps(p->qmax), g = _mm512_set1_ps(p->grad_factor);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        qk_fql16_pc(x + i, dy + i, dx + i, scale + i, inv_scale + i, zero_point + i, lo, hi, g, acc_scale + i,
                    acc_zero_point + i);
    /* The tail is the scalar reference: every element has its own accumulators, so the bits are the same. */
    qk_f32_fq_learnable_backward_pc__scalar(n - i, x + i, dy + i, dx + i, scale + i, inv_scale + i,
                                            zero_point + i, p, acc_scale + i, acc_zero_point + i);
}

#endif
