/*
 * Fake quantization tests. Part 1 runs every variant of QK_FAKE_QUANT_VARIANTS against its scalar reference, bit for
 * bit: every size up to a few vectors and beyond (tails), unaligned starts, outputs and inputs that end at a
 * PROT_NONE page (over-reads fault) with guard bytes after the outputs, ties (x * inv_scale = k + 0.5 exactly),
 * values that round onto the clamp edges, NaN, infinities, huge values, quantization ranges from 8 to 16 bits. The
 * learnable lane sums must match exactly (same lanes, same order), NaN for NaN.
 * Part 2 (native builds only) checks the public API against an oracle written from PyTorch's CPU kernels with its own
 * types (int64 zero points, double clamps, int64 quantized values): forward y / mask, the straight-through backward,
 * the learnable backward with its zero-point rounding (forward nearbyint, backward + 0.5 and truncation), the
 * per-channel views on every axis position, every ISA level and 1/2/3 threads bit-identical (gradients included),
 * FBGEMM's qparam choice, and the validation errors.
 *
 * Built twice on x86: natively, and with QK_TEST_EMULATED_AVX512 against the AVX-512 file compiled through SIMDe
 * (Part 1 only).
 */
#define _GNU_SOURCE
#include <float.h>

#include "qk_test.h"

#include "qk_kernels.h"

_Atomic long qk_test_failures = 0;
_Atomic long qk_test_checks = 0;

#if defined(QK_TEST_EMULATED_AVX512)
#undef QK_FAKE_QUANT_VARIANTS
#define QK_FAKE_QUANT_VARIANTS(X)                  \
    QK_FAKE_QUANT_ISA_VARIANTS(X, avx512, 0u)      \
    QK_FAKE_QUANT_ISA_VARIANTS(X, scalar, QK_REQ_SCALAR)
static uint32_t cpu_features(void) { return ~0u; }
#else
#include "quantkit.h"
static uint32_t cpu_features(void) { return qk_cpu_features(); }
#endif

static qk_rng rng = {0x2545F4914F6CDD1Dull};
static uint32_t rnd(uint32_t n) { return (uint32_t)(qk_rng_next(&rng) % n); }

static const size_t sizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 47, 48, 63, 64, 65, 100, 127,
                               128, 129, 255, 257, 1000, 4099};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define MAXN 4099

/* (scale, zero point, qmin, qmax) */
typedef struct { float scale; int32_t zp, qmin, qmax; } fqp;
static const fqp params[] = {
    {0.066273533f, 249, 0, 255}, {0.25f, 0, 0, 255},   {0.5f, 128, 0, 255},     {0.0974438563f, -2, -128, 127},
    {1.0f, 0, -128, 127},        {0.0645114854f, 30, 0, 127}, {0.125f, 63, 0, 127}, {1e-3f, 0, -32768, 32767},
    {2.0f, 40000, 0, 65535},     {0.1f, -7, -7, 7},    {3.0f, 5, 5, 5},         {1.5e-38f, 3, 0, 15}};
#define NPARAMS (sizeof params / sizeof params[0])

/* x: ties of the scale grid, values that round onto the edges, random values around the range, specials. */
static void fill_x(float *x, size_t n, const fqp *p) {
    static const uint32_t specials[] = {0x7FC00000u, 0xFFC00001u, 0x7FA12345u, 0x7F800000u, 0xFF800000u,
                                        0x80000000u, 0x00000000u, 0x00000001u, 0x7F7FFFFFu, 0xFF7FFFFFu, 0x5F000000u,
                                        0xDF000000u, 0x4B800000u};
    const float span = (float)(p->qmax - p->qmin) + 8.0f;
    for (size_t i = 0; i < n; i++) {
        const uint32_t r = rnd(16);
        const float k = (float)((int)rnd((uint32_t)span + 1) + p->qmin - p->zp - 4);
        if (r == 0) x[i] = qk_bits_to_float(specials[rnd(sizeof specials / sizeof specials[0])]);
        else if (r < 5) x[i] = (k + 0.5f) * p->scale;                        /* ties, when scale is a power of 2 */
        else if (r < 8) x[i] = (k + (rnd(2) ? 0.49f : -0.49f)) * p->scale;   /* near the edges */
        else if (r == 8) x[i] = qk_rng_uniform(&rng, -1e30f, 1e30f);
        else x[i] = k * p->scale + qk_rng_uniform(&rng, -1.0f, 1.0f) * p->scale;
    }
}

static qk_fq_params kparams(const fqp *p, float zp, float g) {
    qk_fq_params k = {p->scale, 1.0f / p->scale, zp, (float)p->qmin, (float)p->qmax, g};
    return k;
}

static int same_double(double a, double b) { return (a != a && b != b) || memcmp(&a, &b, sizeof a) == 0; }

/* ------------------------------------------------------------------------------------------- Part 1 */

#define GUARD 32
typedef struct { fenced f; unsigned char *p; } outbuf;   /* bytes + GUARD ending at the fence; guard pattern 0xA5 */
static outbuf out_alloc(size_t bytes) {
    outbuf o;
    o.f = fenced_alloc(bytes + GUARD);
    o.p = o.f.p;
    memset(o.p, 0xA5, bytes + GUARD);
    return o;
}
static int out_guard_ok(outbuf o, size_t bytes) {
    for (size_t i = 0; i < GUARD; i++)
        if (o.p[bytes + i] != 0xA5) return 0;
    return 1;
}
/* n floats copied to the end of a fenced mapping */
static float *fenced_copy(fenced *f, const float *src, size_t n) {
    *f = fenced_alloc(n * sizeof(float));
    float *p = (float *)(void *)f->p;
    if (n) memcpy(p, src, n * sizeof(float));
    return p;
}

static void test_f32_fq(qk_f32_fq_fn *fn, qk_f32_fq_fn *ref, const char *label) {
    float *x = malloc(MAXN * sizeof(float)), *want = malloc(MAXN * sizeof(float));
    uint8_t *want_m = malloc(MAXN);
    for (size_t pi = 0; pi < NPARAMS; pi++)
        for (size_t s = 0; s < NSIZES; s++)
            for (int with_mask = 0; with_mask < 2; with_mask++) {
                const size_t n = sizes[s];
                const qk_fq_params p = kparams(&params[pi], (float)params[pi].zp, 1.0f);
                fill_x(x, n, &params[pi]);
                fenced fx;
                const float *xf = fenced_copy(&fx, x, n);
                outbuf yb = out_alloc(n * sizeof(float)), mb = out_alloc(n);
                ref(n, xf, want, want_m, &p);
                fn(n, xf, (float *)(void *)yb.p, with_mask ? mb.p : NULL, &p);
                size_t bad = 0, first = 0;
                for (size_t i = 0; i < n; i++)
                    if ((!qk_same_float(((float *)(void *)yb.p)[i], want[i]) || (with_mask && mb.p[i] != want_m[i])) &&
                        !bad++)
                        first = i;
                CHECK(bad == 0, "%s params %zu n=%zu mask=%d: %zu mismatches, first x=%a", label, pi, n, with_mask,
                      bad, n ? (double)x[first] : 0.0);
                CHECK(out_guard_ok(yb, n * sizeof(float)) && out_guard_ok(mb, n), "%s n=%zu wrote past the end",
                      label, n);
                if (!with_mask)
                    for (size_t i = 0; i < n + GUARD; i++)
                        if (mb.p[i] != 0xA5) { CHECK(0, "%s wrote a mask it was not given", label); break; }
                fenced_free(fx);
                fenced_free(yb.f);
                fenced_free(mb.f);
            }
    free(x);
    free(want);
    free(want_m);
}

/* Per-element parameters: each element draws one of the parameter sets that share qmin / qmax. */
static void draw_pc(size_t n, float *x, float *sc, float *inv, float *zp, int32_t qmin, int32_t qmax) {
    for (size_t i = 0; i < n; i++) {
        fqp q;
        do q = params[rnd(NPARAMS)]; while (q.qmin != qmin || q.qmax != qmax);
        q.scale *= rnd(3) ? 1.0f : 0.5f;   /* powers of 2 stay powers of 2: ties survive */
        sc[i] = q.scale;
        inv[i] = 1.0f / q.scale;
        zp[i] = (float)q.zp;
        fill_x(x + i, 1, &q);
    }
}

static void test_f32_fq_pc(qk_f32_fq_pc_fn *fn, qk_f32_fq_pc_fn *ref, const char *label) {
    const int32_t ranges[][2] = {{0, 255}, {-128, 127}, {0, 127}};
    float *x = malloc(MAXN * sizeof(float)), *sc = malloc(MAXN * sizeof(float)), *inv = malloc(MAXN * sizeof(float));
    float *zp = malloc(MAXN * sizeof(float)), *want = malloc(MAXN * sizeof(float));
    uint8_t *want_m = malloc(MAXN);
    for (size_t r = 0; r < 3; r++)
        for (size_t s = 0; s < NSIZES; s++) {
            const size_t n = sizes[s];
            draw_pc(n, x, sc, inv, zp, ranges[r][0], ranges[r][1]);
            const fqp q = {1.0f, 0, ranges[r][0], ranges[r][1]};
            const qk_fq_params p = kparams(&q, 0.0f, 1.0f);
            fenced fx, fs, fi, fz;
            const float *xf = fenced_copy(&fx, x, n), *sf = fenced_copy(&fs, sc, n), *iv = fenced_copy(&fi, inv, n);
            const float *zf = fenced_copy(&fz, zp, n);
            outbuf yb = out_alloc(n * sizeof(float)), mb = out_alloc(n);
            ref(n, xf, want, want_m, sf, iv, zf, &p);
            fn(n, xf, (float *)(void *)yb.p, mb.p, sf, iv, zf, &p);
            size_t bad = 0;
            for (size_t i = 0; i < n; i++)
                bad += !qk_same_float(((float *)(void *)yb.p)[i], want[i]) || mb.p[i] != want_m[i];
            CHECK(bad == 0, "%s range %zu n=%zu: %zu mismatches", label, r, n, bad);
            CHECK(out_guard_ok(yb, n * sizeof(float)) && out_guard_ok(mb, n), "%s n=%zu wrote past the end", label, n);
            fenced_free(fx); fenced_free(fs); fenced_free(fi); fenced_free(fz);
            fenced_free(yb.f); fenced_free(mb.f);
        }
    free(x); free(sc); free(inv); free(zp); free(want); free(want_m);
}

static void fill_dy(float *dy, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const uint32_t r = rnd(40);
        if (r == 0) dy[i] = NAN;
        else if (r == 1) dy[i] = -INFINITY;
        else if (r == 2) dy[i] = -0.0f;
        else dy[i] = qk_rng_uniform(&rng, -2.0f, 2.0f);
    }
}

static void test_f32_fq_mask_backward(qk_f32_fq_mask_backward_fn *fn, qk_f32_fq_mask_backward_fn *ref,
                                      const char *label) {
    float *dy = malloc(MAXN * sizeof(float)), *want = malloc(MAXN * sizeof(float));
    uint8_t *m = malloc(MAXN);
    for (size_t s = 0; s < NSIZES; s++) {
        const size_t n = sizes[s];
        fill_dy(dy, n);
        for (size_t i = 0; i < n; i++) m[i] = (uint8_t)rnd(2);
        fenced fd, fm = fenced_alloc(n);
        const float *df = fenced_copy(&fd, dy, n);
        if (n) memcpy(fm.p, m, n);
        outbuf xb = out_alloc(n * sizeof(float));
        ref(n, df, fm.p, want);
        fn(n, df, fm.p, (float *)(void *)xb.p);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) bad += !qk_same_float(((float *)(void *)xb.p)[i], want[i]);
        CHECK(bad == 0, "%s n=%zu: %zu mismatches", label, n, bad);
        CHECK(out_guard_ok(xb, n * sizeof(float)), "%s n=%zu wrote past the end", label, n);
        fenced_free(fd); fenced_free(fm); fenced_free(xb.f);
    }
    free(dy); free(want); free(m);
}

static const float grad_factors[] = {1.0f, 0.0123f, -0.5f};

static void test_f32_fq_learnable_backward(qk_f32_fq_learnable_backward_fn *fn, qk_f32_fq_learnable_backward_fn *ref,
                                           const char *label) {
    float *x = malloc(MAXN * sizeof(float)), *dy = malloc(MAXN * sizeof(float)), *want = malloc(MAXN * sizeof(float));
    for (size_t pi = 0; pi < NPARAMS; pi++) {
        if (params[pi].qmin > 0 || params[pi].qmax < 0) continue;   /* the learnable backward needs 0 in range */
        for (size_t s = 0; s < NSIZES; s++) {
            const size_t n = sizes[s];
            const qk_fq_params p = kparams(&params[pi], (float)params[pi].zp, grad_factors[s % 3]);
            fill_x(x, n, &params[pi]);
            fill_dy(dy, n);
            if (s % 2) for (size_t i = 0; i < n; i++) if (dy[i] != dy[i] || isinf(dy[i])) dy[i] = 1.0f;   /* finite sums */
            fenced fx, fd;
            const float *xf = fenced_copy(&fx, x, n), *df = fenced_copy(&fd, dy, n);
            outbuf xb = out_alloc(n * sizeof(float));
            double ws = -1, wz = -1, gs = -2, gz = -2;
            ref(n, xf, df, want, &p, &ws, &wz);
            fn(n, xf, df, (float *)(void *)xb.p, &p, &gs, &gz);
            size_t bad = 0;
            for (size_t i = 0; i < n; i++) bad += !qk_same_float(((float *)(void *)xb.p)[i], want[i]);
            CHECK(bad == 0, "%s params %zu n=%zu: %zu grad_x mismatches", label, pi, n, bad);
            CHECK(same_double(gs, ws) && same_double(gz, wz), "%s params %zu n=%zu: sums %a %a, reference %a %a",
                  label, pi, n, gs, gz, ws, wz);
            CHECK(out_guard_ok(xb, n * sizeof(float)), "%s n=%zu wrote past the end", label, n);
            fenced_free(fx); fenced_free(fd); fenced_free(xb.f);
        }
    }
    free(x); free(dy); free(want);
}

static void test_f32_fq_learnable_backward_pc(qk_f32_fq_learnable_backward_pc_fn *fn,
                                              qk_f32_fq_learnable_backward_pc_fn *ref, const char *label) {
    const int32_t ranges[][2] = {{0, 255}, {-128, 127}, {0, 127}};
    const size_t n_max = MAXN;
    float *x = malloc(n_max * sizeof(float)), *sc = malloc(n_max * sizeof(float)), *inv = malloc(n_max * sizeof(float));
    float *zp = malloc(n_max * sizeof(float)), *dy = malloc(n_max * sizeof(float)), *want = malloc(n_max * sizeof(float));
    double *as0 = malloc(n_max * sizeof(double)), *az0 = malloc(n_max * sizeof(double));
    double *ws = malloc(n_max * sizeof(double)), *wz = malloc(n_max * sizeof(double));
    for (size_t r = 0; r < 3; r++)
        for (size_t s = 0; s < NSIZES; s++) {
            const size_t n = sizes[s];
            draw_pc(n, x, sc, inv, zp, ranges[r][0], ranges[r][1]);
            fill_dy(dy, n);
            for (size_t i = 0; i < n; i++) {
                as0[i] = rnd(2) ? 0.0 : qk_rng_uniform(&rng, -10.0f, 10.0f);
                az0[i] = rnd(2) ? 0.0 : qk_rng_uniform(&rng, -10.0f, 10.0f);
            }
            const fqp q = {1.0f, 0, ranges[r][0], ranges[r][1]};
            const qk_fq_params p = kparams(&q, 0.0f, grad_factors[s % 3]);
            fenced fx, fs, fi, fz, fd;
            const float *xf = fenced_copy(&fx, x, n), *sf = fenced_copy(&fs, sc, n), *iv = fenced_copy(&fi, inv, n);
            const float *zf = fenced_copy(&fz, zp, n), *df = fenced_copy(&fd, dy, n);
            outbuf xb = out_alloc(n * sizeof(float)), ab = out_alloc(n * sizeof(double)), zb = out_alloc(n * sizeof(double));
            if (n) {
                memcpy(ws, as0, n * sizeof(double));
                memcpy(wz, az0, n * sizeof(double));
                memcpy(ab.p, as0, n * sizeof(double));
                memcpy(zb.p, az0, n * sizeof(double));
            }
            ref(n, xf, df, want, sf, iv, zf, &p, ws, wz);
            fn(n, xf, df, (float *)(void *)xb.p, sf, iv, zf, &p, (double *)(void *)ab.p, (double *)(void *)zb.p);
            size_t bad = 0;
            for (size_t i = 0; i < n; i++)
                bad += !qk_same_float(((float *)(void *)xb.p)[i], want[i]) ||
                       !same_double(((double *)(void *)ab.p)[i], ws[i]) || !same_double(((double *)(void *)zb.p)[i], wz[i]);
            CHECK(bad == 0, "%s range %zu n=%zu: %zu mismatches", label, r, n, bad);
            CHECK(out_guard_ok(xb, n * sizeof(float)) && out_guard_ok(ab, n * sizeof(double)) &&
                      out_guard_ok(zb, n * sizeof(double)), "%s n=%zu wrote past the end", label, n);
            fenced_free(fx); fenced_free(fs); fenced_free(fi); fenced_free(fz); fenced_free(fd);
            fenced_free(xb.f); fenced_free(ab.f); fenced_free(zb.f);
        }
    free(x); free(sc); free(inv); free(zp); free(dy); free(want); free(as0); free(az0); free(ws); free(wz);
}

static int run_part1(const char *only) {
    const uint32_t cpu = cpu_features();
    int tested = 0, skipped = 0;
#define QK__RUN(slot, fn, req)                                                                     \
    if ((void *)fn != (void *)qk_##slot##__scalar && (!only || strstr(#fn, only))) {               \
        if (((req) & ~cpu) != 0) {                                                                 \
            printf("skip %-44s (CPU lacks it)\n", #fn);                                            \
            skipped++;                                                                             \
        } else {                                                                                   \
            const long before = qk_test_failures;                                                  \
            test_##slot(fn, qk_##slot##__scalar, #fn);                                             \
            printf("%s %s\n", qk_test_failures == before ? "ok  " : "FAIL", #fn);                  \
            tested++;                                                                              \
        }                                                                                          \
    }
    QK_FAKE_QUANT_VARIANTS(QK__RUN)
#undef QK__RUN
    printf("%d fake-quantization variants tested against the scalar reference, %d skipped\n", tested, skipped);
    return tested;
}

/* Fixed cases of the scalar reference itself (PyTorch's documented STE boundaries). */
static void test_scalar_reference(void) {
    const fqp p = {1.0f, 0, 0, 255};
    const qk_fq_params k = kparams(&p, 0.0f, 1.0f);
    const float x[] = {-0.5f, -0.6f, 255.4f, 255.5f, 254.5f, 0.5f, NAN, INFINITY, -INFINITY};
    const uint8_t mask[] = {1, 0, 1, 0, 1, 1, 0, 0, 0};
    const float y[] = {0.0f, 0.0f, 255.0f, 255.0f, 254.0f, 0.0f, 0.0f, 255.0f, 0.0f};
    float got[9];
    uint8_t m[9];
    qk_f32_fq__scalar(9, x, got, m, &k);
    for (int i = 0; i < 9; i++)
        CHECK(m[i] == mask[i] && qk_same_float(got[i], y[i]), "x=%g: y %g mask %d, expected %g %d", (double)x[i],
              (double)got[i], m[i], (double)y[i], mask[i]);
    /* -0.0 for a negative gradient outside the range, NaN kept */
    const float dy[] = {-1.5f, 2.0f, NAN};
    const uint8_t mm[] = {0, 0, 1};
    float dx[3];
    qk_f32_fq_mask_backward__scalar(3, dy, mm, dx);
    CHECK(qk_float_to_bits(dx[0]) == 0x80000000u && qk_float_to_bits(dx[1]) == 0 && dx[2] != dx[2],
          "mask backward signs: %a %a %a", (double)dx[0], (double)dx[1], (double)dx[2]);
}

/* ------------------------------------------------------------------------------------------- Part 2 */

#if !defined(QK_TEST_EMULATED_AVX512)

/* PyTorch's _fake_quantize_tensor_helper, with its own types. */
static float oracle_forward(float x, float scale, int64_t z_point, int64_t qmin, int64_t qmax, uint8_t *mask) {
    const float inv_scale = 1.0f / scale;
    volatile float prod = x * inv_scale;
    const float qval_f = (float)z_point + nearbyintf(prod);
    const int64_t qval = (int64_t)fmin(fmax((double)qval_f, (double)qmin), (double)qmax);
    *mask = (uint8_t)((float)qmin <= qval_f && qval_f <= (float)qmax);
    return (float)(qval - z_point) * scale;
}

/* fake_quantize_learnable_tensor_grad_kernel_cpu for one element; xqi is int64 there (its x86 conversion of NaN is
 * INT64_MIN: below; QuantKit counts +-inf and |xq| >= 2^63 on their own side). */
static float oracle_learnable(float x, float dy, float scale, float zero_point, int64_t qmin, int64_t qmax, float g,
                              float *ds, float *dz) {
    const float inv_scale = 1.0f / scale;
    volatile float prod = x * inv_scale;
    const float w = zero_point + prod;
    const float r = nearbyintf(w);
    int64_t xqi;
    if (r != r) xqi = INT64_MIN;
    else if (r >= 9.2233720e18f) xqi = INT64_MAX;
    else if (r <= -9.2233720e18f) xqi = INT64_MIN;
    else xqi = (int64_t)r;
    const float dscale_small = (float)qmin - zero_point, dscale_big = (float)qmax - zero_point;
    const int in = xqi >= qmin && xqi <= qmax;
    const float dx = dy * (float)in;
    const int64_t c = xqi < qmin ? qmin : xqi > qmax ? qmax : xqi;
    volatile float xfqi = ((float)c - zero_point) * scale;
    if (!in) {
        volatile float t = dy * -1.0f * scale;
        *dz = t * g;
        volatile float u = xqi < qmin ? dy * dscale_small : dy * dscale_big;
        *ds = u * g;
    } else {
        *dz = 0;
        volatile float t = dy * (xfqi - x);
        volatile float u = t * inv_scale;
        *ds = u * g;
    }
    return dx;
}

static const char *levels[] = {"scalar", "avx2", "avx512", "avx512vnni", "neon", "neondot", "neoni8mm"};
#define NLEVELS (sizeof levels / sizeof levels[0])
static const int thread_counts[] = {1, 2, 3};

/* A tensor with its view around an axis. */
typedef struct { size_t outer, channels, inner; } view3;

static void test_forward_api(void) {
    const view3 views[] = {{1, 1, 70001}, {3, 5, 1}, {2, 7, 5}, {1, 4, 140000}, {300, 70, 1}, {5, 3, 33}, {4, 1, 9},
                           {0, 3, 4}, {2, 0, 3}, {1, 66000, 1}};
    for (size_t vi = 0; vi < sizeof views / sizeof views[0]; vi++) {
        const view3 v = views[vi];
        const size_t n = v.outer * v.channels * v.inner;
        const fqp base = params[vi % NPARAMS];
        float *x = malloc((n + 1) * sizeof(float)), *want = malloc((n + 1) * sizeof(float));
        float *y = malloc((n + 1) * sizeof(float)), *y0 = malloc((n + 1) * sizeof(float));
        uint8_t *m = malloc(n + 1), *wm = malloc(n + 1), *m0 = malloc(n + 1);
        float *scales = malloc((v.channels + 1) * sizeof(float));
        int32_t *zps = malloc((v.channels + 1) * sizeof(int32_t));
        for (size_t c = 0; c < v.channels; c++) {
            scales[c] = base.scale * (rnd(2) ? 1.0f : 0.5f);
            zps[c] = base.qmin + (int32_t)rnd((uint32_t)(base.qmax - base.qmin) + 1);
        }
        for (size_t o = 0; o < v.outer; o++)
            for (size_t c = 0; c < v.channels; c++) {
                const fqp q = {scales[c], zps[c], base.qmin, base.qmax};
                const size_t at = (o * v.channels + c) * v.inner;
                fill_x(x + at, v.inner, &q);
                for (size_t i = 0; i < v.inner; i++)
                    want[at + i] = oracle_forward(x[at + i], scales[c], zps[c], base.qmin, base.qmax, &wm[at + i]);
            }
        int first = 1;
        for (size_t l = 0; l < NLEVELS; l++) {
            if (!qk_isa_supported(levels[l])) continue;
            CHECK(qk_set_isa(levels[l]) == QK_OK, "set %s", levels[l]);
            for (size_t t = 0; t < 3; t++) {
                CHECK(qk_set_num_threads(thread_counts[t]) == QK_OK, "threads");
                qk_status s = qk_fake_quantize_per_channel_f32(v.outer, v.channels, v.inner, x, y, m, scales, zps,
                                                               base.qmin, base.qmax);
                CHECK(s == QK_OK, "per channel view %zu: %s", vi, qk_last_error_message());
                size_t bad = 0, first_bad = 0;
                for (size_t i = 0; i < n; i++)
                    if ((!qk_same_float(y[i], want[i]) || m[i] != wm[i]) && !bad++) first_bad = i;
                CHECK(bad == 0, "per channel view %zu isa %s threads %d: %zu mismatches vs PyTorch's formula, first "
                      "x=%a got %a/%d want %a/%d", vi, levels[l], thread_counts[t], bad,
                      n ? (double)x[first_bad] : 0.0, n ? (double)y[first_bad] : 0.0, n ? m[first_bad] : 0,
                      n ? (double)want[first_bad] : 0.0, n ? wm[first_bad] : 0);
                if (first) {
                    if (n) { memcpy(y0, y, n * sizeof(float)); memcpy(m0, m, n); }
                    first = 0;
                } else {
                    CHECK(!n || (memcmp(y0, y, n * sizeof(float)) == 0 && memcmp(m0, m, n) == 0),
                          "view %zu: results differ between ISA levels / thread counts", vi);
                }
                if (v.channels == 1 && n) {   /* the per-tensor entry point agrees, with and without a mask */
                    s = qk_fake_quantize_per_tensor_f32(n, x, y, NULL, scales[0], zps[0], base.qmin, base.qmax);
                    CHECK(s == QK_OK && memcmp(y0, y, n * sizeof(float)) == 0, "per tensor view %zu", vi);
                }
            }
        }
        CHECK(qk_set_isa(NULL) == QK_OK && qk_set_num_threads(0) == QK_OK, "restore");
        /* straight-through backward: dY * mask */
        float *dy = malloc((n + 1) * sizeof(float)), *dx = malloc((n + 1) * sizeof(float));
        fill_dy(dy, n);
        CHECK(qk_fake_quantize_backward_f32(n, dy, wm, dx) == QK_OK, "backward");
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) bad += !qk_same_float(dx[i], dy[i] * (float)wm[i]);
        CHECK(bad == 0, "mask backward view %zu: %zu mismatches", vi, bad);
        free(dy); free(dx);
        free(x); free(want); free(y); free(y0); free(m); free(wm); free(m0); free(scales); free(zps);
    }
}

/* Learnable: oracle per element, sums in double (any order: compared with a tight tolerance), and across ISA levels
 * and thread counts the results must be identical. */
static void test_learnable_api(void) {
    const view3 views[] = {{1, 1, 77}, {1, 1, 200003}, {4, 3, 1}, {300, 70, 1}, {40, 2000, 1}, {37, 9000, 1}, {2, 5, 9},
                           {3, 2, 70000}, {1, 6, 1}, {0, 4, 3}};
    const int32_t ranges[][2] = {{0, 255}, {-128, 127}, {0, 127}, {-8, 7}};
    for (size_t vi = 0; vi < sizeof views / sizeof views[0]; vi++) {
        const view3 v = views[vi];
        const int per_tensor = v.channels == 1 && v.outer == 1;
        const size_t n = v.outer * v.channels * v.inner;
        const int32_t qmin = ranges[vi % 4][0], qmax = ranges[vi % 4][1];
        const float g = vi % 2 ? 1.0f : 0.03125f;
        float *x = malloc((n + 1) * sizeof(float)), *dy = malloc((n + 1) * sizeof(float));
        float *want = malloc((n + 1) * sizeof(float)), *dx = malloc((n + 1) * sizeof(float));
        float *dx0 = malloc((n + 1) * sizeof(float));
        float *scales = malloc((v.channels + 1) * sizeof(float)), *zps = malloc((v.channels + 1) * sizeof(float));
        double *ws = calloc(v.channels + 1, sizeof(double)), *wz = calloc(v.channels + 1, sizeof(double));
        double *wa = calloc(v.channels + 1, sizeof(double));   /* sum of |terms| */
        float *gs = malloc((v.channels + 1) * sizeof(float)), *gz = malloc((v.channels + 1) * sizeof(float));
        float *gs0 = malloc((v.channels + 1) * sizeof(float)), *gz0 = malloc((v.channels + 1) * sizeof(float));
        for (size_t c = 0; c < v.channels; c++) {
            scales[c] = qk_rng_uniform(&rng, 0.01f, 0.1f);
            /* learnable zero points: halves included (the rounding rules differ between forward and backward) */
            zps[c] = (float)(qmin + (int32_t)rnd((uint32_t)(qmax - qmin) + 1)) + (rnd(3) == 0 ? 0.5f : rnd(2) ? 0.3f : 0.0f);
            if (zps[c] > (float)qmax) zps[c] = (float)qmax;
        }
        for (size_t o = 0; o < v.outer; o++)
            for (size_t c = 0; c < v.channels; c++) {
                /* the backward zero point: per tensor trunc(clamp(z + 0.5)), per channel clamp(round(z)) */
                float zb = per_tensor ? truncf(fminf(fmaxf(zps[c] + 0.5f, (float)qmin), (float)qmax))
                                      : fminf(fmaxf(nearbyintf(zps[c]), (float)qmin), (float)qmax);
                const fqp q = {scales[c], (int32_t)zb, qmin, qmax};
                const size_t at = (o * v.channels + c) * v.inner;
                fill_x(x + at, v.inner, &q);
                for (size_t i = 0; i < v.inner; i++) {
                    dy[at + i] = qk_rng_uniform(&rng, -1.0f, 1.0f);
                    float ds, dz;
                    want[at + i] = oracle_learnable(x[at + i], dy[at + i], scales[c], zb, qmin, qmax, g, &ds, &dz);
                    ws[c] += ds;
                    wz[c] += dz;
                    wa[c] += fabs(ds) + fabs(dz);
                }
            }
        int first = 1;
        for (size_t l = 0; l < NLEVELS; l++) {
            if (!qk_isa_supported(levels[l])) continue;
            CHECK(qk_set_isa(levels[l]) == QK_OK, "set %s", levels[l]);
            for (size_t t = 0; t < 3; t++) {
                CHECK(qk_set_num_threads(thread_counts[t]) == QK_OK, "threads");
                qk_status s = per_tensor
                    ? qk_fake_quantize_learnable_per_tensor_backward_f32(n, x, dy, dx, scales[0], zps[0], qmin, qmax,
                                                                         g, gs, gz)
                    : qk_fake_quantize_learnable_per_channel_backward_f32(v.outer, v.channels, v.inner, x, dy, dx,
                                                                          scales, zps, qmin, qmax, g, gs, gz);
                CHECK(s == QK_OK, "learnable view %zu: %s", vi, qk_last_error_message());
                size_t bad = 0;
                for (size_t i = 0; i < n; i++) bad += !qk_same_float(dx[i], want[i]);
                CHECK(bad == 0, "learnable view %zu isa %s threads %d: %zu grad_x mismatches", vi, levels[l],
                      thread_counts[t], bad);
                for (size_t c = 0; c < v.channels; c++) {
                    const double tol = 1e-6 * wa[c] + 1e-30;
                    CHECK(fabs(gs[c] - ws[c]) <= tol && fabs(gz[c] - wz[c]) <= tol,
                          "learnable view %zu channel %zu: grad_scale %.9g (oracle %.9g), grad_zero_point %.9g "
                          "(oracle %.9g)", vi, c, (double)gs[c], ws[c], (double)gz[c], wz[c]);
                }
                if (first) {
                    if (n) memcpy(dx0, dx, n * sizeof(float));
                    memcpy(gs0, gs, v.channels * sizeof(float));
                    memcpy(gz0, gz, v.channels * sizeof(float));
                    first = 0;
                } else {
                    CHECK((!n || memcmp(dx0, dx, n * sizeof(float)) == 0) &&
                              memcmp(gs0, gs, v.channels * sizeof(float)) == 0 &&
                              memcmp(gz0, gz, v.channels * sizeof(float)) == 0,
                          "learnable view %zu: results differ between ISA levels / thread counts (%s, %d)", vi,
                          levels[l], thread_counts[t]);
                }
            }
        }
        CHECK(qk_set_isa(NULL) == QK_OK && qk_set_num_threads(0) == QK_OK, "restore");
        free(x); free(dy); free(want); free(dx); free(dx0); free(scales); free(zps); free(ws); free(wz); free(wa);
        free(gs); free(gz); free(gs0); free(gz0);
    }
}

/* Zero-point rounding of the learnable forms, seen through the outputs. */
static void test_learnable_zero_points(void) {
    float y[1], dx[1], gs, gz;
    const float x0 = 0.0f, dy1 = 1.0f;
    /* forward: nearbyint(2.5) = 2, so x = 0 gives (2 - 2) * 1 = 0 and x = -2 gives -2 (clamped at 0 - 2) */
    const float xm2 = -2.0f;
    CHECK(qk_fake_quantize_learnable_per_tensor_f32(1, &xm2, y, NULL, 1.0f, 2.5f, 0, 255) == QK_OK && y[0] == -2.0f,
          "forward zero point 2.5 -> 2: y %g", (double)y[0]);
    const float xm3 = -3.0f;
    CHECK(qk_fake_quantize_learnable_per_tensor_f32(1, &xm3, y, NULL, 1.0f, 2.5f, 0, 255) == QK_OK && y[0] == -2.0f,
          "forward clamps at -zp: y %g", (double)y[0]);
    /* backward: trunc(2.5 + 0.5) = 3: x = -3 is inside (grad 1), with zp 2 it would be outside */
    CHECK(qk_fake_quantize_learnable_per_tensor_backward_f32(1, &xm3, &dy1, dx, 1.0f, 2.5f, 0, 255, 1.0f, &gs, &gz) ==
              QK_OK && dx[0] == 1.0f && gz == 0.0f,
          "backward zero point 2.5 -> 3: grad_x %g grad_zp %g", (double)dx[0], (double)gz);
    /* -68.5 + 0.5 = -68 exactly; -69.0 + 0.5 = -68.5 truncates to -68 (the golden case) */
    const float xr = -60.0f * 0.5f;   /* x / s = -60 -> xq = -128 with zp -68, -129 (below) with zp -69 */
    CHECK(qk_fake_quantize_learnable_per_tensor_backward_f32(1, &xr, &dy1, dx, 0.5f, -69.0f, -128, 127, 1.0f, &gs,
                                                              &gz) == QK_OK && dx[0] == 1.0f,
          "backward zero point -69 -> -68: grad_x %g", (double)dx[0]);
    /* per channel rounds half to even in both passes: 2.5 -> 2 */
    CHECK(qk_fake_quantize_learnable_per_channel_backward_f32(1, 1, 1, &xm3, &dy1, dx, &(float){1.0f},
                                                               &(float){2.5f}, 0, 255, 1.0f, &gs, &gz) == QK_OK &&
              dx[0] == 0.0f && gz == -1.0f && gs == -2.0f,
          "per channel backward zero point 2.5 -> 2: grad_x %g grad_scale %g grad_zp %g", (double)dx[0], (double)gs,
          (double)gz);
    (void)x0;
    /* grad_scale inside: ((dy * (xfq - x)) / s) * g; x = 0.3, s = 1, zp 0 -> xq 0, (0 - 0.3) */
    const float x3 = 0.3f;
    CHECK(qk_fake_quantize_learnable_per_tensor_backward_f32(1, &x3, &dy1, dx, 1.0f, 0.0f, 0, 255, 0.5f, &gs, &gz) ==
              QK_OK && gs == (-0.3f) * 0.5f && gz == 0.0f,
          "grad_scale inside: %a", (double)gs);
    /* above: (qmax - zp) * dy * g and -s * dy * g */
    const float x300 = 300.0f;
    CHECK(qk_fake_quantize_learnable_per_tensor_backward_f32(1, &x300, &dy1, dx, 1.0f, 10.0f, 0, 255, 1.0f, &gs,
                                                              &gz) == QK_OK && gs == 245.0f && gz == -1.0f &&
              dx[0] == 0.0f,
          "above: %g %g %g", (double)gs, (double)gz, (double)dx[0]);
    /* empty: zero gradients */
    gs = gz = 7.0f;
    CHECK(qk_fake_quantize_learnable_per_tensor_backward_f32(0, NULL, NULL, NULL, 1.0f, 0.0f, 0, 255, 1.0f, &gs,
                                                              &gz) == QK_OK && gs == 0.0f && gz == 0.0f,
          "empty tensor");
}

/* Python's MinMaxObserver formula (symmetric), for the difference test. */
static float python_symmetric_scale(float min, float max, int32_t qmin, int32_t qmax) {
    const float mn = min < 0 ? min : 0, mx = max > 0 ? max : 0;
    const float a = -mn > mx ? -mn : mx;
    float s = a / ((float)(qmax - qmin) / 2.0f);
    return s > FLT_EPSILON ? s : FLT_EPSILON;
}

static void test_choose_qparams(void) {
    float s;
    int32_t z;
    /* int8 symmetric: the range becomes m * [-128, 127] with m = max(|min| / 128, max / 127); zp nearbyint(-0.5) */
    const float min = -1.0f, max = 3.0f;
    CHECK(qk_fake_quant_choose_qparams(min, max, -128, 127, QK_FAKE_QUANT_SYMMETRIC, &s, &z) == QK_OK && z == 0,
          "int8 symmetric zp %d", z);
    const double m = fmax(fabs(min / -128.0f), fabs(max / 127.0f));
    const float lo = (float)(m * -128), hi = (float)(m * 127);
    CHECK(s == (float)(((double)hi - lo) / 255), "int8 symmetric scale %.9g", (double)s);
    CHECK(s != python_symmetric_scale(min, max, -128, 127), "FBGEMM and Python formulas coincide: %.9g", (double)s);
    CHECK(fabs(s - 3.0 / 127) < 1e-7 && fabs(python_symmetric_scale(min, max, -128, 127) - 3.0 / 127.5) < 1e-7,
          "scales %.9g / %.9g", (double)s, (double)python_symmetric_scale(min, max, -128, 127));
    /* quint8 symmetric: zp nearbyint(127.5) = 128; [0, 127]: nearbyint(63.5) = 64 (Python: 63) */
    CHECK(qk_fake_quant_choose_qparams(-1.0f, 1.0f, 0, 255, QK_FAKE_QUANT_SYMMETRIC, &s, &z) == QK_OK && z == 128,
          "quint8 symmetric zp %d", z);
    CHECK(qk_fake_quant_choose_qparams(-1.0f, 1.0f, 0, 127, QK_FAKE_QUANT_SYMMETRIC, &s, &z) == QK_OK && z == 64,
          "[0, 127] symmetric zp %d", z);
    /* symmetric with a one-signed range falls back to affine */
    CHECK(qk_fake_quant_choose_qparams(0.5f, 2.0f, -128, 127, QK_FAKE_QUANT_SYMMETRIC, &s, &z) == QK_OK && z == -128 &&
              s == (float)(2.0 / 255),
          "one-signed symmetric: %.9g %d", (double)s, z);
    /* affine */
    CHECK(qk_fake_quant_choose_qparams(-1.0f, 3.0f, 0, 255, 0, &s, &z) == QK_OK && s == (float)(4.0 / 255) && z == 64,
          "affine: %.9g %d", (double)s, z);
    /* nothing observed, all zero, tiny ranges */
    CHECK(qk_fake_quant_choose_qparams(INFINITY, -INFINITY, 0, 255, 0, &s, &z) == QK_OK && s == 0.1f && z == 0,
          "uncalibrated: %g %d", (double)s, z);
    CHECK(qk_fake_quant_choose_qparams(0.0f, 0.0f, -128, 127, QK_FAKE_QUANT_SYMMETRIC, &s, &z) == QK_OK && s == 0.1f &&
              z == 127,
          "zeros: %g %d", (double)s, z);
    CHECK(qk_fake_quant_choose_qparams(0.0f, 1e-6f, 0, 255, 0, &s, &z) == QK_OK && s == 6.1e-5f && z == 0,
          "small scale: %g %d", (double)s, z);
    CHECK(qk_fake_quant_choose_qparams(-1e-6f, 1e-6f, 0, 255, 0, &s, &z) == QK_OK && s == 6.1e-5f,
          "small scale, both signs: %g %d", (double)s, z);
    CHECK(qk_fake_quant_choose_qparams(NAN, 1.0f, 0, 255, 0, &s, &z) == QK_ERROR_INVALID_ARGUMENT, "NaN");
    CHECK(qk_fake_quant_choose_qparams(-INFINITY, 1.0f, 0, 255, 0, &s, &z) == QK_ERROR_INVALID_ARGUMENT, "inf");
    CHECK(qk_fake_quant_choose_qparams(0, 1, 0, 255, 8, &s, &z) == QK_ERROR_INVALID_ARGUMENT, "flags");
    CHECK(qk_fake_quant_choose_qparams(0, 1, 3, 3, 0, &s, &z) == QK_ERROR_INVALID_ARGUMENT, "one-value range");
}

static void test_validation(void) {
    float x[4] = {0}, y[4], gs, gz;
    uint8_t m[4] = {0};
    const float one = 1.0f;
    const int32_t zp0 = 0;
#define EXPECT_INVALID(call, what)                                                                        \
    do {                                                                                                  \
        const qk_status s_ = (call);                                                                      \
        CHECK(s_ == QK_ERROR_INVALID_ARGUMENT && qk_last_error_message()[0], "%s: status %d", what, (int)s_); \
    } while (0)
    EXPECT_INVALID(qk_fake_quantize_per_tensor_f32(4, x, y, m, 0.0f, 0, 0, 255), "zero scale");
    EXPECT_INVALID(qk_fake_quantize_per_tensor_f32(4, x, y, m, NAN, 0, 0, 255), "NaN scale");
    EXPECT_INVALID(qk_fake_quantize_per_tensor_f32(4, x, y, m, 1e-39f, 0, 0, 255), "subnormal scale");
    EXPECT_INVALID(qk_fake_quantize_per_tensor_f32(4, x, y, m, 1.0f, 256, 0, 255), "zero point above");
    EXPECT_INVALID(qk_fake_quantize_per_tensor_f32(4, x, y, m, 1.0f, -1, 0, 255), "zero point below");
    EXPECT_INVALID(qk_fake_quantize_per_tensor_f32(4, x, y, m, 1.0f, 0, 10, 5), "reversed range");
    EXPECT_INVALID(qk_fake_quantize_per_tensor_f32(4, x, y, m, 1.0f, 0, 0, (1 << 23) + 1), "range too wide");
    EXPECT_INVALID(qk_fake_quantize_per_tensor_f32(4, NULL, y, m, 1.0f, 0, 0, 255), "null x");
    CHECK(qk_fake_quantize_per_tensor_f32(0, NULL, NULL, NULL, 1.0f, 0, 0, 255) == QK_OK, "empty with NULL");
    CHECK(qk_fake_quantize_per_tensor_f32(4, x, y, NULL, 1.0f, 0, -(1 << 23), 1 << 23) == QK_OK, "widest range");
    EXPECT_INVALID(qk_fake_quantize_per_channel_f32(1, 1, 4, x, y, m, NULL, &zp0, 0, 255), "null scales");
    EXPECT_INVALID(qk_fake_quantize_per_channel_f32(1, 1, 4, x, y, m, &(float){-1.0f}, &zp0, 0, 255),
                   "negative channel scale");
    EXPECT_INVALID(qk_fake_quantize_per_channel_f32(1, 1, 4, x, y, m, &one, &(int32_t){300}, 0, 255),
                   "channel zero point");
    CHECK(qk_fake_quantize_per_channel_f32(SIZE_MAX, 2, 2, x, y, m, &one, &zp0, 0, 255) == QK_ERROR_OVERFLOW,
          "overflow");
    EXPECT_INVALID(qk_fake_quantize_backward_f32(4, x, NULL, y), "null mask");
    EXPECT_INVALID(qk_fake_quantize_learnable_per_tensor_f32(4, x, y, m, 1.0f, NAN, 0, 255), "NaN zero point");
    EXPECT_INVALID(qk_fake_quantize_learnable_per_tensor_backward_f32(4, x, x, y, 1.0f, 0.0f, 1, 255, 1.0f, &gs, &gz),
                   "learnable range without 0");
    EXPECT_INVALID(qk_fake_quantize_learnable_per_tensor_backward_f32(4, x, x, y, 1.0f, 0.0f, 0, 255, INFINITY, &gs,
                                                                      &gz), "infinite grad_factor");
    EXPECT_INVALID(qk_fake_quantize_learnable_per_tensor_backward_f32(4, x, x, y, 1.0f, 0.0f, 0, 255, 1.0f, NULL, &gz),
                   "null grad_scale");
    EXPECT_INVALID(qk_fake_quantize_learnable_per_channel_backward_f32(1, 1, 4, x, x, y, &one, &(float){INFINITY}, 0,
                                                                       255, 1.0f, &gs, &gz), "infinite zero point");
    EXPECT_INVALID(qk_fake_quantize_learnable_per_channel_f32(1, 1, 4, x, y, m, &(float){0.0f}, &(float){0.0f}, 0, 255),
                   "learnable zero scale");
#undef EXPECT_INVALID
}

#endif /* !QK_TEST_EMULATED_AVX512 */

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    test_scalar_reference();
    const int tested = run_part1(only);
#if !defined(QK_TEST_EMULATED_AVX512)
    if (!only) {
        test_forward_api();
        test_learnable_api();
        test_learnable_zero_points();
        test_choose_qparams();
        test_validation();
        printf("public API: forward, backward, learnable, qparams, validation\n");
    }
#endif
    printf("%ld checks, %ld failures\n", qk_test_checks, qk_test_failures);
    (void)tested;
    return qk_test_failures ? 1 : 0;
}
