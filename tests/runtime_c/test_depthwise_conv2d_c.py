"""eg_depthwise_conv2d_s8 against the golden model (a conv2d with groups =
input channels), byte for byte."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.ir import Rounding
from edgegen.reference import kernels

from .support import FILLS, random_bias, random_int8, random_requant, random_weights
from .test_conv2d_c import axes

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=200)


def run_case(ck, seed, h, w, c, multiplier, kernel, stride, padding, rounding,
             regime="realistic", fill="uniform", has_bias=True, zp=None, scratch=False):
    rng = np.random.default_rng(seed)
    kh, kw = kernel
    o = c * multiplier
    x = random_int8(rng, (2, h, w, c), fill)
    weight = random_weights(rng, (o, kh, kw, 1), rng.choice(FILLS))
    bias = random_bias(rng, o, kh * kw) if has_bias else None
    if zp is None:
        zp = int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))
    requant = random_requant(rng, o, kh * kw, rounding, regime)
    expected = kernels.conv2d(x, weight, bias, stride, padding, zp, requant, groups=c)
    got = ck.conv2d(x, weight, bias, stride, padding, zp, requant, groups=c,
                    depthwise_scratch=scratch)
    np.testing.assert_array_equal(got, expected)


@DETERMINISTIC
@given(
    seed=st.integers(0, 2**32 - 1),
    y=axes(),
    x=axes(),
    c=st.integers(1, 13),  # channel blocks of four and their remainders
    multiplier=st.sampled_from([1, 1, 2, 3]),
    rounding=st.sampled_from(Rounding),
    regime=st.sampled_from(["realistic", "realistic", "wild"]),
    fill=st.sampled_from(FILLS),
    has_bias=st.booleans(),
    scratch=st.booleans(),
)
def test_depthwise_matches_golden(ck, seed, y, x, c, multiplier, rounding, regime, fill,
                                  has_bias, scratch):
    """With and without the optional scratch (the DSP kernels widen each
    group of four channels' weights there)."""
    (h, kh, sh, top, bottom), (w, kw, sw, left, right) = y, x
    run_case(ck, seed, h, w, c, multiplier, (kh, kw), (sh, sw), (top, bottom, left, right),
             rounding, regime, fill, has_bias, scratch=scratch)


@pytest.mark.parametrize("rounding", list(Rounding))
@pytest.mark.parametrize("h, w, c, multiplier, kernel, stride, padding", [
    (16, 16, 32, 1, (3, 3), (1, 1), (1, 1, 1, 1)),  # MobileNet's 3x3, "same"
    (16, 16, 32, 1, (3, 3), (2, 2), (0, 1, 0, 1)),  # stride 2, TF "same"
    (7, 9, 5, 2, (3, 5), (1, 2), (2, 0, 1, 3)),  # multiplier 2, odd channels, asymmetric
    (25, 5, 64, 1, (3, 3), (1, 1), (1, 1, 1, 1)),  # the DS-CNN layer: a narrow image
    (6, 7, 12, 1, (2, 3), (2, 1), (1, 0, 0, 2)),  # widened, not 3x3, asymmetric padding
    (5, 5, 8, 1, (5, 5), (1, 1), (2, 2, 2, 2)),  # 25 taps: too many to widen
])
@pytest.mark.parametrize("scratch", [False, True])
def test_depthwise_geometries(ck, rounding, h, w, c, multiplier, kernel, stride, padding,
                              scratch):
    run_case(ck, h * w + c, h, w, c, multiplier, kernel, stride, padding, rounding,
             scratch=scratch)


@pytest.mark.parametrize("zp", [-128, 127])
def test_depthwise_extreme_inputs(ck, zp):
    for seed in range(4):
        run_case(ck, seed, 5, 5, 8, 1, (3, 3), (1, 1), (1, 1, 1, 1), Rounding.DOUBLE,
                 regime="wild", fill="extremes", zp=zp)


def test_depthwise_refuses_an_output_that_is_no_multiple_of_the_input(runtime):
    ffi, lib = runtime
    data = np.zeros(64, dtype=np.int8)
    p = ffi.from_buffer("int8_t[]", data)
    mult = np.full(3, 1 << 30, dtype=np.int32)
    shift = np.zeros(3, dtype=np.int32)
    rq = ffi.new("eg_requant *", {"multiplier": ffi.from_buffer("int32_t[]", mult),
                                  "shift": ffi.from_buffer("int32_t[]", shift),
                                  "output_offset": 0, "act_min": -128, "act_max": 127,
                                  "rounding": lib.EG_ROUNDING_DOUBLE})
    params = ffi.new("eg_conv_params *", [1, 1, 0, 0, 0, 2])
    status = lib.eg_depthwise_conv2d_s8(p, ffi.new("eg_shape *", [3, 3, 2]), p, 3, 3, ffi.NULL,
                                        params, rq, ffi.NULL, 0, p,
                                        ffi.new("eg_shape *", [1, 1, 3]))
    assert status == lib.EG_ERR_ARG
