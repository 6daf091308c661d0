/*
 * AVX-VNNI u8 x s8 GEMM microkernel, 6x16 tile (MLAS's shape): 12 ymm accumulators, 2 ymm of packed B (8 columns x
 * 4 k each) and one vpbroadcastd of 4 A bytes per row, VEX vpdpbusd (exact, not the saturating vpdpbusds).
 * Packed panel: int32 wcomp[16], then per k-group of 4 the 16 columns x 4 bytes (c4). The epilogue runs on the
 * registers. mr is a compile-time constant in each instantiation, so rows beyond mr are never read or written;
 * column tails use vpmaskmovd (32-bit outputs and parameters) and 8/4/2/1-byte stores (8-bit outputs).
 */
#if defined(__x86_64__) || defined(_M_X64)

#include <string.h>

#include "qk_avx512.h" /* <immintrin.h>, or SIMDe plus the AVX-VNNI stand-in in the emulated test build */
#include "qk_kernels.h"

#define QK_MR 6
#define QK_NR 16
#define QK_ALWAYS_INLINE static inline __attribute__((always_inline))
#define QK_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

/* GCC 12 keeps the loop-carried accumulators (__m256i, V4DI) and their V8SI uses after the loop in different
 * registers and copies them every iteration; an empty asm after the loop separates the two (no code). */
#define QK_REG_BARRIER(i)                                                                                      \
    if (i < mr) __asm__("" : "+x"(acc##i##0), "+x"(acc##i##1));

QK_TARGET_AVXVNNI QK_ALWAYS_INLINE __m256i qk_bcast4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* The last 1-3 bytes of a row, zero-extended (never reads past the row). */
QK_ALWAYS_INLINE int32_t qk_tail4(const uint8_t *p, size_t n) {
    uint32_t v = p[0];
    if (n > 1) v |= (uint32_t)p[1] << 8;
    if (n > 2) v |= (uint32_t)p[2] << 16;
    return (int32_t)v;
}

/* Stores the first n (< 16) bytes of v. */
QK_TARGET_AVXVNNI QK_ALWAYS_INLINE void qk_store_bytes(char *p, __m128i v, size_t n) {
    if (n & 8) {
        _mm_storel_epi64((__m128i *)p, v);
        v = _mm_unpackhi_epi64(v, v);
        p += 8;
    }
    uint32_t t = (uint32_t)_mm_cvtsi128_si32(v);
    if (n & 4) {
        memcpy(p, &t, 4);
        t = (uint32_t)_mm_extract_epi32(v, 1);
        p += 4;
    }
    if (n & 2) {
        const uint16_t h = (uint16_t)t;
        memcpy(p, &h, 2);
        t >>= 16;
        p += 2;
    }
    if (n & 1) *p = (char)(uint8_t)t;
}

QK_TARGET_AVXVNNI QK_ALWAYS_INLINE void qk_tile(const size_t mr, size_t nc, size_t kc, const uint8_t *a,
                                                size_t a_stride, const void *w, void *c, size_t c_stride,
                                                const qk_gemm_epilogue *e) {
#define QK_DECL(i)                                                                                             \
    const uint8_t *a##i = a;                                                                                   \
    if (i < mr) a##i = a + i * a_stride;                                                                       \
    __m256i acc##i##0 = _mm256_setzero_si256(), acc##i##1 = acc##i##0;
    QK_ROWS(QK_DECL)

    /* Lane masks for the column tail (all ones when nc == 16). */
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i vnc = _mm256_set1_epi32((int32_t)nc);
    const __m256i nm0 = _mm256_cmpgt_epi32(vnc, lane);
    const __m256i nm1 = _mm256_cmpgt_epi32(vnc, _mm256_add_epi32(lane, _mm256_set1_epi32(8)));

    /* acc starts at za*wcomp[n] - zw[n]*rowsum[m] (int32 wraparound, as the reference). */
    {
        const int32_t *wc = (const int32_t *)w;
        const __m256i vza = _mm256_set1_epi32(e->a_zero_point);
        const __m256i zaw0 = _mm256_mullo_epi32(_mm256_loadu_si256((const __m256i *)wc), vza);
        const __m256i zaw1 = _mm256_mullo_epi32(_mm256_loadu_si256((const __m256i *)(wc + 8)), vza);
        if (e->row_sums != NULL) {
            const __m256i zw0 = _mm256_maskload_epi32(e->w_zero_points, nm0);
            const __m256i zw1 = _mm256_maskload_epi32(e->w_zero_points + 8, nm1);
#define QK_INIT_RS(i)                                                                                          \
    if (i < mr) {                                                                                              \
        const __m256i rs = _mm256_set1_epi32(e->row_sums[i]);                                                  \
        acc##i##0 = _mm256_sub_epi32(zaw0, _mm256_mullo_epi32(zw0, rs));                                       \
        acc##i##1 = _mm256_sub_epi32(zaw1, _mm256_mullo_epi32(zw1, rs));                                       \
    }
            QK_ROWS(QK_INIT_RS)
        } else {
#define QK_INIT(i)                                                                                             \
    if (i < mr) {                                                                                              \
        acc##i##0 = zaw0;                                                                                      \
        acc##i##1 = zaw1;                                                                                      \
    }
            QK_ROWS(QK_INIT)
        }
    }

#define QK_DOT(i, va_expr)                                                                                     \
    if (i < mr) {                                                                                              \
        const __m256i va = va_expr;                                                                            \
        acc##i##0 = _mm256_dpbusd_avx_epi32(acc##i##0, va, b0);                                                \
        acc##i##1 = _mm256_dpbusd_avx_epi32(acc##i##1, va, b1);                                                \
    }
    const uint8_t *wb = (const uint8_t *)w + 4 * QK_NR;
    size_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)wb);
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(wb + 32));
        wb += 4 * QK_NR;
#define QK_MAIN(i) QK_DOT(i, qk_bcast4(a##i + k))
        QK_ROWS(QK_MAIN)
    }
    QK_ROWS(QK_REG_BARRIER)
    if (k < kc) {
        /* Last 1-3 bytes of each row, zero-padded; packed B is zero beyond K. */
        const size_t r = kc - k;
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)wb);
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(wb + 32));
#define QK_TAIL(i) QK_DOT(i, _mm256_set1_epi32(qk_tail4(a##i + k, r)))
        QK_ROWS(QK_TAIL)
    }

    char *cp = (char *)c;
    const int full = nc >= QK_NR;
    switch (e->kind) {
    case QK_GEMM_OUT_QU8:
    case QK_GEMM_OUT_QS8: {
        /* ((float)raw + bias_term) * mult, two roundings; clamp in float; vcvtps2dq (RNE); + zp. The values are
         * within the output range, so the saturating packs are exact for both u8 and s8. */
        const __m256 bt0 = _mm256_maskload_ps(e->bias_term, nm0), bt1 = _mm256_maskload_ps(e->bias_term + 8, nm1);
        const __m256 mu0 = _mm256_maskload_ps(e->multiplier, nm0), mu1 = _mm256_maskload_ps(e->multiplier + 8, nm1);
        const __m256 lo = _mm256_set1_ps((float)(e->out_min - e->out_zero_point));
        const __m256 hi = _mm256_set1_ps((float)(e->out_max - e->out_zero_point));
        const __m256i zp = _mm256_set1_epi32(e->out_zero_point);
        const int is_u8 = e->kind == QK_GEMM_OUT_QU8;
#define QK_RQ(i, j)                                                                                            \
    __m256i q##j;                                                                                              \
    {                                                                                                          \
        __m256 v = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(acc##i##j), bt##j), mu##j);                  \
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);                                                           \
        q##j = _mm256_add_epi32(_mm256_cvtps_epi32(v), zp);                                                    \
    }
#define QK_RQ_ROW(i)                                                                                           \
    if (i < mr) {                                                                                              \
        QK_RQ(i, 0)                                                                                            \
        QK_RQ(i, 1)                                                                                            \
        const __m128i h0 = _mm_packs_epi32(_mm256_castsi256_si128(q0), _mm256_extracti128_si256(q0, 1));       \
        const __m128i h1 = _mm_packs_epi32(_mm256_castsi256_si128(q1), _mm256_extracti128_si256(q1, 1));       \
        const __m128i y = is_u8 ? _mm_packus_epi16(h0, h1) : _mm_packs_epi16(h0, h1);                          \
        if (full)                                                                                              \
            _mm_storeu_si128((__m128i *)(cp + i * c_stride), y);                                               \
        else                                                                                                   \
            qk_store_bytes(cp + i * c_stride, y, nc);                                                          \
    }
        QK_ROWS(QK_RQ_ROW)
        break;
    }
    case QK_GEMM_OUT_F32: {
        /* One FMA: float(raw) * scale + bias; ReLU as max(y, 0). */
        const __m256 sc0 = _mm256_maskload_ps(e->scale, nm0), sc1 = _mm256_maskload_ps(e->scale + 8, nm1);
        const __m256 bi0 = _mm256_maskload_ps(e->bias, nm0), bi1 = _mm256_maskload_ps(e->bias + 8, nm1);
        const int relu = e->relu;
#define QK_F32(i, j)                                                                                           \
    {                                                                                                          \
        __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc##i##j), sc##j, bi##j);                               \
        if (relu) y = _mm256_max_ps(y, _mm256_setzero_ps());                                                   \
        _mm256_maskstore_ps((float *)(cp + i * c_stride) + 8 * j, nm##j, y);                                   \
    }
#define QK_F32_ROW(i)                                                                                          \
    if (i < mr) {                                                                                              \
        QK_F32(i, 0) QK_F32(i, 1)                                                                              \
    }
        QK_ROWS(QK_F32_ROW)
        break;
    }
    default: /* QK_GEMM_OUT_S32 */
#define QK_S32_ROW(i)                                                                                          \
    if (i < mr) {                                                                                              \
        int *ci = (int *)(cp + i * c_stride);                                                                  \
        _mm256_maskstore_epi32(ci, nm0, acc##i##0);                                                            \
        _mm256_maskstore_epi32(ci + 8, nm1, acc##i##1);                                                        \
    }
        QK_ROWS(QK_S32_ROW)
        break;
    }
}

/* One out-of-line function per row count, each with its own register allocation. */
#define QK_TILE_FN(r)                                                                                          \
    QK_TARGET_AVXVNNI static __attribute__((noinline)) void qk_tile##r(                                       \
        size_t nc, size_t kc, const uint8_t *a, size_t a_stride, const void *w, void *c, size_t c_stride,     \
        const qk_gemm_epilogue *e) {                                                                           \
        qk_tile(r, nc, kc, a, a_stride, w, c, c_stride, e);                                                    \
    }
QK_TILE_FN(1)
QK_TILE_FN(2)
QK_TILE_FN(3)
QK_TILE_FN(4)
QK_TILE_FN(5)
QK_TILE_FN(6)

QK_TARGET_AVXVNNI void qk_qu8_gemm_ukernel_6x16c4__avxvnni(size_t mr, size_t nc, size_t kc, const uint8_t *a,
                                                           size_t a_stride, const void *w, void *c, size_t c_stride,
                                                           const qk_gemm_epilogue *e) {
    switch (mr) {
    case 0: break;
    case 1: qk_tile1(nc, kc, a, a_stride, w, c, c_stride, e); break;
    case 2: qk_tile2(nc, kc, a, a_stride, w, c, c_stride, e); break;
    case 3: qk_tile3(nc, kc, a, a_stride, w, c, c_stride, e); break;
    case 4: qk_tile4(nc, kc, a, a_stride, w, c, c_stride, e); break;
    case 5: qk_tile5(nc, kc, a, a_stride, w, c, c_stride, e); break;
    default: qk_tile6(nc, kc, a, a_stride, w, c, c_stride, e); break;
    }
}

#endif
