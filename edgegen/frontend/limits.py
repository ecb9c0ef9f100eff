"""Size limits that no microcontroller deployment comes near.

A model far beyond any MCU's flash is almost always a mistake (a wrong
layer width, the wrong checkpoint), and generating C for it would take
gigabytes of memory and minutes before failing at the board's budget. The
import stage refuses it at once, naming its size and the limit; the limit
is an option for the rare user who means it.
"""

from __future__ import annotations

from torch import nn

from edgegen.errors import UserError
from edgegen.ir import Conv2D, FullyConnected, Graph

DEFAULT_MAX_MODEL_BYTES = 16 * 1024 * 1024  # the largest MCU flash parts hold a few MB
_INT32_BYTES = 4
_REQUANT_BYTES_PER_CHANNEL = 8  # an int32 multiplier and an int32 shift
_LIMIT = (f"set by --max-model-bytes (default {DEFAULT_MAX_MODEL_BYTES:,}, more than any "
          "microcontroller has)")


def constant_bytes(graph: Graph) -> int:
    """Bytes of the quantized model's constants: int8 weights, int32 biases,
    per-channel requantization (dense storage, before any compression)."""
    total = 0
    for node in graph.nodes:
        if isinstance(node.op, (Conv2D, FullyConnected)):
            channels = node.op.weight.shape[0]
            total += node.op.weight.size + channels * (_INT32_BYTES + _REQUANT_BYTES_PER_CHANNEL)
    return total


def check_graph_size(graph: Graph, max_bytes: int = DEFAULT_MAX_MODEL_BYTES) -> None:
    """UserError when the int8 model's constants or its largest activation
    would exceed ``max_bytes``."""
    constants = constant_bytes(graph)
    if constants > max_bytes:
        raise UserError(
            f"model {graph.name} would hold {constants:,} bytes of int8 weights and constants, "
            f"over the limit of {max_bytes:,} bytes {_LIMIT}: check the layer sizes, or raise "
            "the limit")
    largest = max(graph.tensor(t.name).size for t in graph.tensors)
    if largest > max_bytes:
        raise UserError(
            f"model {graph.name} has an activation of {largest:,} int8 values, over the limit "
            f"of {max_bytes:,} bytes {_LIMIT}: check the input shape, or raise the limit")


def check_module_size(model: nn.Module, name: str, max_bytes: int = DEFAULT_MAX_MODEL_BYTES) -> None:
    """The same limit on a float model's parameter count, before training it."""
    parameters = sum(p.numel() for p in model.parameters())
    if parameters > max_bytes:
        raise UserError(
            f"model {name} has {parameters:,} parameters, over the limit of {max_bytes:,} int8 "
            f"bytes {_LIMIT}: check the layer sizes, or raise the limit")
