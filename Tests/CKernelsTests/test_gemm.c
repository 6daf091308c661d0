/*
 * int8 GEMM tests. Part 1 drives every microkernel of QK_GEMM_VARIANTS directly (test-side packing, per the layout
 * of qk_kernels.h) over shapes, strides, zero points and output stages, against a reference computed from the
 * formula (int64 sums, then the float chain), with zero tolerance; A rows end at a PROT_NONE page and outputs carry
 * guard bytes, so over-reads fault and over-writes are seen. Part 2 checks the public API (packing, driver, qint8
 * activations, the 7-bit fast path, every ISA level, 1/2/3 threads bit-identical, validation) against PyTorch's
 * formula.
 *
 * Built twice on x86: natively, and with QK_TEST_EMULATED_AVX512 against the AVX-512 GEMM files compiled through
 * SIMDe (Part 1 only; QK_GEMM_VARIANTS_AVX512 plus the scalar references).
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "qk_test.h"

#include "qk_gemm_scalar.h"
#include "qk_kernels.h"

_Atomic long qk_test_failures = 0;
_Atomic long qk_test_checks = 0;

#if defined(QK_TEST_EMULATED_AVX512)
#undef QK_GEMM_VARIANTS
#define QK_GEMM_VARIANTS(X) QK_GEMM_VARIANTS_AVX512(X) QK_GEMM_VARIANTS_SCALAR(X)
static uint32_t cpu_features(void) { return ~0u; }
#else
#include "qk_gemm.h"
#include "qk_internal.h"
#include "quantkit.h"
static uint32_t cpu_features(void) { return qk_cpu_features(); }
#endif

static qk_rng rng = {0x2545F4914F6CDD1Dull};
static uint32_t rnd(uint32_t n) { return (uint32_t)(qk_rng_next(&rng) % n); }

/* ------------------------------------------------------------------------------------------- reference */

/* sum_k (a - za)(w - zw) in int64, then wrapped to int32 as PyTorch's int32 accumulation. */
static int32_t ref_raw(const uint8_t *a, const int8_t *w, size_t k, int32_t za, int32_t zw) {
    int64_t s = 0;
    for (size_t i = 0; i < k; i++) s += (int64_t)((int32_t)a[i] - za) * (int64_t)((int32_t)w[i] - zw);
    return (int32_t)(uint32_t)(uint64_t)s;
}

static int32_t ref_q8(int32_t raw, float bias_term, float mult, int32_t zp, int32_t lo, int32_t hi) {
    float v = (float)raw + bias_term;
    v = v * mult;
    float l = (float)(lo - zp), h = (float)(hi - zp);
    if (!(v > l)) v = l;   /* NaN -> lo */
    if (v > h) v = h;
    return (int32_t)nearbyintf(v) + zp;
}

static float ref_f32(int32_t raw, float scale, float bias, int relu) {
    float y = fmaf((float)raw, scale, bias);
    if (relu && !(y > 0.0f)) y = 0.0f;
    return y;
}

/* ------------------------------------------------------------------------------------------- Part 1 */

/* Test-side packing (independent of src/operators/pack-gemm.c). */
static void pack_panels(size_t nr, size_t kr, size_t n, size_t k, const int8_t *w, const int32_t *zw,
                        unsigned char *out, size_t *panel_bytes) {
    const size_t kpad = (k + kr - 1) / kr * kr;
    *panel_bytes = nr * 4 + nr * kpad;
    const size_t panels = (n + nr - 1) / nr;
    memset(out, 0, panels * *panel_bytes);
    for (size_t p = 0; p < panels; p++) {
        unsigned char *base = out + p * *panel_bytes;
        for (size_t j = 0; j < nr && p * nr + j < n; j++) {
            const size_t col = p * nr + j;
            int64_t sum = 0;
            for (size_t kk = 0; kk < k; kk++) {
                sum += w[col * k + kk];
                ((int8_t *)(base + nr * 4))[(kk / kr) * nr * kr + j * kr + kk % kr] = w[col * k + kk];
            }
            const int32_t wc = (int32_t)(uint32_t)(uint64_t)((int64_t)k * zw[col] - sum);
            memcpy(base + j * 4, &wc, 4);
        }
    }
}

typedef struct {
    size_t m, n, k, a_pad;   /* a_stride = k + a_pad */
    int32_t za;
    int zw_mode;             /* 0 all zero, 1 one nonzero value, 2 per column random */
    int kind, relu;
    int amax;                /* activations drawn from [0, amax] (127 for fast kernels), extremes if < 0 */
} ukcase;

static void run_ukernel_case(const qk_gemm_config *cfg, const ukcase *t, const char *label) {
    const size_t MR = cfg->mr, NR = cfg->nr, KR = cfg->kr;
    const size_t m = t->m, n = t->n, k = t->k, a_stride = k + t->a_pad;
    const int a16 = (cfg->flags & QK_GEMM_A16) != 0;
    const int amax = (cfg->flags & QK_GEMM_FAST) ? 127 : 255;
    /* A, u8 rows; the last row ends at the fence */
    const size_t a_bytes = m ? (m - 1) * a_stride + k : 0;
    uint8_t *a = malloc(a_bytes + 1);
    for (size_t i = 0; i < a_bytes; i++) a[i] = (uint8_t)rnd((uint32_t)amax + 1);
    if (t->amax < 0)   /* extremes: accumulator range and int16 pair limits */
        for (size_t i = 0; i < a_bytes; i++) a[i] = (uint8_t)amax;
    int8_t *w = malloc(n * k + 1);
    for (size_t i = 0; i < n * k; i++) w[i] = (int8_t)(rnd(256) - 128);
    if (t->amax < 0)
        for (size_t i = 0; i < n * k; i++) w[i] = (i / k) % 2 ? -128 : 127;
    int32_t *zw = malloc((n + 1) * sizeof *zw);
    const int32_t zone = (int32_t)rnd(256) - 128;
    int any_zw = 0;
    for (size_t j = 0; j < n; j++) {
        zw[j] = t->zw_mode == 0 ? 0 : t->zw_mode == 1 ? (zone ? zone : 3) : (int32_t)rnd(256) - 128;
        any_zw |= zw[j] != 0;
    }
    size_t panel_bytes;
    const size_t kpad = (k + KR - 1) / KR * KR;
    unsigned char *packed = malloc(((n + NR - 1) / NR) * (NR * 4 + NR * kpad) + 1);
    pack_panels(NR, KR, n, k, w, zw, packed, &panel_bytes);

    /* what the kernel reads: u8 rows, or uint16 rows padded to whole k-groups */
    size_t ka_stride = a_stride;
    size_t fa_bytes = a_bytes;
    if (a16) {
        ka_stride = kpad * 2 + (t->a_pad % 3) * 2;
        fa_bytes = m ? (m - 1) * ka_stride + kpad * 2 : 0;
    }
    fenced fa = fenced_alloc(fa_bytes);
    if (a16) {
        memset(fa.p, 0, fa_bytes);
        for (size_t i = 0; i < m; i++)
            for (size_t kk = 0; kk < k; kk++) {
                const uint16_t v = a[i * a_stride + kk];
                memcpy(fa.p + i * ka_stride + kk * 2, &v, 2);
            }
    } else {
        memcpy(fa.p, a, fa_bytes);
    }

    /* epilogue parameters, one per column */
    float *p1 = malloc((n + 1) * sizeof(float)), *p2 = malloc((n + 1) * sizeof(float));
    const int32_t ozp = t->kind == QK_GEMM_OUT_QS8 ? (int32_t)rnd(256) - 128 : (int32_t)rnd(256);
    const int32_t dlo = t->kind == QK_GEMM_OUT_QS8 ? -128 : 0, dhi = t->kind == QK_GEMM_OUT_QS8 ? 127 : 255;
    for (size_t j = 0; j < n; j++) {
        if (t->kind == QK_GEMM_OUT_F32) {
            p1[j] = qk_rng_uniform(&rng, 1e-6f, 1e-2f);
            p2[j] = qk_rng_uniform(&rng, -50.0f, 50.0f);
        } else {
            p1[j] = rnd(4) == 0 ? 0.0f : ((float)(int)qk_rng_uniform(&rng, -2000.0f, 2000.0f) + (rnd(2) ? 0.5f : 0.0f));
            p2[j] = rnd(3) == 0 ? 0.5f : 1.0f / (float)(1 + rnd(40000));   /* 0.5: ties */
        }
    }
    if (n > 2 && t->kind == QK_GEMM_OUT_QU8) p1[1] = NAN;   /* NaN -> lower bound */

    const size_t esize = t->kind == QK_GEMM_OUT_QU8 || t->kind == QK_GEMM_OUT_QS8 ? 1 : 4;
    const size_t c_stride = (n + 3) * esize;   /* 3 guard elements per row */
    const size_t c_bytes = m * c_stride + 64;
    unsigned char *c = malloc(c_bytes);
    memset(c, 0xA5, c_bytes);

    int32_t sums[64];
    for (size_t m0 = 0; m0 < m; m0 += MR) {
        const size_t mr = m - m0 < MR ? m - m0 : MR;
        for (size_t i = 0; i < mr; i++) {
            uint32_t s = 0;
            for (size_t kk = 0; kk < k; kk++) s += a[(m0 + i) * a_stride + kk];
            sums[i] = (int32_t)s;
        }
        for (size_t n0 = 0; n0 < n; n0 += NR) {
            const size_t nc = n - n0 < NR ? n - n0 : NR;
            qk_gemm_epilogue e;
            memset(&e, 0, sizeof e);
            e.kind = t->kind;
            e.a_zero_point = t->za;
            e.row_sums = any_zw ? sums : NULL;
            e.w_zero_points = zw + n0;
            e.bias_term = p1 + n0;
            e.multiplier = p2 + n0;
            e.scale = p1 + n0;
            e.bias = p2 + n0;
            e.relu = t->relu;
            e.out_zero_point = ozp;
            e.out_min = t->relu ? ozp : dlo;
            e.out_max = dhi;
            cfg->fn(mr, nc, k, fa.p + m0 * ka_stride, ka_stride, packed + (n0 / NR) * panel_bytes,
                    c + m0 * c_stride + n0 * esize, c_stride, &e);
        }
    }
    size_t bad = 0, guard_bad = 0;
    char first[200] = "";
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            const int32_t raw = ref_raw(a + i * a_stride, w + j * k, k, t->za, zw[j]);
            const unsigned char *cp = c + i * c_stride + j * esize;
            int ok;
            long long got, want;
            switch (t->kind) {
            case QK_GEMM_OUT_QU8: got = *cp; want = ref_q8(raw, p1[j], p2[j], ozp, t->relu ? ozp : 0, 255); break;
            case QK_GEMM_OUT_QS8: got = *(const int8_t *)cp; want = ref_q8(raw, p1[j], p2[j], ozp, t->relu ? ozp : -128, 127); break;
            case QK_GEMM_OUT_F32: { float f; memcpy(&f, cp, 4); got = qk_float_to_bits(f); want = qk_float_to_bits(ref_f32(raw, p1[j], p2[j], t->relu)); break; }
            default: { int32_t v; memcpy(&v, cp, 4); got = v; want = raw; break; }
            }
            ok = got == want;
            if (!ok && !bad++)
                snprintf(first, sizeof first, "first at (%zu,%zu): got %lld want %lld (raw %d)", i, j, got, want, raw);
        }
        for (size_t g = n * esize; g < c_stride; g++) guard_bad += c[i * c_stride + g] != 0xA5;
    }
    for (size_t g = m * c_stride; g < c_bytes; g++) guard_bad += c[g] != 0xA5;
    CHECK(bad == 0 && guard_bad == 0, "%s m=%zu n=%zu k=%zu a_stride=%zu za=%d zw_mode=%d kind=%d relu=%d: %zu "
          "mismatches, %zu guard bytes changed; %s", label, m, n, k, a_stride, t->za, t->zw_mode, t->kind, t->relu, bad,
          guard_bad, first);
    fenced_free(fa);
    free(a); free(w); free(zw); free(packed); free(p1); free(p2); free(c);
}

static void test_ukernel(const qk_gemm_config *cfg) {
    const size_t MR = cfg->mr, NR = cfg->nr, KR = cfg->kr;
    const size_t ms[] = {1, 2, 3, MR - 1, MR, MR + 1, 2 * MR + 1, 37};
    const size_t ns[] = {1, 2, NR - 1, NR, NR + 1, 2 * NR, 3 * NR + 5};
    const size_t ks[] = {0, 1, 2, 3, KR - 1, KR, KR + 1, 2 * KR, 7, 8, 9, 15, 16, 17, 31, 64, 100, 257};
    const int32_t zas[] = {0, 128, 255, 77};
    const int kinds[] = {QK_GEMM_OUT_QU8, QK_GEMM_OUT_QS8, QK_GEMM_OUT_F32, QK_GEMM_OUT_S32};
    ukcase t;
    size_t cases = 0;
    /* shapes: every (m, n) with a few k, and every k with a few (m, n) */
    for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++)
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
            for (size_t kk = 0; kk < 3; kk++) {
                if (ms[mi] == 0 || ns[ni] == 0) continue;
                const size_t kv[] = {1, 2 * KR + 3, 64};
                t = (ukcase){ms[mi], ns[ni], kv[kk], rnd(3) * 5, zas[rnd(4)], (int)rnd(3), kinds[rnd(4)], (int)rnd(2), 0};
                run_ukernel_case(cfg, &t, cfg->name);
                cases++;
            }
    for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++)
        for (int kind = 0; kind < 4; kind++)
            for (int zw_mode = 0; zw_mode < 3; zw_mode++) {
                t = (ukcase){MR + 1, 2 * NR + 1, ks[ki], 1 + rnd(9), zas[(ki + (size_t)kind) % 4], zw_mode, kinds[kind],
                             zw_mode == 1, 0};
                run_ukernel_case(cfg, &t, cfg->name);
                cases++;
            }
    /* output-stage sweep at a full tile */
    for (int kind = 0; kind < 4; kind++)
        for (int relu = 0; relu < 2; relu++)
            for (size_t z = 0; z < 4; z++) {
                t = (ukcase){MR, NR, 24 + z, 0, zas[z], (int)(z % 3), kinds[kind], relu, 0};
                run_ukernel_case(cfg, &t, cfg->name);
                cases++;
            }
    /* accumulator range: long K with extreme values (int16 pair limits; int32 wraparound at K = 140000) */
    const size_t big_k[] = {4096, 4099, 140001};
    for (size_t b = 0; b < 3; b++)
        for (int kind = 0; kind < 4; kind += 3) {
            t = (ukcase){b == 2 ? 2 : MR + 1, NR + 1, big_k[b], 3, b == 1 ? 0 : 255, (int)b % 3, kinds[kind], 0, -1};
            run_ukernel_case(cfg, &t, cfg->name);
            t.amax = 0;
            run_ukernel_case(cfg, &t, cfg->name);
            cases += 2;
        }
    printf("     %zu cases\n", cases);
}

static int part1(const char *only) {
    const uint32_t cpu = cpu_features();
    int tested = 0, skipped = 0;
    static const qk_gemm_config configs[] = {
#define QK__CFG(fn, mr, nr, kr, req, flags) {#fn, fn, mr, nr, kr, req, flags},
        QK_GEMM_VARIANTS(QK__CFG)
#undef QK__CFG
    };
    for (size_t i = 0; i < sizeof configs / sizeof *configs; i++) {
        const qk_gemm_config *c = &configs[i];
        if (only && !strstr(c->name, only)) continue;
        if ((c->required & ~cpu) != 0) {
            printf("skip %-45s (CPU lacks it)\n", c->name);
            skipped++;
            continue;
        }
        const long before = qk_test_failures;
        test_ukernel(c);
        printf("%s %s (%ux%uc%u%s%s)\n", qk_test_failures == before ? "ok  " : "FAIL", c->name, c->mr, c->nr, c->kr,
               (c->flags & QK_GEMM_FAST) ? ", fast: activations <= 127" : "", (c->flags & QK_GEMM_A16) ? ", A16" : "");
        tested++;
    }
    printf("%d GEMM microkernels tested against the formula, %d skipped\n", tested, skipped);
    return tested == 0 && skipped > 0 ? 77 : 0;
}

#if !defined(QK_TEST_EMULATED_AVX512)
/* ------------------------------------------------------------------------------------------- Part 2 */

typedef struct {
    size_t m, n, k, a_stride, y_stride;
    qk_dtype a_dtype;
    int per_channel, with_zw, with_bias, seven_bit;
    int32_t za;
    float a_scale;
    float out_scale;         /* output stage parameters, fixed per case */
    int32_t ozu, ozs;
    int relu;
} apicase;

typedef struct {
    int8_t *w;
    float *ws, *bias;
    int32_t *zw;
    unsigned char *a;   /* quint8 or qint8 bytes */
} apidata;

static apidata make_api_data(const apicase *t) {
    apidata d;
    d.w = malloc(t->n * t->k + 1);
    for (size_t i = 0; i < t->n * t->k; i++) d.w[i] = (int8_t)(rnd(256) - 128);
    const size_t nq = t->per_channel ? t->n : 1;
    d.ws = malloc((nq + 1) * sizeof(float));
    d.zw = malloc((nq + 1) * sizeof(int32_t));
    for (size_t i = 0; i < nq; i++) {
        d.ws[i] = qk_rng_uniform(&rng, 1e-4f, 3e-2f);
        d.zw[i] = t->with_zw ? (int32_t)rnd(256) - 128 : 0;
    }
    d.bias = t->with_bias ? malloc((t->n + 1) * sizeof(float)) : NULL;
    for (size_t i = 0; t->with_bias && i < t->n; i++) d.bias[i] = qk_rng_uniform(&rng, -3.0f, 3.0f);
    const size_t a_bytes = t->m ? (t->m - 1) * t->a_stride + t->k : 0;
    d.a = malloc(a_bytes + 1);
    for (size_t i = 0; i < a_bytes; i++) {
        uint32_t v = rnd(256);
        if (t->seven_bit && t->a_dtype == QK_DTYPE_QUINT8) v &= 127;
        d.a[i] = (unsigned char)v;
    }
    return d;
}

static void free_api_data(apidata *d) { free(d->w); free(d->ws); free(d->zw); free(d->bias); free(d->a); }

/* raw[m][n] from the formula; activations in their own dtype */
static int32_t api_raw(const apicase *t, const apidata *d, size_t i, size_t j) {
    const int32_t zw = d->zw[t->per_channel ? j : 0];
    int64_t s = 0;
    for (size_t kk = 0; kk < t->k; kk++) {
        const unsigned char b = d->a[i * t->a_stride + kk];
        const int32_t av = t->a_dtype == QK_DTYPE_QUINT8 ? (int32_t)b : (int32_t)(int8_t)b;
        s += (int64_t)(av - t->za) * (int64_t)((int32_t)d->w[j * t->k + kk] - zw);
    }
    return (int32_t)(uint32_t)(uint64_t)s;
}

/* Runs every output kind through the API and compares with PyTorch's formula. Returns the outputs (for the
 * thread-count comparison) when keep != NULL. */
static void api_check(const qk_qs8_gemm_weights *h, const apicase *t, const apidata *d, const char *label,
                      unsigned char **keep) {
    const size_t m = t->m, n = t->n, ys = t->y_stride;
    const uint32_t seven = t->seven_bit ? QK_GEMM_ACTIVATIONS_7BIT : 0;
    const size_t q8_bytes = m * ys + 16, f_bytes = m * ys * 4 + 16;
    unsigned char *yu = malloc(q8_bytes), *yq = malloc(q8_bytes);
    float *yf = malloc(f_bytes);
    int32_t *yi = malloc(f_bytes);
    memset(yu, 0xA5, q8_bytes); memset(yq, 0xA5, q8_bytes); memset(yf, 0xA5, f_bytes); memset(yi, 0xA5, f_bytes);
    const float out_scale = t->out_scale;
    const int32_t ozu = t->ozu, ozs = t->ozs;
    const int relu = t->relu;
    qk_status s1 = qk_qs8_gemm_q8(h, m, t->a_dtype, d->a, t->a_stride, t->a_scale, t->za, QK_DTYPE_QUINT8, yu, ys,
                                  out_scale, ozu, (relu ? QK_GEMM_RELU : 0) | seven);
    qk_status s2 = qk_qs8_gemm_q8(h, m, t->a_dtype, d->a, t->a_stride, t->a_scale, t->za, QK_DTYPE_QINT8, yq, ys,
                                  out_scale, ozs, (relu ? 0 : QK_GEMM_RELU) | seven);
    qk_status s3 = qk_qs8_gemm_f32(h, m, t->a_dtype, d->a, t->a_stride, t->a_scale, t->za, yf, ys,
                                   (relu ? QK_GEMM_RELU : 0) | seven);
    qk_status s4 = qk_qs8_gemm_s32(h, m, t->a_dtype, d->a, t->a_stride, t->za, yi, ys, 0);   /* 7-bit found by scanning */
    CHECK(s1 == QK_OK && s2 == QK_OK && s3 == QK_OK && s4 == QK_OK, "%s: status %d %d %d %d: %s", label, s1, s2, s3,
          s4, qk_last_error_message());
    size_t bad = 0, guard = 0;
    char first[200] = "";
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            const int32_t raw = api_raw(t, d, i, j);
            const float ws = d->ws[t->per_channel ? j : 0];
            const float aws = t->a_scale * ws;
            const float mult = aws / out_scale;
            float bt = 0.0f;
            if (d->bias) bt = t->per_channel ? d->bias[j] / aws : d->bias[j] * (float)(1.0 / (double)aws);
            const int32_t wu = ref_q8(raw, bt, mult, ozu, relu ? ozu : 0, 255);
            const int32_t wq = ref_q8(raw, bt, mult, ozs, relu ? -128 : ozs, 127);
            const float wf = ref_f32(raw, aws, d->bias ? d->bias[j] : 0.0f, relu);
            const int ok = yu[i * ys + j] == wu && (int8_t)yq[i * ys + j] == wq &&
                           qk_same_float(yf[i * ys + j], wf) && yi[i * ys + j] == raw;
            if (!ok && !bad++)
                snprintf(first, sizeof first, "first at (%zu,%zu): u8 %d/%d s8 %d/%d f32 %g/%g s32 %d/%d", i, j,
                         yu[i * ys + j], wu, (int8_t)yq[i * ys + j], wq, (double)yf[i * ys + j], (double)wf,
                         yi[i * ys + j], raw);
        }
        for (size_t j = n; j < ys && i + 1 < m; j++) guard += yu[i * ys + j] != 0xA5;
    }
    for (size_t g = m ? (m - 1) * ys + n : 0; g < q8_bytes; g++) guard += yu[g] != 0xA5;
    CHECK(bad == 0 && guard == 0, "%s m=%zu n=%zu k=%zu a_dtype=%d pc=%d zw=%d bias=%d 7bit=%d za=%d: %zu mismatches, "
          "%zu guard bytes; %s", label, m, n, t->k, (int)t->a_dtype, t->per_channel, t->with_zw, t->with_bias,
          t->seven_bit, t->za, bad, guard, first);
    if (keep) {
        unsigned char *all = malloc(2 * q8_bytes + 2 * f_bytes);
        memcpy(all, yu, q8_bytes); memcpy(all + q8_bytes, yq, q8_bytes);
        memcpy(all + 2 * q8_bytes, yf, f_bytes); memcpy(all + 2 * q8_bytes + f_bytes, yi, f_bytes);
        *keep = all;
    }
    free(yu); free(yq); free(yf); free(yi);
}

static apicase random_api_case(size_t m, size_t n, size_t k) {
    apicase t;
    t.m = m; t.n = n; t.k = k;
    t.a_stride = k + (rnd(2) ? rnd(7) : 0);
    t.y_stride = n + (rnd(2) ? rnd(5) : 0);
    t.a_dtype = rnd(3) == 0 ? QK_DTYPE_QINT8 : QK_DTYPE_QUINT8;
    t.per_channel = (int)rnd(2);
    t.with_zw = (int)rnd(2);
    t.with_bias = rnd(4) != 0;
    t.seven_bit = rnd(3) == 0;
    t.za = t.a_dtype == QK_DTYPE_QUINT8 ? (int32_t)(rnd(2) ? rnd(256) : 128 * rnd(2)) : (int32_t)rnd(256) - 128;
    t.a_scale = qk_rng_uniform(&rng, 0.002f, 0.05f);
    t.out_scale = 0.05f + (float)rnd(100) * 0.01f;
    t.ozu = (int32_t)rnd(256);
    t.ozs = (int32_t)rnd(256) - 128;
    t.relu = (int)rnd(2);
    return t;
}

static void api_case(const apicase *t, const char *label) {
    apidata d = make_api_data(t);
    qk_qs8_gemm_weights *h = NULL;
    qk_status s = qk_qs8_gemm_weights_create(t->n, t->k, d.w, t->per_channel ? QK_QSCHEME_PER_CHANNEL :
                                             QK_QSCHEME_PER_TENSOR, d.ws, t->with_zw ? d.zw : NULL, d.bias, &h);
    CHECK(s == QK_OK && h, "%s: create: %s", label, qk_last_error_message());
    if (h) {
        CHECK(qk_qs8_gemm_weights_n(h) == t->n && qk_qs8_gemm_weights_k(h) == t->k, "%s: n/k query", label);
        api_check(h, t, &d, label, NULL);
    }
    qk_qs8_gemm_weights_destroy(h);
    free_api_data(&d);
}

/* Every variant pinned through the driver (A16 packing, qint8 conversion, row sums, tiling). */
static void api_pinned_variants(void) {
    const uint32_t cpu = qk_cpu_features();
    for (size_t v = 0; v < qk_gemm_config_count; v++) {
        const qk_gemm_config *c = &qk_gemm_configs[v];
        if ((c->required & ~cpu) != 0) continue;
        const long before = qk_test_failures;
        for (int r = 0; r < 24; r++) {
            const size_t m = r < 8 ? 1 + (size_t)r : 1 + rnd(150), n = 1 + rnd(r < 12 ? 40 : 300),
                         k = r % 5 == 0 ? 1 + rnd(8) : 1 + rnd(r < 12 ? 70 : 700);
            apicase t = random_api_case(m, n, k);
            if (c->flags & QK_GEMM_FAST) { t.a_dtype = QK_DTYPE_QUINT8; t.seven_bit = 1; t.za = (int32_t)rnd(256); }
            apidata d = make_api_data(&t);
            qk_qs8_gemm_weights *h = NULL;
            qk_status s = qk_gemm_weights_create_with(c, (c->flags & QK_GEMM_FAST) ? c : NULL, 1, t.n, t.k, d.w,
                                                      t.per_channel ? QK_QSCHEME_PER_CHANNEL : QK_QSCHEME_PER_TENSOR,
                                                      d.ws, t.with_zw ? d.zw : NULL, d.bias, &h);
            CHECK(s == QK_OK, "pinned create %s", c->name);
            if (h) {
                CHECK(!strcmp(qk_qs8_gemm_weights_kernel(h, t.seven_bit), c->name), "%s pinned reports %s", c->name,
                      qk_qs8_gemm_weights_kernel(h, t.seven_bit));
                api_check(h, &t, &d, c->name, NULL);
            }
            qk_qs8_gemm_weights_destroy(h);
            free_api_data(&d);
        }
        printf("%s driver + %s (pinned)\n", qk_test_failures == before ? "ok  " : "FAIL", c->name);
    }
}

/* Each ISA level, thread counts 1, 2, 3: identical bytes, equal to the formula. */
static void api_levels_and_threads(void) {
    static const char *levels[] = {"scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neondot", "neoni8mm"};
    const size_t shapes[][3] = {{1, 4096, 512}, {67, 300, 1000}, {130, 77, 64}, {5, 1000, 33}, {256, 256, 256}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++)
        for (int variant = 0; variant < 3; variant++) {
            apicase t = random_api_case(shapes[sh][0], shapes[sh][1], shapes[sh][2]);
            t.a_dtype = variant == 2 ? QK_DTYPE_QINT8 : QK_DTYPE_QUINT8;
            t.seven_bit = variant == 1;
            t.za = t.a_dtype == QK_DTYPE_QUINT8 ? (variant == 1 ? 64 : 128) : -3;
            apidata d = make_api_data(&t);
            unsigned char *ref = NULL;
            const size_t bytes = 2 * (t.m * t.y_stride + 16) + 2 * (t.m * t.y_stride * 4 + 16);
            for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
                if (!qk_isa_supported(levels[l])) continue;
                qk_set_isa(levels[l]);
                qk_qs8_gemm_weights *h = NULL;
                qk_qs8_gemm_weights_create(t.n, t.k, d.w, t.per_channel ? QK_QSCHEME_PER_CHANNEL :
                                           QK_QSCHEME_PER_TENSOR, d.ws, t.with_zw ? d.zw : NULL, d.bias, &h);
                for (int threads = 1; threads <= 3 && h; threads++) {
                    qk_set_num_threads(threads);
                    char label[96];
                    snprintf(label, sizeof label, "%s (%s), %d threads", levels[l],
                             qk_qs8_gemm_weights_kernel(h, t.seven_bit), threads);
                    unsigned char *out = NULL;
                    api_check(h, &t, &d, label, &out);
                    if (!ref) ref = out;
                    else {
                        CHECK(memcmp(ref, out, bytes) == 0, "%s: outputs differ from the first run", label);
                        free(out);
                    }
                }
                if (sh == 0 && variant == 0)
                    printf("level %-8s exact %s, 7-bit %s\n", levels[l], qk_qs8_gemm_weights_kernel(h, 0),
                           qk_qs8_gemm_weights_kernel(h, 1));
                qk_qs8_gemm_weights_destroy(h);
            }
            qk_set_num_threads(0);
            qk_set_isa(NULL);
            free(ref);
            free_api_data(&d);
        }
}

#define EXPECT_FAIL(call, status)                                                                             \
    do {                                                                                                      \
        const qk_status s_ = (call);                                                                          \
        CHECK(s_ == (status), "%s returned %d, want %d", #call, (int)s_, (int)(status));                      \
        CHECK(s_ == QK_OK || qk_last_error_message()[0] != 0, "%s: no error message", #call);                  \
    } while (0)

static void api_validation(void) {
    int8_t w[12] = {1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12};
    float ws = 0.1f, bad_scales[3] = {0.1f, -1.0f, 0.2f};
    int32_t zbad = 128;
    qk_qs8_gemm_weights *h = NULL;
    EXPECT_FAIL(qk_qs8_gemm_weights_create(3, 4, w, QK_QSCHEME_PER_TENSOR, &ws, NULL, NULL, NULL),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_weights_create(3, 4, NULL, QK_QSCHEME_PER_TENSOR, &ws, NULL, NULL, &h),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_weights_create(3, 4, w, QK_QSCHEME_PER_TENSOR, NULL, NULL, NULL, &h),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_weights_create(3, 4, w, QK_QSCHEME_PER_CHANNEL, bad_scales, NULL, NULL, &h),
                QK_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(qk_last_error_message(), "scales[1]") != NULL, "message: %s", qk_last_error_message());
    EXPECT_FAIL(qk_qs8_gemm_weights_create(3, 4, w, QK_QSCHEME_PER_TENSOR, &ws, &zbad, NULL, &h),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_weights_create(3, 4, w, (qk_qscheme)7, &ws, NULL, NULL, &h), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_weights_create(SIZE_MAX / 2, 4, w, QK_QSCHEME_PER_TENSOR, &ws, NULL, NULL, &h),
                QK_ERROR_OVERFLOW);
    CHECK(h == NULL, "handle stays NULL on failure");
    CHECK(qk_qs8_gemm_weights_create(3, 4, w, QK_QSCHEME_PER_TENSOR, &ws, NULL, NULL, &h) == QK_OK, "create");
    CHECK(qk_qs8_gemm_weights_packed_bytes(h) > 0 && qk_qs8_gemm_weights_n(NULL) == 0, "queries");
    CHECK(!strcmp(qk_qs8_gemm_weights_kernel(NULL, 0), "none"), "kernel of NULL");
    uint8_t a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t y[8];
    float yf[8];
    int32_t yi[8];
    EXPECT_FAIL(qk_qs8_gemm_q8(NULL, 2, QK_DTYPE_QUINT8, a, 4, 0.1f, 0, QK_DTYPE_QUINT8, y, 3, 1.0f, 0, 0),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_q8(h, 2, QK_DTYPE_QUINT8, a, 3, 0.1f, 0, QK_DTYPE_QUINT8, y, 3, 1.0f, 0, 0),
                QK_ERROR_INVALID_ARGUMENT);   /* a_stride < K */
    EXPECT_FAIL(qk_qs8_gemm_q8(h, 2, QK_DTYPE_QUINT8, a, 4, 0.1f, 0, QK_DTYPE_QUINT8, y, 2, 1.0f, 0, 0),
                QK_ERROR_INVALID_ARGUMENT);   /* y_stride < N */
    EXPECT_FAIL(qk_qs8_gemm_q8(h, 2, QK_DTYPE_QUINT8, a, 4, 0.0f, 0, QK_DTYPE_QUINT8, y, 3, 1.0f, 0, 0),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_q8(h, 2, QK_DTYPE_QUINT8, a, 4, 0.1f, 0, QK_DTYPE_QUINT8, y, 3, INFINITY, 0, 0),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_q8(h, 2, QK_DTYPE_QUINT8, a, 4, 0.1f, 256, QK_DTYPE_QUINT8, y, 3, 1.0f, 0, 0),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_q8(h, 2, QK_DTYPE_QINT8, a, 4, 0.1f, 128, QK_DTYPE_QUINT8, y, 3, 1.0f, 0, 0),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_q8(h, 2, QK_DTYPE_QUINT8, a, 4, 0.1f, 0, QK_DTYPE_QINT8, y, 3, 1.0f, 128, 0),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_q8(h, 2, QK_DTYPE_QUINT8, a, 4, 0.1f, 0, QK_DTYPE_QINT32, y, 3, 1.0f, 0, 0),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_q8(h, 2, QK_DTYPE_QINT32, a, 4, 0.1f, 0, QK_DTYPE_QUINT8, y, 3, 1.0f, 0, 0),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_q8(h, 2, QK_DTYPE_QUINT8, NULL, 4, 0.1f, 0, QK_DTYPE_QUINT8, y, 3, 1.0f, 0, 0),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_q8(h, 2, QK_DTYPE_QUINT8, a, 4, 0.1f, 0, QK_DTYPE_QUINT8, NULL, 3, 1.0f, 0, 0),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_q8(h, 2, QK_DTYPE_QUINT8, a, 4, 0.1f, 0, QK_DTYPE_QUINT8, y, 3, 1.0f, 0, 0x100),
                QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_q8(h, SIZE_MAX / 2, QK_DTYPE_QUINT8, a, 4, 0.1f, 0, QK_DTYPE_QUINT8, y, 3, 1.0f, 0, 0),
                QK_ERROR_OVERFLOW);
    EXPECT_FAIL(qk_qs8_gemm_f32(h, 2, QK_DTYPE_QUINT8, a, 4, NAN, 0, yf, 3, 0), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_qs8_gemm_s32(h, 2, QK_DTYPE_QUINT8, a, 4, 0, yi, 3, QK_GEMM_RELU), QK_ERROR_INVALID_ARGUMENT);
    CHECK(qk_qs8_gemm_q8(h, 0, QK_DTYPE_QUINT8, NULL, 4, 0.1f, 0, QK_DTYPE_QUINT8, NULL, 3, 1.0f, 0, 0) == QK_OK,
          "m = 0 is a no-op");
    CHECK(qk_qs8_gemm_s32(h, 2, QK_DTYPE_QUINT8, a, 4, 0, yi, 3, 0) == QK_OK, "s32");
    qk_qs8_gemm_weights_destroy(h);
    qk_qs8_gemm_weights_destroy(NULL);
    /* K = 0 and N = 0 */
    CHECK(qk_qs8_gemm_weights_create(3, 0, NULL, QK_QSCHEME_PER_TENSOR, &ws, NULL, NULL, &h) == QK_OK, "K = 0");
    CHECK(qk_qs8_gemm_s32(h, 2, QK_DTYPE_QUINT8, NULL, 0, 0, yi, 3, 0) == QK_OK && yi[0] == 0 && yi[5] == 0,
          "K = 0 gives zeros");
    qk_qs8_gemm_weights_destroy(h);
    CHECK(qk_qs8_gemm_weights_create(0, 5, NULL, QK_QSCHEME_PER_TENSOR, &ws, NULL, NULL, &h) == QK_OK, "N = 0");
    CHECK(qk_qs8_gemm_f32(h, 2, QK_DTYPE_QUINT8, a, 5, 0.1f, 0, NULL, 0, 0) == QK_OK, "N = 0 run");
    qk_qs8_gemm_weights_destroy(h);
}

static void part2(void) {
    CHECK(qk_runtime_init() == QK_OK, "init: %s", qk_last_error_message());
    const long before = qk_test_failures;
    for (int r = 0; r < 60; r++) {
        const size_t m = r < 20 ? 1 + rnd(20) : 1 + rnd(200), n = 1 + rnd(r < 30 ? 50 : 400),
                     k = r % 7 == 0 ? 1 + rnd(5) : 1 + rnd(r < 30 ? 100 : 1200);
        apicase t = random_api_case(m, n, k);
        api_case(&t, "api");
    }
    {   /* large K: accumulator range through the API */
        apicase t = random_api_case(3, 17, 9000);
        api_case(&t, "api K=9000");
    }
    printf("%s random API cases (auto ISA %s)\n", qk_test_failures == before ? "ok  " : "FAIL", qk_isa_name());
    api_pinned_variants();
    api_levels_and_threads();
    api_validation();
}
#endif

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    const int r = part1(only);
#if !defined(QK_TEST_EMULATED_AVX512)
    if (!only) part2();
#endif
    printf("gemm: %ld checks, %ld failures\n", qk_test_checks, qk_test_failures);
    if (qk_test_failures) return 1;
    return r;
}
