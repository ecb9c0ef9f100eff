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
