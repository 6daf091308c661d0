/*
 * Included by the *-avx512.c kernels only: <immintrin.h> normally, or, with -DQK_SIMDE_EMULATION (the emulated test
 * build, compiled with -mavx2 -mfma -mf16c on a machine without AVX-512), SIMDe plus exact stand-ins for the few
 * AVX-512 intrinsics SIMDe 0.7.4 lacks. The stand-ins work on 256-bit halves with the native AVX2/F16C instruction
 * of the same semantics, and masked loads/stores touch only the selected elements, as the hardware does.
 */
#ifndef QK_AVX512_H
#define QK_AVX512_H

#if defined(__x86_64__) || defined(_M_X64)

#include "qk_internal.h"

#if !defined(QK_SIMDE_EMULATION)
#include <immintrin.h>
#else
#include <stdint.h>
#include <string.h>
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

/* The kernels are compiled for the build's own -m flags. */
#undef QK_TARGET_AVX512
#define QK_TARGET_AVX512

#define QK_EMU static inline __attribute__((unused))

/* Halves of 512-bit values (SIMDe keeps GCC's native 64-byte vector types, so memcpy reinterprets them). */
QK_EMU __m256 qk_emu_ps_half(__m512 a, int i) { __m256 h[2]; memcpy(h, &a, 64); return h[i]; }
QK_EMU __m256i qk_emu_si_half(__m512i a, int i) { __m256i h[2]; memcpy(h, &a, 64); return h[i]; }
QK_EMU __m256d qk_emu_pd_half(__m512d a, int i) { __m256d h[2]; memcpy(h, &a, 64); return h[i]; }
QK_EMU __m512 qk_emu_ps_join(__m256 a, __m256 b) { __m512 r; __m256 h[2] = {a, b}; memcpy(&r, h, 64); return r; }
QK_EMU __m512i qk_emu_si_join(__m256i a, __m256i b) { __m512i r; __m256i h[2] = {a, b}; memcpy(&r, h, 64); return r; }
QK_EMU __m512d qk_emu_pd_join(__m256d a, __m256d b) { __m512d r; __m256d h[2] = {a, b}; memcpy(&r, h, 64); return r; }
QK_EMU __m256i qk_emu_si256_join(__m128i a, __m128i b) { return _mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1); }

/* Conversions (vcvtps2dq / vcvtpd2dq round with MXCSR and give 0x80000000 out of range, like the AVX2 forms). */
QK_EMU __m512i qk_emu_mm512_cvtps_epi32(__m512 a) {
    return qk_emu_si_join(_mm256_cvtps_epi32(qk_emu_ps_half(a, 0)), _mm256_cvtps_epi32(qk_emu_ps_half(a, 1)));
}
QK_EMU __m512 qk_emu_mm512_cvtepi32_ps(__m512i a) {
    return qk_emu_ps_join(_mm256_cvtepi32_ps(qk_emu_si_half(a, 0)), _mm256_cvtepi32_ps(qk_emu_si_half(a, 1)));
}
QK_EMU __m512i qk_emu_mm512_cvtepu8_epi32(__m128i a) {
    return qk_emu_si_join(_mm256_cvtepu8_epi32(a), _mm256_cvtepu8_epi32(_mm_srli_si128(a, 8)));
}
QK_EMU __m512i qk_emu_mm512_cvtepi8_epi32(__m128i a) {
    return qk_emu_si_join(_mm256_cvtepi8_epi32(a), _mm256_cvtepi8_epi32(_mm_srli_si128(a, 8)));
}
QK_EMU __m512d qk_emu_mm512_cvtps_pd(__m256 a) {
    return qk_emu_pd_join(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
}
QK_EMU __m512d qk_emu_mm512_cvtepi32_pd(__m256i a) {
    return qk_emu_pd_join(_mm256_cvtepi32_pd(_mm256_castsi256_si128(a)), _mm256_cvtepi32_pd(_mm256_extracti128_si256(a, 1)));
}
QK_EMU __m256i qk_emu_mm512_cvtpd_epi32(__m512d a) {
    return qk_emu_si256_join(_mm256_cvtpd_epi32(qk_emu_pd_half(a, 0)), _mm256_cvtpd_epi32(qk_emu_pd_half(a, 1)));
}
/* vpmovdb: truncation to the low byte. */
QK_EMU __m128i qk_emu_mm512_cvtepi32_epi8(__m512i a) {
    int32_t v[16];
    int8_t r[16];
    memcpy(v, &a, 64);
    for (int i = 0; i < 16; i++) r[i] = (int8_t)(uint8_t)(uint32_t)v[i];
    return _mm_loadu_si128((const __m128i *)r);
}
QK_EMU void qk_emu_mm512_mask_cvtepi32_storeu_epi8(void *p, __mmask16 k, __m512i a) {
    const __m128i t = qk_emu_mm512_cvtepi32_epi8(a);
    uint8_t b[16];
    _mm_storeu_si128((__m128i *)b, t);
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) ((uint8_t *)p)[i] = b[i];
}
#define QK_EMU_CVTPS_PH(a, imm) \
    qk_emu_si256_join(_mm256_cvtps_ph(qk_emu_ps_half((a), 0), (imm) & 7), _mm256_cvtps_ph(qk_emu_ps_half((a), 1), (imm) & 7))
QK_EMU __m512 qk_emu_mm512_cvtph_ps(__m256i a) {
    return qk_emu_ps_join(_mm256_cvtph_ps(_mm256_castsi256_si128(a)), _mm256_cvtph_ps(_mm256_extracti128_si256(a, 1)));
}
QK_EMU __m512i qk_emu_mm512_cvtepu16_epi32(__m256i a) {
    return qk_emu_si_join(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(a)),
                          _mm256_cvtepu16_epi32(_mm256_extracti128_si256(a, 1)));
}

/* Masked loads and stores: element by element, only where the mask bit is set (zero elsewhere for loads). */
#define QK_EMU_MASKZ_LOAD(name, T, E, N)                                      \
    QK_EMU T name(uint64_t k, const void *p) {                                 \
        E v[N];                                                                \
        T r;                                                                   \
        for (int i = 0; i < N; i++) {                                          \
            v[i] = 0;                                                          \
            if (k >> i & 1) memcpy(&v[i], (const char *)p + i * sizeof(E), sizeof(E)); \
        }                                                                      \
        memcpy(&r, v, sizeof r);                                               \
        return r;                                                              \
    }
#define QK_EMU_MASK_STORE(name, T, E, N)                                       \
    QK_EMU void name(void *p, uint64_t k, T a) {                               \
        E v[N];                                                                \
        memcpy(v, &a, sizeof v);                                               \
        for (int i = 0; i < N; i++)                                            \
            if (k >> i & 1) memcpy((char *)p + i * sizeof(E), &v[i], sizeof(E)); \
    }
QK_EMU_MASKZ_LOAD(qk_emu_mm512_maskz_loadu_ps, __m512, float, 16)
QK_EMU_MASKZ_LOAD(qk_emu_mm512_maskz_loadu_epi32, __m512i, int32_t, 16)
QK_EMU_MASKZ_LOAD(qk_emu_mm256_maskz_loadu_ps, __m256, float, 8)
QK_EMU_MASKZ_LOAD(qk_emu_mm256_maskz_loadu_epi32, __m256i, int32_t, 8)
QK_EMU_MASKZ_LOAD(qk_emu_mm256_maskz_loadu_epi16, __m256i, uint16_t, 16)
QK_EMU_MASKZ_LOAD(qk_emu_mm_maskz_loadu_epi8, __m128i, uint8_t, 16)
QK_EMU_MASKZ_LOAD(qk_emu_mm512_maskz_loadu_epi8, __m512i, uint8_t, 64)
QK_EMU_MASKZ_LOAD(qk_emu_mm512_maskz_loadu_epi16, __m512i, uint16_t, 32)
QK_EMU_MASK_STORE(qk_emu_mm512_mask_storeu_ps, __m512, float, 16)
QK_EMU_MASK_STORE(qk_emu_mm512_mask_storeu_epi32, __m512i, int32_t, 16)
QK_EMU_MASK_STORE(qk_emu_mm256_mask_storeu_epi32, __m256i, int32_t, 8)
QK_EMU_MASK_STORE(qk_emu_mm256_mask_storeu_epi16, __m256i, uint16_t, 16)
QK_EMU_MASK_STORE(qk_emu_mm512_mask_storeu_epi8, __m512i, uint8_t, 64)

/* VNNI kernels (qu8-gemm): same treatment as QK_TARGET_AVX512. SIMDe provides _mm512_dpbusd_epi32 but has no
 * AVX-VNNI, so the VEX vpdpbusd gets an exact stand-in: even and odd bytes widened to int16 (u8 zero-, s8
 * sign-extended), two vpmaddwd (each pair sum |.| <= 2*255*128, no saturation), int32 wraparound adds. */
#undef QK_TARGET_AVX512VNNI
#define QK_TARGET_AVX512VNNI
#undef QK_TARGET_AVXVNNI
#define QK_TARGET_AVXVNNI
QK_EMU __m256i qk_emu_mm256_dpbusd_avx_epi32(__m256i src, __m256i a, __m256i b) {
    const __m256i a_even = _mm256_and_si256(a, _mm256_set1_epi16(0x00FF));
    const __m256i a_odd = _mm256_srli_epi16(a, 8);
    const __m256i b_even = _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8);
    const __m256i b_odd = _mm256_srai_epi16(b, 8);
    return _mm256_add_epi32(src, _mm256_add_epi32(_mm256_madd_epi16(a_even, b_even), _mm256_madd_epi16(a_odd, b_odd)));
}
#undef _mm256_dpbusd_avx_epi32
#define _mm256_dpbusd_avx_epi32(s, a, b) qk_emu_mm256_dpbusd_avx_epi32(s, a, b)

/* AVX512-BF16 (bf16-gemm): SIMDe's _mm512_dpbf16_ps adds the even product first and keeps subnormals; the stand-in
 * follows the SDM (whose NaN priorities agree with this order): per lane acc += a[2j+1] * b[2j+1], then
 * acc += a[2j] * b[2j], each a fused multiply-add rounding to nearest even, with subnormal inputs (acc included) read
 * as zero and subnormal results flushed to zero (sign kept), the flush applied to the rounded result. */
#undef QK_TARGET_AVX512BF16
#define QK_TARGET_AVX512BF16
QK_EMU __m256 qk_emu_flush_subnormal(__m256 x) {
    const __m256i xi = _mm256_castps_si256(x);
    const __m256i sign = _mm256_and_si256(xi, _mm256_set1_epi32((int32_t)0x80000000u));
    const __m256i exp = _mm256_and_si256(xi, _mm256_set1_epi32(0x7F800000));
    return _mm256_castsi256_ps(_mm256_blendv_epi8(xi, sign, _mm256_cmpeq_epi32(exp, _mm256_setzero_si256())));
}
QK_EMU __m256 qk_emu_dpbf16_half(__m256 acc, __m256i a, __m256i b) {
    const __m256i hi = _mm256_set1_epi32((int32_t)0xFFFF0000u);
    const __m256 a_odd = qk_emu_flush_subnormal(_mm256_castsi256_ps(_mm256_and_si256(a, hi)));
    const __m256 b_odd = qk_emu_flush_subnormal(_mm256_castsi256_ps(_mm256_and_si256(b, hi)));
    const __m256 a_even = qk_emu_flush_subnormal(_mm256_castsi256_ps(_mm256_slli_epi32(a, 16)));
    const __m256 b_even = qk_emu_flush_subnormal(_mm256_castsi256_ps(_mm256_slli_epi32(b, 16)));
    acc = qk_emu_flush_subnormal(_mm256_fmadd_ps(a_odd, b_odd, qk_emu_flush_subnormal(acc)));
    return qk_emu_flush_subnormal(_mm256_fmadd_ps(a_even, b_even, acc));
}
QK_EMU __m512 qk_emu_mm512_dpbf16_ps(__m512 acc, __m512bh a, __m512bh b) {
    __m512i ai, bi;
    memcpy(&ai, &a, 64);
    memcpy(&bi, &b, 64);
    return qk_emu_ps_join(qk_emu_dpbf16_half(qk_emu_ps_half(acc, 0), qk_emu_si_half(ai, 0), qk_emu_si_half(bi, 0)),
                          qk_emu_dpbf16_half(qk_emu_ps_half(acc, 1), qk_emu_si_half(ai, 1), qk_emu_si_half(bi, 1)));
}

/* Some of these are macros in the compiler headers. */
#undef _mm512_cvtps_epi32
#define _mm512_cvtps_epi32(a) qk_emu_mm512_cvtps_epi32(a)
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps(a) qk_emu_mm512_cvtepi32_ps(a)
#undef _mm512_cvtepu8_epi32
#define _mm512_cvtepu8_epi32(a) qk_emu_mm512_cvtepu8_epi32(a)
#undef _mm512_cvtepi8_epi32
#define _mm512_cvtepi8_epi32(a) qk_emu_mm512_cvtepi8_epi32(a)
#undef _mm512_cvtps_pd
#define _mm512_cvtps_pd(a) qk_emu_mm512_cvtps_pd(a)
#undef _mm512_cvtepi32_pd
#define _mm512_cvtepi32_pd(a) qk_emu_mm512_cvtepi32_pd(a)
#undef _mm512_cvtpd_epi32
#define _mm512_cvtpd_epi32(a) qk_emu_mm512_cvtpd_epi32(a)
#undef _mm512_cvtepi32_epi8
#define _mm512_cvtepi32_epi8(a) qk_emu_mm512_cvtepi32_epi8(a)
#undef _mm512_mask_cvtepi32_storeu_epi8
#define _mm512_mask_cvtepi32_storeu_epi8(p, k, a) qk_emu_mm512_mask_cvtepi32_storeu_epi8(p, k, a)
#undef _mm512_cvtps_ph
#define _mm512_cvtps_ph(a, imm) QK_EMU_CVTPS_PH(a, imm)
#undef _mm512_cvtph_ps
#define _mm512_cvtph_ps(a) qk_emu_mm512_cvtph_ps(a)
#undef _mm512_cvtepu16_epi32
#define _mm512_cvtepu16_epi32(a) qk_emu_mm512_cvtepu16_epi32(a)
#undef _mm512_maskz_loadu_epi16
#define _mm512_maskz_loadu_epi16(k, p) qk_emu_mm512_maskz_loadu_epi16(k, p)
#undef _mm512_dpbf16_ps
#define _mm512_dpbf16_ps(acc, a, b) qk_emu_mm512_dpbf16_ps(acc, a, b)
#undef _mm512_maskz_loadu_ps
#define _mm512_maskz_loadu_ps(k, p) qk_emu_mm512_maskz_loadu_ps(k, p)
#undef _mm512_maskz_loadu_epi32
#define _mm512_maskz_loadu_epi32(k, p) qk_emu_mm512_maskz_loadu_epi32(k, p)
#undef _mm256_maskz_loadu_ps
#define _mm256_maskz_loadu_ps(k, p) qk_emu_mm256_maskz_loadu_ps(k, p)
#undef _mm256_maskz_loadu_epi32
#define _mm256_maskz_loadu_epi32(k, p) qk_emu_mm256_maskz_loadu_epi32(k, p)
#undef _mm256_maskz_loadu_epi16
#define _mm256_maskz_loadu_epi16(k, p) qk_emu_mm256_maskz_loadu_epi16(k, p)
#undef _mm_maskz_loadu_epi8
#define _mm_maskz_loadu_epi8(k, p) qk_emu_mm_maskz_loadu_epi8(k, p)
#undef _mm512_maskz_loadu_epi8
#define _mm512_maskz_loadu_epi8(k, p) qk_emu_mm512_maskz_loadu_epi8(k, p)
/* SIMDe 0.7.4 declares this alias with the arity of the masked form. */
#undef _mm512_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16(a, b)
#undef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps(p, k, a) qk_emu_mm512_mask_storeu_ps(p, k, a)
#undef _mm512_mask_storeu_epi32
#define _mm512_mask_storeu_epi32(p, k, a) qk_emu_mm512_mask_storeu_epi32(p, k, a)
#undef _mm256_mask_storeu_epi32
#define _mm256_mask_storeu_epi32(p, k, a) qk_emu_mm256_mask_storeu_epi32(p, k, a)
#undef _mm256_mask_storeu_epi16
#define _mm256_mask_storeu_epi16(p, k, a) qk_emu_mm256_mask_storeu_epi16(p, k, a)
#undef _mm512_mask_storeu_epi8
#define _mm512_mask_storeu_epi8(p, k, a) qk_emu_mm512_mask_storeu_epi8(p, k, a)

#endif /* QK_SIMDE_EMULATION */

#endif /* x86-64 */
#endif /* QK_AVX512_H */
