"""Float execution of the imported ``Graph`` in numpy (NHWC, batched).

Used to calibrate activation ranges and to check the import against PyTorch:
running the IR here must give PyTorch's outputs up to float rounding, which
proves the layout changes (NHWC, OHWI, permuted flatten columns) and the
folds (BatchNorm, activations) are right.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgegen.ir import (
    Add,
    ChannelShuffle,
    Concat,
    Activation,
    AvgPool,
    Clamp,
    Conv2D,
    FullyConnected,
    Graph,
    MaxPool,
    Reshape,
    Softmax,
)
from edgegen.reference.kernels import channel_shuffle, grouped_products, pool_divisors, windows


def _activate(x: np.ndarray, act: Activation) -> np.ndarray:
    if act is Activation.RELU:
        return np.maximum(x, 0)
    if act is Activation.RELU6:
        return np.clip(x, 0, 6)
    return x


def _conv(x, op: Conv2D):
    o, kh, kw, ci = op.weight.shape
    cols = windows(x, (kh, kw), op.stride, op.padding, fill=0.0)
    n, oh, ow = cols.shape[:3]
    if op.groups == 1:
        out = cols.reshape(n * oh * ow, -1) @ op.weight.reshape(o, -1).T.astype(np.float64)
    else:
        out = grouped_products(cols, op.weight, op.groups, np.float64)
    out = out + op.bias
    return _activate(out.reshape(n, oh, ow, o), op.activation)


def _fc(x, op: FullyConnected):
    return _activate(x @ op.weight.T.astype(np.float64) + op.bias, op.activation)


def _max_pool(x, op: MaxPool):
    return windows(x, op.kernel, op.stride, op.padding, fill=-np.inf).max(axis=(3, 4))


def _avg_pool(x, op: AvgPool):
    total = windows(x, op.kernel, op.stride, op.padding, fill=0.0).sum(axis=(3, 4))
    return total / pool_divisors(x.shape[1], x.shape[2], op.kernel, op.stride, op.padding,
                                 op.divisor_padding)


def _softmax(x: np.ndarray, beta: float, log: bool) -> np.ndarray:
    scaled = beta * (x - x.max(axis=-1, keepdims=True))
    total = np.exp(scaled).sum(axis=-1, keepdims=True)
    return scaled - np.log(total) if log else np.exp(scaled) / total


def run_float(
    graph: Graph, x: np.ndarray, observe: Callable[[str, np.ndarray], None] | None = None
) -> np.ndarray:
    """Run a batch ``x`` of shape (N,) + input shape (NHWC) in float64.

    ``observe(tensor_name, values)`` sees the input and every node output.
    """
    values = {graph.input: np.asarray(x, dtype=np.float64)}
    if observe:
        observe(graph.input, values[graph.input])
    for node in graph.nodes:
        src = values[node.inputs[0]]
        op = node.op
        if isinstance(op, Conv2D):
            out = _conv(src, op)
        elif isinstance(op, FullyConnected):
            out = _fc(src, op)
        elif isinstance(op, MaxPool):
            out = _max_pool(src, op)
        elif isinstance(op, AvgPool):
            out = _avg_pool(src, op)
        elif isinstance(op, Reshape):
            out = src.reshape((src.shape[0],) + graph.tensor(node.output).shape)
        elif isinstance(op, Clamp):
            out = _activate(src, op.activation)
        elif isinstance(op, Concat):
            out = np.concatenate([values[name] for name in node.inputs], axis=-1)
        elif isinstance(op, ChannelShuffle):
            out = channel_shuffle(src, op.groups)
        elif isinstance(op, Add):
            out = _activate(src + values[node.inputs[1]], op.activation)
        elif isinstance(op, Softmax):
            out = _softmax(src, op.beta, op.log)
        else:
            raise TypeError(f"no float kernel for {type(op).__name__}")
        values[node.output] = out
        if observe:
            observe(node.output, out)
    return values[graph.output]


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    """A PyTorch batch (N, C, H, W) in edgegen's layout; (N, F) is unchanged."""
    x = np.asarray(x)
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x
