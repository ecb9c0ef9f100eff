"""golden.quantize_floats / quantize_input, the float32 specification of
runtime_c/quantize_input.c: hand-computed cases, and equality with an
independent scalar model in exact rational arithmetic (its own float32
rounding of the quotient, its own half-away rounding)."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.reference.golden import quantize_floats, quantize_input
from qgraph_support import tiny_qgraph

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300)
F32 = np.float32
FLT_MAX = float(np.finfo(np.float32).max)
TINY = float(np.finfo(np.float32).smallest_subnormal)


def float32_quotient(x: float, scale: float) -> Fraction | None:
    """x / scale rounded to float32 (to nearest, ties to even), exactly;
    None for NaN, +-inf as +-2^128 (the rounding's overflow)."""
    if math.isnan(x):
        return None
    if math.isinf(x):
        return Fraction(2**128) * (1 if x > 0 else -1)
    exact = Fraction(x) / Fraction(scale)
    if abs(exact) >= Fraction(2**128 - 2**103):  # FLT_MAX + half its ulp: to infinity
        return Fraction(2**128) * (1 if exact > 0 else -1)
    near = F32(float(exact))  # within an ulp or so of the exact quotient
    candidates = [near, np.nextafter(near, F32(-np.inf)), np.nextafter(near, F32(np.inf))]
    candidates = [Fraction(float(c)) for c in candidates if np.isfinite(c)]
    best = min(abs(c - exact) for c in candidates)
    nearest = [c for c in candidates if abs(c - exact) == best]
    if len(nearest) == 1:
        return nearest[0]
    even = [c for c in nearest if int(np.array(float(c), np.float32).view(np.uint32)) % 2 == 0]
    return even[0]


def exact_quantize(x: float, scale: float, zero_point: int) -> int:
    """One value by the specification, in rational arithmetic."""
    r = float32_quotient(float(F32(x)), float(F32(scale)))
    if r is None:
        return zero_point
    rounded = math.floor(abs(r) + Fraction(1, 2)) * (1 if r >= 0 else -1)
    return max(-128, min(127, rounded + zero_point))


@pytest.mark.parametrize("x, q", [
    (2.5, 3), (-2.5, -3), (0.5, 1), (-0.5, -1), (1.5, 2), (-1.5, -2),
    (float(np.nextafter(F32(0.5), F32(0))), 0), (float(np.nextafter(F32(-0.5), F32(0))), 0),
    (float(np.nextafter(F32(2.5), F32(0))), 2), (float(np.nextafter(F32(2.5), F32(9))), 3),
    (0.0, 0), (-0.0, 0), (TINY, 0), (-TINY, 0), (126.5, 127), (-127.5, -128),
    (127.49, 127), (1e30, 127), (-1e30, -128), (FLT_MAX, 127), (-FLT_MAX, -128),
    (math.inf, 127), (-math.inf, -128), (math.nan, 0),
])
def test_half_away_from_zero_and_clamped(x, q):
    assert quantize_floats(np.array([x], np.float32), 1.0, 0).tolist() == [q]


def test_nan_is_the_zero_point_and_the_zero_point_is_added():
    x = np.array([np.nan, -np.nan, 0.0, 1.0, -1.0, 300.0], np.float32)
    assert quantize_floats(x, 0.5, -128).tolist() == [-128, -128, -128, -126, -128, 127]
    assert quantize_floats(x, 0.5, 100).tolist() == [100, 100, 100, 102, 98, 127]


def test_the_division_is_float32():
    """A quotient that is a tie in float32 but not in float64 rounds as the
    float32 division says (away from zero), whatever float64 would."""
    x, scale = F32(3.1693308353424072), F32(1.2677323818206787)
    assert x / scale == F32(2.5)  # a tie in float32
    assert float(x) / float(scale) < 2.5  # float64 would round to 2
    assert quantize_floats(np.array([x, -x]), float(scale), 0).tolist() == [3, -3]


def test_float64_inputs_are_first_rounded_to_float32():
    x = np.array([2.4999999, 1e300, -1e300, 1e-300])  # 2.4999999 -> 2.5f
    assert F32(2.4999999) == F32(2.5)
    assert quantize_floats(x, 1.0, 0).tolist() == [3, 127, -128, 0]


def test_shapes_and_dtypes_are_kept():
    x = np.zeros((2, 3, 3, 1))
    q = quantize_floats(x, 0.1, 7)
    assert q.shape == x.shape and q.dtype == np.int8 and (q == 7).all()
    assert quantize_floats(np.float32(0.25), 0.5, 0).shape == ()


@pytest.mark.parametrize("scale", [0.0, -1.0, math.nan, math.inf, 1e39, 1e-50])
def test_refuses_a_scale_that_is_no_positive_float32(scale):
    with pytest.raises(ValueError, match="scale"):
        quantize_floats(np.zeros(2), scale, 0)


@pytest.mark.parametrize("zero_point", [-129, 128])
def test_refuses_a_zero_point_outside_int8(zero_point):
    with pytest.raises(ValueError, match="zero point"):
        quantize_floats(np.zeros(2), 0.1, zero_point)


def test_quantize_input_uses_the_input_parameters():
    qgraph = tiny_qgraph()
    params = qgraph.tensor(qgraph.input).qparams
    x = np.random.default_rng(0).uniform(-0.2, 1.2, size=(5, 6, 6, 1))
    q = quantize_input(qgraph, x)
    assert q.shape == x.shape and q.dtype == np.int8
    np.testing.assert_array_equal(q, quantize_floats(x, params.scale, params.zero_point))


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
any32 = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)
scales = st.one_of(
    st.sampled_from([1 / 255, 1 / 127.5, 2 / 255, 1.0, 0.5, 2.0**-7, 0.1, 3.0, 1e-3]),
    st.floats(float(F32(1e-6)), 1e3, width=32),
    st.floats(TINY, float(F32(1e-38)), width=32),  # subnormal and tiny scales
)


@st.composite
def values(draw, scale):
    """Values around the rounding decisions of ``scale``: ties (k + 0.5) *
    scale and their float32 neighbours, and anything else."""
    kind = draw(st.sampled_from(["tie", "tie", "any", "finite"]))
    if kind == "any":
        return draw(any32)
    if kind == "finite":
        return draw(finite32)
    k = draw(st.integers(-300, 300))
    x = F32((k + 0.5) * float(F32(scale)))
    for _ in range(draw(st.integers(0, 2))):
        x = np.nextafter(x, F32(draw(st.sampled_from([-np.inf, np.inf]))))
    return float(x)


@DETERMINISTIC
@given(data=st.data(), scale=scales, zero_point=st.integers(-128, 127))
def test_matches_exact_rational_arithmetic(data, scale, zero_point):
    xs = data.draw(st.lists(values(scale), min_size=1, max_size=40))
    expected = [exact_quantize(x, scale, zero_point) for x in xs]
    assert quantize_floats(np.array(xs, np.float32), scale, zero_point).tolist() == expected
