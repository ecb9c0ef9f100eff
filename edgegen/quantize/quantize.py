"""Float ``Graph`` -> ``QGraph`` under the TFLite int8 specification.

* activations: int8, asymmetric per tensor, from calibrated ranges;
* conv and fully connected weights: int8 symmetric per output channel,
  values in [-127, 127];
* bias: int32 with scale input_scale * weight_scale[o], zero point 0;
* requantization: per channel, multiplier and shift from
  ``quantize_multiplier(input_scale * weight_scale[o] / output_scale)``;
* fused ReLU/ReLU6: the clamp range [act_min, act_max];
* pooling, reshape and clamp keep their input's parameters (TFLite requires
  it for max and average pooling; it makes them exact in int8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from edgegen.errors import UserError
from edgegen.ir import (
    ADD_LEFT_SHIFT,
    Activation,
    Add,
    AvgPool,
    ChannelShuffle,
    Clamp,
    Concat,
    Conv2D,
    FullyConnected,
    Graph,
    MaxPool,
    QAdd,
    QAvgPool,
    QChannelShuffle,
    QClamp,
    QConcat,
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
    Reshape,
    Rounding,
    Softmax,
    frozen_array,
)
from edgegen.quantize.calibrate import CalibrationSpec, activation_params, observe_ranges
from edgegen.reference import softmax as softmax_spec
from edgegen.reference.numerics import (
    INT32_MAX,
    INT32_MIN,
    accumulator_bound,
    quantize_multiplier,
    round_half_away,
)

WEIGHT_QMAX = 127
_SHARES_INPUT_PARAMS = (MaxPool, AvgPool, Reshape, Clamp, ChannelShuffle)


@dataclass(frozen=True)
class WeightGrid:
    """A layer whose float weights lie on an int8 grid (shared weights from
    ``edgegen.compress``): every weight is ``scale * q`` with ``q`` one of
    ``codebook``'s int8 values (``codebook[0]`` is 0, for pruned weights)."""

    scale: float
    codebook: np.ndarray


def quantize(
    graph: Graph,
    samples: np.ndarray,
    spec: CalibrationSpec = CalibrationSpec(),
    rounding: Rounding = Rounding.DOUBLE,
    weight_grids: Mapping[str, WeightGrid] | None = None,
) -> QGraph:
    """Quantize ``graph`` with activation ranges calibrated on ``samples``
    (NHWC float batch, as the float graph takes it).

    ``weight_grids`` names the layers whose weights are shared: their int8
    values are then the codebook's exactly, with one per-tensor scale, and
    the quantized layer carries its codebook.
    """
    if len(samples) == 0:
        raise UserError("calibration needs at least one sample: raise --calib-samples")
    weight_grids = dict(weight_grids or {})
    unknown = set(weight_grids) - {n.name for n in graph.nodes}
    if unknown:
        raise UserError(f"weight codebooks given for layers the model does not have: {sorted(unknown)}")
    ranges = observe_ranges(graph, samples, spec)
    qparams = _tensor_params(graph, ranges)
    nodes = tuple(
        _quantize_node(graph, node, qparams, rounding, weight_grids.get(node.name))
        for node in graph.nodes
    )
    tensors = tuple(QTensor(t.name, t.shape, qparams[t.name]) for t in graph.tensors)
    metadata = {
        "calibration": spec.method.value,
        "percentile": spec.percentile if spec.method.value == "percentile" else None,
        "calibration_samples": int(len(samples)),
        "input_range": list(spec.input_range) if spec.input_range else None,
    }
    if graph.notes:
        metadata["import_notes"] = list(graph.notes)
    return QGraph(graph.name, nodes, tensors, graph.input, graph.output, rounding, metadata)


def _tensor_params(graph: Graph, ranges) -> dict[str, QuantParams]:
    params = {graph.input: activation_params(*ranges[graph.input])}
    for node in graph.nodes:
        if isinstance(node.op, _SHARES_INPUT_PARAMS):
            params[node.output] = params[node.inputs[0]]
        elif isinstance(node.op, Softmax):  # TFLite fixes a softmax's output grid
            params[node.output] = softmax_output_params(node.op)
        else:
            params[node.output] = activation_params(*ranges[node.output])
    return params


def activation_bounds(act: Activation, out: QuantParams) -> tuple[int, int]:
    """The int8 clamp range that implements a fused activation."""
    if act is Activation.NONE:
        return -128, 127
    lo = max(-128, out.zero_point)
    if act is Activation.RELU:
        return lo, 127
    six = out.zero_point + int(round_half_away(6.0 / out.scale))
    return lo, min(127, six)


def symmetric_per_channel(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights in [-127, 127] and one scale per output channel (axis 0)."""
    flat = weight.reshape(weight.shape[0], -1).astype(np.float64)
    max_abs = np.abs(flat).max(axis=1)
    scale = np.where(max_abs > 0, max_abs / WEIGHT_QMAX, 1.0)
    q = np.clip(round_half_away(flat / scale[:, None]), -WEIGHT_QMAX, WEIGHT_QMAX)
    return q.astype(np.int8).reshape(weight.shape), scale


def _quantize_bias(node_name: str, bias: np.ndarray, bias_scale: np.ndarray) -> np.ndarray:
    q = round_half_away(bias.astype(np.float64) / bias_scale)
    if q.min(initial=0) < INT32_MIN or q.max(initial=0) > INT32_MAX:
        raise UserError(
            f"bias of {node_name} does not fit int32 at its scale: the weights of this "
            "layer are nearly all zero; retrain or prune the layer"
        )
    return q.astype(np.int32)


def _check_accumulator(node_name: str, weight: np.ndarray, bias: np.ndarray) -> None:
    """The int32 accumulator must not overflow for any input: the C wraps
    where the golden model would not."""
    worst = accumulator_bound(weight, bias)
    if worst.max(initial=0) > INT32_MAX:
        raise UserError(
            f"{node_name} can overflow the int32 accumulator ({int(worst.max())} > 2^31 - 1): "
            "split the layer or reduce its fan-in"
        )


def _requant(in_scale, weight_scale, out: QuantParams, act, rounding) -> Requant:
    pairs = [quantize_multiplier(float(in_scale * s / out.scale)) for s in weight_scale]
    act_min, act_max = activation_bounds(act, out)
    return Requant(
        multiplier=frozen_array([m for m, _ in pairs], np.int32),
        shift=frozen_array([s for _, s in pairs], np.int32),
        output_zero_point=out.zero_point,
        act_min=act_min,
        act_max=act_max,
        rounding=rounding,
    )


def on_grid(node_name: str, weight: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights of a layer whose float weights are scale * q exactly."""
    q = round_half_away(weight.astype(np.float64) / scale)
    # float32 storage of scale * q is off by up to 127 * 2^-24 steps; a real
    # departure from the grid is a good fraction of a step.
    off_grid = np.abs(q * scale - weight) > 1e-4 * scale
    if np.abs(q).max(initial=0) > WEIGHT_QMAX or off_grid.any():
        raise UserError(
            f"weights of {node_name} are not on the int8 grid of their codebook (scale {scale}): "
            "the compressed model was changed after compression (a BatchNorm folded into "
            "it, or fine-tuning); compress it again"
        )
    channel_scale = np.full(weight.shape[0], float(scale))
    return q.astype(np.int8), channel_scale


def layer_codebook(node_name: str, weight: np.ndarray, shared) -> np.ndarray:
    """The QGraph codebook of a shared layer: 0, then the distinct nonzero
    values of the compress stage's int8 codebook, ascending; every int8
    weight must be one of them."""
    shared = np.asarray(shared, dtype=np.int64).ravel()
    if shared.size == 0 or np.abs(shared).max() > WEIGHT_QMAX:
        raise UserError(f"the codebook of {node_name} is empty or leaves [-127, 127]: compress it again")
    codebook = np.concatenate(([0], np.unique(shared[shared != 0]))).astype(np.int8)
    if not np.isin(weight, codebook).all():
        raise UserError(
            f"weights of {node_name} are not values of its codebook: the compressed model "
            "was changed after compression; compress it again"
        )
    return codebook


def _quantize_concat(inputs: list, out: QuantParams) -> QConcat:
    """Each input's scale over the output's, as a multiplier and shift."""
    scales = [quantize_multiplier(p.scale / out.scale) for p in inputs]
    return QConcat(tuple(p.zero_point for p in inputs), tuple(m for m, _ in scales),
                   tuple(s for _, s in scales), out.zero_point)


def _quantize_add(op: Add, first: QuantParams, second: QuantParams, out: QuantParams) -> QAdd:
    """TFLite's int8 ADD parameters: both inputs rescaled to a grid of twice
    the larger input scale over 2^ADD_LEFT_SHIFT, the sum to the output's."""
    twice_max = 2.0 * max(first.scale, second.scale)
    m1, s1 = quantize_multiplier(first.scale / twice_max)
    m2, s2 = quantize_multiplier(second.scale / twice_max)
    mo, so = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * out.scale))
    lo, hi = activation_bounds(op.activation, out)
    return QAdd(first.zero_point, m1, s1, second.zero_point, m2, s2, out.zero_point, mo, so,
                lo, hi)


def softmax_output_params(op: Softmax) -> QuantParams:
    """TFLite's fixed output grid: [0, 1) in steps of 1/256 for softmax,
    [-16, 0) in steps of 1/16 for log_softmax."""
    if op.log:
        return QuantParams(softmax_spec.LOG_OUTPUT_SCALE, softmax_spec.LOG_OUTPUT_ZERO_POINT)
    return QuantParams(softmax_spec.OUTPUT_SCALE, softmax_spec.OUTPUT_ZERO_POINT)


def _quantize_softmax(node_name: str, op: Softmax, src: QuantParams) -> QSoftmax | QLogSoftmax:
    try:
        if op.log:
            return QLogSoftmax(*softmax_spec.log_softmax_parameters(src.scale, op.beta))
        return QSoftmax(*softmax_spec.softmax_parameters(src.scale, op.beta))
    except ValueError as error:
        raise UserError(f"{node_name}: {error}; calibrate on more varied inputs") from None


def _quantize_node(graph: Graph, node, qparams, rounding: Rounding,
                   grid: WeightGrid | None = None) -> QNode:
    op = node.op
    src = qparams[node.inputs[0]]
    out = qparams[node.output]
    if grid is not None and not isinstance(op, (Conv2D, FullyConnected)):
        raise UserError(f"a weight codebook was given for {node.name}, which has no weights")
    codebook = None
    if isinstance(op, (Conv2D, FullyConnected)):
        if grid is None:
            weight, weight_scale = symmetric_per_channel(op.weight)
        else:
            weight, weight_scale = on_grid(node.name, op.weight, grid.scale)
            codebook = frozen_array(layer_codebook(node.name, weight, grid.codebook), np.int8)
        bias = _quantize_bias(node.name, op.bias, src.scale * weight_scale)
        requant = _requant(src.scale, weight_scale, out, op.activation, rounding)
        _check_accumulator(node.name, weight, bias)
        common = dict(
            weight=frozen_array(weight, np.int8),
            bias=frozen_array(bias, np.int32),
            weight_scale=frozen_array(weight_scale, np.float64),
            input_zero_point=src.zero_point,
            requant=requant,
            codebook=codebook,
        )
        if isinstance(op, Conv2D):
            qop = QConv2D(stride=op.stride, padding=op.padding, groups=op.groups, **common)
        else:
            qop = QFullyConnected(**common)
    elif isinstance(op, MaxPool):
        qop = QMaxPool(op.kernel, op.stride, op.padding, -128, 127)
    elif isinstance(op, AvgPool):
        qop = QAvgPool(op.kernel, op.stride, op.padding, -128, 127, op.divisor_padding)
    elif isinstance(op, Reshape):
        qop = QReshape()
    elif isinstance(op, Clamp):
        qop = QClamp(*activation_bounds(op.activation, out))
    elif isinstance(op, Add):
        qop = _quantize_add(op, src, qparams[node.inputs[1]], out)
    elif isinstance(op, ChannelShuffle):
        qop = QChannelShuffle(op.groups)
    elif isinstance(op, Concat):
        qop = _quantize_concat([qparams[name] for name in node.inputs], out)
    elif isinstance(op, Softmax):
        qop = _quantize_softmax(node.name, op, src)
    else:
        raise TypeError(f"no quantization rule for {type(op).__name__}")
    return QNode(node.name, qop, node.inputs, node.output)
