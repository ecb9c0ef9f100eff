"""EG_ERR_ARG: NULL pointers, inconsistent shapes, out-of-range parameters.

Each case starts from a valid call (asserted EG_OK) and breaks one thing;
the output buffer must be left untouched ("checked before any output is
written").
"""

import numpy as np
import pytest

SENTINEL = 0x5A


class Call:
    """A valid call of one kernel, with every argument kept alive."""

    def __init__(self, runtime, kernel):
        self.ffi, self.lib = runtime
        self.kernel = kernel
        ffi = self.ffi
        self.out = np.full(256, SENTINEL, dtype=np.int8)
        self.input = np.arange(-50, 50, dtype=np.int8)
        self.filter = np.ones(200, dtype=np.int8)
        self.bias = np.zeros(16, dtype=np.int32)
        self.mult = np.full(16, 1 << 30, dtype=np.int32)
        self.shift = np.full(16, -3, dtype=np.int32)
        self.args = {}
        p = {
            "input": ffi.from_buffer("int8_t[]", self.input),
            "filter": ffi.from_buffer("int8_t[]", self.filter),
            "bias": ffi.from_buffer("int32_t[]", self.bias),
            "output": ffi.from_buffer("int8_t[]", self.out),
        }
        self.requant = ffi.new("eg_requant *", {
            "multiplier": ffi.from_buffer("int32_t[]", self.mult),
            "shift": ffi.from_buffer("int32_t[]", self.shift),
            "output_offset": 3, "act_min": -128, "act_max": 127,
            "rounding": self.lib.EG_ROUNDING_DOUBLE,
        })
        if kernel == "conv":
            # 4x5x2 input, 3x3 filter, stride 1, pad 1: 4x5x3 output.
            self.in_shape = ffi.new("eg_shape *", [4, 5, 2])
            self.out_shape = ffi.new("eg_shape *", [4, 5, 3])
            self.params = ffi.new("eg_conv_params *", [1, 1, 1, 1, 128, 1])
            # A filter row of 3 x 2 values: the kernel needs its im2col scratch.
            self.scratch = np.zeros(36, dtype=np.int8)
            self.args = dict(input=p["input"], in_shape=self.in_shape, filter=p["filter"],
                             kernel_h=3, kernel_w=3, bias=p["bias"], params=self.params,
                             requant=self.requant,
                             scratch=ffi.from_buffer("int8_t[]", self.scratch),
                             scratch_bytes=36, output=p["output"],
                             out_shape=self.out_shape)
        elif kernel == "fc":
            self.args = dict(input=p["input"], in_features=10, weights=p["filter"],
                             bias=p["bias"], out_features=4, requant=self.requant,
                             output=p["output"])
        elif kernel in ("max_pool", "avg_pool"):
            # 4x5x3 input, 2x2 window, stride 2, pad 0: 2x2x3 output.
            self.in_shape = ffi.new("eg_shape *", [4, 5, 3])
            self.out_shape = ffi.new("eg_shape *", [2, 2, 3])
            self.params = ffi.new("eg_pool_params *", [2, 2, 2, 2, 0, 0, -128, 127])
            self.args = dict(input=p["input"], in_shape=self.in_shape, params=self.params,
                             output=p["output"], out_shape=self.out_shape)
        elif kernel == "clamp":
            self.args = dict(input=p["input"], size=100, act_min=0, act_max=127,
                             output=p["output"])
        else:
            raise ValueError(kernel)

    def __call__(self):
        fn = {
            "conv": self.lib.eg_conv2d_s8,
            "fc": self.lib.eg_fully_connected_s8,
            "max_pool": self.lib.eg_max_pool_s8,
            "avg_pool": self.lib.eg_avg_pool_s8,
            "clamp": self.lib.eg_clamp_s8,
        }[self.kernel]
        return fn(*self.args.values())


KERNELS = ["conv", "fc", "max_pool", "avg_pool", "clamp"]


@pytest.mark.parametrize("kernel", KERNELS)
def test_valid_call_is_ok(runtime, kernel):
    call = Call(runtime, kernel)
    assert call() == call.lib.EG_OK
    assert (call.out != SENTINEL).any()


POINTERS = {
    "conv": ["input", "in_shape", "filter", "params", "requant", "scratch", "output",
             "out_shape"],
    "fc": ["input", "weights", "bias", "requant", "output"],
    "max_pool": ["input", "in_shape", "params", "output", "out_shape"],
    "avg_pool": ["input", "in_shape", "params", "output", "out_shape"],
    "clamp": ["input", "output"],
}


@pytest.mark.parametrize(
    "kernel, name", [(k, n) for k, names in POINTERS.items() for n in names]
)
def test_null_pointer(runtime, kernel, name):
    call = Call(runtime, kernel)
    call.args[name] = call.ffi.NULL
    assert call() == call.lib.EG_ERR_ARG
    assert (call.out == SENTINEL).all()


def test_conv_without_bias_is_ok(runtime):
    call = Call(runtime, "conv")
    call.args["bias"] = call.ffi.NULL
    assert call() == call.lib.EG_OK


@pytest.mark.parametrize("kernel", ["conv", "fc"])
@pytest.mark.parametrize("field", ["multiplier", "shift"])
def test_null_requant_array(runtime, kernel, field):
    call = Call(runtime, kernel)
    setattr(call.requant, field, call.ffi.NULL)
    assert call() == call.lib.EG_ERR_ARG
    assert (call.out == SENTINEL).all()


def _set(call, target, field, value):
    """Apply one change: to a struct field or to a plain argument."""
    if target == "arg":
        call.args[field] = value
    else:
        setattr(getattr(call, target), field, value)


BROKEN = [
    # shapes
    ("conv", "in_shape", "c", 0),
    ("conv", "in_shape", "h", -1),
    ("conv", "out_shape", "w", 0),
    ("conv", "out_shape", "h", 6),  # last window starts at row 5 - 1 = 4 >= in h 4
    ("conv", "out_shape", "w", 7),
    ("conv", "in_shape", "w", 2**29),  # 4 * 2^29 * 2 elements: beyond int32
    ("conv", "arg", "kernel_h", 0),
    ("conv", "arg", "kernel_w", -3),
    # geometry
    ("conv", "params", "stride_h", 0),
    ("conv", "params", "stride_w", -1),
    ("conv", "params", "pad_top", 3),  # >= kernel
    ("conv", "params", "pad_left", -1),
    ("conv", "params", "input_offset", 129),
    ("conv", "params", "input_offset", -128),
    ("conv", "arg", "scratch_bytes", 35),  # one byte short of the im2col windows
    ("conv", "params", "groups", 0),
    ("conv", "params", "groups", 2),  # divides the 2 input channels, not the 3 outputs
    ("conv", "params", "groups", 3),  # divides the 3 outputs, not the 2 input channels
    # output stage
    ("conv", "requant", "act_min", -129),
    ("conv", "requant", "act_max", 128),
    ("conv", "requant", "act_min", 10),  # > act_max below
    ("conv", "requant", "rounding", 2),
    ("fc", "requant", "act_max", 200),
    ("fc", "requant", "rounding", 7),
    ("fc", "arg", "in_features", 0),
    ("fc", "arg", "out_features", -2),
    ("fc", "arg", "in_features", 2**30),  # in * out overflows int32
    # pooling
    ("max_pool", "out_shape", "c", 2),  # channels must match
    ("avg_pool", "out_shape", "c", 4),
    ("max_pool", "out_shape", "h", 4),  # window 3 starts at row 6 >= 4
    ("avg_pool", "out_shape", "w", 4),
    ("max_pool", "params", "kernel_h", 0),
    ("avg_pool", "params", "stride_w", 0),
    ("avg_pool", "params", "pad_top", 2),  # >= kernel
    ("max_pool", "params", "pad_left", -1),
    ("max_pool", "params", "act_min", -129),
    ("avg_pool", "params", "act_max", -129),
    ("avg_pool", "in_shape", "h", 0),
    # clamp
    ("clamp", "arg", "size", 0),
    ("clamp", "arg", "size", -5),
    ("clamp", "arg", "act_min", -129),
    ("clamp", "arg", "act_max", 128),
    ("clamp", "arg", "act_min", 127),  # > act_max 0 below
]


@pytest.mark.parametrize("kernel, target, field, value", BROKEN)
def test_inconsistent_argument(runtime, kernel, target, field, value):
    call = Call(runtime, kernel)
    _set(call, target, field, value)
    if (target, field, value) in {("requant", "act_min", 10), ("arg", "act_min", 127)}:
        _set(call, target, "act_max", 0)
    assert call() == call.lib.EG_ERR_ARG
    assert (call.out == SENTINEL).all()


@pytest.mark.parametrize("kernel", ["conv", "fc"])
@pytest.mark.parametrize("field, value", [("mult", -1), ("shift", 31), ("shift", -32)])
def test_requant_constant_out_of_range(runtime, kernel, field, value):
    """Per-channel constants are checked too: the last used channel is broken."""
    call = Call(runtime, kernel)
    channels = 3 if kernel == "conv" else 4
    getattr(call, field)[channels - 1] = value
    assert call() == call.lib.EG_ERR_ARG
    assert (call.out == SENTINEL).all()
    getattr(call, field)[channels] = value  # beyond the channels: never read
    getattr(call, field)[channels - 1] = 0
    assert call() == call.lib.EG_OK


def test_conv_largest_output_is_accepted(runtime):
    """out h = 5 puts the last window at rows 3..5: one row of implied bottom
    padding (< kernel), so it is consistent; 6 is not (see BROKEN)."""
    call = Call(runtime, "conv")
    call.out_shape.h = 5
    assert call() == call.lib.EG_OK


def test_avg_pool_window_area_limit(runtime):
    """Windows of more than 2^23 in-bounds elements could overflow the int32 sum."""
    ffi, lib = runtime
    data = np.zeros(1, dtype=np.int8)
    out = np.full(1, SENTINEL, dtype=np.int8)
    src = ffi.from_buffer("int8_t[]", data)
    dst = ffi.from_buffer("int8_t[]", out)
    # A 1x1 input with a huge kernel is fine: the in-bounds area is 1.
    in_shape = ffi.new("eg_shape *", [1, 1, 1])
    out_shape = ffi.new("eg_shape *", [1, 1, 1])
    params = ffi.new("eg_pool_params *", [1 << 20, 1 << 20, 1, 1, 0, 0, -128, 127])
    assert lib.eg_avg_pool_s8(src, in_shape, params, dst, out_shape) == lib.EG_OK
    # A 4096x4096 window over a 4096x4096 input is not (never dereferenced:
    # the check comes first).
    in_shape = ffi.new("eg_shape *", [4096, 4096, 1])
    params = ffi.new("eg_pool_params *", [4096, 4096, 1, 1, 0, 0, -128, 127])
    out[:] = SENTINEL
    assert lib.eg_avg_pool_s8(src, in_shape, params, dst, out_shape) == lib.EG_ERR_ARG
    assert out[0] == SENTINEL
