"""eg_conv_pool_slice: the band slices of a convolution fused with its
pooling. Pooled rows computed band by band through the unchanged kernels
equal the golden model's unfused conv then pool, byte for byte; the slices
equal edgegen.plan.fusion's (which sizes the band buffer); inconsistent
arguments give EG_ERR_ARG and leave the band untouched."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.encode.storage import dense_conv_scratch_bytes
from edgegen.ir import Rounding
from edgegen.plan.fusion import row_span
from edgegen.reference import kernels
from edgegen.reference.numerics import fold_zero_point

from .support import random_act_range, random_bias, random_int8, random_requant, random_weights

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=200)
SENTINEL = 0x5A


def _band_fields(band) -> dict:
    def shape(s):
        return (s.h, s.w, s.c)

    return {"input_offset": band.input_offset, "conv_in": shape(band.conv_in),
            "conv_pad_top": band.conv.pad_top, "band": shape(band.band),
            "pool_pad_top": band.pool.pad_top, "output_offset": band.output_offset,
            "pool_out": shape(band.pool_out)}


@st.composite
def axis(draw, max_size=12, max_kernel=5, max_stride=3):
    """(size, kernel, stride, pad_before, pad_after), output >= 1."""
    kernel = draw(st.integers(1, max_kernel))
    before = draw(st.integers(0, kernel - 1))
    after = draw(st.integers(0, kernel - 1))
    size = draw(st.integers(max(1, kernel - before - after), max_size))
    return size, kernel, draw(st.integers(1, max_stride)), before, after


def _out(size, kernel, stride, before, after):
    return (size + before + after - kernel) // stride + 1


@DETERMINISTIC
@given(seed=st.integers(0, 2**32 - 1), y=axis(max_size=14), x=axis(), c=st.integers(1, 5),
       o=st.integers(1, 5), pool_kind=st.sampled_from(["max_pool", "avg_pool"]),
       pool_y=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(0, 3), st.integers(0, 3)),
       pool_x=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(0, 2), st.integers(0, 2)),
       data=st.data())
def test_bands_equal_the_unfused_layers(runtime, seed, y, x, c, o, pool_kind, pool_y, pool_x, data):
    """Any geometry, overlapping pooling windows included (then the shared
    rows are computed twice, still right), any band of pooled rows."""
    ffi, lib = runtime
    (h, kh, sh, top, bottom), (w, kw, sw, left, right) = y, x
    oh, ow = _out(*y), _out(*x)
    pk_h, ps_h, pt, pb = pool_y
    pk_w, ps_w, pl, pr = pool_x
    pt, pb, pl, pr = min(pt, pk_h - 1), min(pb, pk_h - 1), min(pl, pk_w - 1), min(pr, pk_w - 1)
    ph, pw = _out(oh, pk_h, ps_h, pt, pb), _out(ow, pk_w, ps_w, pl, pr)
    if ph < 1 or pw < 1:
        return
    row = data.draw(st.integers(0, ph - 1))
    rows = data.draw(st.integers(1, ph - row))
    # an average counting its padding (count_include_pad) keeps its divisors in every band
    counted = ((data.draw(st.integers(0, min(pt, pb))), data.draw(st.integers(0, min(pl, pr))))
               if pool_kind == "avg_pool" else (0, 0))
    extra = (counted,) if pool_kind == "avg_pool" else ()

    rng = np.random.default_rng(seed)
    inp = random_int8(rng, (h, w, c))
    weight = random_weights(rng, (o, kh, kw, c))
    bias = random_bias(rng, o, kh * kw * c)
    zp = int(rng.integers(-128, 128))
    requant = random_requant(rng, o, kh * kw * c, Rounding.DOUBLE)
    act_min, act_max = random_act_range(rng, int(rng.integers(-128, 128)))
    conv_out = kernels.conv2d(inp[None], weight, bias, (sh, sw), (top, bottom, left, right), zp,
                              requant)
    pool = getattr(kernels, pool_kind)(conv_out, (pk_h, pk_w), (ps_h, ps_w), (pt, pb, pl, pr),
                                       act_min, act_max, *extra)[0]

    conv_in_s, conv_out_s = ffi.new("eg_shape *", [h, w, c]), ffi.new("eg_shape *", [oh, ow, o])
    pool_out_s = ffi.new("eg_shape *", [ph, pw, o])
    conv_p = ffi.new("eg_conv_params *", [sh, sw, top, left, -zp, 1])
    pool_p = ffi.new("eg_pool_params *", [pk_h, pk_w, ps_h, ps_w, pt, pl, act_min, act_max,
                                          *counted])
    band_bytes = oh * ow * o
    band = ffi.new("eg_conv_pool_band *")
    assert lib.eg_conv_pool_slice(conv_in_s, kh, kw, conv_p, conv_out_s, pool_p, pool_out_s,
                                  row, rows, band_bytes, band) == lib.EG_OK

    # The slices are plan.fusion's.
    c0, c1 = row_span(row, row + rows, pk_h, ps_h, pt, oh)
    i0, i1 = row_span(c0, c1, kh, sh, top, h)
    assert _band_fields(band) == {
        "input_offset": i0 * w * c, "conv_in": (i1 - i0, w, c),
        "conv_pad_top": max(0, top - c0 * sh), "band": (c1 - c0, ow, o),
        "pool_pad_top": max(0, pt - row * ps_h), "output_offset": row * pw * o,
        "pool_out": (rows, pw, o)}
    assert (band.conv.stride_h, band.conv.pad_left, band.pool.kernel_h, band.pool.act_max) == \
        (sh, left, pk_h, act_max)

    # The unchanged kernels on the slices write exactly those pooled rows.
    inp_c = np.ascontiguousarray(inp)
    w_c = np.ascontiguousarray(weight)
    b_c = np.ascontiguousarray(fold_zero_point(weight, bias, zp).astype(np.int32))
    mult = np.ascontiguousarray(requant.multiplier, dtype=np.int32)
    shift = np.ascontiguousarray(requant.shift, dtype=np.int32)
    rq = ffi.new("eg_requant *", {"multiplier": ffi.from_buffer("int32_t[]", mult),
                                  "shift": ffi.from_buffer("int32_t[]", shift),
                                  "output_offset": requant.output_zero_point,
                                  "act_min": requant.act_min, "act_max": requant.act_max,
                                  "rounding": lib.EG_ROUNDING_DOUBLE, "per_tensor": 0})
    scratch_bytes = dense_conv_scratch_bytes(kh, kw, c)
    scratch = np.zeros(max(1, scratch_bytes), np.uint8)
    buffer = np.full(band.band.h * ow * o, SENTINEL, np.int8)
    out = np.full((ph, pw, o), SENTINEL, np.int8)
    inp_p = ffi.from_buffer("int8_t[]", inp_c) + band.input_offset
    assert lib.eg_conv2d_s8(inp_p, ffi.addressof(band, "conv_in"), ffi.from_buffer("int8_t[]", w_c),
                            kh, kw, ffi.from_buffer("int32_t[]", b_c), ffi.addressof(band, "conv"),
                            rq, ffi.from_buffer("uint8_t[]", scratch), scratch_bytes,
                            ffi.from_buffer("int8_t[]", buffer),
                            ffi.addressof(band, "band")) == lib.EG_OK
    np.testing.assert_array_equal(buffer.reshape(-1, ow, o), conv_out[0, c0:c1])
    pool_fn = lib.eg_max_pool_s8 if pool_kind == "max_pool" else lib.eg_avg_pool_s8
    out_p = ffi.from_buffer("int8_t[]", out) + band.output_offset
    assert pool_fn(ffi.from_buffer("int8_t[]", buffer), ffi.addressof(band, "band"),
                   ffi.addressof(band, "pool"), out_p, ffi.addressof(band, "pool_out")) == lib.EG_OK
    np.testing.assert_array_equal(out[row:row + rows], pool[row:row + rows])
    assert (out[:row] == SENTINEL).all() and (out[row + rows:] == SENTINEL).all()


class Call:
    """A valid call: 6x7x2 input, 3x3 conv pad 1 -> 6x7x3, 2x2/2 max pool
    -> 3x3x3; the band of pooled row 1 is conv rows 2..3."""

    def __init__(self, runtime):
        ffi, self.lib = runtime
        self.ffi = ffi
        self.conv_in = ffi.new("eg_shape *", [6, 7, 2])
        self.conv_out = ffi.new("eg_shape *", [6, 7, 3])
        self.pool_out = ffi.new("eg_shape *", [3, 3, 3])
        self.conv = ffi.new("eg_conv_params *", [1, 1, 1, 1, 128, 1])
        self.pool = ffi.new("eg_pool_params *", [2, 2, 2, 2, 0, 0, -128, 127])
        self.band = ffi.new("eg_conv_pool_band *")
        ffi.memmove(self.band, bytes([SENTINEL]) * ffi.sizeof("eg_conv_pool_band"),
                    ffi.sizeof("eg_conv_pool_band"))
        self.args = dict(conv_in=self.conv_in, kernel_h=3, kernel_w=3, conv=self.conv,
                         conv_out=self.conv_out, pool=self.pool, pool_out=self.pool_out,
                         row=1, rows=1, band_bytes=2 * 7 * 3, band=self.band)

    def __call__(self):
        return self.lib.eg_conv_pool_slice(*self.args.values())

    def untouched(self) -> bool:
        size = self.ffi.sizeof("eg_conv_pool_band")
        return bytes(self.ffi.buffer(self.band, size)) == bytes([SENTINEL]) * size


def test_valid_call(runtime):
    call = Call(runtime)
    assert call() == call.lib.EG_OK
    assert _band_fields(call.band) == {
        "input_offset": 1 * 7 * 2, "conv_in": (4, 7, 2), "conv_pad_top": 0, "band": (2, 7, 3),
        "pool_pad_top": 0, "output_offset": 9, "pool_out": (1, 3, 3)}


def test_first_band_keeps_the_top_padding(runtime):
    call = Call(runtime)
    call.args.update(row=0, rows=2, band_bytes=4 * 7 * 3)
    assert call() == call.lib.EG_OK
    assert _band_fields(call.band) == {
        "input_offset": 0, "conv_in": (5, 7, 2), "conv_pad_top": 1, "band": (4, 7, 3),
        "pool_pad_top": 0, "output_offset": 0, "pool_out": (2, 3, 3)}


@pytest.mark.parametrize("name", ["conv_in", "conv", "conv_out", "pool", "pool_out", "band"])
def test_null_pointer(runtime, name):
    call = Call(runtime)
    call.args[name] = call.ffi.NULL
    assert call() == call.lib.EG_ERR_ARG


BROKEN = [
    ("arg", "row", -1),
    ("arg", "row", 3),
    ("arg", "rows", 0),
    ("arg", "rows", 3),  # rows 1..3 of 3
    ("arg", "band_bytes", 2 * 7 * 3 - 1),
    ("arg", "kernel_h", 0),
    ("arg", "kernel_w", 1),  # pad_left 1 is not below it
    ("conv_in", "c", 0),
    ("conv_in", "h", 3),  # the last conv window starts past the input
    ("conv_out", "h", 8),  # the last conv window starts at row 7 - 1 = 6 >= 6
    ("conv_out", "c", 4),  # the pooling's channels differ
    ("pool_out", "c", 2),
    ("pool_out", "h", 4),  # pooled row 3 starts at conv row 6 of 6
    ("pool_out", "w", 0),
    ("conv", "stride_h", 0),
    ("conv", "pad_top", 3),  # >= kernel
    ("conv", "input_offset", 129),
    ("pool", "kernel_h", 0),
    ("pool", "stride_w", 0),
    ("pool", "pad_top", 2),  # >= kernel
    ("pool", "act_min", -129),
    ("pool", "act_max", 128),
    ("pool", "act_min", 10),  # > act_max 0 below
]


@pytest.mark.parametrize("target, field, value", BROKEN)
def test_inconsistent_argument(runtime, target, field, value):
    call = Call(runtime)
    if target == "arg":
        call.args[field] = value
    else:
        setattr(getattr(call, target), field, value)
        if (target, field, value) == ("pool", "act_min", 10):
            call.pool.act_max = 0
    assert call() == call.lib.EG_ERR_ARG
    assert call.untouched()
