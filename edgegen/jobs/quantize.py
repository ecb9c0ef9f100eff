"""Import and quantize a model, calibrated on its data set: the first steps
of every job (deploy, compress's measurement, build).

import (``frontend``) -> quantize (``quantize``, calibration samples drawn
from the training set) -> the same validation a saved QGraph gets on load.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn as nn

from edgegen.data.datasets import Dataset
from edgegen.errors import UserError
from edgegen.frontend.limits import DEFAULT_MAX_MODEL_BYTES, check_graph_size
from edgegen.frontend.torch_import import import_model
from edgegen.ir import QGraph, Rounding
from edgegen.quantize.calibrate import CalibrationSpec
from edgegen.quantize.quantize import quantize
from edgegen.quantize.validate import validate_qgraph
from edgegen.reference.float_model import nchw_to_nhwc
from edgegen.reference.golden import quantize_input


@dataclass(frozen=True)
class QuantizeOptions:
    # An input_range here (--input-range) overrides the data's own
    # (Dataset.input_range: pixels are [0, 1]); with neither, calibration measures it.
    calibration: CalibrationSpec = CalibrationSpec()
    calib_samples: int = 1000
    rounding: Rounding = Rounding.DOUBLE
    seed: int = 0
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES  # see edgegen.frontend.limits
    drop_softmax: bool = False  # leave out a final softmax (see import_model)


def model_input_shape(dataset: Dataset) -> tuple[int, ...]:
    """The shape of a batch of one, as the PyTorch model takes it."""
    return (1,) + dataset.sample_shape


def dataset_inputs(dataset: Dataset, inputs: np.ndarray) -> np.ndarray:
    """A batch of ``dataset``'s inputs as the float NHWC (or (N, F)) batch the graphs take."""
    return nchw_to_nhwc(dataset.floats(inputs))


def int8_inputs(qgraph: QGraph, dataset: Dataset, inputs: np.ndarray) -> np.ndarray:
    """A batch of ``dataset``'s inputs quantized as ``qgraph``'s int8 input:
    what the golden model and the C take (pixels become exactly pixel - 128)."""
    quantized = quantize_input(qgraph, dataset_inputs(dataset, inputs))
    return quantized.reshape((len(quantized),) + tuple(qgraph.tensor(qgraph.input).shape))


def calibration_spec(options: QuantizeOptions, dataset: Dataset) -> CalibrationSpec:
    """The options' calibration, with the data's input range unless the options fix one."""
    if options.calibration.input_range is not None:
        return options.calibration
    return replace(options.calibration, input_range=dataset.input_range)


def quantize_model(model: nn.Module, name: str, dataset: Dataset, options: QuantizeOptions,
                   weight_grids: dict | None = None) -> QGraph:
    """Import and quantize; ``weight_grids`` fix the int8 grid and codebook of layers
    compressed with shared weights (see ``quantize.quantize``)."""
    graph = import_model(model, torch.zeros(model_input_shape(dataset)), name,
                         drop_final_softmax=options.drop_softmax)
    check_graph_size(graph, options.max_model_bytes)
    rng = np.random.default_rng(options.seed)
    pool = dataset.calibration_inputs
    count = min(options.calib_samples, len(pool))
    pick = np.sort(rng.choice(len(pool), size=count, replace=False))
    samples = dataset_inputs(dataset, pool[pick])
    qgraph = quantize(graph, samples, calibration_spec(options, dataset), options.rounding,
                      weight_grids)
    qgraph.metadata.update({"dataset": dataset.name, "calibration_seed": options.seed})
    try:  # what is saved must load again: the same checks as model.qgraph.npz gets
        validate_qgraph(qgraph)
    except ValueError as exc:
        raise UserError(f"model {name} cannot be deployed: {exc}") from None
    return qgraph
