/*
 * The public C API: every ISA level the CPU has gives the scalar level's results bit for bit, per-channel views
 * match a plain loop, thread counts do not change results, and bad input returns a status with a message.
 */
#include "qk_test.h"

#include "quantkit.h"
#include "qk_scalar_math.h"

_Atomic long qk_test_failures = 0;
_Atomic long qk_test_checks = 0;

static const char *all_levels[] = {"scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neondot", "neoni8mm"};
#define NLEVELS (sizeof all_levels / sizeof all_levels[0])

#define N_BIG ((size_t)3 * 65536 + 4321)   /* several tiles plus a ragged end */

typedef struct outputs {
    uint8_t *qu8, *qu8_pc, *qu8_pc_inner, *rq, *rq_pc;
    int8_t *qs8, *rqs8;
    int32_t *qs32;
    float *dq, *dq_pc, *dq32, *f32_back;
    uint16_t *f16, *f16_sat;
    size_t saturated;
    float lo, hi, lo_finite, hi_finite;
} outputs;

static float *x_data;
static int32_t *acc_data;

static void make_inputs(void) {
    qk_rng rng = {42};
    x_data = malloc(N_BIG * sizeof(float));
    acc_data = malloc(N_BIG * sizeof(int32_t));
    for (size_t i = 0; i < N_BIG; i++) {
        const uint64_t r = qk_rng_next(&rng) % 64;
        x_data[i] = r == 0 ? NAN : r == 1 ? INFINITY : r == 2 ? -1e9f : r < 8 ? (float)((int)(i % 512) - 256) * 0.5f
                  : r < 12 ? qk_bits_to_float((uint32_t)qk_rng_next(&rng)) : qk_rng_uniform(&rng, -3.0f, 3.0f);
        acc_data[i] = r < 4 ? (int32_t)qk_rng_next(&rng) : (int32_t)(qk_rng_next(&rng) % 100001) - 50000;
    }
}

static void compute(outputs *o) {
    const size_t n = N_BIG;
    /* calloc: the per-channel views below cover slightly fewer than n elements */
    o->qu8 = calloc(n, 1); o->qu8_pc = calloc(n, 1); o->qu8_pc_inner = calloc(n, 1); o->rq = calloc(n, 1);
    o->rq_pc = calloc(n, 1); o->qs8 = calloc(n, 1); o->rqs8 = calloc(n, 1); o->qs32 = calloc(n, 4);
    o->dq = calloc(n, 4); o->dq_pc = calloc(n, 4); o->dq32 = calloc(n, 4); o->f32_back = calloc(n, 4);
    o->f16 = calloc(n, 2); o->f16_sat = calloc(n, 2);
    static const float scales[7] = {0.01f, 0.02f, 0.5f, 1.0f, 0.0173f, 3.0f, 0.002f};
    static const int32_t zps[7] = {0, 128, 255, 7, 193, 1, 64};
    static const float mults[7] = {0.001f, 0.37f, 1.0f / 256, 2.5f, 1e-5f, 0.5f, 0.75f};
    CHECK(qk_quantize_per_tensor(QK_DTYPE_QUINT8, n, x_data, o->qu8, 0.0173f, 193) == QK_OK, "quantize qu8");
    CHECK(qk_quantize_per_tensor(QK_DTYPE_QINT8, n, x_data, o->qs8, 0.02f, -3) == QK_OK, "quantize qs8");
    CHECK(qk_quantize_per_tensor(QK_DTYPE_QINT32, n, x_data, o->qs32, 1e-4f, -2) == QK_OK, "quantize qs32");
    CHECK(qk_quantize_per_channel(QK_DTYPE_QUINT8, n / 7, 7, 1, x_data, o->qu8_pc, scales, zps) == QK_OK, "pc");
    CHECK(qk_quantize_per_channel(QK_DTYPE_QUINT8, 3, 7, n / 21, x_data, o->qu8_pc_inner, scales, zps) == QK_OK, "pc");
    CHECK(qk_dequantize_per_tensor(QK_DTYPE_QUINT8, n, o->qu8, o->dq, 0.0173f, 193) == QK_OK, "dequantize");
    CHECK(qk_dequantize_per_tensor(QK_DTYPE_QINT32, n, acc_data, o->dq32, 1e-3f, 5) == QK_OK, "dequantize qs32");
    CHECK(qk_dequantize_per_channel(QK_DTYPE_QUINT8, n / 7, 7, 1, o->qu8, o->dq_pc, scales, zps) == QK_OK, "dq pc");
    CHECK(qk_requantize(QK_DTYPE_QUINT8, n, acc_data, o->rq, 0.0173f, 100, 100, 255) == QK_OK, "requantize");
    CHECK(qk_requantize(QK_DTYPE_QINT8, n, acc_data, o->rqs8, 1.0f / 512, -4, -128, 127) == QK_OK, "requantize qs8");
    CHECK(qk_requantize_per_channel(QK_DTYPE_QUINT8, n / 7, 7, 1, acc_data, o->rq_pc, mults, 3, 0, 255) == QK_OK, "rq pc");
    CHECK(qk_f32_to_f16(n, x_data, o->f16) == QK_OK, "f32->f16");
    CHECK(qk_f32_to_f16_saturate(n, x_data, o->f16_sat, &o->saturated) == QK_OK, "f32->f16 sat");
    CHECK(qk_f16_to_f32(n, o->f16, o->f32_back) == QK_OK, "f16->f32");
    CHECK(qk_minmax_f32(n, x_data, 0, &o->lo, &o->hi) == QK_OK, "minmax");
    CHECK(qk_minmax_f32(n, x_data, QK_MINMAX_FINITE_ONLY, &o->lo_finite, &o->hi_finite) == QK_OK, "minmax finite");
}

static void release(outputs *o) {
    free(o->qu8); free(o->qu8_pc); free(o->qu8_pc_inner); free(o->rq); free(o->rq_pc); free(o->qs8); free(o->rqs8);
    free(o->qs32); free(o->dq); free(o->dq_pc); free(o->dq32); free(o->f32_back); free(o->f16); free(o->f16_sat);
}

static void compare(const outputs *a, const outputs *b, const char *what) {
    const size_t n = N_BIG;
    CHECK(!memcmp(a->qu8, b->qu8, n) && !memcmp(a->qs8, b->qs8, n) && !memcmp(a->qs32, b->qs32, 4 * n),
          "%s: quantize differs", what);
    CHECK(!memcmp(a->qu8_pc, b->qu8_pc, n) && !memcmp(a->qu8_pc_inner, b->qu8_pc_inner, n), "%s: per-channel differs", what);
    CHECK(!memcmp(a->dq, b->dq, 4 * n) && !memcmp(a->dq_pc, b->dq_pc, 4 * n) && !memcmp(a->dq32, b->dq32, 4 * n),
          "%s: dequantize differs", what);
    CHECK(!memcmp(a->rq, b->rq, n) && !memcmp(a->rqs8, b->rqs8, n) && !memcmp(a->rq_pc, b->rq_pc, n),
          "%s: requantize differs", what);
    CHECK(!memcmp(a->f16, b->f16, 2 * n) && !memcmp(a->f16_sat, b->f16_sat, 2 * n) &&
          !memcmp(a->f32_back, b->f32_back, 4 * n) && a->saturated == b->saturated, "%s: fp16 differs", what);
    CHECK(a->lo == b->lo && a->hi == b->hi && a->lo_finite == b->lo_finite && a->hi_finite == b->hi_finite,
          "%s: minmax differs", what);
}

/* Per-channel operators against a plain loop over the [outer, channels, inner] view. */
static void check_per_channel_views(void) {
    static const size_t views[][3] = {{1, 1, 1}, {1, 5, 1}, {4, 3, 7}, {2, 17, 1}, {1, 3, 70000}, {9000, 9, 1},
                                      {5, 1, 33}, {0, 4, 5}, {3, 4, 0}};
    qk_rng rng = {7};
    for (size_t v = 0; v < sizeof views / sizeof views[0]; v++) {
        const size_t outer = views[v][0], ch = views[v][1], inner = views[v][2], n = outer * ch * inner;
        float *x = malloc(n * 4 + 4), *sc = malloc(ch * 4), *dq = malloc(n * 4 + 4);
        int32_t *zp = malloc(ch * 4);
        int8_t *q = malloc(n + 1);
        for (size_t i = 0; i < n; i++) x[i] = qk_rng_uniform(&rng, -4.0f, 4.0f);
        for (size_t c = 0; c < ch; c++) { sc[c] = 0.01f + 0.03f * (float)c; zp[c] = (int32_t)(c % 20) - 10; }
        CHECK(qk_quantize_per_channel(QK_DTYPE_QINT8, outer, ch, inner, x, q, sc, zp) == QK_OK, "view %zu", v);
        CHECK(qk_dequantize_per_channel(QK_DTYPE_QINT8, outer, ch, inner, q, dq, sc, zp) == QK_OK, "view %zu", v);
        size_t bad = 0;
        for (size_t o = 0; o < outer; o++)
            for (size_t c = 0; c < ch; c++)
                for (size_t i = 0; i < inner; i++) {
                    const size_t k = (o * ch + c) * inner + i;
                    const int32_t want = qk_round_clamp_small(x[k] * (1.0f / sc[c]), zp[c], -128, 127);
                    bad += q[k] != want || !qk_same_float(dq[k], ((float)want - (float)zp[c]) * sc[c]);
                }
        CHECK(bad == 0, "view [%zu,%zu,%zu]: %zu mismatches", outer, ch, inner, bad);
        free(x); free(sc); free(dq); free(zp); free(q);
    }
}

#define EXPECT_FAIL(call, status)                                                                         \
    do {                                                                                                  \
        const qk_status s_ = (call);                                                                      \
        CHECK(s_ == (status), "%s returned %d (%s), want %d", #call, (int)s_, qk_status_string(s_), (int)(status)); \
        CHECK(strlen(qk_last_error_message()) > 10, "%s left no message", #call);                         \
    } while (0)

static void check_validation(void) {
    float x[4] = {1, 2, 3, 4}, y[4];
    uint8_t q[4] = {9, 9, 9, 9};
    int32_t acc[4] = {1, 2, 3, 4};
    const float bad_scales[] = {0.0f, -1.0f, NAN, INFINITY, 1e-39f};
    for (size_t i = 0; i < sizeof bad_scales / sizeof bad_scales[0]; i++) {
        EXPECT_FAIL(qk_quantize_per_tensor(QK_DTYPE_QUINT8, 4, x, q, bad_scales[i], 0), QK_ERROR_INVALID_ARGUMENT);
        EXPECT_FAIL(qk_dequantize_per_tensor(QK_DTYPE_QUINT8, 4, q, y, bad_scales[i], 0), QK_ERROR_INVALID_ARGUMENT);
    }
    CHECK(q[0] == 9 && q[3] == 9, "a failed call wrote its output");
    EXPECT_FAIL(qk_quantize_per_tensor(QK_DTYPE_QUINT8, 4, x, q, 1.0f, 256), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_quantize_per_tensor(QK_DTYPE_QUINT8, 4, x, q, 1.0f, -1), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_quantize_per_tensor(QK_DTYPE_QINT8, 4, x, q, 1.0f, 128), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_quantize_per_tensor((qk_dtype)7, 4, x, q, 1.0f, 0), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_quantize_per_tensor(QK_DTYPE_QUINT8, 4, NULL, q, 1.0f, 0), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_quantize_per_tensor(QK_DTYPE_QUINT8, 4, x, NULL, 1.0f, 0), QK_ERROR_INVALID_ARGUMENT);
    CHECK(qk_quantize_per_tensor(QK_DTYPE_QUINT8, 0, NULL, NULL, 1.0f, 0) == QK_OK, "n = 0 with NULL is fine");
    const float scales[2] = {1.0f, -2.0f};
    const int32_t zps[2] = {0, 0}, bad_zps[2] = {0, 300};
    EXPECT_FAIL(qk_quantize_per_channel(QK_DTYPE_QUINT8, 2, 2, 1, x, q, scales, zps), QK_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(qk_last_error_message(), "scales[1]") != NULL, "message names the channel: %s", qk_last_error_message());
    const float good[2] = {1.0f, 2.0f};
    EXPECT_FAIL(qk_quantize_per_channel(QK_DTYPE_QUINT8, 2, 2, 1, x, q, good, bad_zps), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_quantize_per_channel(QK_DTYPE_QUINT8, 2, 2, 1, x, q, NULL, zps), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_quantize_per_channel(QK_DTYPE_QUINT8, SIZE_MAX / 2, 4, 1, x, q, good, zps), QK_ERROR_OVERFLOW);
    EXPECT_FAIL(qk_requantize(QK_DTYPE_QINT32, 4, acc, q, 1.0f, 0, 0, 255), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_requantize(QK_DTYPE_QUINT8, 4, acc, q, 0.0f, 0, 0, 255), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_requantize(QK_DTYPE_QUINT8, 4, acc, q, 1.0f, 0, 10, 5), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_requantize(QK_DTYPE_QINT8, 4, acc, q, 1.0f, 0, -129, 5), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_requantize_per_channel(QK_DTYPE_QUINT8, 2, 2, 1, acc, q, scales, 0, 0, 255), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_f32_to_f16(4, NULL, (uint16_t *)y), QK_ERROR_INVALID_ARGUMENT);
    float lo, hi;
    EXPECT_FAIL(qk_minmax_f32(4, x, 0, NULL, &hi), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_minmax_f32(4, x, 0x80, &lo, &hi), QK_ERROR_INVALID_ARGUMENT);
    CHECK(qk_minmax_f32(0, NULL, 0, &lo, &hi) == QK_OK && lo == INFINITY && hi == -INFINITY, "empty minmax");
    EXPECT_FAIL(qk_set_num_threads(-1), QK_ERROR_INVALID_ARGUMENT);
    EXPECT_FAIL(qk_set_num_threads(QK_MAX_THREADS + 1), QK_ERROR_INVALID_ARGUMENT);
}

static void check_isa_selection(void) {
    const char *before = qk_isa_name();
    EXPECT_FAIL(qk_set_isa("avx9000"), QK_ERROR_UNKNOWN_ISA);
    CHECK(!strcmp(qk_isa_name(), before), "a failed qk_set_isa changed the ISA");
    for (size_t i = 0; i < NLEVELS; i++)
        if (!qk_isa_supported(all_levels[i])) {
            EXPECT_FAIL(qk_set_isa(all_levels[i]), QK_ERROR_UNSUPPORTED_ISA);
            CHECK(!strcmp(qk_isa_name(), before), "a failed qk_set_isa changed the ISA");
        }
    CHECK(qk_isa_supported("scalar"), "scalar is always supported");
    CHECK(!qk_isa_supported("nonsense") && !qk_isa_supported(NULL), "unknown names are unsupported");
    CHECK(qk_set_isa("auto") == QK_OK && qk_set_isa(NULL) == QK_OK, "auto");
}

/* Run as `test_operators env-invalid` with QUANTKIT_ISA set to something impossible. */
static int check_invalid_environment(void) {
    const char *env = getenv("QUANTKIT_ISA");
    const qk_status s = qk_runtime_init();
    CHECK(s == QK_ERROR_UNKNOWN_ISA || s == QK_ERROR_UNSUPPORTED_ISA, "QUANTKIT_ISA=%s: init returned %d", env, (int)s);
    CHECK(strstr(qk_last_error_message(), "QUANTKIT_ISA") != NULL, "message: %s", qk_last_error_message());
    CHECK(!strcmp(qk_isa_name(), "none"), "isa name after a failed init: %s", qk_isa_name());
    float x = 1.0f;
    uint8_t q = 0;
    CHECK(qk_quantize_per_tensor(QK_DTYPE_QUINT8, 1, &x, &q, 1.0f, 0) == s, "kernels refuse to run");
    CHECK(qk_set_isa("scalar") == QK_OK && !strcmp(qk_isa_name(), "scalar"), "qk_set_isa recovers");
    CHECK(qk_quantize_per_tensor(QK_DTYPE_QUINT8, 1, &x, &q, 1.0f, 0) == QK_OK && q == 1, "kernels run again");
    printf("invalid QUANTKIT_ISA: %ld checks, %ld failures\n", qk_test_checks, qk_test_failures);
    return qk_test_failures != 0;
}

/* Run as `test_operators env-forced NAME` with QUANTKIT_ISA=NAME. */
static int check_forced_environment(const char *name) {
    CHECK(qk_runtime_init() == QK_OK, "init with QUANTKIT_ISA=%s: %s", name, qk_last_error_message());
    CHECK(!strcmp(qk_isa_name(), name), "QUANTKIT_ISA=%s gave %s", name, qk_isa_name());
    printf("QUANTKIT_ISA=%s: %ld checks, %ld failures\n", name, qk_test_checks, qk_test_failures);
    return qk_test_failures != 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "env-invalid")) return check_invalid_environment();
    if (argc > 2 && !strcmp(argv[1], "env-forced")) {
        if (!qk_isa_supported(argv[2])) { printf("skip: CPU lacks %s\n", argv[2]); return 77; }
        return check_forced_environment(argv[2]);
    }
    make_inputs();
    CHECK(qk_runtime_init() == QK_OK, "init: %s", qk_last_error_message());
    printf("cpu features: ");
    char names[256];
    qk_cpu_feature_names(names, sizeof names);
    printf("%s; default ISA %s; backend %s, %d threads\n", names, qk_isa_name(), qk_thread_backend(), qk_get_num_threads());

    CHECK(qk_set_isa("scalar") == QK_OK, "scalar");
    outputs ref;
    compute(&ref);
    for (size_t i = 1; i < NLEVELS; i++) {
        if (!qk_isa_supported(all_levels[i])) { printf("skip level %s (CPU lacks it)\n", all_levels[i]); continue; }
        CHECK(qk_set_isa(all_levels[i]) == QK_OK, "set %s", all_levels[i]);
        for (int threads = 1; threads <= 5; threads += 2) {
            qk_set_num_threads(threads);
            outputs o;
            compute(&o);
            char what[64];
            snprintf(what, sizeof what, "%s with %d threads", all_levels[i], threads);
            compare(&ref, &o, what);
            release(&o);
        }
        printf("level %-10s = scalar for 1, 3, 5 threads\n", all_levels[i]);
    }
    qk_set_num_threads(0);
    qk_set_isa(NULL);
    release(&ref);
    check_per_channel_views();
    check_validation();
    check_isa_selection();
    printf("operators: %ld checks, %ld failures\n", qk_test_checks, qk_test_failures);
    return qk_test_failures != 0;
}
