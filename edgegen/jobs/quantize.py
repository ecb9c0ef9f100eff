"""Import and quantize a model, calibrated on its data set: the first steps
of every job (deploy, compress's measurement, build).

import (``frontend``) -> quantize (``quantize``, calibration samples drawn
from the training set) -> the same validation a saved QGraph gets on load.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from edgegen.data.datasets import Dataset, images_to_tensor
from edgegen.errors import UserError
from edgegen.frontend.limits import DEFAULT_MAX_MODEL_BYTES, check_graph_size
from edgegen.frontend.torch_import import import_model
from edgegen.ir import QGraph, Rounding
from edgegen.quantize.calibrate import CalibrationSpec
from edgegen.quantize.quantize import quantize
from edgegen.quantize.validate import validate_qgraph
from edgegen.reference.float_model import nchw_to_nhwc

IMAGE_INPUT_RANGE = (0.0, 1.0)  # images are pixel / 255: int8 input = pixel - 128


@dataclass(frozen=True)
class QuantizeOptions:
    calibration: CalibrationSpec = CalibrationSpec(input_range=IMAGE_INPUT_RANGE)
    calib_samples: int = 1000
    rounding: Rounding = Rounding.DOUBLE
    seed: int = 0
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES  # see edgegen.frontend.limits
    drop_softmax: bool = False  # leave out a final softmax (see import_model)


def model_input_shape(dataset: Dataset) -> tuple[int, ...]:
    return (1, 1) + tuple(dataset.test_images.shape[1:])


def dataset_inputs(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W) -> the float NHWC batch the graphs take."""
    return nchw_to_nhwc(images_to_tensor(images).numpy())


def quantize_model(model: nn.Module, name: str, dataset: Dataset, options: QuantizeOptions,
                   weight_grids: dict | None = None) -> QGraph:
    """Import and quantize; ``weight_grids`` fix the int8 grid and codebook of layers
    compressed with shared weights (see ``quantize.quantize``)."""
    graph = import_model(model, torch.zeros(model_input_shape(dataset)), name,
                         drop_final_softmax=options.drop_softmax)
    check_graph_size(graph, options.max_model_bytes)
    rng = np.random.default_rng(options.seed)
    count = min(options.calib_samples, len(dataset.train_images))
    pick = np.sort(rng.choice(len(dataset.train_images), size=count, replace=False))
    samples = dataset_inputs(dataset.train_images[pick])
    qgraph = quantize(graph, samples, options.calibration, options.rounding, weight_grids)
    qgraph.metadata.update({"dataset": dataset.name, "calibration_seed": options.seed})
    try:  # what is saved must load again: the same checks as model.qgraph.npz gets
        validate_qgraph(qgraph)
    except ValueError as exc:
        raise UserError(f"model {name} cannot be deployed: {exc}") from None
    return qgraph
