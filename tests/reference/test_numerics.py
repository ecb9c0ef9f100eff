"""Hand-computed cases for the requantization arithmetic (the golden side).

The C side is checked against these functions in tests/runtime_c; here the
functions themselves are pinned to values worked out by hand from the
gemmlowp/TFLite definitions.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.ir import Rounding
from edgegen.reference.numerics import (
    INT32_MAX,
    INT32_MIN,
    quantize_multiplier,
    requantize,
    requantize_fast,
    rounding_divide_by_pot,
    round_half_away,
    saturating_rounding_doubling_high_mul,
)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (INT32_MIN, INT32_MIN, INT32_MAX),  # the one saturating case
        (INT32_MIN, INT32_MAX, -INT32_MAX),  # -2^31 (2^31-1) / 2^31 = -(2^31-1): exact
        (INT32_MAX, INT32_MAX, INT32_MAX - 1),  # (2^31-1)^2/2^31 = 2^31 - 2 + 2^-31
        (1 << 30, 1 << 30, 1 << 29),  # exact: 2^60 / 2^31
        (3, 1 << 30, 2),  # 1.5 -> 2: ties go up...
        (-3, 1 << 30, -1),  # -1.5 -> -1: ...also for negatives (nudge 1 - 2^30)
        (1, 1 << 30, 1),  # 0.5 -> 1
        (-1, 1 << 30, 0),  # -0.5 -> 0
        (5, 1 << 29, 1),  # 1.25 -> 1
        (-5, 1 << 29, -1),  # -1.25 -> -1
        (0, INT32_MIN, 0),
    ],
)
def test_srdhm_hand_cases(a, b, expected):
    assert int(saturating_rounding_doubling_high_mul(a, b)) == expected


@pytest.mark.parametrize(
    "x, exponent, expected",
    [
        (5, 1, 3),  # 2.5 -> 3
        (-5, 1, -3),  # -2.5 -> -3 (away from zero)
        (-3, 1, -2),  # -1.5 -> -2
        (-5, 2, -1),  # -1.25 -> -1
        (-6, 2, -2),  # -1.5 -> -2
        (-7, 2, -2),  # -1.75 -> -2
        (6, 2, 2),  # 1.5 -> 2
        (123, 0, 123),
        (-123, 0, -123),
        (INT32_MAX, 31, 1),  # 0.99999... -> 1
        (INT32_MIN, 31, -1),  # exactly -1
        (1 << 30, 31, 1),  # 0.5 -> 1
        (-(1 << 30), 31, -1),  # -0.5 -> -1
        (-(1 << 30) + 1, 31, 0),
    ],
)
def test_rounding_divide_by_pot_hand_cases(x, exponent, expected):
    assert int(rounding_divide_by_pot(x, exponent)) == expected


def test_double_rounding_differs_from_single_on_a_known_case():
    # multiplier 2^30 (0.5), shift -1: real scale 0.25. acc = 6 -> 1.5.
    # double: SRDHM(6, 2^30) = 3 (exact), then RDBPOT(3, 1) = round(1.5) = 2.
    # single: (6 * 2^30 + 2^31) >> 32 = floor(1.5 + 0.5) = 2.
    assert int(requantize(6, 1 << 30, -1, Rounding.DOUBLE)) == 2
    assert int(requantize(6, 1 << 30, -1, Rounding.SINGLE)) == 2
    # acc = -6 -> -1.5: double rounds away from zero (-2), single rounds up (-1).
    assert int(requantize(-6, 1 << 30, -1, Rounding.DOUBLE)) == -2
    assert int(requantize(-6, 1 << 30, -1, Rounding.SINGLE)) == -1
    # Two roundings: multiplier 3 * 2^29 (0.75), shift -1: scale 0.375.
    # acc = 3: SRDHM(3, 0.75) = round(2.25) = 2, RDBPOT(2, 1) = round(1) = 1;
    # single: round(1.125) = 1. acc = 5 (1.875): double 4 -> 2; single 2.
    assert int(requantize(3, 3 << 29, -1, Rounding.DOUBLE)) == 1
    assert int(requantize(7, 3 << 29, -1, Rounding.DOUBLE)) == 3  # 5.25->5, 2.5->3
    assert int(requantize(7, 3 << 29, -1, Rounding.SINGLE)) == 3  # 2.625 -> 3


def test_double_rounding_double_rounds():
    # acc = 11, multiplier 0.75, shift -2: real 11 * 0.1875 = 2.0625.
    # double: SRDHM = round(8.25) = 8, RDBPOT(8, 2) = 2. single: 2.
    # acc = 13: real 2.4375; double: round(9.75) = 10, round(10/4 = 2.5) = 3;
    # single: round(2.4375) = 2. The classic one-off difference.
    assert int(requantize(13, 3 << 29, -2, Rounding.DOUBLE)) == 3
    assert int(requantize(13, 3 << 29, -2, Rounding.SINGLE)) == 2


def test_left_shift_saturates_before_multiply():
    # shift 2 would take 2^30 to 2^32; saturated to INT32_MAX, times ~1.
    big = requantize(1 << 30, INT32_MAX, 2, Rounding.DOUBLE)
    assert int(big) == INT32_MAX - 1
    assert int(requantize(-(1 << 30), INT32_MAX, 2, Rounding.DOUBLE)) == INT32_MIN + 1


def test_multiplier_zero_gives_zero():
    for rounding in Rounding:
        np.testing.assert_array_equal(
            requantize(np.array([INT32_MIN, -1, 0, 1, INT32_MAX]), 0, 0, rounding), 0
        )


def test_requantize_broadcasts_per_channel():
    acc = np.array([[100, 100], [-100, -100]])
    out = requantize(acc, np.array([1 << 30, 1 << 30]), np.array([0, -1]), Rounding.DOUBLE)
    np.testing.assert_array_equal(out, [[50, 25], [-50, -25]])


@pytest.mark.parametrize(
    "real",
    [1.0 / 3, 0.5, 0.75, 1e-3, 0.9999999999, 2.5e-5, 1.0, 3.0],
)
def test_quantize_multiplier_reconstructs_real(real):
    m, shift = quantize_multiplier(real)
    assert (1 << 30) <= m < (1 << 31)
    assert math.isclose(m * 2.0 ** (shift - 31), real, rel_tol=2**-30)


def test_quantize_multiplier_exact_cases():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(0.25) == (1 << 30, -1)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    assert quantize_multiplier(0.0) == (0, 0)
    # fraction rounding up to 2^31 renormalises to 2^30 with shift + 1.
    assert quantize_multiplier(1.0 - 2.0**-40) == (1 << 30, 1)
    assert quantize_multiplier(2.0**-40) == (0, 0)


def test_quantize_multiplier_rejects_bad_values():
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            quantize_multiplier(bad)


def test_round_half_away_matches_c_round():
    np.testing.assert_array_equal(
        round_half_away([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49]), [1, 2, 3, -1, -2, -3, 0]
    )


# ------------------------------------------------- the golden model's fast path

INT32 = st.integers(-(2**31), 2**31 - 1)


@settings(derandomize=True, database=None, deadline=None, max_examples=300)
@given(acc=st.lists(INT32, min_size=1, max_size=64),
       multiplier=st.one_of(st.integers(2**30, 2**31 - 1), st.sampled_from([0, 1, 2**31 - 1]),
                            st.integers(-(2**31), -1)),
       shift=st.integers(-31, 30), rounding=st.sampled_from(Rounding))
def test_fast_requantize_is_the_specification(acc, multiplier, shift, rounding):
    """Full-range int32 accumulators, every shift, both roundings; negative
    multipliers (never in a QGraph) take the specification's own path."""
    acc = np.array(acc + [-(2**31), 2**31 - 1, 0, -1], dtype=np.int64)
    expected = requantize(acc, multiplier, shift, rounding)
    np.testing.assert_array_equal(requantize_fast(acc, multiplier, shift, rounding), expected)


def test_fast_requantize_per_channel_broadcast():
    rng = np.random.default_rng(3)
    acc = rng.integers(-(2**31), 2**31, size=(50, 7), dtype=np.int64)
    multiplier = rng.integers(2**30, 2**31, size=7)
    shift = rng.integers(-31, 31, size=7)
    for rounding in Rounding:
        np.testing.assert_array_equal(requantize_fast(acc, multiplier, shift, rounding),
                                      requantize(acc, multiplier, shift, rounding))
