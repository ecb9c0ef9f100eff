"""A tiny quantized graph with one node of every op, made by the real pipeline."""

import numpy as np
import torch
from torch import nn

from edgegen.frontend.torch_import import import_model
from edgegen.ir import QGraph
from edgegen.quantize.calibrate import CalibrationSpec
from edgegen.quantize.quantize import quantize


def tiny_qgraph() -> QGraph:
    """conv+ReLU, max pool, avg pool, clamp, flatten, linear on a 6x6 input."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.AvgPool2d(2, stride=1), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3)).eval()
    graph = import_model(model, torch.zeros(1, 1, 6, 6), "tiny")
    x = np.random.default_rng(0).random((10, 6, 6, 1))
    return quantize(graph, x, CalibrationSpec(input_range=(0.0, 1.0)))


def zoo_qgraph(name: str, seed: int = 0) -> QGraph:
    """A zoo network (untrained, seeded) quantized on random images."""
    from edgegen.zoo.models import ZOO

    return module_qgraph(ZOO[name], name, seed)


def module_qgraph(factory, name: str, seed: int = 0) -> QGraph:
    """The network ``factory()`` makes (untrained, seeded), for 28x28x1
    inputs, quantized on random images."""
    torch.manual_seed(seed)
    model = factory().eval()
    graph = import_model(model, torch.zeros(1, 1, 28, 28), name)
    x = np.random.default_rng(seed).random((8, 28, 28, 1))
    return quantize(graph, x, CalibrationSpec(input_range=(0.0, 1.0)))


def run_host(qgraph, choice, tmp_path, vectors, extra_flags=()):
    """Lower ``qgraph`` as ``choice`` says (a StorageChoice), build its C
    on the host in ``tmp_path`` and run it on the int8 ``vectors``: the
    lowering and the outputs, (N, output size)."""
    from edgegen.jobs.lower import lower
    from edgegen.verify.host_model import HostModel, ModelSizes

    low = lower(qgraph, choice)
    folder = tmp_path / "src"
    low.sources.write(folder)
    sizes = ModelSizes.of(qgraph, low.memory)
    model = HostModel(folder, sizes, tmp_path / "build", extra_flags=extra_flags)
    return low, model.run(vectors)


def vectors_for(qgraph, count=6, seed=0):
    """``count`` random int8 inputs of ``qgraph``, seeded."""
    shape = qgraph.tensor(qgraph.input).shape
    return np.random.default_rng(seed).integers(-128, 128, size=(count,) + shape).astype(np.int8)


def compressed_like(qgraph: QGraph, density: float = 0.1, values: int = 16,
                    seed: int = 0) -> QGraph:
    """``qgraph`` with every weight layer pruned to ``density`` (smallest
    magnitudes to 0) and its survivors snapped to ``values`` shared int8
    values, carrying that codebook: the shape of what compress + quantize
    produce, without training."""
    from dataclasses import replace

    rng = np.random.default_rng(seed)
    nodes = []
    for node in qgraph.nodes:
        op = node.op
        if not hasattr(op, "codebook"):
            nodes.append(node)
            continue
        shared = np.unique(rng.integers(1, 128, size=values) * rng.choice([-1, 1], size=values))
        weight = op.weight.astype(np.int64)
        threshold = np.quantile(np.abs(weight), 1.0 - density)
        keep = (np.abs(weight) >= max(threshold, 1)) & (rng.random(weight.shape) < 1.0)
        nearest = shared[np.abs(weight[..., None] - shared).argmin(axis=-1)]
        new = np.where(keep, nearest, 0).astype(np.int8)
        codebook = np.concatenate(([0], np.unique(new[new != 0]))).astype(np.int8)
        nodes.append(replace(node, op=replace(op, weight=new, codebook=codebook)))
    return replace(qgraph, nodes=tuple(nodes))


def conv_pool_qgraph(rng: np.random.Generator, *, height: int, width: int, in_channels: int,
                     stages, head: str = "fc", rounding=None) -> QGraph:
    """input -> (conv [-> clamp] -> pool) per stage [-> flatten -> linear].

    ``stages``: dicts with ``channels``, ``kernel`` (kh, kw), ``stride``,
    ``padding`` (top, bottom, left, right) of the conv, ``pool`` ("max" or
    "avg"), ``pool_kernel``, ``pool_stride``, ``pool_padding`` and
    optionally ``relu`` (a fused ReLU: the conv's act_min at its zero
    point) and ``clamp`` (a stand-alone clamp between conv and pool, which
    stops fusion). ``head`` "fc": a classifier after the last pool; "none":
    the last pool is the model's output. Weights, biases, scales and zero
    points are random (seeded by ``rng``), within what validate_qgraph
    accepts."""
    from edgegen.ir import (QAvgPool, QClamp, QConv2D, QFullyConnected, QMaxPool, QNode,
                            QReshape, QTensor, QuantParams, Requant, Rounding)
    from edgegen.reference.kernels import output_size
    from edgegen.reference.numerics import quantize_multiplier

    rounding = rounding or Rounding.DOUBLE
    tensors, nodes = [], []

    def tensor(name, shape):
        params = QuantParams(float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128)))
        tensors.append(QTensor(name, tuple(int(d) for d in shape), params))
        return tensors[-1]

    def requant(x, y, channels, weight_scale, relu):
        pairs = [quantize_multiplier(x.qparams.scale * s / y.qparams.scale) for s in weight_scale]
        act_min = y.qparams.zero_point if relu else -128
        return Requant(np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32),
                       y.qparams.zero_point, act_min, 127, rounding)

    def weighted(x, shape, out_shape, name):
        weight = rng.integers(-127, 128, size=shape).astype(np.int8)
        bias = rng.integers(-2000, 2000, size=shape[0]).astype(np.int32)
        scale = rng.uniform(0.002, 0.02, size=shape[0])
        return weight, bias, scale, tensor(name, out_shape)

    x = tensor("input", (height, width, in_channels))
    for i, s in enumerate(stages):
        kh, kw = s["kernel"]
        top, bottom, left, right = s["padding"]
        oh = output_size(x.shape[0], kh, s["stride"][0], top, bottom)
        ow = output_size(x.shape[1], kw, s["stride"][1], left, right)
        weight, bias, scale, y = weighted(x, (s["channels"], kh, kw, x.shape[2]),
                                          (oh, ow, s["channels"]), f"conv{i}")
        op = QConv2D(weight, bias, scale, tuple(s["stride"]), tuple(s["padding"]),
                     x.qparams.zero_point, requant(x, y, s["channels"], scale, s.get("relu")))
        nodes.append(QNode(f"conv{i}", op, (x.name,), y.name))
        x = y
        if s.get("clamp"):
            y = QTensor(f"clamp{i}", x.shape, x.qparams)
            tensors.append(y)
            lo = int(rng.integers(-128, 0))
            nodes.append(QNode(f"clamp{i}", QClamp(lo, 127), (x.name,), y.name))
            x = y
        pk, ps, pp = s["pool_kernel"], s["pool_stride"], s["pool_padding"]
        shape = (output_size(x.shape[0], pk[0], ps[0], pp[0], pp[1]),
                 output_size(x.shape[1], pk[1], ps[1], pp[2], pp[3]), x.shape[2])
        y = QTensor(f"pool{i}", shape, x.qparams)
        tensors.append(y)
        kind = QMaxPool if s["pool"] == "max" else QAvgPool
        lo = int(rng.integers(-128, 0)) if rng.random() < 0.3 else -128
        nodes.append(QNode(f"pool{i}", kind(tuple(pk), tuple(ps), tuple(pp), lo, 127),
                           (x.name,), y.name))
        x = y
    if head == "fc":
        flat = QTensor("flat", (int(np.prod(x.shape)),), x.qparams)
        tensors.append(flat)
        nodes.append(QNode("flatten", QReshape(), (x.name,), flat.name))
        weight, bias, scale, y = weighted(flat, (3, flat.shape[0]), (3,), "logits")
        op = QFullyConnected(weight, bias, scale, flat.qparams.zero_point,
                             requant(flat, y, 3, scale, False))
        nodes.append(QNode("fc", op, (flat.name,), y.name))
        x = y
    return QGraph("fused", tuple(nodes), tuple(tensors), "input", x.name, rounding)
