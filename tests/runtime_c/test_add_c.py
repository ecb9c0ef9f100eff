"""eg_add_s8 (TFLite's int8 ADD) against the golden model, byte for byte."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.ir import Activation, Add, QuantParams, Rounding
from edgegen.quantize.quantize import _quantize_add
from edgegen.reference import kernels

from .support import random_int8

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300)
scales = st.floats(1e-4, 1.0).map(float)
zero_points = st.integers(-128, 127)


def c_add(ck, a, b, op, rounding):
    ffi, lib = ck.ffi, ck.lib
    params = ffi.new("eg_add_params *", {
        "input1_offset": -op.input1_zero_point, "input1_multiplier": op.input1_multiplier,
        "input1_shift": op.input1_shift,
        "input2_offset": -op.input2_zero_point, "input2_multiplier": op.input2_multiplier,
        "input2_shift": op.input2_shift,
        "output_offset": op.output_zero_point, "output_multiplier": op.output_multiplier,
        "output_shift": op.output_shift, "act_min": op.act_min, "act_max": op.act_max,
        "rounding": ck.rounding(rounding)})
    a, a_p = ck.i8(a)
    b, b_p = ck.i8(b)
    out = np.full(a.size, 0x5A, dtype=np.int8)
    status = lib.eg_add_s8(a_p, b_p, a.size, params, ffi.from_buffer("int8_t[]", out))
    assert status == lib.EG_OK
    return out


@DETERMINISTIC
@given(seed=st.integers(0, 2**32 - 1), s1=scales, s2=scales, so=scales, z1=zero_points,
       z2=zero_points, zo=zero_points, size=st.integers(1, 300),
       activation=st.sampled_from([Activation.NONE, Activation.RELU, Activation.RELU6]),
       rounding=st.sampled_from(Rounding), fill=st.sampled_from(["uniform", "extremes"]))
def test_add_matches_golden(ck, seed, s1, s2, so, z1, z2, zo, size, activation, rounding, fill):
    op = _quantize_add(Add(activation), QuantParams(s1, z1), QuantParams(s2, z2),
                       QuantParams(so, zo))
    rng = np.random.default_rng(seed)
    a, b = random_int8(rng, (size,), fill), random_int8(rng, (size,), fill)
    np.testing.assert_array_equal(c_add(ck, a, b, op, rounding),
                                  kernels.add(a, b, op, rounding))


def test_add_refuses_out_of_range_parameters(ck):
    op = _quantize_add(Add(), QuantParams(0.1, 0), QuantParams(0.2, 3), QuantParams(0.3, -5))
    ffi, lib = ck.ffi, ck.lib
    data = np.zeros(4, dtype=np.int8)
    p = ffi.from_buffer("int8_t[]", data)
    for field, value in [("input1_offset", 129), ("output_offset", 128), ("input2_shift", 31),
                         ("output_multiplier", -1), ("act_min", -129), ("rounding", 2)]:
        params = ffi.new("eg_add_params *", {
            "input1_offset": -op.input1_zero_point, "input1_multiplier": op.input1_multiplier,
            "input1_shift": op.input1_shift, "input2_offset": -op.input2_zero_point,
            "input2_multiplier": op.input2_multiplier, "input2_shift": op.input2_shift,
            "output_offset": op.output_zero_point, "output_multiplier": op.output_multiplier,
            "output_shift": op.output_shift, "act_min": op.act_min, "act_max": op.act_max,
            "rounding": lib.EG_ROUNDING_DOUBLE})
        setattr(params, field, value)
        assert lib.eg_add_s8(p, p, 4, params, p) == lib.EG_ERR_ARG, field
