"""The intermediate representation shared by every stage.

Two graphs, one per side of quantization, both immutable:

* ``Graph`` — float32 parameters, produced by ``edgegen.frontend``;
* ``QGraph`` — int8/int32 parameters and requantization constants, produced
  by ``edgegen.quantize`` and consumed by the golden model, the planner and
  the emitter.

Conventions, fixed for all stages:

* batch is implicit (one sample); a feature map has shape ``(H, W, C)``
  (NHWC without N), a flat vector ``(F,)``;
* conv weights are OHWI, fully connected weights ``(out, in)`` with ``in``
  in NHWC flattening order (the frontend permutes PyTorch's NCHW columns);
* padding is ``(top, bottom, left, right)``;
* nodes are in execution order, every tensor has exactly one producer
  (the graph input has none).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Union

import numpy as np


class Activation(enum.Enum):
    """Activation fused into the op before it (a clamp after requantization)."""

    NONE = "none"
    RELU = "relu"
    RELU6 = "relu6"


class Rounding(enum.Enum):
    """How the int32 accumulator is scaled down (see DESIGN.md, Numerics).

    DOUBLE is TFLite's reference MultiplyByQuantizedMultiplier:
    SaturatingRoundingDoublingHighMul then RoundingDivideByPOT.
    SINGLE is TFLITE_SINGLE_ROUNDING: one 64-bit multiply, one rounding shift.
    """

    DOUBLE = "double"
    SINGLE = "single"


def frozen_array(values, dtype) -> np.ndarray:
    """A read-only copy, so that frozen dataclasses stay frozen all the way down."""
    arr = np.array(values, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


# ---------------------------------------------------------------- float graph


@dataclass(frozen=True)
class Conv2D:
    """``groups``: PyTorch's; the input channels split into that many
    groups, each seen by O / groups consecutive output channels (weight I =
    input channels / groups). groups == input channels is depthwise."""

    weight: np.ndarray  # float32, OHWI
    bias: np.ndarray  # float32, (O,)
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]  # top, bottom, left, right
    activation: Activation = Activation.NONE
    groups: int = 1


@dataclass(frozen=True)
class FullyConnected:
    weight: np.ndarray  # float32, (out, in), in in NHWC order
    bias: np.ndarray  # float32, (out,)
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class MaxPool:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]


@dataclass(frozen=True)
class AvgPool:
    """Average over the window's in-bounds elements (padding never summed).
    The divisor counts the window's elements inside the input grown by
    divisor_padding (rows, columns) on each side: (0, 0) counts the
    in-bounds elements only; PyTorch's count_include_pad=True counts its
    explicit padding (not a ceil_mode overhang beyond it)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    divisor_padding: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Reshape:
    """A change of shape that keeps the bytes where they are (flatten)."""


@dataclass(frozen=True)
class Clamp:
    """A stand-alone ReLU/ReLU6 that could not be fused into its producer."""

    activation: Activation


@dataclass(frozen=True)
class Add:
    """Element-wise sum of the node's two inputs (same shape): a residual
    join."""

    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class ChannelShuffle:
    """ShuffleNet's channel shuffle: channels split into ``groups`` groups,
    then interleaved (output channel j * groups + i is input channel
    i * (C / groups) + j)."""

    groups: int


@dataclass(frozen=True)
class Concat:
    """The node's inputs joined along the channel (last) axis, in order."""


@dataclass(frozen=True)
class Softmax:
    """Softmax over the channel (last) axis: exp(beta * x) normalised; with
    ``log``, its logarithm (log_softmax)."""

    beta: float = 1.0
    log: bool = False


FloatOp = Union[Conv2D, FullyConnected, MaxPool, AvgPool, Reshape, Clamp, Add, ChannelShuffle,
                Concat, Softmax]


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class Node:
    name: str  # module path in the source model, unique
    op: FloatOp
    inputs: tuple[str, ...]
    output: str


@dataclass(frozen=True)
class Graph:
    name: str
    nodes: tuple[Node, ...]
    tensors: tuple[Tensor, ...]
    input: str
    output: str
    # What the import changed that the user must know (a dropped final
    # softmax): carried into the quantized graph's metadata and the report.
    notes: tuple[str, ...] = ()

    def tensor(self, name: str) -> Tensor:
        return _lookup(self.tensors, name)


# ------------------------------------------------------------ quantized graph


@dataclass(frozen=True)
class QuantParams:
    """real = scale * (q - zero_point), q in int8."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class Requant:
    """Output stage shared by conv and fully connected: int32 -> int8.

    ``multiplier``/``shift`` are per output channel, as produced by
    ``quantize_multiplier`` (multiplier in [2^30, 2^31) or 0; shift > 0 is a
    left shift). The result is ``clamp(scale(acc) + output_zero_point,
    act_min, act_max)``.
    """

    multiplier: np.ndarray  # int32, (O,)
    shift: np.ndarray  # int32, (O,)
    output_zero_point: int
    act_min: int
    act_max: int
    rounding: Rounding


@dataclass(frozen=True)
class QConv2D:
    weight: np.ndarray  # int8 OHWI, symmetric, in [-127, 127]
    bias: np.ndarray  # int32 (O,), scale input_scale * weight_scale[o]
    weight_scale: np.ndarray  # float64 (O,)
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    input_zero_point: int
    requant: Requant
    codebook: np.ndarray | None = None  # int8: 0, then the shared values (see below)
    groups: int = 1  # as Conv2D's

    @property
    def depthwise(self) -> bool:
        """groups = input channels (> 1): one input channel per filter."""
        return self.groups > 1 and self.weight.shape[3] == 1


@dataclass(frozen=True)
class QFullyConnected:
    """``codebook`` (as in QConv2D): for a layer compressed by weight
    sharing, the int8 values its weights may take: slot 0 holds 0 (pruned
    weights), the others the distinct nonzero shared values, ascending.
    None for a layer without shared weights."""

    weight: np.ndarray  # int8 (out, in), symmetric
    bias: np.ndarray  # int32 (out,)
    weight_scale: np.ndarray  # float64 (out,)
    input_zero_point: int
    requant: Requant
    codebook: np.ndarray | None = None


@dataclass(frozen=True)
class QMaxPool:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    act_min: int
    act_max: int


@dataclass(frozen=True)
class QAvgPool:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    act_min: int
    act_max: int
    divisor_padding: tuple[int, int] = (0, 0)  # as AvgPool's


@dataclass(frozen=True)
class QReshape:
    pass


@dataclass(frozen=True)
class QClamp:
    act_min: int
    act_max: int


@dataclass(frozen=True)
class QAdd:
    """TFLite's int8 ADD: each input, offset by its zero point and shifted
    left by ADD_LEFT_SHIFT, is scaled by its (multiplier, shift) to a common
    grid; the sum is scaled by the output's (multiplier, shift) and offset
    by the output zero point, then clamped. All shifts <= 0 (TFLite's
    MultiplyByQuantizedMultiplierSmallerThanOneExp), in the graph's
    rounding."""

    input1_zero_point: int
    input1_multiplier: int
    input1_shift: int
    input2_zero_point: int
    input2_multiplier: int
    input2_shift: int
    output_zero_point: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


ADD_LEFT_SHIFT = 20  # TFLite's left_shift for int8 ADD


@dataclass(frozen=True)
class QChannelShuffle:
    """ChannelShuffle on int8 values (a permutation: the output shares the
    input's quantization parameters)."""

    groups: int


@dataclass(frozen=True)
class QConcat:
    """Concat on int8 values: input i, offset by its zero point, is scaled by
    (multipliers[i], shifts[i]) (its scale over the output's) in the graph's
    rounding, offset by the output zero point and saturated to int8; an
    input with the output's quantization is copied unchanged."""

    zero_points: tuple[int, ...]
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    output_zero_point: int


@dataclass(frozen=True)
class QSoftmax:
    """TFLite's int8 SOFTMAX over the last axis (edgegen.reference.softmax):
    a difference to the row's maximum becomes Q5.26 by ``input_multiplier``
    and ``input_left_shift`` (beta * input scale); differences below
    ``diff_min`` give -128. The output's scale is 1/256, its zero point
    -128."""

    input_multiplier: int
    input_left_shift: int
    diff_min: int


@dataclass(frozen=True)
class QLogSoftmax:
    """TFLite's int8 LOG_SOFTMAX over the last axis: QSoftmax's parameters
    and the inverse of its input scaling (``reverse_multiplier``,
    ``reverse_shift`` <= 0), both scalings in the graph's rounding. The
    output's scale is 16/256, its zero point 127."""

    input_multiplier: int
    input_left_shift: int
    reverse_multiplier: int
    reverse_shift: int
    diff_min: int


QOp = Union[QConv2D, QFullyConnected, QMaxPool, QAvgPool, QReshape, QClamp, QAdd,
            QChannelShuffle, QConcat, QSoftmax, QLogSoftmax]


@dataclass(frozen=True)
class QTensor:
    name: str
    shape: tuple[int, ...]
    qparams: QuantParams

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class QNode:
    name: str
    op: QOp
    inputs: tuple[str, ...]
    output: str


@dataclass(frozen=True)
class QGraph:
    name: str
    nodes: tuple[QNode, ...]
    tensors: tuple[QTensor, ...]
    input: str
    output: str
    rounding: Rounding
    metadata: dict = field(default_factory=dict, compare=False, hash=False)

    def tensor(self, name: str) -> QTensor:
        return _lookup(self.tensors, name)


_KINDS = {
    QConv2D: "conv2d",
    QFullyConnected: "fully_connected",
    QMaxPool: "max_pool",
    QAvgPool: "avg_pool",
    QReshape: "reshape",
    QClamp: "clamp",
    QAdd: "add",
    QChannelShuffle: "channel_shuffle",
    QConcat: "concat",
    QSoftmax: "softmax",
    QLogSoftmax: "log_softmax",
}


def op_kind(op: QOp) -> str:
    """The short name of a quantized op, as reports and generated C say it."""
    return _KINDS[type(op)]


def _lookup(tensors, name):
    for t in tensors:
        if t.name == name:
            return t
    raise KeyError(f"no tensor named {name!r}")
