"""The golden model: a ``QGraph`` executed in exact integer arithmetic.

This is the specification of the generated C. Inputs and outputs are int8
batches in edgegen's layout, (N,) + tensor shape (NHWC for feature maps).
"""

from __future__ import annotations

import numpy as np

from edgegen.ir import (
    QAdd,
    QChannelShuffle,
    QConcat,
    QAvgPool,
    QClamp,
    QConv2D,
    QFullyConnected,
    QGraph,
    QMaxPool,
    QNode,
    QReshape,
    QLogSoftmax,
    QSoftmax,
)
from edgegen.reference import kernels
from edgegen.reference.softmax import log_softmax, softmax


def run_node(node: QNode, x: np.ndarray, out_shape: tuple[int, ...],
             rounding=None, others: tuple = ()) -> np.ndarray:
    """``others``: the inputs after the first of a node that has several
    (add, concat); ``rounding``: the graph's, for ops whose parameters do
    not carry it."""
    op = node.op
    if isinstance(op, QAdd):
        return kernels.add(x, others[0], op, rounding)
    if isinstance(op, QConcat):
        return kernels.concat((x,) + tuple(others), op, rounding)
    if isinstance(op, QChannelShuffle):
        return kernels.channel_shuffle(x, op.groups)
    if isinstance(op, QConv2D):
        return kernels.conv2d(x, op.weight, op.bias, op.stride, op.padding,
                              op.input_zero_point, op.requant, op.groups)
    if isinstance(op, QFullyConnected):
        return kernels.fully_connected(x, op.weight, op.bias, op.input_zero_point, op.requant)
    if isinstance(op, QMaxPool):
        return kernels.max_pool(x, op.kernel, op.stride, op.padding, op.act_min, op.act_max)
    if isinstance(op, QAvgPool):
        return kernels.avg_pool(x, op.kernel, op.stride, op.padding, op.act_min, op.act_max,
                                op.divisor_padding)
    if isinstance(op, QReshape):
        return x.reshape((x.shape[0],) + out_shape)
    if isinstance(op, QClamp):
        return kernels.clamp(x, op.act_min, op.act_max)
    if isinstance(op, QSoftmax):
        return softmax(x, op.input_multiplier, op.input_left_shift, op.diff_min)
    if isinstance(op, QLogSoftmax):
        return log_softmax(x, op.input_multiplier, op.input_left_shift, op.reverse_multiplier,
                           op.reverse_shift, op.diff_min, rounding)
    raise TypeError(f"no golden kernel for {type(op).__name__}")


def run_golden(qgraph: QGraph, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """int8 outputs for an int8 batch ``x`` of shape (N,) + input shape."""
    x = np.asarray(x)
    expected = qgraph.tensor(qgraph.input).shape
    if x.dtype != np.int8 or x.shape[1:] != expected:
        raise ValueError(f"golden model takes int8 (N,) + {expected}, got {x.dtype} {x.shape}")
    outputs = []
    for start in range(0, len(x), batch_size):
        values = {qgraph.input: x[start : start + batch_size]}
        for node in qgraph.nodes:
            others = tuple(values[name] for name in node.inputs[1:])
            values[node.output] = run_node(
                node, values[node.inputs[0]], qgraph.tensor(node.output).shape,
                qgraph.rounding, others,
            )
        outputs.append(values[qgraph.output])
    out_shape = (0,) + qgraph.tensor(qgraph.output).shape
    return np.concatenate(outputs) if outputs else np.zeros(out_shape, np.int8)


# quantize_floats maps a real r = x / scale to the int8 range through
# [-QUANTIZE_LIMIT, QUANTIZE_LIMIT]: beyond it every zero point clamps alike.
QUANTIZE_LIMIT = 256


def quantize_floats(x, scale: float, zero_point: int) -> np.ndarray:
    """Float values to int8 as ``runtime_c/quantize_input.c`` computes them
    (``eg_quantize_f32_s8``), in float32 throughout:

    - ``r = float32(x) / float32(scale)``: one IEEE float32 division (round
      to nearest even), by the float32 nearest ``scale``;
    - ``r`` rounded half away from zero (TFLite's Quantize, ``std::round``),
      exactly: truncated toward zero, then the remainder, an exact float32,
      compared with 0.5 (never ``r + 0.5``, which rounds);
    - plus ``zero_point``, clamped to [-128, 127]. NaN gives ``zero_point``;
      +-inf and magnitudes past the int8 range clamp.

    ``x``: any shape, any real dtype (float64 is first rounded to the
    nearest float32, as C's conversion to float does). ValueError for a
    scale whose float32 is not positive and finite, or a zero point outside
    [-128, 127] (the C function returns EG_ERR_ARG)."""
    with np.errstate(over="ignore", under="ignore"):
        scale32 = np.float32(scale)
    if not (np.isfinite(scale32) and scale32 > 0):
        raise ValueError(f"scale {scale!r} is not a positive finite float32")
    if not -128 <= int(zero_point) <= 127:
        raise ValueError(f"zero point {zero_point} is outside [-128, 127]")
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        r = np.asarray(x).astype(np.float32) / scale32
    inside = (r > -QUANTIZE_LIMIT) & (r < QUANTIZE_LIMIT)  # False for NaN
    within = np.where(inside, r, np.float32(0))
    whole = np.trunc(within)
    rest = within - whole  # exact: the fraction of a float32 below 2^8
    rounded = whole.astype(np.int32) + (rest >= 0.5) - (rest <= -0.5)
    outside = np.where(r > 0, QUANTIZE_LIMIT, np.where(r < 0, -QUANTIZE_LIMIT, 0))
    q = np.where(inside, rounded, outside) + int(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)


def quantize_input(qgraph: QGraph, x_float: np.ndarray) -> np.ndarray:
    """Float inputs (NHWC batch) to the model's int8 input: ``quantize_floats``
    with the input's scale and zero point, the arithmetic of the generated
    ``<prefix>_quantize_input``."""
    params = qgraph.tensor(qgraph.input).qparams
    return quantize_floats(x_float, params.scale, params.zero_point)


def dequantize_output(qgraph: QGraph, q: np.ndarray) -> np.ndarray:
    params = qgraph.tensor(qgraph.output).qparams
    return params.scale * (q.astype(np.float64) - params.zero_point)
