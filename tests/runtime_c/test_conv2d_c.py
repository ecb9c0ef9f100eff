"""eg_conv2d_s8 against the golden model, byte for byte, ungrouped and grouped."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.ir import Requant, Rounding
from edgegen.reference import kernels

from .support import FILLS, random_bias, random_int8, random_requant, random_weights

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300)


def run_case(ck, seed, h, w, c, o, kernel, stride, padding, rounding,
             regime="realistic", fill="uniform", has_bias=True, batch=2, zp=None, groups=1):
    """``groups`` divides c and o; always eg_conv2d_s8, even when depthwise."""
    rng = np.random.default_rng(seed)
    kh, kw = kernel
    x = random_int8(rng, (batch, h, w, c), fill)
    weight = random_weights(rng, (o, kh, kw, c // groups), rng.choice(FILLS))
    terms = kh * kw * c // groups
    bias = random_bias(rng, o, terms) if has_bias else None
    if zp is None:
        zp = int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))
    requant = random_requant(rng, o, terms, rounding, regime)
    expected = kernels.conv2d(x, weight, bias, stride, padding, zp, requant, groups)
    got = ck.conv2d(x, weight, bias, stride, padding, zp, requant, groups, depthwise=False)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    return got


@st.composite
def axes(draw, max_size=9, max_kernel=5):
    """(size, kernel, stride, pad_before, pad_after) with pads < kernel, output >= 1."""
    kernel = draw(st.integers(1, max_kernel))
    before = draw(st.integers(0, kernel - 1))
    after = draw(st.integers(0, kernel - 1))
    size = draw(st.integers(max(1, kernel - before - after), max_size))
    stride = draw(st.integers(1, 3))
    return size, kernel, stride, before, after


@DETERMINISTIC
@given(
    seed=st.integers(0, 2**32 - 1),
    y=axes(),
    x=axes(),
    c=st.integers(1, 24),  # filter rows short (im2col) and long (in place)
    o=st.integers(1, 7),
    rounding=st.sampled_from(Rounding),
    regime=st.sampled_from(["realistic", "realistic", "wild"]),
    fill=st.sampled_from(FILLS),
    has_bias=st.booleans(),
)
def test_conv2d_matches_golden(ck, seed, y, x, c, o, rounding, regime, fill, has_bias):
    (h, kh, sh, top, bottom), (w, kw, sw, left, right) = y, x
    run_case(ck, seed, h, w, c, o, (kh, kw), (sh, sw), (top, bottom, left, right),
             rounding, regime, fill, has_bias)


@pytest.mark.parametrize("rounding", list(Rounding))
@pytest.mark.parametrize(
    "h, w, c, o, kernel, stride, padding",
    [
        (8, 8, 3, 4, (1, 1), (1, 1), (0, 0, 0, 0)),  # pointwise
        (7, 6, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1)),  # "same"
        (9, 9, 4, 3, (3, 3), (2, 2), (0, 1, 0, 1)),  # TF "same", stride 2: pad after only
        (9, 9, 4, 3, (3, 3), (2, 2), (1, 1, 1, 1)),
        (3, 3, 2, 2, (5, 5), (1, 1), (2, 2, 2, 2)),  # kernel larger than the input
        (1, 1, 16, 8, (3, 3), (1, 1), (1, 1, 1, 1)),  # 1x1 input: the centre tap only
        (10, 10, 1, 5, (5, 5), (1, 1), (0, 0, 0, 0)),  # LeNet-like first layer
        (11, 7, 2, 3, (1, 3), (3, 1), (0, 0, 2, 0)),  # stride beyond kernel, asymmetric
        (6, 6, 33, 17, (2, 2), (2, 2), (0, 0, 0, 0)),  # many channels
        (5, 13, 3, 2, (4, 2), (1, 2), (3, 0, 1, 1)),  # pads up to kernel - 1
        # long filter rows, odd channel and pixel counts (overlapping last tile)
        (7, 7, 8, 5, (3, 3), (1, 1), (1, 1, 1, 1)),  # clipped borders, odd channels
        (12, 9, 20, 3, (5, 5), (1, 1), (0, 0, 0, 0)),  # LeNet-like second layer, odd width
        (6, 9, 17, 7, (1, 1), (1, 1), (0, 0, 0, 0)),  # pointwise, 17 = 4 * 4 + 1
        (8, 8, 6, 9, (3, 3), (2, 2), (0, 1, 0, 1)),  # stride 2, padding after only
        (5, 5, 31, 2, (2, 3), (1, 2), (1, 0, 2, 1)),
    ],
)
def test_conv2d_geometries(ck, rounding, h, w, c, o, kernel, stride, padding):
    run_case(ck, hash((h, w, c, o, kernel, stride, padding)) % 2**32, h, w, c, o,
             kernel, stride, padding, rounding)


@DETERMINISTIC
@given(
    seed=st.integers(0, 2**32 - 1),
    y=axes(max_size=8),
    x=axes(max_size=8),
    groups=st.integers(2, 6),
    per_group=st.integers(1, 9),  # 1: depthwise (through eg_conv2d_s8)
    outputs_per_group=st.integers(1, 5),
    rounding=st.sampled_from(Rounding),
    regime=st.sampled_from(["realistic", "wild"]),
    fill=st.sampled_from(FILLS),
    has_bias=st.booleans(),
)
def test_grouped_conv2d_matches_golden(ck, seed, y, x, groups, per_group, outputs_per_group,
                                       rounding, regime, fill, has_bias):
    (h, kh, sh, top, bottom), (w, kw, sw, left, right) = y, x
    run_case(ck, seed, h, w, groups * per_group, groups * outputs_per_group, (kh, kw),
             (sh, sw), (top, bottom, left, right), rounding, regime, fill, has_bias,
             groups=groups)


@pytest.mark.parametrize("rounding", list(Rounding))
@pytest.mark.parametrize(
    "h, w, c, o, groups, kernel, stride, padding",
    [
        (8, 8, 24, 24, 3, (1, 1), (1, 1), (0, 0, 0, 0)),  # ShuffleNet's grouped pointwise
        (7, 9, 32, 32, 4, (3, 3), (1, 1), (1, 1, 1, 1)),  # CMSIS-NN's grouped row, smaller
        (6, 6, 12, 8, 4, (3, 3), (2, 2), (0, 1, 0, 1)),  # 3 in, 2 out per group
        (5, 7, 6, 18, 6, (3, 3), (1, 1), (1, 1, 1, 1)),  # depthwise, multiplier 3
        (5, 5, 10, 5, 5, (1, 1), (2, 2), (0, 0, 0, 0)),  # one output per group, stride 2
        (4, 4, 8, 8, 2, (5, 5), (1, 1), (2, 2, 2, 2)),  # kernel larger than the input
    ],
)
def test_grouped_conv2d_geometries(ck, rounding, h, w, c, o, groups, kernel, stride, padding):
    run_case(ck, hash((h, w, c, o, groups, kernel)) % 2**32, h, w, c, o, kernel, stride,
             padding, rounding, groups=groups)


@pytest.mark.parametrize("rounding", list(Rounding))
@pytest.mark.parametrize("zp", [-128, 127])
def test_conv2d_extreme_inputs(ck, zp, rounding):
    """-128/127 data and weights, extreme zero points, wild requantization
    (saturating left shifts, multiplier 0, 31-bit right shifts)."""
    for seed in range(6):
        run_case(ck, seed, 5, 5, 8, 6, (3, 3), (1, 1), (1, 1, 1, 1),
                 rounding, regime="wild", fill="extremes", zp=zp)


def test_conv2d_relu6_range_narrows_output(ck):
    rng = np.random.default_rng(3)
    x = random_int8(rng, (1, 6, 6, 3))
    weight = random_weights(rng, (4, 3, 3, 3))
    base = random_requant(rng, 4, 27, Rounding.DOUBLE)
    requant = Requant(base.multiplier, base.shift, -10, -10, 40, Rounding.DOUBLE)
    expected = kernels.conv2d(x, weight, None, (1, 1), (1, 1, 1, 1), 5, requant)
    got = ck.conv2d(x, weight, None, (1, 1), (1, 1, 1, 1), 5, requant)
    np.testing.assert_array_equal(got, expected)
    assert got.min() >= -10 and got.max() <= 40
