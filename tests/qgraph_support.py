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

    torch.manual_seed(seed)
    model = ZOO[name]().eval()
    graph = import_model(model, torch.zeros(1, 1, 28, 28), name)
    x = np.random.default_rng(seed).random((8, 28, 28, 1))
    return quantize(graph, x, CalibrationSpec(input_range=(0.0, 1.0)))


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
