/*
 * Half-precision (fp16 / bf16 weight) GEMM tests. Part 1 drives every microkernel of QK_HALF_GEMM_VARIANTS directly
 * (test-side packing, per the layout of qk_kernels.h) over rows, columns, K, strides, alignment, K-block
 * accumulation, bias and ReLU, against a double reference of the rounded values with a rounding-error bound; A rows
 * end at a PROT_NONE page and outputs carry guards, so over-reads fault and over-writes are seen; NaN and infinity
 * propagate. Part 2 checks the public API: packing (fp16 saturation and its count, subnormals, bf16 rounding), the
 * driver's K blocking and tiling, every ISA level, 1/2/3 threads bit-identical, and validation.
 *
 * Built twice on x86: natively, and with QK_TEST_EMULATED_AVX512 against the AVX-512 files compiled through SIMDe
 * (Part 1 only; QK_HALF_GEMM_VARIANTS_AVX512 plus the scalar references).
 */
#define _GNU_SOURCE
#include "qk_test.h"

#include "qk_kernels.h"
#include "qk_scalar_math.h"

_Atomic long qk_test_failures = 0;
_Atomic long qk_test_checks = 0;

#if defined(QK_TEST_EMULATED_AVX512)
#undef QK_HALF_GEMM_VARIANTS
#define QK_HALF_GEMM_VARIANTS(X) QK_HALF_GEMM_VARIANTS_AVX512(X) QK_HALF_GEMM_VARIANTS_SCALAR(X)
static uint32_t cpu_features(void) { return ~0u; }
#else
#include "qk_internal.h"
#include "quantkit.h"
static uint32_t cpu_features(void) { return qk_cpu_features(); }
#endif

static qk_rng rng = {0x9E3779B97F4A7C15ull};
static uint32_t rnd(uint32_t n) { return (uint32_t)(qk_rng_next(&rng) % n); }
static float uni(float lo, float hi) { return qk_rng_uniform(&rng, lo, hi); }

static float half_value(uint32_t type, uint16_t h) {
    return type == QK_HALF_FP16 ? qk_f16_bits_to_f32(h) : qk_bf16_bits_to_f32(h);
}
static uint16_t to_half(uint32_t type, float f) {
    return type == QK_HALF_FP16 ? qk_f32_to_f16_bits(f) : qk_f32_to_bf16_bits(f);
}

/* Is y within the rounding bound of the double reference? (K + slack) ulp-ish units of sum |terms|. */
static int close_enough(float y, double ref, double magnitude, size_t k, int fp16_arith) {
    if (isnan(ref)) return isnan(y);
    if (isinf(ref)) return y == (float)ref;
    const double unit = fp16_arith ? ldexp(1.0, -10) : ldexp(1.0, -23);
    /* fp16 arithmetic also loses up to half an fp16 subnormal step (2^-25) per operation */
    const double tol = (double)(k + 8) * (unit * magnitude + (fp16_arith ? ldexp(1.0, -24) : 0.0)) + 1e-30;
    return fabs((double)y - ref) <= tol;
}

/* ------------------------------------------------------------------------------------------- Part 1 */

/* Test-side packing (independent of src/operators/half-gemm.c): w [n, k] half bits -> panels of NR x KR groups. */
static uint16_t *pack(size_t nr, size_t kr, size_t n, size_t k, const uint16_t *w, size_t *panel_elems) {
    const size_t kpad = (k + kr - 1) / kr * kr, panels = (n + nr - 1) / nr;
    *panel_elems = nr * kpad;
    uint16_t *out = calloc(panels * *panel_elems + 1, sizeof(uint16_t));
    for (size_t col = 0; col < n; col++)
        for (size_t kk = 0; kk < k; kk++)
            out[(col / nr) * *panel_elems + (kk / kr) * nr * kr + (col % nr) * kr + kk % kr] = w[col * k + kk];
    return out;
}

typedef struct {
    size_t mr, nc, kc;
    size_t a_pad;       /* extra elements per A row */
    size_t a_shift;     /* A base misaligned by this many elements */
    size_t c_pad;       /* extra floats per C row */
    int accumulate, bias, relu;
    int special;        /* 0 random, 1 NaN weight, 2 +inf weight with positive activations, 3 NaN activation */
} ukcase;

#define GUARD 1234.5f

static void run_case(const qk_half_gemm_config *cfg, const ukcase *t, const char *label) {
    const uint32_t type = cfg->type;
    const int a_half = (cfg->flags & QK_HALF_A_HALF) != 0, arith = (cfg->flags & QK_HALF_FP16_ARITH) != 0;
    const size_t mr = t->mr, nc = t->nc, kc = t->kc, NR = cfg->nr, KR = cfg->kr;
    const size_t kcp = (kc + KR - 1) / KR * KR;
    const size_t a_elems = a_half ? kcp : kc, esz = a_half ? 2 : 4;
    const size_t a_row = a_elems + t->a_pad;                 /* elements */
    const size_t a_bytes = ((mr - 1) * a_row + a_elems + t->a_shift) * esz;
    fenced fa = fenced_alloc(a_bytes);
    unsigned char *abase = fa.p + t->a_shift * esz;
    /* values: activations in [-1, 1] (fp16-arith: small so that fp16 sums stay far from overflow) */
    float *ar = malloc(mr * kc * sizeof(float));      /* the activation values the kernel sees (rounded if a_half) */
    uint16_t *w = malloc(NR * kc * sizeof(uint16_t));
    float *wr = malloc(NR * kc * sizeof(float));
    for (size_t i = 0; i < mr; i++)
        for (size_t kk = 0; kk < a_elems; kk++) {
            const int pad = kk >= kc;
            float v = pad ? 0.0f : uni(-1.0f, 1.0f);
            if (t->special == 2 && !pad) v = fabsf(v) + 0.25f;
            if (t->special == 3 && i == mr - 1 && kk == kc / 2) v = NAN;
            if (a_half) {
                const uint16_t h = to_half(type, v);
                memcpy(abase + (i * a_row + kk) * 2, &h, 2);
                if (!pad) ar[i * kc + kk] = half_value(type, h);
            } else {
                memcpy(abase + (i * a_row + kk) * 4, &v, 4);
                if (!pad) ar[i * kc + kk] = v;
            }
        }
    for (size_t j = 0; j < NR; j++)
        for (size_t kk = 0; kk < kc; kk++) {
            uint16_t h = to_half(type, uni(-2.0f, 2.0f));
            if (j >= nc) h = to_half(type, 1e4f);                       /* columns past nc: must not leak */
            if (t->special == 1 && j == nc - 1 && kk == kc - 1) h = type == QK_HALF_FP16 ? 0x7E00 : 0x7FC0;
            if (t->special == 2 && j == 0 && kk == 0) h = type == QK_HALF_FP16 ? 0x7C00 : 0x7F80;
            w[j * kc + kk] = h;
            wr[j * kc + kk] = half_value(type, h);
        }
    size_t panel_elems;
    uint16_t *packed = pack(NR, KR, NR, kc, w, &panel_elems);
    float bias[64];
    for (size_t j = 0; j < NR; j++) bias[j] = uni(-3.0f, 3.0f);
    const size_t c_row = nc + t->c_pad;
    float *cbuf = malloc((mr * c_row + 2) * sizeof(float));
    float *c = cbuf + 1;
    float *c0 = malloc(mr * nc * sizeof(float));
    for (size_t i = 0; i < mr * c_row + 2; i++) cbuf[i] = GUARD;
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nc; j++) c[i * c_row + j] = c0[i * nc + j] = t->accumulate ? uni(-2.0f, 2.0f) : -7.0f;

    const uint32_t flags = (t->accumulate ? QK_HALF_UK_ACCUMULATE : 0) | (t->relu ? QK_HALF_UK_RELU : 0);
    cfg->fn(mr, nc, kc, abase, a_row * esz, packed, c, c_row * sizeof(float), t->bias ? bias : NULL, flags);

    long bad = 0;
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < c_row; j++) {
            const float y = c[i * c_row + j];
            if (j >= nc) {
                if (!qk_same_float(y, GUARD) && bad++ < 3)
                    CHECK(0, "%s %s: wrote C[%zu][%zu] past nc = %zu", cfg->name, label, i, j, nc);
                continue;
            }
            double ref = 0, mag = 0;
            for (size_t kk = 0; kk < kc; kk++) {
                const double p = (double)ar[i * kc + kk] * (double)wr[j * kc + kk];
                ref += p;
                mag += fabs(p);
            }
            if (t->accumulate) { ref += c0[i * nc + j]; mag += fabs(c0[i * nc + j]); }
            if (t->bias) { ref += bias[j]; mag += fabs(bias[j]); }
            if (t->relu && ref < 0) ref = 0;   /* NaN stays NaN */
            if (!close_enough(y, ref, mag, kc, arith) && bad++ < 3)
                CHECK(0, "%s %s: C[%zu][%zu] = %.9g, reference %.9g (sum |terms| %.3g)", cfg->name, label, i, j,
                      (double)y, ref, mag);
        }
    if (!qk_same_float(cbuf[0], GUARD) || !qk_same_float(cbuf[mr * c_row + 1], GUARD))
        CHECK(0, "%s %s: wrote outside C", cfg->name, label);
    CHECK(bad == 0, "%s %s: %ld bad outputs", cfg->name, label, bad);
    fenced_free(fa);
    free(ar); free(w); free(wr); free(packed); free(cbuf); free(c0);
}

static void test_ukernel(const qk_half_gemm_config *cfg) {
    const size_t MR = cfg->mr, NR = cfg->nr;
    static const size_t ks[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 127, 300, 1000};
    char label[128];
    size_t cases = 0;
    for (size_t mr = 1; mr <= MR; mr++)
        for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
            const size_t ncs[] = {NR, 1, NR - 1 ? NR - 1 : 1, NR / 2 + 1, 1 + rnd((uint32_t)NR)};
            for (size_t ni = 0; ni < 5; ni++) {
                ukcase t = {mr, ncs[ni], ks[ki], rnd(3), rnd(2), rnd(3), (int)rnd(2), (int)rnd(2), (int)rnd(2), 0};
                snprintf(label, sizeof label, "mr=%zu nc=%zu kc=%zu acc=%d bias=%d relu=%d", t.mr, t.nc, t.kc,
                         t.accumulate, t.bias, t.relu);
                run_case(cfg, &t, label);
                cases++;
            }
        }
    /* long K (fp32 accumulation over thousands of terms), and every special value pattern */
    for (size_t mr = 1; mr <= MR; mr += MR - 1 ? MR - 1 : 1) {
        ukcase t = {mr, NR, 4097, 1, 1, 2, 1, 1, 0, 0};
        run_case(cfg, &t, "long K");
        cases++;
        for (int sp = 1; sp <= 3; sp++)
            for (int relu = 0; relu <= 1; relu++) {
                ukcase u = {mr, NR - (sp == 1), 37, 0, 0, 0, 0, 1, relu, sp};
                snprintf(label, sizeof label, "special=%d relu=%d mr=%zu", sp, relu, mr);
                run_case(cfg, &u, label);
                cases++;
            }
    }
    printf("     %zu cases\n", cases);
}

static int part1(const char *only) {
    const uint32_t cpu = cpu_features();
    int tested = 0, skipped = 0;
    static const qk_half_gemm_config configs[] = {
#define QK__CFG(fn, type, mr, nr, kr, req, flags) {#fn, fn, type, mr, nr, kr, req, flags},
        QK_HALF_GEMM_VARIANTS(QK__CFG)
#undef QK__CFG
    };
    for (size_t i = 0; i < sizeof configs / sizeof *configs; i++) {
        const qk_half_gemm_config *c = &configs[i];
        if (only && !strstr(c->name, only)) continue;
        if ((c->required & ~cpu) != 0) {
            printf("skip %-45s (CPU lacks it)\n", c->name);
            skipped++;
            continue;
        }
        const long before = qk_test_failures;
        test_ukernel(c);
        printf("%s %s (%ux%uc%u%s%s)\n", qk_test_failures == before ? "ok  " : "FAIL", c->name, c->mr, c->nr, c->kr,
               (c->flags & QK_HALF_A_HALF) ? ", half A" : "", (c->flags & QK_HALF_FP16_ARITH) ? ", fp16 arithmetic" : "");
        tested++;
    }
    printf("%d half-precision GEMM microkernels tested against the reference, %d skipped\n", tested, skipped);
    return tested == 0 && skipped > 0 ? 77 : 0;
}

#if !defined(QK_TEST_EMULATED_AVX512)
/* ------------------------------------------------------------------------------------------- Part 2 */

typedef struct {
    size_t m, n, k, x_pad, y_pad;
    int bias, relu;
} apicase;

/* Weights as the API rounds them, for the reference. */
static void round_weights(qk_half_type type, size_t count, const float *w, float *wr) {
    uint16_t *h = malloc((count ? count : 1) * sizeof(uint16_t));
    if (type == QK_HALF_FP16) {
        size_t sat;
        CHECK(qk_f32_to_f16_saturate(count, w, h, &sat) == QK_OK, "saturate");
        CHECK(qk_f16_to_f32(count, h, wr) == QK_OK, "widen");
    } else {
        CHECK(qk_f32_to_bf16(count, w, h) == QK_OK, "to bf16");
        CHECK(qk_bf16_to_f32(count, h, wr) == QK_OK, "from bf16");
    }
    free(h);
}

static float *run_api(const qk_half_gemm_weights *h, const apicase *t, const float *x, uint32_t flags) {
    const size_t ys = t->n + t->y_pad;
    float *y = malloc((t->m * ys + 1) * sizeof(float));
    for (size_t i = 0; i < t->m * ys + 1; i++) y[i] = GUARD;
    const qk_status s = qk_half_gemm_f32(h, t->m, x, t->k + t->x_pad, y, ys, flags);
    CHECK(s == QK_OK, "qk_half_gemm_f32: %s", qk_last_error_message());
    for (size_t i = 0; i < t->m; i++)
        for (size_t j = t->n; j < ys; j++) CHECK(qk_same_float(y[i * ys + j], GUARD), "wrote past N");
    CHECK(qk_same_float(y[t->m * ys], GUARD), "wrote past the end");
    return y;
}

static void check_api(qk_half_type type, const apicase *t, const float *x, const float *wr, const float *bias,
                      const float *y, const char *label, int arith) {
    const size_t xs = t->k + t->x_pad, ys = t->n + t->y_pad;
    long bad = 0;
    for (size_t i = 0; i < t->m; i++)
        for (size_t j = 0; j < t->n; j++) {
            double ref = 0, mag = 0;
            for (size_t kk = 0; kk < t->k; kk++) {
                float a = x[i * xs + kk];
                if (type == QK_HALF_BF16) a = qk_bf16_bits_to_f32(qk_f32_to_bf16_bits(a));
                if (arith) a = qk_f16_bits_to_f32(qk_f32_to_f16_bits(a));
                const double p = (double)a * wr[j * t->k + kk];
                ref += p;
                mag += fabs(p);
            }
            if (bias) { ref += bias[j]; mag += fabs(bias[j]); }
            if (t->relu && ref < 0) ref = 0;
            if (!close_enough(y[i * ys + j], ref, mag, t->k, arith) && bad++ < 3)
                CHECK(0, "%s: y[%zu][%zu] = %.9g, reference %.9g", label, i, j, (double)y[i * ys + j], ref);
        }
    CHECK(bad == 0, "%s: %ld bad outputs", label, bad);
}

static void api_case(qk_half_type type, const apicase *t) {
    const size_t xs = t->k + t->x_pad;
    float *x = malloc((t->m * xs + 1) * sizeof(float));
    float *w = malloc((t->n * t->k + 1) * sizeof(float)), *wr = malloc((t->n * t->k + 1) * sizeof(float));
    float *bias = malloc((t->n + 1) * sizeof(float));
    for (size_t i = 0; i < t->m * xs; i++) x[i] = uni(-1.0f, 1.0f);
    for (size_t i = 0; i < t->n * t->k; i++) w[i] = uni(-1.0f, 1.0f);
    for (size_t j = 0; j < t->n; j++) bias[j] = uni(-1.0f, 1.0f);
    round_weights(type, t->n * t->k, w, wr);
    char label[160];
    snprintf(label, sizeof label, "%s m=%zu n=%zu k=%zu bias=%d relu=%d", type ? "bf16" : "fp16", t->m, t->n, t->k,
             t->bias, t->relu);
    qk_half_gemm_weights *h = NULL;
    CHECK(qk_half_gemm_weights_create(type, t->n, t->k, w, t->bias ? bias : NULL, NULL, &h) == QK_OK, "%s: create: %s",
          label, qk_last_error_message());
    if (!h) goto done;
    const uint32_t flags = t->relu ? QK_GEMM_RELU : 0;
    float *y1 = NULL;
    for (int threads = 1; threads <= 3; threads++) {
        qk_set_num_threads(threads);
        float *y = run_api(h, t, x, flags);
        if (threads == 1) {
            check_api(type, t, x, wr, t->bias ? bias : NULL, y, label, 0);
            y1 = y;
            continue;
        }
        int same = 1;
        for (size_t i = 0; i < t->m * (t->n + t->y_pad); i++) same &= qk_same_float(y[i], y1[i]);
        CHECK(same, "%s: %d threads differ from 1 thread", label, threads);
        free(y);
    }
    qk_set_num_threads(0);
    /* the same weights given as half bits: identical handle and results */
    uint16_t *bits = malloc((t->n * t->k + 1) * sizeof(uint16_t));
    CHECK(qk_half_gemm_weights_copy_half(h, bits) == QK_OK, "copy_half");
    for (size_t i = 0; i < t->n * t->k; i++) {
        const float v = half_value(type, bits[i]);
        if (!qk_same_float(v, wr[i])) { CHECK(0, "%s: copy_half[%zu] = %g, expected %g", label, i, v, wr[i]); break; }
    }
    qk_half_gemm_weights *h2 = NULL;
    CHECK(qk_half_gemm_weights_create_from_half(type, t->n, t->k, bits, t->bias ? bias : NULL, &h2) == QK_OK,
          "create_from_half");
    if (h2) {
        float *y2 = run_api(h2, t, x, flags);
        int same = 1;
        for (size_t i = 0; i < t->m * (t->n + t->y_pad); i++) same &= qk_same_float(y2[i], y1[i]);
        CHECK(same, "%s: create_from_half gives different results", label);
        free(y2);
    }
    CHECK(qk_half_gemm_weights_copy_bias(h, NULL) == (t->bias != 0), "copy_bias presence");
    qk_half_gemm_weights_destroy(h2);
    free(bits);
    free(y1);
    qk_half_gemm_weights_destroy(h);
done:
    free(x); free(w); free(wr); free(bias);
}

static void api_shapes(void) {
    static const apicase cases[] = {
        {1, 1, 1, 0, 0, 1, 0},     {1, 17, 33, 3, 1, 1, 1},   {7, 33, 65, 0, 5, 0, 1},  {13, 100, 300, 1, 0, 1, 0},
        {64, 64, 64, 0, 0, 1, 1},  {3, 50, 3000, 2, 3, 1, 0}, {1, 300, 2000, 0, 0, 0, 0}, {130, 90, 1500, 4, 2, 1, 1},
        {200, 300, 700, 0, 1, 1, 0}, {8, 520, 1100, 0, 0, 1, 1}, {29, 47, 1, 0, 0, 1, 1}, {5, 3, 5, 0, 0, 0, 0},
    };
    for (int type = 0; type <= 1; type++)
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) api_case((qk_half_type)type, &cases[i]);
}

/* Every ISA level the CPU has: handles packed at that level, results within the bound; and the fp16-arithmetic
 * flag (honoured only where the level has such a kernel). */
static void api_levels(void) {
    static const char *levels[] = {"scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neondot",
                                   "neoni8mm"};
    const apicase t = {11, 70, 900, 1, 2, 1, 1};
    const size_t xs = t.k + t.x_pad;
    float *x = malloc(t.m * xs * sizeof(float)), *w = malloc(t.n * t.k * sizeof(float));
    float *wr = malloc(t.n * t.k * sizeof(float)), bias[70];
    for (size_t i = 0; i < t.m * xs; i++) x[i] = uni(-1.0f, 1.0f);
    for (size_t i = 0; i < t.n * t.k; i++) w[i] = uni(-1.0f, 1.0f);
    for (size_t j = 0; j < t.n; j++) bias[j] = uni(-1.0f, 1.0f);
    for (int type = 0; type <= 1; type++) {
        round_weights((qk_half_type)type, t.n * t.k, w, wr);
        for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
            if (!qk_isa_supported(levels[l])) continue;
            CHECK(qk_set_isa(levels[l]) == QK_OK, "set_isa %s", levels[l]);
            qk_half_gemm_weights *h = NULL;
            CHECK(qk_half_gemm_weights_create((qk_half_type)type, t.n, t.k, w, bias, NULL, &h) == QK_OK, "create");
            if (!h) continue;
            for (int arith = 0; arith <= 1; arith++) {
                const uint32_t flags = QK_GEMM_RELU | (arith ? QK_HALF_GEMM_FP16_ARITHMETIC : 0);
                const char *kname = qk_half_gemm_weights_kernel(h, flags);
                const int is_arith = strstr(kname, "fp16arith") != NULL;
                CHECK(!is_arith || (type == 0 && arith), "fp16-arithmetic kernel %s chosen without the flag", kname);
                float *y = run_api(h, &t, x, flags);
                char label[160];
                snprintf(label, sizeof label, "level %s %s kernel %s", levels[l], type ? "bf16" : "fp16", kname);
                /* fp16 arithmetic: small sums only (|x w| <= 1, K = 900: partial sums far below 65504) */
                check_api((qk_half_type)type, &t, x, wr, bias, y, label, is_arith);
                free(y);
                printf("     level %-10s %s -> %s\n", levels[l], arith ? "fp16-arith flag" : "default        ", kname);
            }
            qk_half_gemm_weights_destroy(h);
        }
    }
    CHECK(qk_set_isa("auto") == QK_OK, "set_isa auto");
    free(x); free(w); free(wr);
}

/* fp16 saturation (count, +-65504), subnormal weights kept, NaN and infinity propagation through the driver. */
static void api_special_values(void) {
    const size_t n = 6, k = 4;
    float w[24] = {70000.0f, -1e30f, INFINITY, 65504.0f, /* col 0: three saturate */
                   65519.0f, -65520.0f, 1.0f, 2.0f,     /* col 1: 65519 saturates (> 65504), -65520 too */
                   1e-6f, -3e-7f, 6e-8f, 0.0f,          /* col 2: fp16 subnormals */
                   1.0f, NAN, 1.0f, 1.0f,               /* col 3: NaN weight */
                   1.0f, 1.0f, 1.0f, 1.0f, 0.5f, 0.25f, 0.125f, 1.0f};
    size_t sat = 99;
    qk_half_gemm_weights *h = NULL;
    CHECK(qk_half_gemm_weights_create(QK_HALF_FP16, n, k, w, NULL, &sat, &h) == QK_OK, "create special");
    CHECK(sat == 5, "saturated count %zu, expected 5", sat);
    if (!h) return;
    uint16_t bits[24];
    qk_half_gemm_weights_copy_half(h, bits);
    CHECK(bits[0] == 0x7BFF && bits[1] == 0xFBFF && bits[2] == 0x7BFF && bits[3] == 0x7BFF, "saturated to +-65504");
    CHECK(bits[8] != 0 && (bits[8] & 0x7C00) == 0, "subnormal weight kept (0x%04x)", bits[8]);
    float x[3 * 4] = {1, 1, 1, 1, 1, 0, 0, 0, NAN, 0, 0, 0};
    float y[18];
    CHECK(qk_half_gemm_f32(h, 3, x, 4, y, 6, 0) == QK_OK, "run special");
    CHECK(y[0] == 131008.0f, "row 0 col 0: %g", y[0]);
    CHECK(fabsf(y[2] - (qk_f16_bits_to_f32(bits[8]) + qk_f16_bits_to_f32(bits[9]) + qk_f16_bits_to_f32(bits[10]))) <
              1e-12f && y[2] != 0.0f, "subnormal weights contribute: %g", y[2]);
    CHECK(isnan(y[3]), "NaN weight gives NaN: %g", y[3]);
    CHECK(isnan(y[6 + 3]), "NaN weight times a zero activation is NaN");
    for (size_t j = 0; j < n; j++) CHECK(isnan(y[12 + j]), "NaN activation row: y[2][%zu] = %g", j, y[12 + j]);
    CHECK(qk_half_gemm_f32(h, 3, x, 4, y, 6, QK_GEMM_RELU) == QK_OK, "run relu");
    CHECK(isnan(y[3]) && isnan(y[12]), "ReLU keeps NaN");
    qk_half_gemm_weights_destroy(h);
    /* bf16 keeps infinities: inf * positive = inf, inf * 0 = NaN */
    float wb[2] = {INFINITY, 1.0f}, xb[4] = {2.0f, 1.0f, 0.0f, 1.0f}, yb[2];
    CHECK(qk_half_gemm_weights_create(QK_HALF_BF16, 1, 2, wb, NULL, &sat, &h) == QK_OK && sat == 0, "bf16 inf");
    if (h) {
        CHECK(qk_half_gemm_f32(h, 2, xb, 2, yb, 1, 0) == QK_OK, "bf16 run");
        CHECK(yb[0] == INFINITY && isnan(yb[1]), "bf16 inf propagation: %g %g", yb[0], yb[1]);
        qk_half_gemm_weights_destroy(h);
    }
    /* K = 0: y = bias (ReLU applied) */
    const float b2[2] = {-1.5f, 2.5f};
    float y0[4] = {9, 9, 9, 9};
    CHECK(qk_half_gemm_weights_create(QK_HALF_FP16, 2, 0, NULL, b2, NULL, &h) == QK_OK, "k = 0 create");
    if (h) {
        CHECK(qk_half_gemm_f32(h, 2, NULL, 0, y0, 2, QK_GEMM_RELU) == QK_OK, "k = 0 run: %s", qk_last_error_message());
        CHECK(y0[0] == 0.0f && y0[1] == 2.5f && y0[2] == 0.0f && y0[3] == 2.5f, "k = 0: bias then ReLU");
        qk_half_gemm_weights_destroy(h);
    }
}

static void api_bf16_conversion(void) {
    const float in[] = {1.0f, qk_bits_to_float(0x3F808000u), qk_bits_to_float(0x3F818000u),
                        qk_bits_to_float(0x3F808001u), -0.0f, qk_bits_to_float(0x00010000u),
                        qk_bits_to_float(0x7F7FFFFFu), INFINITY, qk_bits_to_float(0x7F800001u),
                        qk_bits_to_float(0xFFC12345u)};
    const uint16_t want[] = {0x3F80, 0x3F80, 0x3F82, 0x3F81, 0x8000, 0x0001, 0x7F80, 0x7F80, 0x7FC0, 0xFFC1};
    const size_t n = sizeof want / sizeof *want;
    uint16_t out[16];
    float back[16];
    CHECK(qk_f32_to_bf16(n, in, out) == QK_OK, "f32_to_bf16");
    for (size_t i = 0; i < n; i++) CHECK(out[i] == want[i], "bf16(%a) = 0x%04x, expected 0x%04x", in[i], out[i], want[i]);
    CHECK(qk_bf16_to_f32(n, out, back) == QK_OK, "bf16_to_f32");
    for (size_t i = 0; i < n; i++) CHECK(qk_float_to_bits(back[i]) == (uint32_t)want[i] << 16, "widen %zu", i);
    CHECK(qk_f32_to_bf16(3, NULL, out) == QK_ERROR_INVALID_ARGUMENT, "null input");
}

static void api_validation(void) {
    float w[6] = {1, 2, 3, 4, 5, 6}, x[6] = {1, 2, 3, 4, 5, 6}, y[6];
    qk_half_gemm_weights *h = (qk_half_gemm_weights *)1;
    CHECK(qk_half_gemm_weights_create((qk_half_type)7, 2, 3, w, NULL, NULL, &h) == QK_ERROR_INVALID_ARGUMENT && !h,
          "bad type");
    CHECK(qk_half_gemm_weights_create(QK_HALF_FP16, 2, 3, NULL, NULL, NULL, &h) == QK_ERROR_INVALID_ARGUMENT, "null w");
    CHECK(qk_half_gemm_weights_create(QK_HALF_FP16, 2, 3, w, NULL, NULL, NULL) == QK_ERROR_INVALID_ARGUMENT, "null out");
    CHECK(qk_half_gemm_weights_create(QK_HALF_FP16, SIZE_MAX / 2, 3, w, NULL, NULL, &h) == QK_ERROR_OVERFLOW,
          "overflow");
    CHECK(qk_half_gemm_weights_create_from_half(QK_HALF_BF16, 2, 3, NULL, NULL, &h) == QK_ERROR_INVALID_ARGUMENT,
          "from_half null");
    CHECK(qk_half_gemm_f32(NULL, 1, x, 3, y, 2, 0) == QK_ERROR_INVALID_ARGUMENT, "null handle");
    CHECK(qk_half_gemm_weights_create(QK_HALF_FP16, 2, 3, w, NULL, NULL, &h) == QK_OK, "create");
    CHECK(qk_half_gemm_f32(h, 2, x, 2, y, 2, 0) == QK_ERROR_INVALID_ARGUMENT, "x_stride < k");
    CHECK(qk_half_gemm_f32(h, 2, x, 3, y, 1, 0) == QK_ERROR_INVALID_ARGUMENT, "y_stride < n");
    CHECK(qk_half_gemm_f32(h, 2, NULL, 3, y, 2, 0) == QK_ERROR_INVALID_ARGUMENT, "null x");
    CHECK(qk_half_gemm_f32(h, 2, x, 3, NULL, 2, 0) == QK_ERROR_INVALID_ARGUMENT, "null y");
    CHECK(qk_half_gemm_f32(h, 2, x, 3, y, 2, 1u << 20) == QK_ERROR_INVALID_ARGUMENT, "bad flags");
    CHECK(qk_half_gemm_f32(h, SIZE_MAX / 2, x, 3, y, 2, 0) == QK_ERROR_OVERFLOW, "m overflow");
    CHECK(qk_half_gemm_f32(h, 0, NULL, 3, NULL, 2, 0) == QK_OK, "m = 0");
    CHECK(qk_half_gemm_weights_n(h) == 2 && qk_half_gemm_weights_k(h) == 3 &&
              qk_half_gemm_weights_type(h) == QK_HALF_FP16 && qk_half_gemm_weights_packed_bytes(h) > 0, "accessors");
    CHECK(qk_half_gemm_weights_copy_half(h, NULL) == QK_ERROR_INVALID_ARGUMENT, "copy_half null");
    CHECK(qk_half_gemm_weights_copy_half(NULL, (uint16_t *)y) == QK_ERROR_INVALID_ARGUMENT, "copy_half null handle");
    CHECK(strcmp(qk_half_gemm_weights_kernel(NULL, 0), "none") == 0, "kernel of NULL");
    qk_half_gemm_weights_destroy(h);
    qk_half_gemm_weights_destroy(NULL);
    CHECK(qk_half_gemm_weights_n(NULL) == 0, "n of NULL");
}

static void part2(void) {
    api_shapes();
    printf("ok   API shapes (fp16, bf16) with 1/2/3 threads bit-identical, copy_half / create_from_half\n");
    api_levels();
    api_special_values();
    api_bf16_conversion();
    api_validation();
    printf("ok   API levels, special values, bf16 conversion, validation\n");
}
#endif

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    const int rc = part1(only);
#if !defined(QK_TEST_EMULATED_AVX512)
    if (!only) part2();
#endif
    printf("%ld checks, %ld failures\n", (long)qk_test_checks, (long)qk_test_failures);
    if (qk_test_failures) return 1;
    return rc;
}
