/*
 * softmax.c: TFLite's int8 SOFTMAX and LOG_SOFTMAX over the last axis,
 * bit-exact with its reference kernels (SOFTMAX also with CMSIS-NN's
 * arm_softmax_s8).
 *
 * In each row, differences to the row's maximum are scaled to Q5.26,
 * exponentiated in Q0.31 (gemmlowp's exp_on_negative_values: a Taylor
 * expansion around -1/8 on [-1/4, 0), then one multiplication by
 * exp(-2^k) per set bit k of the rest), summed in Q12.19; the sum's
 * reciprocal comes from three Newton-Raphson steps. The output has scale
 * 1/256 and zero point -128. LOG_SOFTMAX takes the sum's log (gemmlowp's
 * rational approximation on [sqrt(1/2), sqrt(2)) times a power of two)
 * and outputs diff - log(sum) with scale 16/256 and zero point 127. Integer arithmetic only: the parameters come
 * from the generator. The numpy model is edgegen/reference/softmax.py.
 */
#include <stddef.h>

#include "eg_kernel_support.h"
#include "eg_runtime.h"

#define SCALED_DIFF_INTEGER_BITS 5
#define ACCUMULATION_INTEGER_BITS 12
#define FRACTION_BITS (31 - SCALED_DIFF_INTEGER_BITS)

/* x * 2^exponent saturated to int32, exponent in [0, 30]. */
static int32_t saturating_left_shift(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)(((uint32_t)1 << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out. */
static int32_t exp_on_quarter_interval(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28); /* the expansion is around -1/8 */
    const int32_t x2 = rq_srdhm(x, x);
    const int32_t x3 = rq_srdhm(x2, x);
    const int32_t x4 = rq_srdhm(x2, x2);
    const int32_t x4_over_4 = rq_rdbp(x4, 2);
    const int32_t poly = rq_rdbp(rq_srdhm(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + rq_srdhm(exp_minus_one_eighth, x + poly);
}

/* exp(a) for a <= 0 in Q5.26, as Q0.31. */
static int32_t exp_on_negative_values(int32_t a)
{
    /* exp(-2^k) in Q0.31 for k = -2 .. 4 */
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                      39332535,   720401,     242};
    const int32_t quarter = 1 << (FRACTION_BITS - 2);
    const int32_t a_mod_quarter_minus_quarter =
        (int32_t)((uint32_t)a & (uint32_t)(quarter - 1)) - quarter;
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    int32_t result, k;
    if (a == 0) {
        return INT32_MAX;
    }
    result = exp_on_quarter_interval(
        saturating_left_shift(a_mod_quarter_minus_quarter, SCALED_DIFF_INTEGER_BITS));
    for (k = 0; k < 7; ++k) {
        if (((uint32_t)remainder >> (FRACTION_BITS - 2 + k)) & 1u) {
            result = rq_srdhm(result, barrel[k]);
        }
    }
    return result;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out. */
static int32_t one_over_one_plus_x(int32_t a)
{
    /* (a + 1) / 2 rounded half away from zero, with 1 as INT32_MAX: a >= 0 */
    const int32_t half_denominator = (int32_t)(((int64_t)a + INT32_MAX + 1) / 2);
    int32_t x = 1515870810 + rq_srdhm(half_denominator, -1010580540); /* 48/17 - 32/17 d, Q2.29 */
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t one_minus = (1 << 29) - rq_srdhm(half_denominator, x);
        x = x + saturating_left_shift(rq_srdhm(x, one_minus), 2);
    }
    return saturating_left_shift(x, 1);
}

static int32_t saturating_add(int32_t a, int32_t b)
{
    return rq_saturate_int32((int64_t)a + (int64_t)b);
}

/* round((a + b) / 2), half away from zero. */
static int32_t rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

static int32_t count_leading_zeros(uint32_t x);

/* log(x) for x >= 1 given in Q12.19, as Q5.26. */
static int32_t log_of_sum(int32_t x)
{
    const int32_t log_2 = 1488522236, sqrt_sqrt_half = 1805811301, sqrt_half = 1518500250;
    const int32_t alpha_n = 117049297, alpha_d = 127690142, alpha_i = 1057819769,
                  alpha_f = 638450708;
    const int32_t accum_bits = SCALED_DIFF_INTEGER_BITS + 1;
    const int32_t shifted_quarter = 1 << (29 - accum_bits); /* 1/4 in Q6.25 */
    const int32_t a_headroom_plus_one = count_leading_zeros((uint32_t)x);
    const int32_t r_a = saturating_left_shift(
        rq_srdhm(saturating_left_shift(x, a_headroom_plus_one - 1), sqrt_half), 1);
    const int32_t a_pow_2_adj = saturating_add(
        saturating_left_shift(ACCUMULATION_INTEGER_BITS - a_headroom_plus_one, 31 - accum_bits),
        shifted_quarter);
    const int32_t b_headroom = count_leading_zeros((uint32_t)rq_srdhm(x, sqrt_half)) - 1;
    const int32_t r_b = saturating_left_shift(x, b_headroom);
    const int32_t b_pow_2_adj = saturating_add(
        saturating_left_shift(ACCUMULATION_INTEGER_BITS - b_headroom, 31 - accum_bits),
        -shifted_quarter);
    const int32_t r = r_a < r_b ? r_a : r_b;
    const int32_t pow_2_adj = a_pow_2_adj > b_pow_2_adj ? a_pow_2_adj : b_pow_2_adj;
    const int32_t p = rounding_half_sum(r, sqrt_sqrt_half);
    const int32_t q = 2 * (r - sqrt_sqrt_half);
    const int32_t common_sq = rq_srdhm(q, q);
    const int32_t num = rq_srdhm(q, r) + rq_srdhm(rq_srdhm(q, common_sq), alpha_n);
    const int32_t denom_minus_one =
        rq_srdhm(p, alpha_i + q + rq_srdhm(alpha_d, common_sq)) + rq_srdhm(alpha_f, q);
    const int32_t reciprocal = one_over_one_plus_x(denom_minus_one);
    const int32_t num_scaled = rq_rdbp(num, accum_bits);
    return saturating_left_shift(rq_srdhm(pow_2_adj, log_2) + rq_srdhm(num_scaled, reciprocal), 1);
}

static int32_t count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    while (n < 32 && !(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* round(x / 2^exponent), half away from zero, for x >= 0 and exponent in
 * [23, 34]: a wide row's sum takes the exponent past 31. */
static int32_t rounding_divide_nonnegative(int32_t x, int32_t exponent)
{
    const uint64_t mask = ((uint64_t)1 << exponent) - 1u;
    const uint64_t wide = (uint64_t)x;
    return (int32_t)(wide >> exponent) + ((wide & mask) > (mask >> 1) ? 1 : 0);
}

static int32_t scaled_diff(int32_t diff, int32_t input_multiplier, int32_t input_left_shift)
{
    /* |diff| <= -diff_min, which keeps diff * 2^shift within int32 */
    return rq_srdhm(diff * ((int32_t)1 << input_left_shift), input_multiplier);
}

eg_status eg_softmax_s8(const int8_t *input, int32_t rows, int32_t depth,
                        const eg_softmax_params *params, int8_t *output)
{
    int32_t row;
    if (input == NULL || output == NULL || params == NULL || rows < 0 || depth < 1 ||
        depth > EG_SOFTMAX_MAX_DEPTH || params->input_multiplier < 0 ||
        params->input_left_shift < 0 || params->input_left_shift > 30 ||
        params->diff_min > 0 ||
        (int64_t)-params->diff_min << params->input_left_shift > INT32_MAX) {
        return EG_ERR_ARG;
    }
    for (row = 0; row < rows; ++row) {
        const int8_t *in = input + (size_t)row * (size_t)depth;
        int8_t *out = output + (size_t)row * (size_t)depth;
        int32_t max_value = in[0];
        int32_t sum = 0; /* Q12.19; at most depth * 2^19 <= INT32_MAX */
        int32_t headroom, bits_over_unit, reciprocal, c;
        for (c = 1; c < depth; ++c) {
            max_value = in[c] > max_value ? in[c] : max_value;
        }
        for (c = 0; c < depth; ++c) {
            const int32_t diff = in[c] - max_value;
            if (diff >= params->diff_min) {
                const int32_t e = exp_on_negative_values(
                    scaled_diff(diff, params->input_multiplier, params->input_left_shift));
                sum += rq_rdbp(e, ACCUMULATION_INTEGER_BITS);
            }
        }
        headroom = count_leading_zeros((uint32_t)sum);
        bits_over_unit = ACCUMULATION_INTEGER_BITS - headroom;
        reciprocal = one_over_one_plus_x(
            (int32_t)(((uint32_t)sum << headroom) - 0x80000000u));
        for (c = 0; c < depth; ++c) {
            const int32_t diff = in[c] - max_value;
            int32_t value = -128;
            if (diff >= params->diff_min) {
                const int32_t e = exp_on_negative_values(
                    scaled_diff(diff, params->input_multiplier, params->input_left_shift));
                value = rounding_divide_nonnegative(rq_srdhm(reciprocal, e), bits_over_unit + 31 - 8) - 128;
                value = value > 127 ? 127 : value;
            }
            out[c] = (int8_t)value;
        }
    }
    return EG_OK;
}

eg_status eg_log_softmax_s8(const int8_t *input, int32_t rows, int32_t depth,
                            const eg_log_softmax_params *params, int8_t *output)
{
    const int32_t output_shift = 31 - SCALED_DIFF_INTEGER_BITS - 4; /* Q5.26 to Q4.27 steps */
    int32_t row;
    if (input == NULL || output == NULL || params == NULL || rows < 0 || depth < 1 ||
        depth > EG_SOFTMAX_MAX_DEPTH || params->input_multiplier < 0 ||
        params->input_left_shift < 0 || params->input_left_shift > 30 ||
        params->reverse_multiplier < 0 || params->reverse_shift < -31 ||
        params->reverse_shift > 0 || params->diff_min > 0 ||
        (int64_t)-params->diff_min << params->input_left_shift > INT32_MAX ||
        (params->rounding != EG_ROUNDING_DOUBLE && params->rounding != EG_ROUNDING_SINGLE) ||
        params->rounding != EG_ROUNDING_OF(params)) {
        return EG_ERR_ARG;
    }
    for (row = 0; row < rows; ++row) {
        const int8_t *in = input + (size_t)row * (size_t)depth;
        int8_t *out = output + (size_t)row * (size_t)depth;
        int32_t max_value = in[0];
        int32_t sum = 0; /* Q12.19 */
        int32_t log_sum, adjusted_min, c;
        for (c = 1; c < depth; ++c) {
            max_value = in[c] > max_value ? in[c] : max_value;
        }
        for (c = 0; c < depth; ++c) {
            const int32_t diff = in[c] - max_value;
            if (diff >= params->diff_min) {
                const int32_t scaled = rq_scale(diff, params->input_multiplier,
                                                params->input_left_shift, EG_ROUNDING_OF(params));
                sum += rq_rdbp(exp_on_negative_values(scaled), ACCUMULATION_INTEGER_BITS);
            }
        }
        log_sum = log_of_sum(sum);
        /* Differences whose Q5.26 value minus the log would leave int32
         * count as minus infinity. log_sum >= 0, so the sum cannot wrap. */
        adjusted_min = rq_scale(log_sum + INT32_MIN, params->reverse_multiplier,
                                params->reverse_shift, EG_ROUNDING_OF(params));
        if (adjusted_min < params->diff_min - 1) {
            adjusted_min = params->diff_min - 1;
        }
        for (c = 0; c < depth; ++c) {
            const int32_t diff = in[c] - max_value;
            int32_t value = -128;
            if (diff > adjusted_min) {
                const int32_t scaled = rq_scale(diff, params->input_multiplier,
                                                params->input_left_shift, EG_ROUNDING_OF(params));
                value = rq_rdbp(scaled - log_sum, output_shift) + 127;
                value = value < -128 ? -128 : (value > 127 ? 127 : value);
            }
            out[c] = (int8_t)value;
        }
    }
    return EG_OK;
}
