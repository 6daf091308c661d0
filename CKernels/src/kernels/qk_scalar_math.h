/* Scalar building blocks shared by the reference kernels and the SIMD kernels' tails. */
#ifndef QK_SCALAR_MATH_H
#define QK_SCALAR_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Round half to even under the default rounding mode (never FE_UPWARD etc. inside QuantKit). */
static inline float qk_rint(float x) { return nearbyintf(x); }

/* clamp(nearbyint(v) + zp, qmin, qmax) for 8-bit outputs. Clamping before rounding is equivalent because the bounds
 * are integers, and it keeps the conversion in range. NaN takes the lower bound (the maxps operand order). */
static inline int32_t qk_round_clamp_small(float v, int32_t zp, int32_t qmin, int32_t qmax) {
    const float lo = (float)(qmin - zp), hi = (float)(qmax - zp);
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    return (int32_t)qk_rint(v) + zp;
}

/* The same for int32 outputs, where the bounds are not exact floats: round first, saturate in int64. */
static inline int32_t qk_round_clamp_s32(float v, int32_t zp) {
    if (v != v) return INT32_MIN;
    const float r = qk_rint(v);
    int64_t q;
    if (r >= 9.2233720e18f) q = INT64_MAX / 2;
    else if (r <= -9.2233720e18f) q = INT64_MIN / 2;
    else q = (int64_t)r;
    if (q > (int64_t)INT32_MAX * 4) q = (int64_t)INT32_MAX * 4;
    if (q < (int64_t)INT32_MIN * 4) q = (int64_t)INT32_MIN * 4;
    q += zp;
    return q > INT32_MAX ? INT32_MAX : q < INT32_MIN ? INT32_MIN : (int32_t)q;
}

static inline uint32_t qk_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float qk_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* fp32 -> fp16 bits, round half to even; subnormals kept; NaN keeps sign and top payload bits, quiet bit set. */
static inline uint16_t qk_f32_to_f16_bits(float f) {
    const uint32_t x = qk_f32_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));   /* NaN */
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);   /* >= 65520 rounds to infinity (and inf) */
    if (ax >= 0x38800000u) {                                     /* normal half: |f| >= 2^-14 */
        const uint32_t mant_rounded = ax + 0x0FFFu + ((ax >> 13) & 1u);
        return (uint16_t)(sign | ((mant_rounded - 0x38000000u) >> 13));
    }
    if (ax < 0x33000000u) return sign;                           /* < 2^-25 (half of the smallest subnormal) */
    /* subnormal half: value = m * 2^-24 with m = round(|f| * 2^24) */
    const uint32_t e = ax >> 23;                                 /* 102..112 */
    const uint32_t m = (ax & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - e;                              /* 14..24 */
    uint32_t h = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

/* fp16 bits -> fp32, exact; NaN gets the quiet bit. */
static inline float qk_f16_bits_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    uint32_t bits;
    if (e == 0x1F) bits = sign | 0x7F800000u | (m ? (0x400000u | (m << 13)) : 0);
    else if (e != 0) bits = sign | ((e + 112u) << 23) | (m << 13);
    else if (m == 0) bits = sign;
    else {                                                       /* subnormal: normalise */
        uint32_t ee = 113u;
        uint32_t mm = m;
        while (!(mm & 0x400u)) { mm <<= 1; ee--; }
        bits = sign | (ee << 23) | ((mm & 0x3FFu) << 13);
    }
    return qk_bits_f32(bits);
}

/* fp32 -> bf16 bits, round half to even (subnormals kept, overflow to infinity); NaN keeps its sign and top payload
 * bits with the quiet bit set. Branch-free on the number path, so loops of it vectorise. */
static inline uint16_t qk_f32_to_bf16_bits(float f) {
    const uint32_t x = qk_f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x0040u);
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

/* bf16 bits -> fp32, exact. */
static inline float qk_bf16_bits_to_f32(uint16_t h) { return qk_bits_f32((uint32_t)h << 16); }

#endif /* QK_SCALAR_MATH_H */
