/*
 * eg_requantize.h: the fixed-point scaling of TFLite's int8 specification,
 * as static inline functions. Private to runtime_c/: the kernels inline it
 * into their per-output work (a call per output costs more than the
 * scaling itself), and requantize.c exposes it as the public
 * eg_requantize and its two building blocks.
 *
 * An int32 accumulator is scaled by a real factor M = multiplier * 2^(shift - 31)
 * with multiplier a Q31 value in [2^30, 2^31) (or 0). Two roundings exist
 * (eg_rounding); both are reproduced here bit for bit, for every int32
 * input, without undefined or implementation-defined behaviour:
 *  - no signed left shift of a negative value (products are taken instead);
 *  - no signed right shift of a negative value (rq_asr32/rq_asr64 below);
 *  - no signed overflow (64-bit products, explicit saturation).
 */
#ifndef EG_REQUANTIZE_H
#define EG_REQUANTIZE_H

#include <stdint.h>

#include "eg_runtime.h"

/* floor(x / 2^n), n in [0, 31]. For x < 0, ~x == -x - 1 >= 0 (int32_t is
 * two's complement by definition), so the shift only sees a non-negative
 * value: floor(x / 2^n) == ~((-x - 1) >> n). Compilers emit one arithmetic
 * shift for this. */
static inline int32_t rq_asr32(int32_t x, int32_t n)
{
    return x < 0 ? ~(~x >> n) : x >> n;
}

/* floor(x / 2^n), n in [0, 63]; as asr32. */
static inline int64_t rq_asr64(int64_t x, int32_t n)
{
    return x < 0 ? ~(~x >> n) : x >> n;
}

/* The high 32 bits of a 64-bit two's-complement value, as int32 (a
 * portable reinterpretation; compilers emit nothing for it). */
static inline int32_t rq_high_word(uint64_t x)
{
    const uint32_t high = (uint32_t)(x >> 32);
    return high <= (uint32_t)INT32_MAX ? (int32_t)high : -(int32_t)(~high) - 1;
}

static inline int32_t rq_saturate_int32(int64_t x)
{
    if (x > INT32_MAX) {
        return INT32_MAX;
    }
    if (x < INT32_MIN) {
        return INT32_MIN;
    }
    return (int32_t)x;
}

static inline int32_t rq_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    /* gemmlowp adds 2^30 (or 1 - 2^30 to a negative product) and divides by
     * 2^31 truncating; both cases equal floor((ab + 2^30) / 2^31), i.e.
     * round(ab / 2^31) with ties toward +infinity. |ab| <= 2^62 - 2^31 here,
     * so the sum cannot overflow and the result fits int32. */
    return (int32_t)rq_asr64(ab + ((int64_t)1 << 30), 31);
}

static inline int32_t rq_rdbp(int32_t x, int32_t exponent)
{
    uint32_t mask;
    int32_t remainder;
    int32_t threshold;
    if (exponent <= 0) {
        return x;
    }
    if (exponent > 31) {
        exponent = 31;
    }
    mask = ((uint32_t)1 << exponent) - 1u;
    /* The low bits of x's two's-complement representation: x mod 2^exponent. */
    remainder = (int32_t)((uint32_t)x & mask);
    /* Round half away from zero: a negative x's tie goes down. */
    threshold = (int32_t)(mask >> 1) + (x < 0 ? 1 : 0);
    /* asr32 <= 2^30 - 1 for exponent >= 1, so adding 1 cannot overflow. */
    return rq_asr32(x, exponent) + (remainder > threshold ? 1 : 0);
}

/* rq_srdhm for b >= 0, where the overflow case a == b == INT32_MIN cannot
 * occur: the same value without the test. */
static inline int32_t rq_srdhm_nonnegative(int32_t a, int32_t b)
{
    const int64_t ab = (int64_t)a * (int64_t)b;
    return (int32_t)rq_asr64(ab + ((int64_t)1 << 30), 31);
}

/* Double rounding by a right shift of at least 2 (shift = -2 - k, k in
 * [0, 29]), the shift of nearly every layer, in one 32x32+64-bit
 * multiply-accumulate and three 32-bit operations. With x = SRDHM(acc,
 * multiplier) = floor(P / 2^31), P = acc * multiplier + 2^30, RDBP rounds
 * x / 2^e (e = k + 2) half away from zero:
 *   floor((x - [x < 0] + 2^(e-1)) / 2^e) = floor((floor(y / 2^(e-1)) + 1) / 2)
 * with y = x - [x < 0] = floor((P - 2^31 [x < 0]) / 2^31) (nested floors
 * of divisions by integers merge). [x < 0] may be taken as [acc < 0]:
 * multiplier >= 0, so the two differ only where x == 0, whose result is 0
 * either way (no tie at 0 for e >= 1). And floor(Q / 2^(30 + e)) for the
 * int64 Q = P - 2^31 [acc < 0] is floor(high word of Q / 2^k): the high
 * word, shifted by k, then (t + 1) >> 1. |Q| < 2^62 + 2^31, so t + 1
 * cannot overflow. On Arm: SMLAL into {0x40000000 or 0xC0000000, 0 or -1}
 * (both from acc's sign), then ASR, ADD, ASR. */
static inline int32_t rq_scale_double_right(int32_t acc, int32_t multiplier, int32_t k)
{
#if defined(__GNUC__) && defined(__thumb2__) && !defined(EG_NO_INLINE_ASM)
    /* The nudge in two instructions (GCC 12 takes three): the sign word,
     * then 0x40000000 with the sign in bit 31. */
    int32_t high;
    uint32_t low;
    __asm__("asr %[high], %[acc], #31\n\t"
            "eor %[low], %[quarter], %[high], lsl #31\n\t"
            "smlal %[low], %[high], %[acc], %[multiplier]"
            : [high] "=&r"(high), [low] "=&r"(low)
            : [acc] "r"(acc), [multiplier] "r"(multiplier), [quarter] "r"(0x40000000u));
    (void)low;
#else
    const uint32_t sign = (uint32_t)rq_asr32(acc, 31); /* 0 or all ones */
    const uint64_t nudge = ((uint64_t)sign << 32) | (0x40000000u ^ (sign << 31));
    const uint64_t q = (uint64_t)((int64_t)acc * (int64_t)multiplier) + nudge;
    const int32_t high = rq_high_word(q);
#endif
    return rq_asr32(rq_asr32(high, k) + 1, 1);
}

/* Single rounding by a right shift of at least 2 (shift = -2 - k, k in
 * [0, 29]; total = 31 - shift = 33 + k): the rounder 2^(32 + k) is a
 * multiple of 2^32, so floor((acc * multiplier + 2^(32 + k)) / 2^(33 + k))
 * = floor((high word of the product + 2^k) / 2^(k + 1)); the high word is
 * within [-2^30, 2^30], the sum cannot overflow. */
static inline int32_t rq_scale_single_right(int32_t acc, int32_t multiplier, int32_t k)
{
    const uint64_t product = (uint64_t)((int64_t)acc * (int64_t)multiplier);
    return rq_asr32(rq_high_word(product) + ((int32_t)1 << k), k + 1);
}

/* rq_scale by a right shift of at least 2 (shift <= -2; k = -2 - shift). */
static inline int32_t rq_scale_right(int32_t acc, int32_t multiplier, int32_t k,
                                     eg_rounding rounding)
{
    return rounding == EG_ROUNDING_SINGLE ? rq_scale_single_right(acc, multiplier, k)
                                          : rq_scale_double_right(acc, multiplier, k);
}

/* rq_scale as the specification writes it, for every shift in [-31, 30]. */
static inline int32_t rq_scale_general(int32_t acc, int32_t multiplier, int32_t shift,
                                       eg_rounding rounding)
{
    if (rounding == EG_ROUNDING_SINGLE) {
        /* (acc * multiplier + 2^(total - 1)) >> total, total in [1, 62]:
         * |acc * multiplier| <= 2^62 and the rounder <= 2^61, so the sum
         * fits int64. */
        const int32_t total = 31 - shift;
        const int64_t product = (int64_t)acc * (int64_t)multiplier;
        return rq_saturate_int32(rq_asr64(product + ((int64_t)1 << (total - 1)), total));
    }
    /* Double rounding: TFLite's MultiplyByQuantizedMultiplier. The left
     * shift is a multiplication by 2^shift in 64 bits (|result| <= 2^61),
     * saturated back to int32. */
    if (shift > 0) {
        const int64_t scaled = (int64_t)acc * ((int64_t)1 << shift);
        return rq_srdhm_nonnegative(rq_saturate_int32(scaled), multiplier);
    }
    {
        /* rq_rdbp by -shift in [0, 31], without its branches: with shift 0
         * the mask is 0 and the comparison never adds. */
        const int32_t v = rq_srdhm_nonnegative(acc, multiplier);
        const uint32_t mask = ((uint32_t)1 << -shift) - 1u;
        return rq_asr32(v, -shift) + (((uint32_t)v & mask) > (mask >> 1) + ((uint32_t)v >> 31));
    }
}

/* rq_requantize for arguments already in range: multiplier >= 0 and shift
 * in [-31, 30] (what requant_ok checks once per layer). */
static inline int32_t rq_scale(int32_t acc, int32_t multiplier, int32_t shift,
                               eg_rounding rounding)
{
    if (shift <= -2) {
        return rq_scale_right(acc, multiplier, -2 - shift, rounding);
    }
    return rq_scale_general(acc, multiplier, shift, rounding);
}

/* rq_scale for any arguments: the shift clamped to [-31, 30], a negative
 * multiplier (outside the specification) taken as 0, so that no input has
 * undefined behaviour. */
static inline int32_t rq_requantize(int32_t acc, int32_t multiplier, int32_t shift,
                                    eg_rounding rounding)
{
    if (multiplier < 0) {
        multiplier = 0;
    }
    if (shift > 30) {
        shift = 30;
    } else if (shift < -31) {
        shift = -31;
    }
    return rq_scale(acc, multiplier, shift, rounding);
}

#endif /* EG_REQUANTIZE_H */
