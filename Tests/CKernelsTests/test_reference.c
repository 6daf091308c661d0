/* The scalar references against independent oracles: they define the numerics every SIMD path must reproduce. */
#include "qk_test.h"

#include "qk_kernels.h"
#include "qk_scalar_math.h"

_Atomic long qk_test_failures = 0;
_Atomic long qk_test_checks = 0;

/* f16 -> f32 from the IEEE definition. */
static void check_f16_to_f32(void) {
    for (uint32_t h = 0; h < 65536; h++) {
        const int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
        const float got = qk_f16_bits_to_f32((uint16_t)h);
        if (e == 31) {
            if (m == 0) CHECK(isinf(got) && (signbit(got) != 0) == sign, "h=%04x", h);
            else CHECK(isnan(got) && (signbit(got) != 0) == sign && (qk_float_to_bits(got) & 0x400000u) &&
                       ((qk_float_to_bits(got) >> 13) & 511) == (uint32_t)(m & 511), "NaN h=%04x -> %08x", h, qk_float_to_bits(got));
            continue;
        }
        const double v = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
        const float want = (float)(sign ? -v : v);
        CHECK(qk_same_float(got, want), "h=%04x got %a want %a", h, (double)got, (double)want);
    }
}

/* f32 -> f16: the result must be the nearest half (ties to even mantissa), overflow to inf from 65520 up. */
static void check_f32_to_f16(void) {
    qk_rng rng = {12345};
    for (long i = 0; i < 2000000; i++) {
        const uint32_t bits = i < 1000000 ? (uint32_t)qk_rng_next(&rng) : (uint32_t)(0x33000000u + (i - 1000000) * 7919u % 0x14800000u);
        const float f = qk_bits_to_float(bits);
        const uint16_t h = qk_f32_to_f16_bits(f);
        if (isnan(f)) {
            CHECK(((h >> 10) & 31) == 31 && (h & 0x200) && (h >> 15) == (bits >> 31), "NaN %08x -> %04x", bits, h);
            continue;
        }
        const double a = fabs((double)f);
        const int sign = (h >> 15) & 1;
        CHECK(sign == (int)(bits >> 31), "sign of %08x", bits);
        if (a >= 65520.0) { CHECK((h & 0x7FFF) == 0x7C00, "%a should overflow, got %04x", (double)f, h); continue; }
        const double got = fabs((double)qk_f16_bits_to_f32(h));
        const uint16_t mag = h & 0x7FFF;
        const double below = mag ? fabs((double)qk_f16_bits_to_f32((uint16_t)(mag - 1))) : -1.0;
        const double above = mag < 0x7BFF ? fabs((double)qk_f16_bits_to_f32((uint16_t)(mag + 1))) : 65536.0;   /* the next binade step; the midpoint 65520 overflows */
        const double d = fabs(got - a);
        CHECK(d <= fabs(a - below) && d <= fabs(above - a), "%a -> %04x is not nearest", (double)f, h);
        if (d == fabs(a - below) && mag) CHECK((mag & 1) == 0, "%a tie not to even (%04x)", (double)f, h);
        if (d == fabs(above - a) && mag < 0x7BFF) CHECK((mag & 1) == 0, "%a tie not to even (%04x)", (double)f, h);
    }
}

/* PyTorch's quantize rule, with the cases the reference study verified. */
static void check_quantize_rule(void) {
    uint8_t q;
    /* reciprocal, not division: x/s = 127.49999 but x * (1/s) = 127.5 -> 128 */
    const float s = 0.00214854861f, x = 0.273939937f;
    qk_f32_qu8_quantize__scalar(1, &x, &q, 1.0f / s, 0);
    CHECK(q == 128, "reciprocal rule: got %d", q);
    const float ties[] = {0.5f, 1.5f, 2.5f, -1.5f, -0.5f};
    const int want0[] = {0, 2, 2, -2, 0};
    for (int i = 0; i < 5; i++) {
        int8_t r;
        qk_f32_qs8_quantize__scalar(1, &ties[i], &r, 1.0f, 0);
        CHECK(r == want0[i], "tie %g -> %d, want %d", (double)ties[i], r, want0[i]);
    }
    const float two_and_half = 2.5f;   /* zp added after rounding: 2.5 -> 2, + 3 = 5 (not 6) */
    qk_f32_qu8_quantize__scalar(1, &two_and_half, &q, 1.0f, 3);
    CHECK(q == 5, "zero point after rounding: got %d", q);
    const float specials[] = {NAN, INFINITY, -INFINITY, 1e30f, -1e30f};
    const int want_u8[] = {0, 255, 0, 255, 0};
    for (int i = 0; i < 5; i++) {
        qk_f32_qu8_quantize__scalar(1, &specials[i], &q, 1.0f, 128);
        CHECK(q == want_u8[i], "special %g -> %d, want %d", (double)specials[i], q, want_u8[i]);
    }
    int32_t q32;
    const float big = 3e9f;
    qk_f32_qs32_quantize__scalar(1, &big, &q32, 1.0f, 0);
    CHECK(q32 == INT32_MAX, "qint32 saturates: %d", q32);
    qk_f32_qs32_quantize__scalar(1, &big, &q32, 1.0f, INT32_MIN);
    CHECK(q32 == 3000000000LL + INT32_MIN, "qint32 zero point after saturation-free rounding: %d", q32);
    const float neg = -2.5f;
    qk_f32_qs32_quantize__scalar(1, &neg, &q32, 1.0f, -1);
    CHECK(q32 == -3, "qint32 -2.5 + (-1): %d", q32);
    qk_f32_qs32_quantize__scalar(1, &specials[0], &q32, 1.0f, 7);
    CHECK(q32 == INT32_MIN, "qint32 NaN: %d", q32);
}

/* Dequantize: two roundings, (q - zp) first. */
static void check_dequantize_rule(void) {
    const int32_t q = 16777217;   /* not a float: (float)q rounds to 16777216 */
    float y;
    qk_qs32_f32_dequantize__scalar(1, &q, &y, 1.0f, 1);
    CHECK(y == 16777215.0f, "(float)q - (float)zp: got %.1f", (double)y);
    const uint8_t u = 200;
    qk_qu8_f32_dequantize__scalar(1, &u, &y, 0.1f, 100);
    CHECK(qk_same_float(y, 100.0f * 0.1f), "dequantize 200,zp 100,s 0.1: %a", (double)y);
}

/* Requantize ties go to even: raw * 2.5 for raw = 1, 5, 3, -1 gives 2, 12, 8, -2 (PyTorch, all engines). */
static void check_requantize_rule(void) {
    const int32_t acc[] = {1, 5, 3, -1};
    const int want[] = {2, 12, 8, -2};
    int8_t y[4];
    qk_qs32_qs8_requantize__scalar(4, acc, y, 2.5f, 0, -128, 127);
    for (int i = 0; i < 4; i++) CHECK(y[i] == want[i], "raw %d * 2.5 -> %d, want %d", acc[i], y[i], want[i]);
    uint8_t u[4];
    qk_qs32_qu8_requantize__scalar(4, acc, u, 2.5f, 10, 10, 255);   /* fused ReLU: lower clamp at the zero point */
    CHECK(u[0] == 12 && u[3] == 10, "relu clamp: %d %d", u[0], u[3]);
    const int32_t extremes[] = {INT32_MAX, INT32_MIN};
    qk_qs32_qu8_requantize__scalar(2, extremes, u, 1.0f, 0, 0, 255);
    CHECK(u[0] == 255 && u[1] == 0, "extremes saturate: %d %d", u[0], u[1]);
}

int main(void) {
    check_f16_to_f32();
    check_f32_to_f16();
    check_quantize_rule();
    check_dequantize_rule();
    check_requantize_rule();
    printf("reference numerics: %ld checks, %ld failures\n", qk_test_checks, qk_test_failures);
    return qk_test_failures != 0;
}
