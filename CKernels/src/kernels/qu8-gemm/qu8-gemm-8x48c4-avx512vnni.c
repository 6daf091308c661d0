/*
 * AVX-512 VNNI u8 x s8 GEMM microkernel, 8x48 tile (FBGEMM's shape): 24 zmm accumulators, 3 zmm of packed B
 * (16 columns x 4 k each) and one vpbroadcastd of 4 A bytes per row; vpdpbusd is exact (no int16 saturation).
 * Packed panel: int32 wcomp[48], then per k-group of 4 the 48 columns x 4 bytes (c4). The epilogue runs on the
 * registers. mr is a compile-time constant in each instantiation, so rows beyond mr are never read or written.
 */
#if defined(__x86_64__) || defined(_M_X64)

#include <string.h>

#include "qk_avx512.h"
#include "qk_kernels.h"

#define QK_MR 8
#define QK_NR 48
#define QK_ALWAYS_INLINE static inline __attribute__((always_inline))

/* 4 unaligned bytes of A broadcast to all lanes (vpbroadcastd from memory). */
QK_TARGET_AVX512VNNI QK_ALWAYS_INLINE __m512i qk_bcast4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* The tile is written with named registers: QK_ROWS expands one statement per row, folded away for rows >= mr. */
#define QK_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* GCC 12 keeps the loop-carried accumulators (__m512i, V8DI) and their V16SI uses after the loop in different
 * registers and copies all of them every iteration; an empty asm after the loop separates the two (no code). */
#if !defined(QK_SIMDE_EMULATION)
#define QK_REG_BARRIER(i)                                                                                      \
    if (i < mr) {                                                                                              \
        __asm__("" : "+v"(acc##i##0));                                                                         \
        if (nv > 1) __asm__("" : "+v"(acc##i##1));                                                             \
        if (nv > 2) __asm__("" : "+v"(acc##i##2));                                                             \
    }
#else
#define QK_REG_BARRIER(i)
#endif

QK_TARGET_AVX512VNNI QK_ALWAYS_INLINE void qk_tile(const size_t mr, const size_t nv, size_t nc, size_t kc, const uint8_t *a,
                                                   size_t a_stride, const void *w, void *c, size_t c_stride,
                                                   const qk_gemm_epilogue *e) {
#define QK_DECL(i)                                                                                             \
    const uint8_t *a##i = a;                                                                                   \
    if (i < mr) a##i = a + i * a_stride;                                                                       \
    __m512i acc##i##0 = _mm512_setzero_si512(), acc##i##1 = acc##i##0, acc##i##2 = acc##i##0;
    QK_ROWS(QK_DECL)

    __mmask16 nm0, nm1, nm2;
    {
        const size_t n1 = nc > 16 ? nc - 16 : 0, n2 = nc > 32 ? nc - 32 : 0;
        nm0 = nc >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nc) - 1u);
        nm1 = n1 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n1) - 1u);
        nm2 = n2 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n2) - 1u);
    }

    /* acc starts at za*wcomp[n] - zw[n]*rowsum[m] (int32 wraparound, as the reference). */
    {
        const int32_t *wc = (const int32_t *)w;
        const __m512i vza = _mm512_set1_epi32(e->a_zero_point);
        const __m512i zaw0 = _mm512_mullo_epi32(_mm512_loadu_si512(wc), vza);
        const __m512i zaw1 = _mm512_mullo_epi32(_mm512_loadu_si512(wc + 16), vza);
        const __m512i zaw2 = _mm512_mullo_epi32(_mm512_loadu_si512(wc + 32), vza);
        if (e->row_sums != NULL) {
            const __m512i zw0 = _mm512_maskz_loadu_epi32(nm0, e->w_zero_points);
            const __m512i zw1 = _mm512_maskz_loadu_epi32(nm1, e->w_zero_points + 16);
            const __m512i zw2 = _mm512_maskz_loadu_epi32(nm2, e->w_zero_points + 32);
#define QK_INIT_RS(i)                                                                                          \
    if (i < mr) {                                                                                              \
        const __m512i rs = _mm512_set1_epi32(e->row_sums[i]);                                                  \
        acc##i##0 = _mm512_sub_epi32(zaw0, _mm512_mullo_epi32(zw0, rs));                                       \
        if (nv > 1) acc##i##1 = _mm512_sub_epi32(zaw1, _mm512_mullo_epi32(zw1, rs));                           \
        if (nv > 2) acc##i##2 = _mm512_sub_epi32(zaw2, _mm512_mullo_epi32(zw2, rs));                           \
    }
            QK_ROWS(QK_INIT_RS)
        } else {
#define QK_INIT(i)                                                                                             \
    if (i < mr) {                                                                                              \
        acc##i##0 = zaw0;                                                                                      \
        if (nv > 1) acc##i##1 = zaw1;                                                                          \
        if (nv > 2) acc##i##2 = zaw2;                                                                          \
    }
            QK_ROWS(QK_INIT)
        }
    }

#define QK_DOT(i, va_expr)                                                                                     \
    if (i < mr) {                                                                                              \
        const __m512i va = va_expr;                                                                            \
        acc##i##0 = _mm512_dpbusd_epi32(acc##i##0, va, b0);                                                    \
        if (nv > 1) acc##i##1 = _mm512_dpbusd_epi32(acc##i##1, va, b1);                                        \
        if (nv > 2) acc##i##2 = _mm512_dpbusd_epi32(acc##i##2, va, b2);                                        \
    }
    const uint8_t *wb = (const uint8_t *)w + 4 * QK_NR;
    size_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        const __m512i b0 = _mm512_loadu_si512(wb);
        const __m512i b1 = _mm512_loadu_si512(wb + 64);
        const __m512i b2 = _mm512_loadu_si512(wb + 128);
        wb += 4 * QK_NR;
#define QK_MAIN(i) QK_DOT(i, qk_bcast4(a##i + k))
        QK_ROWS(QK_MAIN)
    }
    QK_ROWS(QK_REG_BARRIER)
    if (k < kc) {
        /* Last 1-3 bytes of each row: masked load (no read past the row); packed B is zero beyond K. */
        const __mmask16 km = (__mmask16)((1u << (kc - k)) - 1u);
        const __m512i b0 = _mm512_loadu_si512(wb);
        const __m512i b1 = _mm512_loadu_si512(wb + 64);
        const __m512i b2 = _mm512_loadu_si512(wb + 128);
#define QK_TAIL(i) QK_DOT(i, _mm512_broadcastd_epi32(_mm_maskz_loadu_epi8(km, a##i + k)))
        QK_ROWS(QK_TAIL)
    }

    char *cp = (char *)c;
    switch (e->kind) {
    case QK_GEMM_OUT_QU8:
    case QK_GEMM_OUT_QS8: {
        /* ((float)raw + bias_term) * mult, two roundings; clamp in float; vcvtps2dq (RNE); + zp. The values are
         * within the output range, so the saturating packs are exact; vpackssdw + vpackus/sswb interleave the three
         * vectors per 128-bit lane and one vpermd restores column order, then one masked 48-byte store per row
         * (cheaper than three vpmovdb stores, which are multi-uop on Intel and AMD). */
        const __m512 bt0 = _mm512_maskz_loadu_ps(nm0, e->bias_term);
        const __m512 bt1 = _mm512_maskz_loadu_ps(nm1, e->bias_term + 16);
        const __m512 bt2 = _mm512_maskz_loadu_ps(nm2, e->bias_term + 32);
        const __m512 mu0 = _mm512_maskz_loadu_ps(nm0, e->multiplier);
        const __m512 mu1 = _mm512_maskz_loadu_ps(nm1, e->multiplier + 16);
        const __m512 mu2 = _mm512_maskz_loadu_ps(nm2, e->multiplier + 32);
        const __m512 lo = _mm512_set1_ps((float)(e->out_min - e->out_zero_point));
        const __m512 hi = _mm512_set1_ps((float)(e->out_max - e->out_zero_point));
        const __m512i zp = _mm512_set1_epi32(e->out_zero_point);
        const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        const __mmask64 cm = nc >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << nc) - 1u);
        const int is_u8 = e->kind == QK_GEMM_OUT_QU8;
#define QK_RQ(i, j)                                                                                            \
    __m512i q##j = zp;                                                                                         \
    if (j < nv) {                                                                                              \
        __m512 v = _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(acc##i##j), bt##j), mu##j);                  \
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);                                                           \
        q##j = _mm512_add_epi32(_mm512_cvtps_epi32(v), zp);                                                    \
    }
#define QK_RQ_ROW(i)                                                                                           \
    if (i < mr) {                                                                                              \
        QK_RQ(i, 0)                                                                                            \
        QK_RQ(i, 1)                                                                                            \
        QK_RQ(i, 2)                                                                                            \
        const __m512i h01 = _mm512_packs_epi32(q0, q1), h22 = _mm512_packs_epi32(q2, q2);                      \
        const __m512i y = is_u8 ? _mm512_packus_epi16(h01, h22) : _mm512_packs_epi16(h01, h22);                \
        _mm512_mask_storeu_epi8(cp + i * c_stride, cm, _mm512_permutexvar_epi32(perm, y));                     \
    }
        QK_ROWS(QK_RQ_ROW)
        break;
    }
    case QK_GEMM_OUT_F32: {
        /* One FMA: float(raw) * scale + bias; ReLU as max(y, 0). */
        const __m512 sc0 = _mm512_maskz_loadu_ps(nm0, e->scale);
        const __m512 sc1 = _mm512_maskz_loadu_ps(nm1, e->scale + 16);
        const __m512 sc2 = _mm512_maskz_loadu_ps(nm2, e->scale + 32);
        const __m512 bi0 = _mm512_maskz_loadu_ps(nm0, e->bias);
        const __m512 bi1 = _mm512_maskz_loadu_ps(nm1, e->bias + 16);
        const __m512 bi2 = _mm512_maskz_loadu_ps(nm2, e->bias + 32);
        const int relu = e->relu;
#define QK_F32(i, j)                                                                                           \
    if (j < nv) {                                                                                              \
        __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc##i##j), sc##j, bi##j);                               \
        if (relu) y = _mm512_max_ps(y, _mm512_setzero_ps());                                                   \
        _mm512_mask_storeu_ps((float *)(cp + i * c_stride) + 16 * j, nm##j, y);                                \
    }
#define QK_F32_ROW(i)                                                                                          \
    if (i < mr) {                                                                                              \
        QK_F32(i, 0) QK_F32(i, 1) QK_F32(i, 2)                                                                 \
    }
        QK_ROWS(QK_F32_ROW)
        break;
    }
    default: /* QK_GEMM_OUT_S32 */
#define QK_S32_ROW(i)                                                                                          \
    if (i < mr) {                                                                                              \
        int32_t *ci = (int32_t *)(cp + i * c_stride);                                                          \
        _mm512_mask_storeu_epi32(ci, nm0, acc##i##0);                                                          \
        if (nv > 1) _mm512_mask_storeu_epi32(ci + 16, nm1, acc##i##1);                                         \
        if (nv > 2) _mm512_mask_storeu_epi32(ci + 32, nm2, acc##i##2);                                         \
    }
        QK_ROWS(QK_S32_ROW)
        break;
    }
}

/* One out-of-line function per row count and number of 16-column vectors (nc <= 16 or <= 32 in a last panel
 * computes only the vectors it stores), each with its own register allocation. */
#define QK_TILE_FN(r, v)                                                                                       \
    QK_TARGET_AVX512VNNI static __attribute__((noinline)) void qk_tile##r##_##v(                              \
        size_t nc, size_t kc, const uint8_t *a, size_t a_stride, const void *w, void *c, size_t c_stride,     \
        const qk_gemm_epilogue *e) {                                                                           \
        qk_tile(r, v, nc, kc, a, a_stride, w, c, c_stride, e);                                                 \
    }
#define QK_TILE_FNS(r) QK_TILE_FN(r, 1) QK_TILE_FN(r, 2) QK_TILE_FN(r, 3)
QK_TILE_FNS(1)
QK_TILE_FNS(2)
QK_TILE_FNS(3)
QK_TILE_FNS(4)
QK_TILE_FNS(5)
QK_TILE_FNS(6)
QK_TILE_FNS(7)
QK_TILE_FNS(8)

typedef void qk_tile_fn(size_t nc, size_t kc, const uint8_t *a, size_t a_stride, const void *w, void *c,
                        size_t c_stride, const qk_gemm_epilogue *e);
#define QK_TILE_ROW(r) {qk_tile##r##_1, qk_tile##r##_2, qk_tile##r##_3},
static qk_tile_fn *const qk_tiles[QK_MR][3] = {
    QK_TILE_ROW(1) QK_TILE_ROW(2) QK_TILE_ROW(3) QK_TILE_ROW(4) QK_TILE_ROW(5) QK_TILE_ROW(6) QK_TILE_ROW(7)
    QK_TILE_ROW(8)
};

QK_TARGET_AVX512VNNI void qk_qu8_gemm_ukernel_8x48c4__avx512vnni(size_t mr, size_t nc, size_t kc, const uint8_t *a,
                                                                 size_t a_stride, const void *w, void *c,
                                                                 size_t c_stride, const qk_gemm_epilogue *e) {
    if (mr == 0 || nc == 0) return;
    const size_t r = mr < QK_MR ? mr : QK_MR;
    const size_t v = nc > 32 ? 3 : nc > 16 ? 2 : 1;
    qk_tiles[r - 1][v - 1](nc, kc, a, a_stride, w, c, c_stride, e);
}

#endif
