"""eg_softmax_s8 and eg_log_softmax_s8 (TFLite's int8 SOFTMAX and
LOG_SOFTMAX) against the golden model, byte for byte; the golden model
against float softmax and log_softmax."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.ir import Rounding
from edgegen.reference.softmax import (
    MAX_DEPTH,
    exp_on_negative_values,
    log_of_sum,
    log_softmax,
    log_softmax_parameters,
    one_over_one_plus_x,
    softmax,
    softmax_parameters,
)

from .support import random_int8

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=200)


def rows_of(seed: int, rows: int, depth: int, fill: str) -> np.ndarray:
    """int8 rows; ``near``: values within a few steps of each other (many
    kept, ties for the maximum)."""
    rng = np.random.default_rng(seed)
    if fill == "near":
        return (rng.integers(-3, 4, (rows, depth)) + rng.integers(-120, 120)).astype(np.int8)
    return random_int8(rng, (rows, depth), fill)


def c_softmax(ck, x, multiplier, left_shift, diff_min):
    ffi, lib = ck.ffi, ck.lib
    x = np.ascontiguousarray(x, dtype=np.int8)
    rows, depth = int(np.prod(x.shape[:-1])), x.shape[-1]
    params = ffi.new("eg_softmax_params *", {"input_multiplier": multiplier,
                                             "input_left_shift": left_shift,
                                             "diff_min": diff_min})
    out = np.full(x.shape, 0x5A, dtype=np.int8)
    status = lib.eg_softmax_s8(ffi.from_buffer("int8_t[]", x), rows, depth, params,
                               ffi.from_buffer("int8_t[]", out))
    assert status == lib.EG_OK
    return out


@DETERMINISTIC
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 2.0).map(float),
       beta=st.sampled_from([1.0, 0.5, 2.0]), rows=st.integers(1, 6),
       depth=st.integers(1, 40), fill=st.sampled_from(["uniform", "extremes", "near"]))
def test_softmax_matches_golden(ck, seed, scale, beta, rows, depth, fill):
    x = rows_of(seed, rows, depth, fill)
    params = softmax_parameters(scale, beta)
    np.testing.assert_array_equal(c_softmax(ck, x, *params), softmax(x, *params))


@pytest.mark.parametrize("depth", [1, 255, 1000, MAX_DEPTH])
def test_softmax_long_rows_match_golden(ck, depth):
    """Wide rows take the final division past 31 bits; all-equal rows give
    the largest sum of exponentials."""
    rng = np.random.default_rng(depth)
    x = np.stack([random_int8(rng, (depth,)), np.full(depth, 17, dtype=np.int8)])
    for scale in (0.004, 0.1, 1.5):
        params = softmax_parameters(scale)
        np.testing.assert_array_equal(c_softmax(ck, x, *params), softmax(x, *params))


@pytest.mark.parametrize("scale", [0.002, 0.01, 0.05, 0.1, 0.25, 1.0, 4.0])
def test_golden_softmax_is_float_softmax_rounded(scale):
    """Over every difference a row of two can have, the fixed-point result
    is float softmax * 256 - 128 within one step (TFLite's own accuracy)."""
    first = np.repeat(np.arange(-128, 128), 256)
    second = np.tile(np.arange(-128, 128), 256)
    x = np.stack([first, second], axis=1).astype(np.int8)
    got = softmax(x, *softmax_parameters(scale)).astype(np.int64)
    xf = x.astype(np.float64) * scale
    p = np.exp(xf - xf.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    want = np.clip(np.round(p * 256) - 128, -128, 127)
    assert np.abs(got - want).max() <= 1
    # the argmax is kept wherever the float probabilities differ by a step
    clear = np.abs(p[:, 0] - p[:, 1]) > 2 / 256
    assert (np.argmax(got, axis=1) == np.argmax(p, axis=1))[clear].all()


def test_fixed_point_exp_and_reciprocal_are_accurate():
    a = np.arange(-(31 << 26), 1, 1 << 16)
    assert np.abs(exp_on_negative_values(a) / 2**31 - np.exp(a / 2**26)).max() < 1e-6
    f = np.arange(0, 2**31, 1 << 16)
    assert np.abs(one_over_one_plus_x(f) / 2**31 - 1 / (1 + f / 2**31)).max() < 1e-8


def test_softmax_refuses_out_of_range_parameters(ck):
    ffi, lib = ck.ffi, ck.lib
    data = np.zeros(8, dtype=np.int8)
    p = ffi.from_buffer("int8_t[]", data)
    good = dict(zip(("input_multiplier", "input_left_shift", "diff_min"),
                    softmax_parameters(0.1)))
    for field, value in [("input_multiplier", -1), ("input_left_shift", 31),
                         ("input_left_shift", -1), ("diff_min", 1),
                         ("diff_min", -(2**30))]:
        params = ffi.new("eg_softmax_params *", {**good, field: value})
        assert lib.eg_softmax_s8(p, 1, 8, params, p) == lib.EG_ERR_ARG, (field, value)
    params = ffi.new("eg_softmax_params *", good)
    assert lib.eg_softmax_s8(p, 1, 0, params, p) == lib.EG_ERR_ARG
    assert lib.eg_softmax_s8(p, 1, MAX_DEPTH + 1, params, p) == lib.EG_ERR_ARG
    assert lib.eg_softmax_s8(p, 1, 8, params, p) == lib.EG_OK


LOG_FIELDS = ("input_multiplier", "input_left_shift", "reverse_multiplier", "reverse_shift",
              "diff_min")


def c_log_softmax(ck, x, params, rounding):
    ffi, lib = ck.ffi, ck.lib
    x = np.ascontiguousarray(x, dtype=np.int8)
    rows, depth = int(np.prod(x.shape[:-1])), x.shape[-1]
    c_params = ffi.new("eg_log_softmax_params *", {**dict(zip(LOG_FIELDS, params)),
                                                   "rounding": ck.rounding(rounding)})
    out = np.full(x.shape, 0x5A, dtype=np.int8)
    status = lib.eg_log_softmax_s8(ffi.from_buffer("int8_t[]", x), rows, depth, c_params,
                                   ffi.from_buffer("int8_t[]", out))
    assert status == lib.EG_OK
    return out


@DETERMINISTIC
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 2.0).map(float),
       rows=st.integers(1, 6), depth=st.integers(1, 40),
       fill=st.sampled_from(["uniform", "extremes", "near"]), rounding=st.sampled_from(Rounding))
def test_log_softmax_matches_golden(ck, seed, scale, rows, depth, fill, rounding):
    x = rows_of(seed, rows, depth, fill)
    params = log_softmax_parameters(scale)
    np.testing.assert_array_equal(c_log_softmax(ck, x, params, rounding),
                                  log_softmax(x, *params, rounding))


@pytest.mark.parametrize("depth", [1, 1000, MAX_DEPTH])
def test_log_softmax_long_rows_match_golden(ck, depth):
    rng = np.random.default_rng(depth)
    x = np.stack([random_int8(rng, (depth,)), np.full(depth, -9, dtype=np.int8)])
    for scale in (0.004, 0.1, 1.5):
        params = log_softmax_parameters(scale)
        for rounding in Rounding:
            np.testing.assert_array_equal(c_log_softmax(ck, x, params, rounding),
                                          log_softmax(x, *params, rounding))


@pytest.mark.parametrize("scale", [0.004, 0.05, 0.25, 1.0])
def test_golden_log_softmax_is_float_log_softmax_rounded(scale):
    """Over every pair of int8 values, within one step of float
    log_softmax * 16 + 127, except differences TFLite cuts off (below
    diff_min: -128, as TFLite's kernel gives)."""
    first = np.repeat(np.arange(-128, 128), 256)
    second = np.tile(np.arange(-128, 128), 256)
    x = np.stack([first, second], axis=1).astype(np.int8)
    params = log_softmax_parameters(scale)
    got = log_softmax(x, *params, Rounding.DOUBLE).astype(np.int64)
    xf = x.astype(np.float64) * scale
    shifted = xf - xf.max(axis=1, keepdims=True)
    want = np.clip(np.round((shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))) * 16)
                   + 127, -128, 127)
    cut = (x.astype(np.int64) - x.max(axis=1, keepdims=True)) < params[-1]
    assert (got[cut] == -128).all()
    assert np.abs(got - want)[~cut].max() <= 1


def test_fixed_point_log_is_accurate():
    x = np.arange(1 << 19, 4095 << 19, 9973)  # [1, 4095) in Q12.19
    assert np.abs(log_of_sum(x) / 2**26 - np.log(x / 2**19)).max() < 1e-6


def test_log_softmax_refuses_out_of_range_parameters(ck):
    ffi, lib = ck.ffi, ck.lib
    data = np.zeros(8, dtype=np.int8)
    p = ffi.from_buffer("int8_t[]", data)
    good = {**dict(zip(LOG_FIELDS, log_softmax_parameters(0.1))),
            "rounding": lib.EG_ROUNDING_DOUBLE}
    for field, value in [("reverse_multiplier", -1), ("reverse_shift", 1),
                         ("reverse_shift", -32), ("input_left_shift", 31), ("diff_min", 1),
                         ("rounding", 2)]:
        params = ffi.new("eg_log_softmax_params *", {**good, field: value})
        assert lib.eg_log_softmax_s8(p, 1, 8, params, p) == lib.EG_ERR_ARG, (field, value)
    params = ffi.new("eg_log_softmax_params *", good)
    assert lib.eg_log_softmax_s8(p, 1, MAX_DEPTH + 1, params, p) == lib.EG_ERR_ARG
    assert lib.eg_log_softmax_s8(p, 1, 8, params, p) == lib.EG_OK
