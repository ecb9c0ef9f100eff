"""eg_concat_s8 against the golden model, byte for byte: inputs rescaled to
the output's quantization (or copied when they already have it)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.ir import QuantParams, Rounding
from edgegen.quantize.quantize import _quantize_concat
from edgegen.reference import kernels

from .support import random_int8

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=200)
params = st.builds(QuantParams, st.floats(1e-3, 1.0).map(float), st.integers(-128, 127))


def c_concat(ck, parts, op, rounding, in_place=False):
    """``in_place``: the first input lies at the start of the output buffer,
    as the memory planner places it."""
    ffi, lib = ck.ffi, ck.lib
    pixels = parts[0].shape[0]
    out = np.full((pixels, sum(p.shape[-1] for p in parts)), 0x5A, dtype=np.int8)
    out_p = ffi.from_buffer("int8_t[]", out)
    keep = [ck.i8(p) for p in parts]
    if in_place:
        out.reshape(-1)[:parts[0].size] = parts[0].reshape(-1)
        keep[0] = (None, out_p)
    pointers = ffi.new("const int8_t *[]", [p for _, p in keep])
    inputs = ffi.new("eg_concat_input[]", [
        {"channels": p.shape[-1], "offset": -zp, "multiplier": m, "shift": s}
        for p, zp, m, s in zip(parts, op.zero_points, op.multipliers, op.shifts)])
    cp = ffi.new("eg_concat_params *", {"inputs": inputs, "count": len(parts),
                                        "output_offset": op.output_zero_point,
                                        "rounding": ck.rounding(rounding)})
    status = lib.eg_concat_s8(pointers, pixels, cp, out_p)
    return status, out


@DETERMINISTIC
@given(seed=st.integers(0, 2**32 - 1), input_params=st.lists(params, min_size=1, max_size=4),
       out=params, pixels=st.integers(1, 20), same=st.booleans(),
       rounding=st.sampled_from(Rounding), in_place=st.booleans())
def test_concat_matches_golden(ck, seed, input_params, out, pixels, same, rounding, in_place):
    if same:  # the copy path: inputs quantized like the output
        input_params = [out] * len(input_params)
    rng = np.random.default_rng(seed)
    parts = [random_int8(rng, (pixels, int(rng.integers(1, 9)))) for _ in input_params]
    op = _quantize_concat(input_params, out)
    status, got = c_concat(ck, parts, op, rounding, in_place)
    assert status == ck.lib.EG_OK
    np.testing.assert_array_equal(got, kernels.concat(parts, op, rounding))


def test_concat_refuses_a_bad_input(ck):
    parts = [np.zeros((2, 3), dtype=np.int8)]
    op = _quantize_concat([QuantParams(0.1, 0)], QuantParams(0.2, 0))
    bad = op.__class__(op.zero_points, op.multipliers, (31,), op.output_zero_point)
    status, out = c_concat(ck, parts, bad, Rounding.DOUBLE)
    assert status == ck.lib.EG_ERR_ARG and (out == 0x5A).all()
