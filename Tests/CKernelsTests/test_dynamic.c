/*
 * Dynamic quantization tests (public API only). qk_dynamic_qparams against an independent copy of ATen's
 * quant_utils::ChooseQuantizationParams (edge cases pinned by value, random ranges bit for bit), and
 * qk_dynamic_linear_f32 (per tensor and per row) against a scalar reference of PyTorch's x86 formula, with zero
 * tolerance: bits of every output compared, row gaps of y checked untouched, x rows ending at a PROT_NONE page with
 * +inf in the row gaps (a read outside the rows faults or turns into an "infinity" error). Every ISA level the CPU
 * supports and 1/2/3 threads must give identical bytes.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "qk_test.h"
#include "quantkit.h"

_Atomic long qk_test_failures = 0;
_Atomic long qk_test_checks = 0;

static qk_rng rng = {0x9E3779B97F4A7C15ull};
static uint32_t rnd(uint32_t n) { return (uint32_t)(qk_rng_next(&rng) % n); }

#define EXPECT_FAIL(call, status)                                                                             \
    do {                                                                                                      \
        const qk_status s_ = (call);                                                                          \
        CHECK(s_ == (status), "%s returned %d, want %d", #call, (int)s_, (int)(status));                      \
        CHECK(s_ == QK_OK || qk_last_error_message()[0] != 0, "%s: no error message", #call);                  \
    } while (0)

/* ------------------------------------------------------------------------------------------- reference */

/*
 * ATen quant_utils::ChooseQuantizationParams(min, max, 0, 255, preserve_sparsity = false,
 * force_scale_power_of_two = false, reduce_range), with its types: float min/max, double scale, double zero-point
 * terms, ATen's subtracting error terms; the result scale is ATen's double narrowed to float as fbgemm's packing
 * takes it. Returns 0 when the extended range is not finite (QuantKit's error; ATen would give an inf scale).
 */
static int ref_qparams(float min, float max, int reduce_range, float *scale_out, int32_t *zp_out) {
    const float small = 6.1e-5f;   /* SMALL_SCALE_THRESHOLD, a float */
    int32_t qmin = 0, qmax = 255;
    if (reduce_range) {
        qmin = qmin / 2;
        qmax = qmax / 2;
    }
    if (min > 0.0f) min = 0.0f;
    if (max < 0.0f) max = 0.0f;
    if (isinf(min) || isinf(max)) return 0;
    double scale = ((double)max - (double)min) / (double)(qmax - qmin);
    const float fscale = (float)scale;
    if (fscale == 0.0f || isinf(1.0f / fscale)) scale = 0.1;
    if (scale < (double)small) {
        const float org_scale = (float)scale;
        scale = (double)small;
        if (min == 0.0f) {
            max = small * (float)(qmax - qmin);
        } else if (max == 0.0f) {
            min = -small * (float)(qmax - qmin);
        } else {
            const float amplifier = small / org_scale;
            min = min * amplifier;
            max = max * amplifier;
        }
    }
    const double min_over = (double)min / scale, max_over = (double)max / scale;
    const double from_min = (double)qmin - min_over, from_max = (double)qmax - max_over;
    const double err_min = (double)(qmin < 0 ? -qmin : qmin) - fabs(min_over);
    const double err_max = (double)(qmax < 0 ? -qmax : qmax) - fabs(max_over);
    const double initial = err_min < err_max ? from_min : from_max;
    int32_t zp;
    if (initial < (double)qmin) zp = qmin;
    else if (initial > (double)qmax) zp = qmax;
    else zp = (int32_t)nearbyint(initial);
    *scale_out = (float)scale;
    *zp_out = zp;
    return 1;
}

/* quint8 quantize: clamp(zp + nearbyintf(x * inv), 0, 255); NaN -> 0 (the dtype minimum). */
static uint8_t ref_quantize(float x, float inv, int32_t zp) {
    if (isnan(x)) return 0;
    const float r = nearbyintf(x * inv);
    if (r < (float)(0 - zp)) return 0;
    if (r > (float)(255 - zp)) return 255;
    return (uint8_t)((int32_t)r + zp);
}

typedef struct {
    size_t n, k;
    int8_t *w;        /* [n, k] */
    float *ws;        /* [n] expanded (per tensor: repeated) */
    int32_t *zw;      /* [n] expanded */
    float *bias;      /* [n] or NULL */
    /* what the handle was created from */
    int per_channel, affine;
} wdata;

static void minmax_skip_nan(size_t k, const float *x, float *lo, float *hi) {
    for (size_t i = 0; i < k; i++) {
        if (isnan(x[i])) continue;
        if (x[i] < *lo) *lo = x[i];
        if (x[i] > *hi) *hi = x[i];
    }
}

/* y_ref [m, n] (dense). Returns 0 if the input holds an infinity (QuantKit's error). */
static int ref_dynamic_linear(const wdata *d, size_t m, const float *x, size_t x_stride, uint32_t flags,
                              float *y_ref) {
    const size_t n = d->n, k = d->k;
    const int reduce = (flags & QK_DYNAMIC_REDUCE_RANGE) != 0, per_row = (flags & QK_DYNAMIC_PER_ROW) != 0;
    const int relu = (flags & QK_GEMM_RELU) != 0;
    float scale = 0.0f;
    int32_t zp = 0;
    if (!per_row) {
        float lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < m; i++) minmax_skip_nan(k, x + i * x_stride, &lo, &hi);
        if (!ref_qparams(lo, hi, reduce, &scale, &zp)) return 0;
    }
    uint8_t *q = malloc(k + 1);
    for (size_t i = 0; i < m; i++) {
        const float *row = x + i * x_stride;
        if (per_row) {
            float lo = INFINITY, hi = -INFINITY;
            minmax_skip_nan(k, row, &lo, &hi);
            if (!ref_qparams(lo, hi, reduce, &scale, &zp)) { free(q); return 0; }
        }
        const float inv = 1.0f / scale;
        for (size_t kk = 0; kk < k; kk++) q[kk] = ref_quantize(row[kk], inv, zp);
        for (size_t j = 0; j < n; j++) {
            int64_t acc = 0;
            for (size_t kk = 0; kk < k; kk++)
                acc += (int64_t)((int32_t)q[kk] - zp) * (int64_t)((int32_t)d->w[j * k + kk] - d->zw[j]);
            const int32_t raw = (int32_t)(uint32_t)(uint64_t)acc;
            const float s = scale * d->ws[j];
            float v = fmaf((float)raw, s, d->bias ? d->bias[j] : 0.0f);
            if (relu) v = v > 0.0f ? v : 0.0f;   /* maxps(y, 0): NaN and -0 give +0 */
            y_ref[i * n + j] = v;
        }
    }
    free(q);
    return 1;
}

/* ------------------------------------------------------------------------------------------- data */

static wdata make_weights(size_t n, size_t k, int per_channel, int affine, int with_bias) {
    wdata d;
    d.n = n; d.k = k; d.per_channel = per_channel; d.affine = affine;
    d.w = malloc(n * k + 1);
    for (size_t i = 0; i < n * k; i++) d.w[i] = (int8_t)((int32_t)rnd(256) - 128);
    if (n * k > 3) { d.w[0] = -128; d.w[1] = 127; }
    d.ws = malloc((n + 1) * sizeof(float));
    d.zw = malloc((n + 1) * sizeof(int32_t));
    const float s0 = qk_rng_uniform(&rng, 1e-3f, 5e-2f);
    int32_t z0 = (int32_t)rnd(256) - 128;
    if (z0 == 0) z0 = -7;
    d.ws[0] = s0;   /* per tensor reads one entry even when n = 0 */
    d.zw[0] = affine ? z0 : 0;
    for (size_t j = 0; j < n; j++) {
        d.ws[j] = per_channel ? qk_rng_uniform(&rng, 1e-3f, 5e-2f) : s0;
        d.zw[j] = !affine ? 0 : per_channel ? (int32_t)rnd(256) - 128 : z0;
    }
    d.bias = NULL;
    if (with_bias) {
        d.bias = malloc((n + 1) * sizeof(float));
        for (size_t j = 0; j < n; j++) d.bias[j] = qk_rng_uniform(&rng, -5.0f, 5.0f);
        if (n > 2) d.bias[2] = -0.0f;
        if (n > 7) {   /* non-finite biases propagate; ReLU maps NaN to +0 */
            d.bias[5] = NAN;
            d.bias[6] = -INFINITY;
            d.bias[7] = INFINITY;
        }
    }
    return d;
}

static void free_weights(wdata *d) { free(d->w); free(d->ws); free(d->zw); free(d->bias); }

static qk_qs8_gemm_weights *create_handle(const wdata *d) {
    qk_qs8_gemm_weights *h = NULL;
    const qk_status s = qk_qs8_gemm_weights_create(d->n, d->k, d->w, d->per_channel ? QK_QSCHEME_PER_CHANNEL :
                                                   QK_QSCHEME_PER_TENSOR, d->ws, d->affine ? d->zw : NULL, d->bias,
                                                   &h);
    CHECK(s == QK_OK && h, "create n=%zu k=%zu: %s", d->n, d->k, qk_last_error_message());
    return h;
}

/* x [m rows, stride] in a fenced buffer; row gaps hold +inf. dist: 0 symmetric, 1 positive, 2 negative, 3 rows of
 * very different magnitude (per-row outliers) with a zero row, an all-NaN row and scattered NaN, 4 constant rows. */
typedef struct { fenced f; float *x; size_t bytes; } xbuf;
static xbuf make_x(size_t m, size_t k, size_t stride, int dist) {
    xbuf b;
    const size_t elems = m ? (m - 1) * stride + k : 0;
    b.bytes = elems * sizeof(float);
    b.f = fenced_alloc(b.bytes);
    b.x = (float *)(void *)b.f.p;   /* fenced_alloc ends on a page: elems * 4 bytes keep 4-byte alignment */
    for (size_t i = 0; i < elems; i++) b.x[i] = INFINITY;
    const float r = (float)(1u << rnd(8)) * qk_rng_uniform(&rng, 0.01f, 1.0f);
    for (size_t i = 0; i < m; i++) {
        float *row = b.x + i * stride;
        const float rr = dist == 3 ? r * (float)(1u << rnd(12)) * (rnd(4) == 0 ? 1e-3f : 1.0f) : r;
        for (size_t kk = 0; kk < k; kk++) {
            float v;
            switch (dist) {
            case 1: v = qk_rng_uniform(&rng, 0.1f * rr, rr); break;
            case 2: v = -qk_rng_uniform(&rng, 0.1f * rr, rr); break;
            case 4: v = rr * (float)(i % 3) - rr; break;
            default: v = qk_rng_uniform(&rng, -rr, rr * 0.7f); break;
            }
            row[kk] = v;
        }
        if (dist == 3) {
            if (i == 1) for (size_t kk = 0; kk < k; kk++) row[kk] = 0.0f;
            if (i == 2) for (size_t kk = 0; kk < k; kk++) row[kk] = NAN;
            if (i == 4 && k > 1) row[k / 2] = NAN;
            if (i == 5) row[0] = -0.0f;
        }
    }
    return b;
}

/* ------------------------------------------------------------------------------------------- 1. qparams */

static void expect_qparams(float min, float max, uint32_t flags, float want_scale, int32_t want_zp) {
    float s = -1.0f;
    int32_t z = -1;
    const qk_status st = qk_dynamic_qparams(min, max, flags, &s, &z);
    CHECK(st == QK_OK && qk_same_float(s, want_scale) && z == want_zp,
          "qparams(%g, %g, flags 0x%x) = status %d, (%.9g, %d); want (%.9g, %d)", (double)min, (double)max,
          (unsigned)flags, (int)st, (double)s, z, (double)want_scale, want_zp);
}

static void expect_qparams_ref(float min, float max, uint32_t flags) {
    float ws;
    int32_t wz;
    if (!ref_qparams(min, max, (flags & QK_DYNAMIC_REDUCE_RANGE) != 0, &ws, &wz)) {
        float s;
        int32_t z;
        EXPECT_FAIL(qk_dynamic_qparams(min, max, flags, &s, &z), QK_ERROR_INVALID_ARGUMENT);
        return;
    }
    expect_qparams(min, max, flags, ws, wz);
}

/* Random float of random sign and magnitude 2^[-150, 128) (subnormals, zero and huge values included). */
static float random_float(void) {
    switch (rnd(16)) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return (float)((int32_t)rnd(2001) - 1000) * 0.01f;
    default: {
        const uint32_t bits = (uint32_t)(qk_rng_next(&rng) >> 32) & 0x7F7FFFFFu;   /* finite */
        return qk_bits_to_float(bits | (rnd(2) ? 0x80000000u : 0));
    }
    }
}

static void test_qparams(void) {
    const long before = qk_test_failures, checks = qk_test_checks;
    const uint32_t RR = QK_DYNAMIC_REDUCE_RANGE;
    /* all zeros, empty / all-NaN input */
    expect_qparams(0.0f, 0.0f, 0, 0.1f, 0);
    expect_qparams(0.0f, 0.0f, RR, 0.1f, 0);
    expect_qparams(-0.0f, -0.0f, 0, 0.1f, 0);
    expect_qparams(INFINITY, -INFINITY, 0, 0.1f, 0);
    expect_qparams(INFINITY, -INFINITY, RR, 0.1f, 0);
    /* a tiny range: scale raised to 6.1e-5 with min/max rescaled; zp from the side that is 0 */
    expect_qparams(0.0f, 1e-6f, 0, 6.1e-5f, 0);
    expect_qparams(0.0f, 1e-6f, RR, 6.1e-5f, 0);
    expect_qparams(-1e-6f, 0.0f, 0, 6.1e-5f, 255);
    expect_qparams(-1e-6f, 0.0f, RR, 6.1e-5f, 127);
    expect_qparams(-1e-6f, -1e-7f, 0, 6.1e-5f, 255);
    expect_qparams(1e-7f, 1e-6f, RR, 6.1e-5f, 0);
    {   /* both sides tiny: min and max amplified; zp near the middle */
        float s;
        int32_t z;
        CHECK(qk_dynamic_qparams(-1e-7f, 1e-7f, 0, &s, &z) == QK_OK && qk_same_float(s, 6.1e-5f) &&
              (z == 127 || z == 128), "tiny symmetric range: (%.9g, %d)", (double)s, z);
        expect_qparams_ref(-1e-7f, 1e-7f, 0);
        expect_qparams_ref(-3e-7f, 1e-7f, RR);
    }
    /* scale whose float is subnormal has an infinite reciprocal -> 0.1; just above FLT_MIN it is raised instead */
    expect_qparams(0.0f, 1e-40f, 0, 0.1f, 0);
    expect_qparams(0.0f, 1e-37f, 0, 0.1f, 0);
    expect_qparams(0.0f, 1e-35f, 0, 6.1e-5f, 0);
    expect_qparams(-1e-37f, 0.0f, RR, 0.1f, 0);
    /* negative-only and positive-only: the range is extended to include 0 */
    expect_qparams(-5.0f, -1.0f, 0, (float)(5.0 / 255.0), 255);
    expect_qparams(-5.0f, -1.0f, RR, (float)(5.0 / 127.0), 127);
    expect_qparams(1.0f, 5.0f, 0, (float)(5.0 / 255.0), 0);
    expect_qparams(1.0f, 5.0f, RR, (float)(5.0 / 127.0), 0);
    expect_qparams(0.0f, 2.55f, 0, (float)((double)2.55f / 255.0), 0);
    expect_qparams(-2.55f, 0.0f, 0, (float)((double)2.55f / 255.0), 255);
    /* mixed: scale from the double quotient, zp = nearbyint(-min / scale) */
    expect_qparams(-1.0f, 3.0f, 0, (float)(4.0 / 255.0), 64);    /* 63.75 */
    expect_qparams(-1.0f, 3.0f, RR, (float)(4.0 / 127.0), 32);   /* 31.75 */
    expect_qparams(-3.0f, 1.0f, 0, (float)(4.0 / 255.0), 191);   /* 191.25 */
    for (int i = 0; i < 8; i++) expect_qparams_ref(-1.0f - (float)i * 0.125f, 1.0f + (float)i * 0.25f, i % 2 ? RR : 0);
    /* huge finite ranges */
    expect_qparams_ref(-3.4028235e38f, 3.4028235e38f, 0);
    expect_qparams_ref(-3.4028235e38f, 3.4028235e38f, RR);
    expect_qparams_ref(1e38f, 3.4028235e38f, 0);
    /* errors: NaN, a non-finite extended range, null outputs, unknown flags */
    float s;
    int32_t z;
    EXPECT_FAIL(qk_dynamic_qparams(NAN, 1.0f, 0, &s, &z), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_dynamic_qparams(-1.0f, NAN, 0, &s, &z), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_dynamic_qparams(-INFINITY, 1.0f, 0, &s, &z), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_dynamic_qparams(-1.0f, INFINITY, RR, &s, &z), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_dynamic_qparams(INFINITY, INFINITY, 0, &s, &z), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_dynamic_qparams(-INFINITY, -INFINITY, 0, &s, &z), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_dynamic_qparams(-1.0f, 1.0f, 0, NULL, &z), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_dynamic_qparams(-1.0f, 1.0f, 0, &s, NULL), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_dynamic_qparams(-1.0f, 1.0f, QK_DYNAMIC_PER_ROW, &s, &z), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_dynamic_qparams(-1.0f, 1.0f, QK_GEMM_RELU, &s, &z), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_dynamic_qparams(-1.0f, 1.0f, 1u << 31, &s, &z), QK_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(qk_last_error_message(), "flags") != NULL, "message: %s", qk_last_error_message());
    /* random ranges, bit for bit against the reference */
    for (int i = 0; i < 200000; i++) {
        float a = random_float(), b = random_float();
        if (i % 4 == 0) b = a * qk_rng_uniform(&rng, -2.0f, 2.0f);   /* comparable magnitudes */
        if (a > b) { const float t = a; a = b; b = t; }
        expect_qparams_ref(a, b, rnd(2) ? RR : 0);
    }
    printf("%s qparams: %ld checks\n", qk_test_failures == before ? "ok  " : "FAIL", qk_test_checks - checks);
}

/* ------------------------------------------------------------------------------------------- 2./3. linear */

typedef struct { size_t mism, gap, tail; char first[256]; } cmp_result;

/* Runs qk_dynamic_linear_f32 into a fresh y (sentinel-filled gaps and tail) and compares with y_ref. Returns the
 * output buffer (m * y_stride + 8 floats) if keep, else frees it. */
static float *run_and_compare(const qk_qs8_gemm_weights *h, const wdata *d, size_t m, const float *x, size_t x_stride,
                              size_t y_stride, uint32_t flags, const float *y_ref, const char *label, int keep) {
    const size_t n = d->n;
    const size_t total = m * y_stride + 8;
    float *y = malloc(total * sizeof(float));
    const uint32_t sentinel = 0x7FC0DEADu;
    for (size_t i = 0; i < total; i++) y[i] = qk_bits_to_float(sentinel);
    const qk_status s = qk_dynamic_linear_f32(h, m, x, x_stride, y, y_stride, flags);
    CHECK(s == QK_OK, "%s: status %d: %s", label, (int)s, qk_last_error_message());
    cmp_result r;
    memset(&r, 0, sizeof r);
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            const float got = y[i * y_stride + j], want = y_ref[i * n + j];
            if (!qk_same_float(got, want) && !r.mism++)
                snprintf(r.first, sizeof r.first, "first at (%zu,%zu): got %.9g (0x%08x) want %.9g (0x%08x)", i, j,
                         (double)got, qk_float_to_bits(got), (double)want, qk_float_to_bits(want));
        }
        for (size_t j = n; j < y_stride; j++) r.gap += qk_float_to_bits(y[i * y_stride + j]) != sentinel;
    }
    for (size_t i = m * y_stride; i < total; i++) r.tail += qk_float_to_bits(y[i]) != sentinel;
    CHECK(r.mism == 0 && r.gap == 0 && r.tail == 0,
          "%s: m=%zu n=%zu k=%zu xs=%zu ys=%zu flags=0x%x pc=%d affine=%d bias=%d: %zu mismatches, %zu gap and %zu "
          "tail elements written; %s", label, m, n, d->k, x_stride, y_stride, (unsigned)flags, d->per_channel,
          d->affine, d->bias != NULL, r.mism, r.gap, r.tail, r.first);
    if (keep) return y;
    free(y);
    return NULL;
}

static void test_linear_shapes(void) {
    static const size_t Ms[] = {1, 3, 7, 33}, Ks[] = {1, 5, 64, 100}, Ns[] = {1, 8, 17, 50};
    const long before = qk_test_failures, checks = qk_test_checks;
    long cases = 0;
    for (size_t mi = 0; mi < 4; mi++)
        for (size_t ki = 0; ki < 4; ki++)
            for (size_t ni = 0; ni < 4; ni++) {
                const size_t m = Ms[mi], k = Ks[ki], n = Ns[ni];
                for (int wv = 0; wv < 8; wv++) {   /* per channel x affine x bias */
                    wdata d = make_weights(n, k, wv & 1, (wv >> 1) & 1, (wv >> 2) & 1);
                    qk_qs8_gemm_weights *h = create_handle(&d);
                    if (!h) { free_weights(&d); continue; }
                    const size_t x_stride = k + 1 + rnd(5), y_stride = n + 1 + rnd(4);
                    float *y_ref = malloc((m * n + 1) * sizeof(float));
                    for (uint32_t fv = 0; fv < 8; fv++) {   /* reduce_range x relu x per_row */
                        const uint32_t flags = ((fv & 1) ? QK_DYNAMIC_REDUCE_RANGE : 0) | ((fv & 2) ? QK_GEMM_RELU : 0) |
                                               ((fv & 4) ? QK_DYNAMIC_PER_ROW : 0);
                        const int dist = (int)((wv + fv + mi + ki) % 5);
                        xbuf xb = make_x(m, k, x_stride, dist);
                        const int ok = ref_dynamic_linear(&d, m, xb.x, x_stride, flags, y_ref);
                        CHECK(ok, "reference rejected its own input");
                        char label[64];
                        snprintf(label, sizeof label, "linear dist %d", dist);
                        if (ok) run_and_compare(h, &d, m, xb.x, x_stride, y_stride, flags, y_ref, label, 0);
                        cases++;
                        fenced_free(xb.f);
                    }
                    free(y_ref);
                    qk_qs8_gemm_weights_destroy(h);
                    free_weights(&d);
                }
            }
    /* dense strides, K = 0 (x may be NULL: y = bias), a larger K with 8-bit codes */
    {
        wdata d = make_weights(9, 0, 1, 1, 1);
        qk_qs8_gemm_weights *h = create_handle(&d);
        float y_ref[27];
        for (uint32_t f = 0; f < 2 && h; f++) {
            const uint32_t flags = f ? QK_DYNAMIC_PER_ROW | QK_GEMM_RELU : 0;
            ref_dynamic_linear(&d, 3, NULL, 0, flags, y_ref);
            run_and_compare(h, &d, 3, NULL, 0, 9, flags, y_ref, "K = 0", 0);
            cases++;
        }
        qk_qs8_gemm_weights_destroy(h);
        free_weights(&d);
    }
    for (int r = 0; r < 6; r++) {
        const size_t m = 1 + rnd(40), k = 200 + rnd(900), n = 1 + rnd(90);
        wdata d = make_weights(n, k, r & 1, (r >> 1) & 1, 1);
        qk_qs8_gemm_weights *h = create_handle(&d);
        xbuf xb = make_x(m, k, k, r % 4);
        float *y_ref = malloc((m * n + 1) * sizeof(float));
        for (uint32_t fv = 0; fv < 4 && h; fv++) {
            const uint32_t flags = ((fv & 1) ? QK_DYNAMIC_REDUCE_RANGE : 0) | ((fv & 2) ? QK_DYNAMIC_PER_ROW : 0);
            ref_dynamic_linear(&d, m, xb.x, k, flags, y_ref);
            run_and_compare(h, &d, m, xb.x, k, n, flags, y_ref, "large K", 0);
            cases++;
        }
        free(y_ref);
        fenced_free(xb.f);
        qk_qs8_gemm_weights_destroy(h);
        free_weights(&d);
    }
    printf("%s linear (per tensor + per row): %ld cases, %ld checks, ISA %s, %d threads\n",
           qk_test_failures == before ? "ok  " : "FAIL", cases, qk_test_checks - checks, qk_isa_name(),
           qk_get_num_threads());
}

/* Per row must equal per tensor run row by row (each row its own input), and per tensor on one row. */
static void test_per_row_consistency(void) {
    const long before = qk_test_failures;
    const size_t m = 9, k = 37, n = 21;
    wdata d = make_weights(n, k, 1, 1, 1);
    qk_qs8_gemm_weights *h = create_handle(&d);
    xbuf xb = make_x(m, k, k + 3, 3);
    float *y_rows = malloc(m * n * sizeof(float)), *y_one = malloc(n * sizeof(float));
    if (h) {
        const uint32_t flags = QK_DYNAMIC_REDUCE_RANGE | QK_GEMM_RELU;
        CHECK(qk_dynamic_linear_f32(h, m, xb.x, k + 3, y_rows, n, flags | QK_DYNAMIC_PER_ROW) == QK_OK, "per row");
        for (size_t i = 0; i < m; i++) {
            CHECK(qk_dynamic_linear_f32(h, 1, xb.x + i * (k + 3), k, y_one, n, flags) == QK_OK, "one row");
            CHECK(memcmp(y_one, y_rows + i * n, n * sizeof(float)) == 0, "row %zu: per row differs from the row alone",
                  i);
        }
    }
    free(y_rows); free(y_one);
    fenced_free(xb.f);
    qk_qs8_gemm_weights_destroy(h);
    free_weights(&d);
    printf("%s per row == per tensor row by row\n", qk_test_failures == before ? "ok  " : "FAIL");
}

/* ------------------------------------------------------------------------------------------- 4. errors */

static void test_errors(void) {
    const long before = qk_test_failures;
    wdata d = make_weights(3, 4, 0, 0, 0);
    qk_qs8_gemm_weights *h = create_handle(&d);
    float x[12] = {1, -2, 3, 4, 0.5f, 6, 7, 8, 9, -1, 2, 3};
    float y[16];
    static const uint32_t bad_flags[] = {QK_GEMM_ACTIVATIONS_7BIT, 1u << 2, 1u << 7, 1u << 10, 1u << 31,
                                         QK_GEMM_RELU | (1u << 20)};
    for (size_t i = 0; i < sizeof bad_flags / sizeof *bad_flags; i++) {
        EXPECT_FAIL(qk_dynamic_linear_f32(h, 3, x, 4, y, 3, bad_flags[i]), QK_ERROR_INVALID_ARGUMENT);
        CHECK(strstr(qk_last_error_message(), "flags") != NULL, "flags 0x%x message: %s", (unsigned)bad_flags[i],
              qk_last_error_message());
    }
    EXPECT_FAIL(qk_dynamic_linear_f32(NULL, 3, x, 4, y, 3, 0), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_dynamic_linear_f32(h, 3, NULL, 4, y, 3, 0), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_dynamic_linear_f32(h, 3, x, 4, NULL, 3, 0), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_dynamic_linear_f32(h, 3, x, 3, y, 3, 0), QK_ERROR_INVALID_ARGUMENT);   /* x_stride < K */
    EXPECT_FAIL(qk_dynamic_linear_f32(h, 3, x, 4, y, 2, 0), QK_ERROR_INVALID_ARGUMENT);   /* y_stride < N */
    EXPECT_FAIL(qk_dynamic_linear_f32(h, SIZE_MAX / 2, x, 4, y, 3, 0), QK_ERROR_OVERFLOW);
    /* infinities, per tensor and per row; y untouched */
    for (int pos = 0; pos < 3; pos++)
        for (int sign = 0; sign < 2; sign++)
            for (int pr = 0; pr < 2; pr++) {
                float xi[12];
                memcpy(xi, x, sizeof xi);
                xi[pos * 5 + 1] = sign ? -INFINITY : INFINITY;
                for (int i = 0; i < 16; i++) y[i] = 42.0f;
                EXPECT_FAIL(qk_dynamic_linear_f32(h, 3, xi, 4, y, 3, pr ? QK_DYNAMIC_PER_ROW : 0),
                            QK_ERROR_INVALID_ARGUMENT);
                CHECK(strstr(qk_last_error_message(), "infinity") != NULL, "message: %s", qk_last_error_message());
                int untouched = 1;
                for (int i = 0; i < 16; i++) untouched &= y[i] == 42.0f;
                CHECK(untouched, "y written on an infinity error (pos %d, per row %d)", pos, pr);
            }
    /* m = 0 is a no-op, NULL x / y allowed */
    for (int i = 0; i < 16; i++) y[i] = 42.0f;
    CHECK(qk_dynamic_linear_f32(h, 0, NULL, 4, NULL, 3, 0) == QK_OK, "m = 0: %s", qk_last_error_message());
    CHECK(qk_dynamic_linear_f32(h, 0, x, 4, y, 3, QK_DYNAMIC_PER_ROW | QK_GEMM_RELU) == QK_OK && y[0] == 42.0f,
          "m = 0 per row");
    qk_qs8_gemm_weights_destroy(h);
    free_weights(&d);
    /* N = 0: OK with y NULL */
    wdata d0 = make_weights(0, 4, 0, 0, 0);
    h = create_handle(&d0);
    CHECK(qk_dynamic_linear_f32(h, 3, x, 4, NULL, 0, QK_DYNAMIC_PER_ROW) == QK_OK, "N = 0");
    qk_qs8_gemm_weights_destroy(h);
    free_weights(&d0);
    printf("%s errors\n", qk_test_failures == before ? "ok  " : "FAIL");
}

/* ------------------------------------------------------------------------------------------- 5. ISA x threads */

static void test_levels_and_threads(void) {
    static const char *levels[] = {"scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neondot", "neoni8mm"};
    const size_t shapes[][3] = {{1, 1000, 256}, {67, 300, 77}, {130, 64, 40}, {5, 33, 1000}};
    const long before = qk_test_failures;
    char used[160] = "";
    int runs = 0;
    for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++)
        for (int v = 0; v < 8; v++) {
            const size_t m = shapes[sh][0], k = shapes[sh][1], n = shapes[sh][2];
            const uint32_t flags = ((v & 1) ? QK_DYNAMIC_REDUCE_RANGE : 0) | ((v & 2) ? QK_DYNAMIC_PER_ROW : 0) |
                                   ((v & 4) ? QK_GEMM_RELU : 0);
            wdata d = make_weights(n, k, (int)((sh + (size_t)v) & 1), (v >> 1) & 1, v != 3);
            const size_t x_stride = k + 3, y_stride = n + 2;
            xbuf xb = make_x(m, k, x_stride, (v & 2) ? 3 : v % 3);
            float *y_ref = malloc((m * n + 1) * sizeof(float));
            ref_dynamic_linear(&d, m, xb.x, x_stride, flags, y_ref);
            const size_t total = m * y_stride + 8;
            float *first = NULL;
            /* a handle packed at the default level, run at every level (shared layouts run the new kernels) */
            qk_set_isa(NULL);
            qk_qs8_gemm_weights *h_auto = create_handle(&d);
            for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
                if (!qk_isa_supported(levels[l])) continue;
                CHECK(qk_set_isa(levels[l]) == QK_OK, "set_isa %s", levels[l]);
                if (sh == 0 && v == 0) {
                    strncat(used, levels[l], sizeof used - strlen(used) - 2);
                    strcat(used, " ");
                }
                qk_qs8_gemm_weights *h = create_handle(&d);
                for (int threads = 1; threads <= 3 && h; threads++) {
                    qk_set_num_threads(threads);
                    for (int which = 0; which < 2; which++) {
                        char label[96];
                        snprintf(label, sizeof label, "%s (%s), %d threads%s", levels[l],
                                 qk_qs8_gemm_weights_kernel(which ? h_auto : h, (flags & QK_DYNAMIC_REDUCE_RANGE) != 0),
                                 threads, which ? ", handle packed at the default level" : "");
                        float *y = run_and_compare(which ? h_auto : h, &d, m, xb.x, x_stride, y_stride, flags, y_ref,
                                                   label, 1);
                        runs++;
                        if (!first) first = y;
                        else {
                            CHECK(memcmp(first, y, total * sizeof(float)) == 0, "%s: bytes differ from the first run",
                                  label);
                            free(y);
                        }
                    }
                }
                qk_qs8_gemm_weights_destroy(h);
            }
            qk_qs8_gemm_weights_destroy(h_auto);
            qk_set_num_threads(0);
            qk_set_isa(NULL);
            free(first);
            free(y_ref);
            fenced_free(xb.f);
            free_weights(&d);
        }
    printf("%s ISA levels {%s} x threads 1..3: %d runs bit-identical\n", qk_test_failures == before ? "ok  " : "FAIL",
           used, runs);
}

int main(void) {
    CHECK(qk_runtime_init() == QK_OK, "init: %s", qk_last_error_message());
    test_qparams();
    test_errors();
    test_linear_shapes();
    test_per_row_consistency();
    test_levels_and_threads();
    printf("dynamic: %ld checks, %ld failures\n", (long)qk_test_checks, (long)qk_test_failures);
    return qk_test_failures ? 1 : 0;
}
