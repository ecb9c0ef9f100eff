"""TFLite's int8 SOFTMAX and LOG_SOFTMAX, exactly: gemmlowp's fixed-point
exp, reciprocal and log, vectorised over numpy.

This is the specification of ``runtime_c/softmax.c``. A row's values are
taken relative to its maximum (differences <= 0), scaled to Q5.26 by the
input multiplier, exponentiated in Q0.31, summed in Q12.19, and each
exponential is multiplied by the sum's reciprocal. The output is int8 with
scale 1/256 and zero point -128 (TFLite requires it): -128 means a
probability under 1/512, 127 one of 255/256 or more.

The constants are gemmlowp's (fixedpoint.h): a Taylor expansion of exp
around -1/8 on [-1/4, 0), then one multiplication by exp(-2^k) for each
bit k of the rest; three Newton-Raphson steps for 1/(1 + x) on [0, 1).
"""

from __future__ import annotations

import math

import numpy as np

from edgegen.ir import Rounding
from edgegen.reference.numerics import (
    INT32_MAX,
    INT32_MIN,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul as srdhm,
)

SCALED_DIFF_INTEGER_BITS = 5  # the exponent's input format: Q5.26
ACCUMULATION_INTEGER_BITS = 12  # the sum of exponentials: Q12.19
OUTPUT_SCALE = 1.0 / 256.0
OUTPUT_ZERO_POINT = -128
LOG_OUTPUT_SCALE = 16.0 / 256.0  # log_softmax: [-16, 0) onto [-128, 127]
LOG_OUTPUT_ZERO_POINT = 127
LOG_OUTPUT_INTEGER_BITS = 4
MAX_DEPTH = (1 << (31 - 19)) - 1  # rows whose sum of exponentials (each <= 2^19 in Q12.19) fits int32

_EXP_MINUS_ONE_EIGHTH = 1895147668  # exp(-1/8) in Q0.31
_ONE_THIRD = 715827883  # 1/3 in Q0.31
# exp(-2^k) in Q0.31, for the bits k = -2 .. 4 of a Q5.26 value's integer part
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))
_FORTY_EIGHT_SEVENTEENTHS = 1515870810  # 48/17 in Q2.29
_MINUS_THIRTY_TWO_SEVENTEENTHS = -1010580540  # -32/17 in Q2.29


def softmax_parameters(input_scale: float, beta: float = 1.0) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min), as TFLite's
    PreprocessSoftmaxScaling and CalculateInputRadius compute them: the
    multiplier and left shift take a difference of int8 values to Q5.26
    (beta * input_scale * 2^26), and differences below diff_min, whose
    exponential rounds to nothing and whose scaling would overflow, are
    skipped."""
    real = min(beta * input_scale * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), float(INT32_MAX))
    multiplier, left_shift = quantize_multiplier(real)
    if multiplier == 0 or left_shift < 0:
        raise ValueError(f"softmax input scale {input_scale} is too small for TFLite's "
                         "fixed-point softmax")
    radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) \
        / (1 << left_shift)
    return multiplier, left_shift, -int(math.floor(radius))


def saturating_left_shift(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT with a positive exponent."""
    x = np.asarray(x, dtype=np.int64)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX,
                    np.where(x < -threshold, INT32_MIN, x << exponent))


def _exp_on_quarter_interval(a: np.ndarray) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out."""
    x = a + (1 << 28)  # the expansion is around -1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, _ONE_THIRD) + x2, 1)
    return _EXP_MINUS_ONE_EIGHTH + srdhm(_EXP_MINUS_ONE_EIGHTH, x + poly)


def exp_on_negative_values(a) -> np.ndarray:
    """exp(a) for a <= 0 in Q5.26 (raw int32 values), as Q0.31: gemmlowp's
    exp_on_negative_values for 5 integer bits."""
    a = np.asarray(a, dtype=np.int64)
    fraction_bits = 31 - SCALED_DIFF_INTEGER_BITS
    quarter = 1 << (fraction_bits - 2)
    a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter
    result = _exp_on_quarter_interval(
        saturating_left_shift(a_mod_quarter_minus_quarter, SCALED_DIFF_INTEGER_BITS))
    remainder = a_mod_quarter_minus_quarter - a
    for exponent, multiplier in _EXP_BARREL:
        bit = (remainder >> (fraction_bits + exponent)) & 1
        result = np.where(bit == 1, srdhm(result, multiplier), result)
    return np.where(a == 0, INT32_MAX, result)


def _rounding_half_sum(a, b) -> np.ndarray:
    total = np.asarray(a, dtype=np.int64) + b
    return _c_truncating_half(total + np.where(total >= 0, 1, -1))


def _c_truncating_half(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x >> 1, -((-x) >> 1))


def one_over_one_plus_x(a) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1) in Q0.31, as Q0.31 (gemmlowp's
    one_over_one_plus_x_for_x_in_0_1: Newton-Raphson on half the
    denominator, in Q2.29)."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = _FORTY_EIGHT_SEVENTEENTHS + srdhm(half_denominator, _MINUS_THIRTY_TWO_SEVENTEENTHS)
    for _ in range(3):
        one_minus = (1 << 29) - srdhm(half_denominator, x)
        x = x + saturating_left_shift(srdhm(x, one_minus), 2)
    return saturating_left_shift(x, 1)


def _count_leading_zeros(x: np.ndarray) -> np.ndarray:
    """Leading zero bits of positive int32 values as uint32 (frexp's
    exponent is the bit length, exactly, for integers under 2^53)."""
    return 32 - np.frexp(np.asarray(x, dtype=np.float64))[1].astype(np.int64)


def softmax(x, input_multiplier: int, input_left_shift: int, diff_min: int) -> np.ndarray:
    """int8 softmax over the last axis of ``x`` (any leading shape)."""
    x = np.asarray(x, dtype=np.int8).astype(np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    kept = diff >= diff_min
    scaled = srdhm(np.where(kept, diff, 0) * (1 << input_left_shift), input_multiplier)
    exps = exp_on_negative_values(scaled)
    in_q12 = rounding_divide_by_pot(exps, ACCUMULATION_INTEGER_BITS)
    total = np.where(kept, in_q12, 0).sum(axis=-1, keepdims=True)
    headroom = _count_leading_zeros(total)
    bits_over_unit = ACCUMULATION_INTEGER_BITS - headroom
    shifted_minus_one = (total << headroom) - (1 << 31)  # the sum's fraction in [0, 1)
    reciprocal = one_over_one_plus_x(shifted_minus_one)
    out = rounding_divide_by_pot(srdhm(reciprocal, exps), bits_over_unit + 31 - 8)
    out = np.clip(out + OUTPUT_ZERO_POINT, -128, 127)
    return np.where(kept, out, -128).astype(np.int8)


def log_softmax_parameters(input_scale: float, beta: float = 1.0) -> tuple[int, int, int, int, int]:
    """(input_multiplier, input_left_shift, reverse_multiplier, reverse_shift,
    diff_min) as TFLite's PreprocessLogSoftmaxScalingExp computes them: the
    softmax's, and the inverse of the input scaling (a multiplier and a
    shift <= 0) that takes Q5.26 back to input steps."""
    multiplier, left_shift, diff_min = softmax_parameters(input_scale, beta)
    reverse_multiplier, reverse_shift = quantize_multiplier(
        (1 << (31 - left_shift)) / multiplier)
    if reverse_shift > 0:
        raise ValueError(f"log_softmax input scale {input_scale} is too large for TFLite's "
                         "fixed-point log_softmax")
    return multiplier, left_shift, reverse_multiplier, reverse_shift, diff_min


def _saturating_add(a, b) -> np.ndarray:
    return np.clip(np.asarray(a, dtype=np.int64) + b, INT32_MIN, INT32_MAX)


def log_of_sum(x) -> np.ndarray:
    """log(x) for x >= 1 given in Q12.19, as Q5.26: gemmlowp's
    log_x_for_x_greater_than_or_equal_to_1 (TFLite's version), which
    normalises x to [sqrt(1/2), sqrt(2)) times a power of two and evaluates
    a rational approximation there."""
    log_2, sqrt_sqrt_half, sqrt_half = 1488522236, 1805811301, 1518500250
    alpha_n, alpha_d, alpha_i, alpha_f = 117049297, 127690142, 1057819769, 638450708
    input_bits, accum_bits = ACCUMULATION_INTEGER_BITS, SCALED_DIFF_INTEGER_BITS + 1
    shifted_quarter = rounding_divide_by_pot(1 << 29, accum_bits)  # 1/4 in Q6.25
    z_a = np.asarray(x, dtype=np.int64)
    a_headroom_plus_one = _count_leading_zeros(z_a)
    r_a = _shift_left_saturating(
        srdhm(_shift_left_saturating(z_a, a_headroom_plus_one - 1), sqrt_half), 1)
    a_pow_2_adj = _saturating_add(
        _shift_left_saturating(input_bits - a_headroom_plus_one, 31 - accum_bits), shifted_quarter)
    z_b = srdhm(z_a, sqrt_half)
    b_headroom = _count_leading_zeros(z_b) - 1
    r_b = _shift_left_saturating(z_a, b_headroom)
    b_pow_2_adj = _saturating_add(
        _shift_left_saturating(input_bits - b_headroom, 31 - accum_bits), -shifted_quarter)
    r = np.minimum(r_a, r_b)
    pow_2_adj = np.maximum(a_pow_2_adj, b_pow_2_adj)
    p = _rounding_half_sum(r, sqrt_sqrt_half)
    q = 2 * (r - sqrt_sqrt_half)
    common_sq = srdhm(q, q)
    num = srdhm(q, r) + srdhm(srdhm(q, common_sq), alpha_n)
    denom_minus_one = srdhm(p, alpha_i + q + srdhm(alpha_d, common_sq)) + srdhm(alpha_f, q)
    reciprocal = one_over_one_plus_x(denom_minus_one)
    num_scaled = rounding_divide_by_pot(num, accum_bits)
    return saturating_left_shift(srdhm(pow_2_adj, log_2) + srdhm(num_scaled, reciprocal), 1)


def _shift_left_saturating(x, exponent) -> np.ndarray:
    """saturating_left_shift with a per-element exponent >= 0 (gemmlowp's
    SaturatingRoundingMultiplyByPOTParam for the exponents used here)."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.broadcast_to(np.asarray(exponent, dtype=np.int64), x.shape)
    threshold = (np.int64(1) << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def log_softmax(x, input_multiplier: int, input_left_shift: int, reverse_multiplier: int,
                reverse_shift: int, diff_min: int, rounding: Rounding) -> np.ndarray:
    """int8 log_softmax over the last axis of ``x``, TFLite's reference
    kernel: output scale 16/256, zero point 127, in the graph's rounding."""
    x = np.asarray(x, dtype=np.int8).astype(np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    kept = diff >= diff_min
    scaled = requantize(np.where(kept, diff, 0), input_multiplier, input_left_shift, rounding)
    in_q12 = rounding_divide_by_pot(exp_on_negative_values(scaled), ACCUMULATION_INTEGER_BITS)
    log_sum = log_of_sum(np.where(kept, in_q12, 0).sum(axis=-1, keepdims=True))
    # Differences whose Q5.26 value minus the log would leave int32 count as -inf.
    adjusted_min = np.maximum(diff_min - 1, requantize(log_sum + INT32_MIN, reverse_multiplier,
                                                       reverse_shift, rounding))
    shown = diff > adjusted_min
    scaled = requantize(np.where(shown, diff, 0), input_multiplier, input_left_shift, rounding)
    out = rounding_divide_by_pot(
        np.where(shown, scaled - log_sum, 0),
        31 - SCALED_DIFF_INTEGER_BITS - LOG_OUTPUT_INTEGER_BITS) + LOG_OUTPUT_ZERO_POINT
    return np.where(shown, np.clip(out, -128, 127), -128).astype(np.int8)
