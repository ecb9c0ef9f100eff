"""runtime_c/requantize.c against hand-computed values, exact integer
arithmetic (Python ints), and the golden model (edgegen.reference.numerics)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.ir import Rounding
from edgegen.reference import numerics

from .support import INT32_MAX, INT32_MIN

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=400)

int32s = st.integers(INT32_MIN, INT32_MAX)
# Values where the arithmetic has its corners, mixed with arbitrary ones.
CORNERS = [INT32_MIN, INT32_MIN + 1, -(1 << 30) - 1, -(1 << 30), -(1 << 30) + 1,
           -3, -2, -1, 0, 1, 2, 3, (1 << 30) - 1, 1 << 30, (1 << 30) + 1,
           INT32_MAX - 1, INT32_MAX]
int32s_with_corners = st.one_of(st.sampled_from(CORNERS), int32s)
multipliers = st.one_of(st.sampled_from([0, 1, 1 << 30, INT32_MAX]),
                        st.integers(1 << 30, INT32_MAX), st.integers(0, INT32_MAX))
shifts = st.integers(-31, 30)


# ---------------------------------------------------------------- exact math


def exact_srdhm(a: int, b: int) -> int:
    """round(a * b / 2^31), ties toward +infinity; INT32_MIN^2 saturates."""
    if a == b == INT32_MIN:
        return INT32_MAX
    return (a * b + (1 << 30)) >> 31  # Python >> floors


def exact_rdbp(x: int, exponent: int) -> int:
    """round(x / 2^exponent), ties away from zero."""
    if exponent == 0:
        return x
    magnitude = (abs(x) + (1 << (exponent - 1))) >> exponent
    return magnitude if x >= 0 else -magnitude


def saturate(v: int) -> int:
    return max(INT32_MIN, min(INT32_MAX, v))


def exact_requantize(acc: int, multiplier: int, shift: int, rounding: Rounding) -> int:
    if rounding is Rounding.SINGLE:
        total = 31 - shift
        return saturate((acc * multiplier + (1 << (total - 1))) >> total)
    if shift > 0:
        return exact_srdhm(saturate(acc << shift), multiplier)
    return exact_rdbp(exact_srdhm(acc, multiplier), -shift)


# ---------------------------------------------------------------- hand cases


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (INT32_MIN, INT32_MIN, INT32_MAX),  # the one saturating product
        (INT32_MIN, INT32_MAX, -INT32_MAX),  # exact
        (INT32_MAX, INT32_MIN, -INT32_MAX),
        (INT32_MAX, INT32_MAX, INT32_MAX - 1),  # 2^31 - 2 + 2^-31
        (INT32_MIN, 1 << 30, -(1 << 30)),
        (1 << 30, 1 << 30, 1 << 29),
        (1, 1 << 30, 1),  # 0.5 -> 1
        (-1, 1 << 30, 0),  # -0.5 -> 0: ties go toward +infinity (gemmlowp's 1 - 2^30 nudge)
        (3, 1 << 30, 2),  # 1.5 -> 2
        (-3, 1 << 30, -1),  # -1.5 -> -1
        (-5, 1 << 29, -1),  # -1.25 -> -1
        (-7, 1 << 29, -2),  # -1.75 -> -2
        (0, INT32_MIN, 0),
        (12345, 0, 0),  # multiplier 0
        (INT32_MIN, 0, 0),
    ],
)
def test_srdhm_hand_cases(ck, a, b, expected):
    assert int(ck.srdhm(a, b)) == expected


@pytest.mark.parametrize(
    "x, exponent, expected",
    [
        (-3, 1, -2),  # -1.5 -> -2: ties away from zero
        (-5, 2, -1),  # -1.25 -> -1
        (-6, 2, -2),  # -1.5 -> -2
        (-7, 2, -2),  # -1.75 -> -2
        (-5, 1, -3),  # -2.5 -> -3
        (-1, 1, -1),  # -0.5 -> -1
        (-1, 2, 0),  # -0.25 -> 0
        (5, 1, 3),  # 2.5 -> 3
        (6, 2, 2),  # 1.5 -> 2
        (1, 1, 1),  # 0.5 -> 1
        (0, 31, 0),
        (123, 0, 123),  # exponent 0: identity
        (-123, 0, -123),
        (INT32_MIN, 0, INT32_MIN),
        (INT32_MAX, 0, INT32_MAX),
        (INT32_MAX, 31, 1),  # 0.99999... -> 1
        (INT32_MIN, 31, -1),  # exactly -1
        (INT32_MIN + 1, 31, -1),
        (1 << 30, 31, 1),  # 0.5 -> 1
        (-(1 << 30), 31, -1),  # -0.5 -> -1
        ((1 << 30) - 1, 31, 0),
        (-(1 << 30) + 1, 31, 0),
        (INT32_MIN, 30, -2),
        (INT32_MAX, 30, 2),  # 1.99999... -> 2
        (INT32_MIN, 1, -(1 << 30)),
    ],
)
def test_rdbp_hand_cases(ck, x, exponent, expected):
    assert int(ck.rdbp(x, exponent)) == expected


@pytest.mark.parametrize(
    "acc, multiplier, shift, double, single",
    [
        (12345, 0, 0, 0, 0),  # multiplier 0
        (INT32_MIN, 0, 30, 0, 0),
        (INT32_MAX, 0, -31, 0, 0),
        (5, 1 << 30, -1, 2, 1),  # 1.25: double rounding 2.5 -> 3, 1.5 -> 2; single 1
        (-5, 1 << 30, -1, -1, -1),  # -1.25: -2.5 -> -2, -1 -> -1
        (3, 1 << 30, -1, 1, 1),  # 0.75
        (1, 1 << 30, 30, 1 << 29, 1 << 29),  # left shift, exact
        # 4 << 30 saturates to INT32_MAX before the multiply (double); the
        # single-rounding result 2^31 saturates after it.
        (4, 1 << 30, 30, 1 << 30, INT32_MAX),
        (-4, 1 << 30, 30, -(1 << 30), INT32_MIN),
        (INT32_MIN, INT32_MAX, 0, -INT32_MAX, -INT32_MAX),
        # -2^31 * 2 saturates to -2^31 before the multiply by 0.5 (double);
        # single rounding computes -2^31 * 0.5 * 2 exactly.
        (INT32_MIN, 1 << 30, 1, -(1 << 30), INT32_MIN),
        (INT32_MAX, INT32_MAX, 30, INT32_MAX - 1, INT32_MAX),
        (INT32_MAX, INT32_MAX, -31, 1, 1),  # exponent 31
        (INT32_MIN, INT32_MAX, -31, -1, -1),
        # -0.5: SRDHM gives -2^29 exactly, RDBP(-2^29, 30) rounds away from
        # zero to -1; single rounding rounds the tie toward +infinity to 0.
        (-(1 << 30), 1 << 30, -30, -1, 0),
        (1000, 1 << 30, -3, 63, 63),  # 1000 / 16 = 62.5
        (-1000, 1 << 30, -3, -63, -62),  # -62.5: away from zero vs toward +inf
    ],
)
def test_requantize_hand_cases(ck, acc, multiplier, shift, double, single):
    got_double = int(ck.requantize(acc, multiplier, shift, Rounding.DOUBLE))
    got_single = int(ck.requantize(acc, multiplier, shift, Rounding.SINGLE))
    assert (got_double, got_single) == (
        exact_requantize(acc, multiplier, shift, Rounding.DOUBLE),
        exact_requantize(acc, multiplier, shift, Rounding.SINGLE),
    )
    assert (got_double, got_single) == (double, single)


# ------------------------------------------------------ properties, all int32


@DETERMINISTIC
@given(a=int32s_with_corners, b=int32s_with_corners)
def test_srdhm_matches_exact_and_golden(ck, a, b):
    got = int(ck.srdhm(a, b))
    assert got == exact_srdhm(a, b)
    assert got == int(numerics.saturating_rounding_doubling_high_mul(a, b))


@DETERMINISTIC
@given(x=int32s_with_corners, exponent=st.integers(0, 31))
def test_rdbp_matches_exact_and_golden(ck, x, exponent):
    got = int(ck.rdbp(x, exponent))
    assert got == exact_rdbp(x, exponent)
    assert got == int(numerics.rounding_divide_by_pot(x, exponent))


@DETERMINISTIC
@given(acc=int32s_with_corners, multiplier=multipliers, shift=shifts,
       rounding=st.sampled_from(Rounding))
def test_requantize_matches_exact_and_golden(ck, acc, multiplier, shift, rounding):
    got = int(ck.requantize(acc, multiplier, shift, rounding))
    assert got == exact_requantize(acc, multiplier, shift, rounding)
    assert got == int(numerics.requantize(acc, multiplier, shift, rounding))


@pytest.mark.parametrize("rounding", list(Rounding))
def test_requantize_bulk_against_golden(ck, rounding):
    """20k accumulators of realistic and corner magnitudes, per-channel constants."""
    rng = np.random.default_rng(2024 if rounding is Rounding.DOUBLE else 2025)
    n = 20_000
    magnitude = rng.integers(0, 32, size=n)
    acc = rng.integers(-(2**31), 2**31, size=n) >> (31 - magnitude)
    acc[:len(CORNERS)] = CORNERS
    multiplier = rng.integers(1 << 30, 1 << 31, size=n)
    multiplier[::97] = 0
    multiplier[1::89] = INT32_MAX
    shift = rng.integers(-31, 31, size=n)
    shift[::3] = rng.integers(-12, 2, size=len(shift[::3]))
    expected = numerics.requantize(acc, multiplier, shift, rounding)
    np.testing.assert_array_equal(ck.requantize(acc, multiplier, shift, rounding), expected)


def test_single_and_double_rounding_differ_by_at_most_one(ck):
    rng = np.random.default_rng(7)
    acc = rng.integers(-(1 << 20), 1 << 20, size=5000)
    multiplier = rng.integers(1 << 30, 1 << 31, size=5000)
    shift = rng.integers(-12, 1, size=5000)
    double = ck.requantize(acc, multiplier, shift, Rounding.DOUBLE)
    single = ck.requantize(acc, multiplier, shift, Rounding.SINGLE)
    assert np.abs(double - single).max() == 1  # they do differ, by one at most


@pytest.mark.parametrize("rounding", list(Rounding))
def test_requantize_right_shifts_at_their_ties(ck, rounding):
    """Shifts <= -2 take rq_scale_right's shortcut (one 64-bit multiply-
    accumulate and a shift of its high word): every such shift, with
    accumulators next to each rounding boundary of the result (and to zero,
    where the nudge takes acc's sign for the product's), multipliers at
    their extremes and in between, against the golden model."""
    rng = np.random.default_rng(7)
    accs, mults, shifts = [], [], []
    for shift in range(-31, -1):
        e = -shift
        for multiplier in (1 << 30, (1 << 30) + 1, INT32_MAX, 1, 0,
                           int(rng.integers(1 << 30, 1 << 31))):
            # the accumulator whose scaled value is k + 1/2 (a tie of the
            # final rounding, k a random integer, either sign), and around it
            for k in (0, -1, 1, int(rng.integers(-(1 << 10), 1 << 10))):
                if multiplier == 0:
                    centre = 0
                else:
                    centre = int(round((k + 0.5) * 2.0 ** (e + 31) / multiplier))
                for d in range(-3, 4):
                    acc = max(INT32_MIN, min(INT32_MAX, centre + d))
                    accs.append(acc)
                    mults.append(multiplier)
                    shifts.append(shift)
    accs.extend(CORNERS * 30)
    mults.extend([int(rng.integers(0, 1 << 31)) for _ in range(len(CORNERS) * 30)])
    shifts.extend([s for s in range(-31, -1) for _ in CORNERS])
    acc = np.array(accs, dtype=np.int64)
    multiplier = np.array(mults, dtype=np.int64)
    shift = np.array(shifts, dtype=np.int64)
    expected = numerics.requantize(acc, multiplier, shift, rounding)
    np.testing.assert_array_equal(ck.requantize(acc, multiplier, shift, rounding), expected)
    assert all(exact_requantize(int(a), int(m), int(s), rounding) == int(v)
               for a, m, s, v in zip(acc[::7], multiplier[::7], shift[::7], expected[::7]))
