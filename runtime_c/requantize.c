/*
 * requantize.c: the public entry points of the fixed-point scaling; the
 * arithmetic itself is in eg_requantize.h, which the kernels inline.
 */
#include "eg_requantize.h"
#include "eg_runtime.h"

int32_t eg_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    return rq_srdhm(a, b);
}

int32_t eg_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    return rq_rdbp(x, exponent);
}

int32_t eg_requantize(int32_t acc, int32_t multiplier, int32_t shift,
                      eg_rounding rounding)
{
    return rq_requantize(acc, multiplier, shift, rounding);
}
