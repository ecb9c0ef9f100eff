"""Calling the C kernels from numpy, and random test cases for them.

``CKernels`` gives the C runtime the signatures of the golden model
(``edgegen.reference.kernels``): batched NHWC int8 arrays in, int8 arrays
out, one C call per sample. Every call must return EG_OK; the argument
checks are exercised separately, on the raw functions.

The case generators draw everything from a ``numpy.random.Generator`` so
that a hypothesis-drawn seed (or a parametrized one) fixes a whole case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgegen.encode.storage import ArrayRef, dense_conv_scratch_bytes, interleave_rows
from edgegen.ir import Requant, Rounding, frozen_array
from edgegen.reference.numerics import fold_zero_point, quantize_multiplier

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# Largest |offset input * weight| term of a dot product: (127 + 128) * 128.
MAX_TERM = 255 * 128


class CKernels:
    """The C runtime behind the golden model's signatures."""

    def __init__(self, ffi, lib):
        self.ffi = ffi
        self.lib = lib

    # -- marshalling

    def i8(self, arr):
        """(contiguous int8 copy, cffi pointer into it); keep both alive."""
        arr = np.ascontiguousarray(arr, dtype=np.int8)
        return arr, self.ffi.from_buffer("int8_t[]", arr)

    def i32(self, arr):
        arr = np.ascontiguousarray(arr, dtype=np.int32)
        return arr, self.ffi.from_buffer("int32_t[]", arr)

    def shape(self, h, w, c):
        return self.ffi.new("eg_shape *", {"h": h, "w": w, "c": c})

    def rounding(self, rounding: Rounding) -> int:
        return {
            Rounding.DOUBLE: self.lib.EG_ROUNDING_DOUBLE,
            Rounding.SINGLE: self.lib.EG_ROUNDING_SINGLE,
        }[rounding]

    def requant(self, rq: Requant):
        """(eg_requant *, keep-alive list). A Requant whose channels all
        share one multiplier and shift is passed per tensor (one of each),
        as the generator emits it."""
        per_tensor = len(set(zip(rq.multiplier.tolist(), rq.shift.tolist()))) == 1
        count = 1 if per_tensor else len(rq.multiplier)
        mult, mult_p = self.i32(rq.multiplier[:count])
        shift, shift_p = self.i32(rq.shift[:count])
        struct = self.ffi.new(
            "eg_requant *",
            {
                "multiplier": mult_p,
                "shift": shift_p,
                "output_offset": rq.output_zero_point,
                "act_min": rq.act_min,
                "act_max": rq.act_max,
                "rounding": self.rounding(rq.rounding),
                "per_tensor": int(per_tensor),
            },
        )
        return struct, [mult, mult_p, shift, shift_p]

    def _check(self, status, what):
        assert status == self.lib.EG_OK, f"{what} returned {status}, expected EG_OK"

    # -- scalar requantization, vectorised by a Python loop

    def srdhm(self, a, b) -> np.ndarray:
        f = self.lib.eg_saturating_rounding_doubling_high_mul
        a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
        return np.array([f(int(x), int(y)) for x, y in zip(a.ravel(), b.ravel())],
                        dtype=np.int64).reshape(a.shape)

    def rdbp(self, x, exponent) -> np.ndarray:
        f = self.lib.eg_rounding_divide_by_pot
        x, e = np.broadcast_arrays(np.asarray(x, np.int64), np.asarray(exponent, np.int64))
        return np.array([f(int(v), int(k)) for v, k in zip(x.ravel(), e.ravel())],
                        dtype=np.int64).reshape(x.shape)

    def requantize(self, acc, multiplier, shift, rounding: Rounding) -> np.ndarray:
        f = self.lib.eg_requantize
        r = self.rounding(rounding)
        acc, m, s = np.broadcast_arrays(
            np.asarray(acc, np.int64), np.asarray(multiplier, np.int64),
            np.asarray(shift, np.int64),
        )
        values = [f(int(a), int(mm), int(ss), r)
                  for a, mm, ss in zip(acc.ravel(), m.ravel(), s.ravel())]
        return np.array(values, dtype=np.int64).reshape(acc.shape)

    # -- kernels, batched like the golden model

    def conv2d(self, x, weight, bias, stride, padding, input_zero_point, requant,
               groups: int = 1, depthwise: bool | None = None,
               depthwise_scratch: bool = False):
        """eg_conv2d_s8 with ``groups``; ``depthwise`` (default: groups =
        channels > 1): eg_depthwise_conv2d_s8, with the OHWI weights
        (O, KH, KW, 1) passed as its [KH][KW][O], and with
        ``depthwise_scratch`` its optional scratch (exactly
        EG_DEPTHWISE_CONV2D_S8_SCRATCH_BYTES, one byte past a word boundary)."""
        x = np.asarray(x, dtype=np.int8)
        n, h, w, c = x.shape
        o, kh, kw, ci = weight.shape
        assert ci * groups == c and o % groups == 0
        if depthwise is None:
            depthwise = 1 < groups == c
        top, bottom, left, right = padding
        oh = (h + top + bottom - kh) // stride[0] + 1
        ow = (w + left + right - kw) // stride[1] + 1
        filt, filt_p = self.i8(weight[..., 0].transpose(1, 2, 0) if depthwise else weight)
        # The kernel takes the folded bias (see eg_conv2d_s8).
        bias_arr, bias_p = self.i32(fold_zero_point(weight, np.zeros(o) if bias is None else bias,
                                                    input_zero_point))
        params = self.ffi.new(
            "eg_conv_params *",
            {
                "stride_h": stride[0],
                "stride_w": stride[1],
                "pad_top": top,
                "pad_left": left,
                "input_offset": -input_zero_point,
                "groups": groups,
            },
        )
        rq, keep = self.requant(requant)
        in_shape, out_shape = self.shape(h, w, c), self.shape(oh, ow, o)
        out = np.full((n, oh, ow, o), 0x5A, dtype=np.int8)
        # Exactly the documented scratch, one byte past a word boundary.
        if depthwise:
            scratch_bytes = depthwise_scratch_bytes(kh, kw) if depthwise_scratch else 0
        else:
            scratch_bytes = dense_conv_scratch_bytes(kh, kw, ci)
        scratch = np.zeros(scratch_bytes + 1, dtype=np.uint8)
        scratch_p = self.ffi.from_buffer("uint8_t[]", scratch) + 1 if scratch_bytes else self.ffi.NULL
        name = "eg_depthwise_conv2d_s8" if depthwise else "eg_conv2d_s8"
        for i in range(n):
            sample, sample_p = self.i8(x[i])
            out_p = self.ffi.from_buffer("int8_t[]", out[i])
            status = getattr(self.lib, name)(
                sample_p, in_shape, filt_p, kh, kw, bias_p, params, rq,
                scratch_p, scratch_bytes, out_p, out_shape
            )
            self._check(status, name)
        del keep, bias_arr, filt
        return out

    def _fc_batch(self, fn, x, weights, folded_bias, outputs, requant):
        """fn over each sample of x: (int8 outputs, statuses)."""
        x = np.asarray(x, dtype=np.int8)
        b_arr, b_p = self.i32(folded_bias)
        rq, keep = self.requant(requant)
        out = np.full((len(x), outputs), 0x5A, dtype=np.int8)
        statuses = []
        for i in range(len(x)):
            sample, sample_p = self.i8(x[i])
            out_p = self.ffi.from_buffer("int8_t[]", out[i])
            statuses.append(fn(sample_p, x.shape[1], weights, b_p, outputs, rq, out_p))
        del keep, b_arr
        return out, statuses

    def fully_connected(self, x, weight, folded_bias, requant):
        """Takes the folded bias, as the C kernel does; passes the weights
        in the kernel's row-block layout."""
        w_arr, w_p = self.i8(interleave_rows(np.asarray(weight, dtype=np.int8)))
        out, statuses = self._fc_batch(self.lib.eg_fully_connected_s8, x, w_p, folded_bias,
                                       weight.shape[0], requant)
        for status in statuses:
            self._check(status, "eg_fully_connected_s8")
        del w_arr
        return out

    # -- compressed weights (edgegen.encode.storage)

    _STRUCTS = {"codebook": "eg_codebook_weights", "sparse": "eg_sparse_weights",
                "huffman": "eg_huffman_weights"}
    _POINTERS = {np.dtype(np.int8): "int8_t[]", np.dtype(np.uint8): "uint8_t[]",
                 np.dtype(np.uint16): "uint16_t[]", np.dtype(np.uint32): "uint32_t[]"}

    def stored(self, stored):
        """(weights struct pointer, keep-alive list) of a StoredWeights."""
        keep = []

        def value(field):
            if isinstance(field, tuple):
                return [value(f) for f in field]
            if field is None:
                return self.ffi.NULL
            if isinstance(field, (str, ArrayRef)):
                name, offset = (field, 0) if isinstance(field, str) else (field.name, field.offset)
                array = np.ascontiguousarray(stored.arrays[name])
                pointer = self.ffi.from_buffer(self._POINTERS[array.dtype], array)
                keep.extend([array, pointer])
                return pointer + offset
            return field

        struct = self.ffi.new(f"{self._STRUCTS[stored.format]} *", value(stored.struct))
        return struct, keep

    def fully_connected_stored(self, x, stored, folded_bias, requant):
        """eg_fully_connected_<format>_s8 over a batch; returns (out, statuses)."""
        weights, keep = self.stored(stored)
        fn = getattr(self.lib, f"eg_fully_connected_{stored.format}_s8")
        result = self._fc_batch(fn, x, weights, folded_bias, stored.shape[0], requant)
        del keep
        return result

    def conv2d_stored(self, x, stored, kernel, folded_bias, stride, padding, input_zero_point,
                      requant, scratch_bytes=None, misalign=1, groups=1):
        """eg_conv2d_<format>_s8 over a batch; returns (out, statuses). The
        scratch starts ``misalign`` bytes past a word boundary."""
        x = np.asarray(x, dtype=np.int8)
        n, h, w, c = x.shape
        o = stored.shape[0]
        kh, kw = kernel
        top, bottom, left, right = padding
        oh = (h + top + bottom - kh) // stride[0] + 1
        ow = (w + left + right - kw) // stride[1] + 1
        weights, keep = self.stored(stored)
        b_arr, b_p = self.i32(folded_bias)
        params = self.ffi.new("eg_conv_params *", {
            "stride_h": stride[0], "stride_w": stride[1], "pad_top": top,
            "pad_left": left, "input_offset": -input_zero_point, "groups": groups})
        rq, keep_rq = self.requant(requant)
        if scratch_bytes is None:
            scratch_bytes = stored.scratch_bytes(is_conv=True)
        scratch = np.zeros(scratch_bytes // 4 + 2, dtype=np.int32)
        scratch_p = self.ffi.cast("uint8_t *", self.ffi.from_buffer("int32_t[]", scratch)) + misalign
        fn = getattr(self.lib, f"eg_conv2d_{stored.format}_s8")
        in_shape, out_shape = self.shape(h, w, c), self.shape(oh, ow, o)
        out = np.full((n, oh, ow, o), 0x5A, dtype=np.int8)
        statuses = []
        for i in range(n):
            sample, sample_p = self.i8(x[i])
            out_p = self.ffi.from_buffer("int8_t[]", out[i])
            statuses.append(fn(sample_p, in_shape, weights, kh, kw, b_p, params, rq,
                               scratch_p, scratch_bytes, out_p, out_shape))
        del keep, keep_rq, b_arr
        return out, statuses

    def pool_params(self, kernel, stride, padding, act_min, act_max, divisor_padding=(0, 0)):
        return self.ffi.new(
            "eg_pool_params *",
            {
                "kernel_h": kernel[0],
                "kernel_w": kernel[1],
                "stride_h": stride[0],
                "stride_w": stride[1],
                "pad_top": padding[0],
                "pad_left": padding[2],
                "act_min": act_min,
                "act_max": act_max,
                "divisor_pad_h": divisor_padding[0],
                "divisor_pad_w": divisor_padding[1],
            },
        )

    def _pool(self, fn, name, x, kernel, stride, padding, act_min, act_max,
              divisor_padding=(0, 0)):
        x = np.asarray(x, dtype=np.int8)
        n, h, w, c = x.shape
        top, bottom, left, right = padding
        oh = (h + top + bottom - kernel[0]) // stride[0] + 1
        ow = (w + left + right - kernel[1]) // stride[1] + 1
        params = self.pool_params(kernel, stride, padding, act_min, act_max, divisor_padding)
        in_shape, out_shape = self.shape(h, w, c), self.shape(oh, ow, c)
        out = np.full((n, oh, ow, c), 0x5A, dtype=np.int8)
        for i in range(n):
            sample, sample_p = self.i8(x[i])
            out_p = self.ffi.from_buffer("int8_t[]", out[i])
            self._check(fn(sample_p, in_shape, params, out_p, out_shape), name)
        return out

    def max_pool(self, x, kernel, stride, padding, act_min, act_max):
        return self._pool(self.lib.eg_max_pool_s8, "eg_max_pool_s8",
                          x, kernel, stride, padding, act_min, act_max)

    def avg_pool(self, x, kernel, stride, padding, act_min, act_max, divisor_padding=(0, 0)):
        return self._pool(self.lib.eg_avg_pool_s8, "eg_avg_pool_s8",
                          x, kernel, stride, padding, act_min, act_max, divisor_padding)

    def clamp(self, x, act_min, act_max):
        x = np.ascontiguousarray(x, dtype=np.int8)
        out = np.full(x.shape, 0x5A, dtype=np.int8)
        _, x_p = self.i8(x)
        out_p = self.ffi.from_buffer("int8_t[]", out)
        self._check(self.lib.eg_clamp_s8(x_p, x.size, act_min, act_max, out_p), "eg_clamp_s8")
        return out


def depthwise_scratch_bytes(kernel_h: int, kernel_w: int) -> int:
    """EG_DEPTHWISE_CONV2D_S8_SCRATCH_BYTES: a group of four channels'
    weights widened (8 bytes a tap, filters of at most 9 taps), 3 to align."""
    taps = kernel_h * kernel_w
    return 8 * taps + 3 if taps <= 9 else 0


# ------------------------------------------------------------ random cases

FILLS = ("uniform", "uniform", "uniform", "extremes", "constant")


def random_int8(rng: np.random.Generator, shape, fill: str = "uniform") -> np.ndarray:
    """int8 data: uniform, only -128/127 (saturating accumulators), or one value."""
    if fill == "uniform":
        return rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)
    if fill == "extremes":
        return rng.choice(np.array([-128, 127], dtype=np.int8), size=shape)
    if fill == "constant":
        return np.full(shape, rng.choice([-128, -1, 0, 127]), dtype=np.int8)
    raise ValueError(fill)


def random_weights(rng, shape, fill: str = "uniform") -> np.ndarray:
    """Symmetric int8 weights in [-127, 127] (or, for "extremes", +-127 and -128)."""
    if fill == "extremes":
        return rng.choice(np.array([-128, -127, 127], dtype=np.int8), size=shape)
    w = random_int8(rng, shape, fill)
    return np.maximum(w, -127).astype(np.int8) if fill == "uniform" else w


def random_zero_point(rng) -> int:
    if rng.random() < 0.3:
        return int(rng.choice([-128, 127, 0]))
    return int(rng.integers(-128, 128))


def random_act_range(rng, output_zero_point: int) -> tuple[int, int]:
    """No activation, ReLU, ReLU6-like, or an arbitrary narrow range."""
    kind = rng.integers(0, 4)
    if kind == 0:
        return -128, 127
    lo = max(-128, output_zero_point)
    if kind == 1:
        return lo, 127
    if kind == 2:
        return lo, int(rng.integers(lo, 128))
    a, b = sorted(int(v) for v in rng.integers(-128, 128, size=2))
    return a, b


def random_requant(rng, channels: int, terms: int, rounding: Rounding,
                   regime: str = "realistic") -> Requant:
    """Per-channel output stages for accumulators of ``terms`` products.

    "realistic": scales that map the accumulator spread onto int8, from
    QuantizeMultiplier (so most outputs are not saturated);
    "wild": any multiplier in [0, 2^31) and shift in [-31, 30] (saturation,
    left shifts, multiplier 0, tiny multipliers).
    """
    if regime == "realistic":
        base = 0.01 / math.sqrt(terms)
        pairs = [quantize_multiplier(base * 2.0 ** rng.uniform(-4, 4)) for _ in range(channels)]
        multiplier = [m for m, _ in pairs]
        shift = [s for _, s in pairs]
    elif regime == "wild":
        multiplier = [int(rng.choice([0, 1, 2**30, INT32_MAX, int(rng.integers(0, 2**31))]))
                      for _ in range(channels)]
        shift = [int(rng.choice([-31, 30, 0, int(rng.integers(-31, 31))])) for _ in range(channels)]
    else:
        raise ValueError(regime)
    zp = random_zero_point(rng)
    act_min, act_max = random_act_range(rng, zp)
    return Requant(
        multiplier=frozen_array(multiplier, np.int32),
        shift=frozen_array(shift, np.int32),
        output_zero_point=zp,
        act_min=act_min,
        act_max=act_max,
        rounding=rounding,
    )


def random_bias(rng, channels: int, terms: int) -> np.ndarray:
    """int32 bias that cannot overflow an accumulator of ``terms`` products."""
    room = INT32_MAX - terms * MAX_TERM
    assert room > 0
    if rng.random() < 0.1:
        limit = room  # near the int32 limit: saturating outputs
    else:
        limit = min(room, int(4000 * math.sqrt(terms)))  # the accumulators' spread
    return rng.integers(-limit, limit + 1, size=channels).astype(np.int32)


@dataclass(frozen=True)
class Window:
    """One axis of a sliding window; pads are < kernel and the output >= 1."""

    size: int
    kernel: int
    stride: int
    pad_before: int
    pad_after: int

    @property
    def out(self) -> int:
        return (self.size + self.pad_before + self.pad_after - self.kernel) // self.stride + 1


def random_window(rng, max_size: int = 9, max_kernel: int = 5, max_stride: int = 3) -> Window:
    while True:
        kernel = int(rng.integers(1, max_kernel + 1))
        size = int(rng.integers(1, max_size + 1))
        stride = int(rng.integers(1, max_stride + 1))
        before = int(rng.integers(0, kernel))
        after = int(rng.integers(0, kernel))
        if size + before + after >= kernel:
            return Window(size, kernel, stride, before, after)
