"""Structural validation of a ``QGraph``: what every later stage assumes.

The golden model (``edgegen.reference``), the memory planner
(``edgegen.plan``) and the emitter (``edgegen.emit``) index arrays, compute
window geometry and print names into C comments without checking anything
themselves. A graph that passes ``validate_qgraph`` is safe for all of
them: every tensor exists, is written once before it is read and has a
sane shape; every op's arrays have the dtype and shape its kernel (golden
and C) reads, and its output shape is the one the kernel computes; every
integer the generated C stores in an ``int32_t`` fits; every name is one
line of printable text (the emitter escapes it for C comments).

Problems raise ``ValueError`` with a message naming the node or tensor and
the rule; the artifact loader turns it into a UserError naming the file.
"""

from __future__ import annotations

import math

import numpy as np

from edgegen.errors import brief
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
    QTensor,
    QuantParams,
    Requant,
    Rounding,
)
from edgegen.reference.kernels import output_size
from edgegen.reference.numerics import INT32_MAX, accumulator_bound
from edgegen.reference import softmax as softmax_spec

MAX_TENSOR_BYTES = 64 * 1024 * 1024  # int8 activations: bytes == elements
MAX_NODES = 10_000
MAX_NAME_CHARS = 200
INT8_MIN, INT8_MAX = -128, 127
WEIGHT_MAX = 127  # symmetric int8 weights: -128 never occurs
MULTIPLIER_MIN = 2**30  # quantize_multiplier: [2^30, 2^31) or 0
SHIFT_MIN, SHIFT_MAX = -31, 30  # what eg_requantize and the golden model accept
MAX_AVG_WINDOW = 2**23  # eg_avg_pool_s8: the int32 sum of a window cannot overflow


def validate_qgraph(qgraph: QGraph) -> None:
    """Raise ``ValueError`` naming the first problem; return None if the
    graph is safe for the golden model, the planner and the emitter."""
    if not isinstance(qgraph, QGraph):
        raise ValueError(f"not a QGraph: {type(qgraph).__name__}")
    _text(qgraph.name, "the graph name")
    if not any(ch.isascii() and ch.isalnum() for ch in qgraph.name):
        raise ValueError(f"the graph name {qgraph.name!r} has no letter or digit to make a C name from")
    if not isinstance(qgraph.rounding, Rounding):
        raise ValueError(f"rounding must be one of {[r.value for r in Rounding]}, got {brief(qgraph.rounding)}")
    if not isinstance(qgraph.metadata, dict):
        raise ValueError(f"metadata must be a dict, got {type(qgraph.metadata).__name__}")
    tensors = _tensors(qgraph.tensors)
    for role in ("input", "output"):
        name = getattr(qgraph, role)
        if not isinstance(name, str) or name not in tensors:
            raise ValueError(f"the graph {role} {brief(name)} is not one of its tensors")
    _nodes(qgraph, tensors)


# ------------------------------------------------------------ scalars, text


def _is_int(value) -> bool:
    # bool is an int in Python; true/false is never a size or a zero point.
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return _is_int(value) or isinstance(value, (float, np.floating))




def _finite_positive(value) -> bool:
    if not _is_real(value):
        return False
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        return False
    return math.isfinite(number) and number > 0


def _text(value, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {brief(value)}")
    if len(value) > MAX_NAME_CHARS or not value.isprintable():
        raise ValueError(f"{what} {brief(value)} must be at most {MAX_NAME_CHARS} printable "
                         "characters (no control characters or line breaks)")


def _int_in(value, lo: int, hi: int, what: str) -> int:
    if not _is_int(value) or not lo <= value <= hi:
        raise ValueError(f"{what} must be an integer in [{lo}, {hi}], got {brief(value)}")
    return int(value)


def _int_tuple(value, length: int, lo: int, what: str) -> tuple[int, ...]:
    if (not isinstance(value, tuple) or len(value) != length
            or not all(_is_int(v) and lo <= v <= INT32_MAX for v in value)):
        raise ValueError(f"{what} must be {length} integers in [{lo}, {INT32_MAX}], got {brief(value)}")
    return tuple(int(v) for v in value)


def _act_range(act_min, act_max, where: str) -> None:
    lo = _int_in(act_min, INT8_MIN, INT8_MAX, f"{where}: act_min")
    hi = _int_in(act_max, INT8_MIN, INT8_MAX, f"{where}: act_max")
    if lo > hi:
        raise ValueError(f"{where}: act_min {lo} is above act_max {hi}")


# ------------------------------------------------------------------ tensors


def _tensors(tensors) -> dict[str, QTensor]:
    if not isinstance(tensors, tuple):
        raise ValueError(f"tensors must be a tuple, got {type(tensors).__name__}")
    by_name: dict[str, QTensor] = {}
    for tensor in tensors:
        if not isinstance(tensor, QTensor):
            raise ValueError(f"tensors must be QTensor, got {type(tensor).__name__}")
        _text(tensor.name, "a tensor name")
        if tensor.name in by_name:
            raise ValueError(f"tensor {tensor.name!r} is declared twice")
        _tensor(tensor)
        by_name[tensor.name] = tensor
    return by_name


def _tensor(tensor: QTensor) -> None:
    where = f"tensor {tensor.name!r}"
    shape = tensor.shape
    if (not isinstance(shape, tuple) or len(shape) not in (1, 3)
            or not all(_is_int(d) and d > 0 for d in shape)):
        raise ValueError(f"{where}: shape must be (features,) or (H, W, C) of positive integers, "
                         f"got {brief(shape)}")
    if math.prod(shape) > MAX_TENSOR_BYTES:
        raise ValueError(f"{where}: shape {shape} has {math.prod(shape)} elements, more than the "
                         f"limit of {MAX_TENSOR_BYTES} (64 MiB of int8) for one activation")
    params = tensor.qparams
    if not isinstance(params, QuantParams):
        raise ValueError(f"{where}: qparams must be QuantParams, got {type(params).__name__}")
    if not _finite_positive(params.scale):
        raise ValueError(f"{where}: scale must be a finite number > 0, got {brief(params.scale)}")
    _int_in(params.zero_point, INT8_MIN, INT8_MAX, f"{where}: zero_point")


# -------------------------------------------------------------------- nodes


def _nodes(qgraph: QGraph, tensors: dict[str, QTensor]) -> None:
    nodes = qgraph.nodes
    if not isinstance(nodes, tuple) or not 1 <= len(nodes) <= MAX_NODES:
        raise ValueError(f"nodes must be a tuple of 1 to {MAX_NODES} nodes")
    written = {qgraph.input}
    names: set[str] = set()
    storage = {qgraph.input: qgraph.input}  # tensor -> the tensor whose bytes it is (reshapes)
    for index, node in enumerate(nodes):
        if not isinstance(node, QNode):
            raise ValueError(f"node {index} must be a QNode, got {type(node).__name__}")
        _text(node.name, f"the name of node {index}")
        where = f"node {index} ({node.name!r}, {type(node.op).__name__})"
        if node.name in names:
            raise ValueError(f"{where}: the node name is used twice")
        names.add(node.name)
        sources = _node_tensors(node, where, tensors, written)
        source = sources[0]
        if isinstance(node.op, QAdd):
            _add(node.op, where, [tensors[s] for s in sources], tensors[node.output])
        elif isinstance(node.op, QConcat):
            _concat(node.op, where, [tensors[s] for s in sources], tensors[node.output])
        else:
            _check_op(node.op, where, tensors[source], tensors[node.output], qgraph.rounding)
        written.add(node.output)
        storage[node.output] = storage[source] if isinstance(node.op, QReshape) else node.output
    unwritten = sorted(set(tensors) - written)
    if unwritten:
        raise ValueError(f"tensor {unwritten[0]!r} is neither the graph input nor written by a node")
    if storage[qgraph.output] == qgraph.input:
        raise ValueError("the graph output is its input (or a reshape of it): nothing to compute")


def _node_tensors(node: QNode, where: str, tensors: dict, written: set) -> tuple[str, ...]:
    """The node's inputs (two for an add, else one), after checking its
    input and output names."""
    inputs = node.inputs
    arity = 2 if isinstance(node.op, QAdd) else 1
    if isinstance(node.op, QConcat):
        if not isinstance(inputs, tuple) or not 1 <= len(inputs) <= MAX_CONCAT_INPUTS:
            raise ValueError(f"{where}: must have 1 to {MAX_CONCAT_INPUTS} inputs, got "
                             f"{brief(inputs)}")
    elif not isinstance(inputs, tuple) or len(inputs) != arity:
        raise ValueError(f"{where}: must have exactly {arity} input(s), got {brief(inputs)}")
    for source in inputs:
        if not isinstance(source, str) or source not in tensors:
            raise ValueError(f"{where}: input {brief(source)} is not a tensor of the graph")
        if source not in written:
            raise ValueError(f"{where}: input {source!r} is read before any node writes it")
    out = node.output
    if not isinstance(out, str) or out not in tensors:
        raise ValueError(f"{where}: output {brief(out)} is not a tensor of the graph")
    if out in written:
        raise ValueError(f"{where}: output {out!r} is written a second time (or is the graph input)")
    return inputs


def _check_op(op, where: str, x: QTensor, y: QTensor, rounding: Rounding) -> None:
    check = _OP_CHECKS.get(type(op))
    if check is None:
        raise ValueError(f"{where}: unknown operator {type(op).__name__}")
    check(op, where, x, y, rounding)


def _rank(tensor: QTensor, rank: int, where: str, role: str) -> None:
    if len(tensor.shape) != rank:
        kind = "an (H, W, C) feature map" if rank == 3 else "a flat (features,) vector"
        raise ValueError(f"{where}: {role} {tensor.name!r} must be {kind}, got shape {tensor.shape}")


def _same_params(x: QTensor, y: QTensor, where: str) -> None:
    # Pooling, reshape and clamp compute in the input's int8 domain: the
    # output must read the same way (quantize gives them the same params).
    if (x.qparams.scale, x.qparams.zero_point) != (y.qparams.scale, y.qparams.zero_point):
        raise ValueError(f"{where}: output {y.name!r} must have the quantization parameters of "
                         f"input {x.name!r} ({x.qparams}), got {y.qparams}")


def _window(kernel: tuple[int, int], stride, padding, where: str, x: QTensor, y: QTensor,
            channels: int) -> None:
    """Stride, padding and the output shape of a sliding window op."""
    sh, sw = _int_tuple(stride, 2, 1, f"{where}: stride")
    top, bottom, left, right = _int_tuple(padding, 4, 0, f"{where}: padding (top, bottom, left, right)")
    kh, kw = kernel
    if max(top, bottom) >= kh or max(left, right) >= kw:
        raise ValueError(f"{where}: padding {padding} must be smaller than the kernel {kernel}")
    h, w, _ = x.shape
    expected = (output_size(h, kh, sh, top, bottom), output_size(w, kw, sw, left, right), channels)
    if expected[0] < 1 or expected[1] < 1:
        raise ValueError(f"{where}: kernel {kernel} does not fit input {x.name!r} of shape {x.shape} "
                         f"with padding {padding}")
    if y.shape != expected:
        raise ValueError(f"{where}: output {y.name!r} has shape {y.shape}, but the window arithmetic "
                         f"gives {expected} for input shape {x.shape}")


# ------------------------------------------------------------ weighted ops


def _array(value, dtype, shape: tuple[int, ...] | int, where: str, what: str) -> np.ndarray:
    """An ndarray of exactly ``dtype``; ``shape`` is a tuple or a rank."""
    if not isinstance(value, np.ndarray) or value.dtype != np.dtype(dtype):
        found = f"{value.dtype} array" if isinstance(value, np.ndarray) else type(value).__name__
        raise ValueError(f"{where}: {what} must be a {np.dtype(dtype)} array, got {found}")
    if isinstance(shape, int):
        if value.ndim != shape or 0 in value.shape:
            raise ValueError(f"{where}: {what} must have rank {shape} and no empty axis, got shape {value.shape}")
    elif value.shape != shape:
        raise ValueError(f"{where}: {what} must have shape {shape}, got {value.shape}")
    return value


def _weights(op, where: str, rank: int) -> int:
    """Check weight, bias and weight_scale; return the output channel count."""
    weight = _array(op.weight, np.int8, rank, where, "weight")
    if weight.min() < -WEIGHT_MAX:
        raise ValueError(f"{where}: weight holds -128; symmetric int8 weights are in [-127, 127]")
    channels = weight.shape[0]
    bias = _array(op.bias, np.int32, (channels,), where, "bias")
    scale = _array(op.weight_scale, np.float64, (channels,), where, "weight_scale")
    if not (np.isfinite(scale) & (scale > 0)).all():
        raise ValueError(f"{where}: weight_scale must be finite and > 0")
    _codebook(op.codebook, weight, where)
    # The bound quantize enforces (it also keeps the folded FC bias in int32).
    worst = accumulator_bound(weight, bias)
    if worst.max() > INT32_MAX:
        raise ValueError(f"{where}: the int32 accumulator can overflow ({int(worst.max())} > 2^31 - 1)")
    return channels


def _codebook(codebook, weight: np.ndarray, where: str) -> None:
    """None, or the layer's shared values: 0 first, then distinct nonzero
    values ascending, holding every weight of the layer."""
    if codebook is None:
        return
    codebook = _array(codebook, np.int8, 1, where, "codebook")
    if codebook.size > 256 or codebook[0] != 0:
        raise ValueError(f"{where}: codebook must hold 0 first and at most 256 values")
    if (np.diff(codebook[1:].astype(np.int64)) <= 0).any() or (codebook[1:] == 0).any():
        raise ValueError(f"{where}: codebook values after slot 0 must be nonzero and ascending")
    if codebook.min() < -WEIGHT_MAX:
        raise ValueError(f"{where}: codebook holds -128; symmetric int8 weights are in [-127, 127]")
    if not np.isin(weight, codebook).all():
        raise ValueError(f"{where}: a weight is not a value of the layer's codebook")


def _requant(rq, channels: int, where: str, y: QTensor, rounding: Rounding) -> None:
    if not isinstance(rq, Requant):
        raise ValueError(f"{where}: requant must be a Requant, got {type(rq).__name__}")
    multiplier = _array(rq.multiplier, np.int32, (channels,), where, "requant.multiplier")
    shift = _array(rq.shift, np.int32, (channels,), where, "requant.shift")
    if not ((multiplier == 0) | (multiplier >= MULTIPLIER_MIN)).all():
        raise ValueError(f"{where}: requant.multiplier must be 0 or in [2^30, 2^31)")
    if shift.min() < SHIFT_MIN or shift.max() > SHIFT_MAX:
        raise ValueError(f"{where}: requant.shift must be in [{SHIFT_MIN}, {SHIFT_MAX}]")
    zero_point = _int_in(rq.output_zero_point, INT8_MIN, INT8_MAX, f"{where}: requant.output_zero_point")
    if zero_point != y.qparams.zero_point:
        raise ValueError(f"{where}: requant.output_zero_point {zero_point} is not the zero point "
                         f"{y.qparams.zero_point} of output {y.name!r}")
    _act_range(rq.act_min, rq.act_max, f"{where}: requant")
    if rq.rounding is not rounding:
        raise ValueError(f"{where}: requant.rounding {brief(rq.rounding)} differs from the graph's {rounding.value!r}")


def _input_zero_point(op, where: str, x: QTensor) -> None:
    zero_point = _int_in(op.input_zero_point, INT8_MIN, INT8_MAX, f"{where}: input_zero_point")
    if zero_point != x.qparams.zero_point:
        raise ValueError(f"{where}: input_zero_point {zero_point} is not the zero point "
                         f"{x.qparams.zero_point} of input {x.name!r}")


def _conv(op: QConv2D, where: str, x: QTensor, y: QTensor, rounding: Rounding) -> None:
    _rank(x, 3, where, "input")
    _rank(y, 3, where, "output")
    channels = _weights(op, where, 4)
    _, kh, kw, in_channels = op.weight.shape
    if not isinstance(op.groups, int) or op.groups < 1 or channels % op.groups:
        raise ValueError(f"{where}: groups {op.groups!r} must be a positive integer dividing "
                         f"the {channels} output channels")
    if in_channels * op.groups != x.shape[2]:
        raise ValueError(f"{where}: weight (OHWI {op.weight.shape}) in {op.groups} group(s) "
                         f"takes {in_channels * op.groups} input channels, input {x.name!r} "
                         f"of shape {x.shape} has {x.shape[2]}")
    _window((kh, kw), op.stride, op.padding, where, x, y, channels)
    _input_zero_point(op, where, x)
    _requant(op.requant, channels, where, y, rounding)


def _fully_connected(op: QFullyConnected, where: str, x: QTensor, y: QTensor, rounding: Rounding) -> None:
    _rank(x, 1, where, "input")
    _rank(y, 1, where, "output")
    channels = _weights(op, where, 2)
    if op.weight.shape != (y.shape[0], x.shape[0]):
        raise ValueError(f"{where}: weight has shape {op.weight.shape}, but input {x.name!r} has "
                         f"{x.shape[0]} features and output {y.name!r} {y.shape[0]}")
    _input_zero_point(op, where, x)
    _requant(op.requant, channels, where, y, rounding)


def _pool(op, where: str, x: QTensor, y: QTensor, rounding: Rounding) -> None:
    _rank(x, 3, where, "input")
    _rank(y, 3, where, "output")
    kernel = _int_tuple(op.kernel, 2, 1, f"{where}: kernel")
    _window(kernel, op.stride, op.padding, where, x, y, x.shape[2])
    if isinstance(op, QAvgPool):
        dh, dw = _int_tuple(op.divisor_padding, 2, 0, f"{where}: divisor_padding")
        top, bottom, left, right = op.padding
        if dh > min(top, bottom) or dw > min(left, right):
            raise ValueError(f"{where}: divisor_padding {op.divisor_padding} counts more than the "
                             f"padding {op.padding} on a side")
        window = min(kernel[0], x.shape[0] + 2 * dh) * min(kernel[1], x.shape[1] + 2 * dw)
        if window > MAX_AVG_WINDOW:
            raise ValueError(f"{where}: a window of {window} elements is over the {MAX_AVG_WINDOW} "
                             "an int32 sum of int8 values allows")
    _act_range(op.act_min, op.act_max, where)
    _same_params(x, y, where)


def _reshape(op: QReshape, where: str, x: QTensor, y: QTensor, rounding: Rounding) -> None:
    if math.prod(x.shape) != math.prod(y.shape):
        raise ValueError(f"{where}: reshape of {x.shape} to {y.shape} changes the element count")
    _same_params(x, y, where)


def _shuffle(op: QChannelShuffle, where: str, x: QTensor, y: QTensor, rounding: Rounding) -> None:
    _rank(x, 3, where, "input")
    if x.shape != y.shape:
        raise ValueError(f"{where}: shuffle output shape {y.shape} differs from its input's {x.shape}")
    if not _is_int(op.groups) or op.groups < 1 or x.shape[2] % op.groups:
        raise ValueError(f"{where}: groups {brief(op.groups)} must divide the {x.shape[2]} channels")
    _same_params(x, y, where)


def _clamp(op: QClamp, where: str, x: QTensor, y: QTensor, rounding: Rounding) -> None:
    if x.shape != y.shape:
        raise ValueError(f"{where}: clamp output shape {y.shape} differs from its input's {x.shape}")
    _act_range(op.act_min, op.act_max, where)
    _same_params(x, y, where)


MAX_CONCAT_INPUTS = 16


def _concat(op: QConcat, where: str, inputs: list, y: QTensor) -> None:
    """Inputs of the output's shape but for the last axis, whose sizes add
    up; one zero point, multiplier and shift per input."""
    if any(x.shape[:-1] != y.shape[:-1] for x in inputs) or \
            sum(x.shape[-1] for x in inputs) != y.shape[-1]:
        raise ValueError(f"{where}: concat of shapes {[x.shape for x in inputs]} into {y.shape}")
    count = len(inputs)
    for name in ("zero_points", "multipliers", "shifts"):
        values = getattr(op, name)
        if not isinstance(values, tuple) or len(values) != count:
            raise ValueError(f"{where}: {name} must hold one value per input ({count})")
    for x, zp, m, s in zip(inputs, op.zero_points, op.multipliers, op.shifts):
        if zp != x.qparams.zero_point:
            raise ValueError(f"{where}: zero point {brief(zp)} is not that of {x.name!r} "
                             f"({x.qparams.zero_point})")
        if not _is_int(m) or not (m == 0 or MULTIPLIER_MIN <= m <= INT32_MAX):
            raise ValueError(f"{where}: multiplier {brief(m)} must be 0 or in [2^30, 2^31)")
        _int_in(s, SHIFT_MIN, SHIFT_MAX, f"{where}: shift")
    if op.output_zero_point != y.qparams.zero_point:
        raise ValueError(f"{where}: output zero point {brief(op.output_zero_point)} is not "
                         f"that of {y.name!r} ({y.qparams.zero_point})")


def _add(op: QAdd, where: str, inputs: list, y: QTensor) -> None:
    """Both inputs and the output of one shape; the zero points those of the
    tensors; multipliers and shifts in the ranges the kernels take."""
    if any(x.shape != y.shape for x in inputs):
        raise ValueError(f"{where}: add of shapes {[x.shape for x in inputs]} into {y.shape}: "
                         "the shapes must be equal")
    for x, zp in zip(inputs, (op.input1_zero_point, op.input2_zero_point)):
        if zp != x.qparams.zero_point:
            raise ValueError(f"{where}: input zero point {brief(zp)} is not that of {x.name!r} "
                             f"({x.qparams.zero_point})")
    if op.output_zero_point != y.qparams.zero_point:
        raise ValueError(f"{where}: output zero point {brief(op.output_zero_point)} is not "
                         f"that of {y.name!r} ({y.qparams.zero_point})")
    for name in ("input1", "input2", "output"):
        multiplier = getattr(op, f"{name}_multiplier")
        if not _is_int(multiplier) or not (multiplier == 0 or
                                           MULTIPLIER_MIN <= multiplier <= INT32_MAX):
            raise ValueError(f"{where}: {name}_multiplier must be 0 or in [2^30, 2^31)")
        _int_in(getattr(op, f"{name}_shift"), SHIFT_MIN, SHIFT_MAX, f"{where}: {name}_shift")
    _act_range(op.act_min, op.act_max, where)


def _softmax(op, where: str, x: QTensor, y: QTensor, rounding: Rounding) -> None:
    """Rows of at most MAX_DEPTH values; the output on TFLite's fixed grid;
    parameters in the ranges eg_softmax_s8 / eg_log_softmax_s8 take."""
    log = isinstance(op, QLogSoftmax)
    grid = ((softmax_spec.LOG_OUTPUT_SCALE, softmax_spec.LOG_OUTPUT_ZERO_POINT) if log else
            (softmax_spec.OUTPUT_SCALE, softmax_spec.OUTPUT_ZERO_POINT))
    if x.shape != y.shape:
        raise ValueError(f"{where}: softmax output shape {y.shape} differs from its input's {x.shape}")
    if not 1 <= x.shape[-1] <= softmax_spec.MAX_DEPTH:
        raise ValueError(f"{where}: softmax over {x.shape[-1]} values; at most "
                         f"{softmax_spec.MAX_DEPTH} are supported")
    if (y.qparams.scale, y.qparams.zero_point) != grid:
        raise ValueError(f"{where}: a {'log_' if log else ''}softmax output must have scale "
                         f"{round(grid[0] * 256)}/256 and zero point {grid[1]}")
    if not _is_int(op.input_multiplier) or not MULTIPLIER_MIN <= op.input_multiplier <= INT32_MAX:
        raise ValueError(f"{where}: input_multiplier must be in [2^30, 2^31)")
    shift = _int_in(op.input_left_shift, 0, 30, f"{where}: input_left_shift")
    diff_min = _int_in(op.diff_min, -(2**31), 0, f"{where}: diff_min")
    if -diff_min << shift > INT32_MAX:
        raise ValueError(f"{where}: diff_min {diff_min} with input_left_shift {shift} "
                         "overflows int32")
    if log:
        if not _is_int(op.reverse_multiplier) or not (
                op.reverse_multiplier == 0 or MULTIPLIER_MIN <= op.reverse_multiplier <= INT32_MAX):
            raise ValueError(f"{where}: reverse_multiplier must be 0 or in [2^30, 2^31)")
        _int_in(op.reverse_shift, SHIFT_MIN, 0, f"{where}: reverse_shift")


_OP_CHECKS = {
    QConv2D: _conv,
    QFullyConnected: _fully_connected,
    QMaxPool: _pool,
    QAvgPool: _pool,
    QReshape: _reshape,
    QClamp: _clamp,
    QChannelShuffle: _shuffle,
    QSoftmax: _softmax,
    QLogSoftmax: _softmax,
}
