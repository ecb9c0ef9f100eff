"""Fixed-point arithmetic of the TFLite int8 spec, vectorised over numpy.

These functions are the specification that ``runtime_c/requantize.c`` must
equal on every int32 input. All work in int64 so that no intermediate wraps;
results are returned as int64 arrays holding int32 values.

The gemmlowp primitives divide with C semantics (truncation toward zero),
which numpy's ``//`` (floor) does not do: ``_c_div_pow2`` spells it out.
"""

from __future__ import annotations

import math

import numpy as np

from edgegen.ir import Rounding

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def _c_div_pow2(x: np.ndarray, exponent: int) -> np.ndarray:
    """x / 2^exponent truncated toward zero, like C integer division:
    negative values get 2^exponent - 1 added before the flooring shift."""
    bias = (x >> 63) & ((1 << exponent) - 1)
    return (x + bias) >> exponent


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul: round(a*b / 2^31).

    The nudge (2^30, or 1 - 2^30 for a negative product) followed by a
    truncating division rounds ties toward +infinity: 1.5 -> 2, -1.5 -> -1.
    INT32_MIN * INT32_MIN, the one product whose doubled high half does not
    fit, saturates to INT32_MAX.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    product = a * b
    nudge = np.where(product >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    high = _c_div_pow2(product + nudge, 31)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, np.int64(INT32_MAX), high)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: round(x / 2^exponent), ties away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def _saturate_int32(x: np.ndarray) -> np.ndarray:
    return np.clip(x, INT32_MIN, INT32_MAX)


def requantize(acc, multiplier, shift, rounding: Rounding) -> np.ndarray:
    """Scale int32 accumulators by multiplier * 2^(shift - 31).

    Broadcasts ``acc`` against per-channel ``multiplier``/``shift``. A left
    shift (shift > 0) saturates to int32 before the multiply, as in
    ``eg_requantize``; TFLite leaves that overflow undefined.
    """
    acc = np.asarray(acc, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if rounding is Rounding.DOUBLE:
        left = np.maximum(shift, 0)
        right = np.maximum(-shift, 0)
        shifted = _saturate_int32(acc << left)
        return rounding_divide_by_pot(
            saturating_rounding_doubling_high_mul(shifted, multiplier), right
        )
    if rounding is Rounding.SINGLE:
        total_shift = 31 - shift
        rounder = np.int64(1) << (total_shift - 1)
        # |acc * multiplier| < 2^62, so adding the rounder cannot wrap int64.
        return _saturate_int32((acc * multiplier + rounder) >> total_shift)
    raise ValueError(f"unknown rounding mode {rounding!r}")


def requantize_fast(acc, multiplier, shift, rounding: Rounding) -> np.ndarray:
    """``requantize``, computed with fewer array passes (what the golden
    model runs on whole test sets); ``requantize`` stays the specification
    and the tests hold this to it on full-range int32 accumulators.

    With multipliers >= 0 (every QGraph's), the doubling high multiply never
    overflows and its nudged truncating division is one flooring shift:
    floor((a * b + 2^30) / 2^31) (see eg_requantize.h). Anything else takes
    the specification's path."""
    multiplier = np.asarray(multiplier, dtype=np.int64)
    if rounding is not Rounding.DOUBLE or multiplier.min(initial=0) < 0:
        return requantize(acc, multiplier, shift, rounding)
    acc = np.asarray(acc, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if shift.max(initial=0) > 0:
        acc = _saturate_int32(acc << np.maximum(shift, 0))
    high = acc * multiplier
    high += 1 << 30
    high >>= 31
    exponent = np.maximum(-shift, 0)
    mask = (np.int64(1) << exponent) - 1
    threshold = (mask >> 1) + (high < 0)
    rounded = high >> exponent
    rounded += (high & mask) > threshold
    return rounded


def round_half_away(x):
    """C's round()/std::round, which TFLite uses (numpy rounds half to even)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = multiplier * 2^(shift - 31).

    multiplier is in [2^30, 2^31) (or 0 for real == 0); shift > 0 means a
    left shift. Multipliers too small for a 31-bit right shift become 0, as
    in TFLite; ones of 2^30 or more saturate (they never occur in a sane
    network and would overflow the int32 accumulator anyway).
    """
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"requantization multiplier must be finite and >= 0, got {real}")
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)  # real = fraction * 2^shift, fraction in [0.5, 1)
    q = int(round_half_away(fraction * (1 << 31)))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return INT32_MAX, 30
    return q, shift


INPUT_SPAN = 255  # the largest |q - zero_point| of an int8 input with an int8 zero point


def accumulator_bound(weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Per output channel, the largest |accumulator| any int8 input can give:
    where it exceeds INT32_MAX the C (which wraps) and this model would differ."""
    return np.abs(bias.astype(np.int64)) + INPUT_SPAN * np.abs(
        weight.reshape(weight.shape[0], -1).astype(np.int64)).sum(axis=1)


def fold_zero_point(weight: np.ndarray, bias, input_zero_point: int) -> np.ndarray:
    """bias - zp * (sum of each output channel's weights), as int32: the bias
    a kernel takes when it multiplies raw int8 inputs instead of
    (input - zero point). ``weight``'s first axis is the output channel
    (fully connected [out][in], conv OHWI). In int32 arithmetic modulo 2^32
    the folded sum equals TFLite's exactly; a fold outside int32 is refused.
    """
    sums = np.asarray(weight, dtype=np.int64).reshape(len(weight), -1).sum(axis=1)
    folded = np.asarray(bias, dtype=np.int64) - input_zero_point * sums
    if folded.min(initial=0) < -(2**31) or folded.max(initial=0) > 2**31 - 1:
        raise ValueError("the bias with the input zero point folded in overflows int32")
    return folded.astype(np.int32)
