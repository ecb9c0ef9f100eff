"""Integer kernels of the golden model, batched over a leading N axis.

Each function is the specification of the C kernel of the same name in
``runtime_c/``: same layouts (NHWC, OHWI), same arithmetic, byte for byte.

Dot products run as float64 matrix products: every product of an int8
input offset by its zero point and an int8 weight is below 2^16 in
magnitude, so any sum of fewer than 2^37 of them is an integer below 2^53
and float64 represents every partial sum exactly, whatever order BLAS adds
them in. That makes the golden model exact and fast enough to run the whole
test set.
"""

from __future__ import annotations

import numpy as np

from edgegen.ir import ADD_LEFT_SHIFT, Requant
from edgegen.reference.numerics import fold_zero_point, requantize_fast

_MAX_EXACT_TERMS = 1 << 36


def output_size(in_size: int, kernel: int, stride: int, pad_before: int, pad_after: int) -> int:
    """Output length of a window sliding over a padded axis (floor mode)."""
    return (in_size + pad_before + pad_after - kernel) // stride + 1


def _exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer matrix product through float64 BLAS (exact, see module doc)."""
    if a.shape[-1] >= _MAX_EXACT_TERMS:
        raise ValueError("dot product too long for exact float64 accumulation")
    return (a.astype(np.float64, copy=False) @ b.astype(np.float64)).astype(np.int64)


def windows(x: np.ndarray, kernel, stride, padding, fill) -> np.ndarray:
    """Sliding windows of an NHWC batch: [N, OH, OW, KH, KW, C]."""
    kh, kw = kernel
    sh, sw = stride
    top, bottom, left, right = padding
    padded = np.pad(
        x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill
    )
    n, h, w, c = padded.shape
    oh = (h - kh) // sh + 1
    ow = (w - kw) // sw + 1
    s = padded.strides
    return np.lib.stride_tricks.as_strided(
        padded,
        shape=(n, oh, ow, kh, kw, c),
        strides=(s[0], s[1] * sh, s[2] * sw, s[1], s[2], s[3]),
        writeable=False,
    )


def output_stage(acc: np.ndarray, requant: Requant) -> np.ndarray:
    """int32 accumulators [..., O] -> int8, per output channel on the last axis."""
    scaled = requantize_fast(acc, requant.multiplier, requant.shift, requant.rounding)
    out = scaled + requant.output_zero_point
    return np.clip(out, requant.act_min, requant.act_max).astype(np.int8)


def conv2d(x, weight, bias, stride, padding, input_zero_point: int, requant: Requant,
           groups: int = 1):
    """int8 NHWC x int8 OHWI -> int8 NHWC; padding contributes real zero.
    ``groups`` as PyTorch's (weight I = input channels / groups)."""
    x = np.asarray(x, dtype=np.int8)
    o, kh, kw, ci = weight.shape
    if x.shape[3] != ci * groups or o % groups:
        raise ValueError(f"conv2d: input has {x.shape[3]} channels, filter {ci} per group of "
                         f"{groups}, {o} outputs")
    offset = x.astype(np.float64) - input_zero_point
    cols = windows(offset, (kh, kw), stride, padding, fill=0.0)
    n, oh, ow = cols.shape[:3]
    if groups == 1:
        acc = _exact_matmul(cols.reshape(n * oh * ow, kh * kw * ci), weight.reshape(o, -1).T)
    else:
        acc = grouped_products(cols, weight, groups, np.int64).reshape(n * oh * ow, o)
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)
    return output_stage(acc, requant).reshape(n, oh, ow, o)


def grouped_products(cols: np.ndarray, weight: np.ndarray, groups: int, dtype) -> np.ndarray:
    """Each output channel's sum over its group's window values:
    windows [N, OH, OW, KH, KW, C] x OHWI weights -> [N, OH, OW, O], output
    channel o reading input channels of group o // (O / groups). In
    ``dtype`` (int64: exact for int8 windows and weights)."""
    n, oh, ow, kh, kw, c = cols.shape
    o, per_group = weight.shape[0], c // groups
    x = cols.reshape(n * oh * ow, kh * kw, groups, per_group).astype(dtype)
    w = weight.reshape(groups, o // groups, kh * kw, per_group).astype(dtype)
    return np.einsum("mkgc,gokc->mgo", x, w).reshape(n, oh, ow, o)


def fully_connected(x, weight, bias, input_zero_point: int, requant: Requant):
    """int8 [N, in] x int8 [out, in] -> int8 [N, out]; bias is the true bias."""
    x = np.asarray(x, dtype=np.int8)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"fully_connected: input has {x.shape[1]} features, weights {weight.shape[1]}"
        )
    acc = _exact_matmul(x, weight.T) + fold_zero_point(weight, bias, input_zero_point)
    return output_stage(acc, requant)


def add(a, b, op, rounding) -> np.ndarray:
    """TFLite's int8 ADD (see QAdd), exactly: int8 arrays of one shape in,
    int8 out."""
    a = np.asarray(a, dtype=np.int8).astype(np.int64)
    b = np.asarray(b, dtype=np.int8).astype(np.int64)
    if a.shape != b.shape:
        raise ValueError(f"add: inputs of shapes {a.shape} and {b.shape}")
    one = (a - op.input1_zero_point) * (1 << ADD_LEFT_SHIFT)
    two = (b - op.input2_zero_point) * (1 << ADD_LEFT_SHIFT)
    total = (requantize_fast(one, op.input1_multiplier, op.input1_shift, rounding)
             + requantize_fast(two, op.input2_multiplier, op.input2_shift, rounding))
    out = requantize_fast(total, op.output_multiplier, op.output_shift, rounding)
    return np.clip(out + op.output_zero_point, op.act_min, op.act_max).astype(np.int8)


def concat(inputs, op, rounding) -> np.ndarray:
    """QConcat: each input rescaled to the output's quantization, joined
    along the last axis."""
    parts = []
    for x, zp, m, s in zip(inputs, op.zero_points, op.multipliers, op.shifts):
        x = np.asarray(x, dtype=np.int8).astype(np.int64)
        scaled = requantize_fast(x - zp, m, s, rounding) + op.output_zero_point
        parts.append(np.clip(scaled, -128, 127).astype(np.int8))
    return np.concatenate(parts, axis=-1)


def channel_shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    """NHWC channels split into ``groups`` groups and interleaved: output
    channel j * groups + i is input channel i * (C / groups) + j (PyTorch's
    view(N, g, C/g, H, W).transpose(1, 2))."""
    c = x.shape[-1]
    return x.reshape(x.shape[:-1] + (groups, c // groups)).swapaxes(-1, -2).reshape(x.shape)


def max_pool(x, kernel, stride, padding, act_min: int, act_max: int):
    """Max over in-bounds window elements (padding never wins), then clamp."""
    x = np.asarray(x, dtype=np.int8)
    patches = windows(x.astype(np.int16), kernel, stride, padding, fill=-129)
    out = patches.max(axis=(3, 4))
    return np.clip(out, act_min, act_max).astype(np.int8)


def pool_divisors(height: int, width: int, kernel, stride, padding,
                  divisor_padding=(0, 0)) -> np.ndarray:
    """[1, OH, OW, 1]: each window's count of elements inside the input
    grown by ``divisor_padding`` (rows, columns) on every side (each at most
    the padding on that side): the in-bounds elements for (0, 0)."""
    dh, dw = divisor_padding
    top, bottom, left, right = padding
    ones = np.ones((1, height + 2 * dh, width + 2 * dw, 1), dtype=np.int64)
    grown = (top - dh, bottom - dh, left - dw, right - dw)
    return windows(ones, kernel, stride, grown, fill=0).sum(axis=(3, 4))


def avg_pool(x, kernel, stride, padding, act_min: int, act_max: int, divisor_padding=(0, 0)):
    """TFLite reference average: the sum of the in-bounds elements rounded
    half away from zero over the divisor (C truncating division after
    adding +-divisor/2); the divisor counts the in-bounds elements, and the
    padding within ``divisor_padding`` (see AvgPool)."""
    x = np.asarray(x, dtype=np.int8)
    total = windows(x.astype(np.int64), kernel, stride, padding, fill=0).sum(axis=(3, 4))
    count = pool_divisors(x.shape[1], x.shape[2], kernel, stride, padding, divisor_padding)
    half = count // 2
    num = np.where(total > 0, total + half, total - half)
    avg = np.sign(num) * (np.abs(num) // count)
    return np.clip(avg, act_min, act_max).astype(np.int8)


def clamp(x, act_min: int, act_max: int):
    return np.clip(np.asarray(x, dtype=np.int8), act_min, act_max).astype(np.int8)
