"""TFLite's int8 SOFTMAX, exactly: gemmlowp's fixed-point exp and
reciprocal, vectorised over numpy.

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

from edgegen.reference.numerics import (
    INT32_MAX,
    INT32_MIN,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul as srdhm,
)

SCALED_DIFF_INTEGER_BITS = 5  # the exponent's input format: Q5.26
ACCUMULATION_INTEGER_BITS = 12  # the sum of exponentials: Q12.19
OUTPUT_SCALE = 1.0 / 256.0
OUTPUT_ZERO_POINT = -128
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
