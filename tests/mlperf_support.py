"""The MLPerf Tiny networks compressed without retraining, for the tests of
compression and of the boards."""

from dataclasses import replace

import torch

from edgegen.compress.pipeline import compress
from edgegen.compress.spec import FilterPruneSpec, default_spec
from edgegen.data.datasets import synthetic_dataset
from edgegen.jobs.compress import measure
from edgegen.jobs.quantize import QuantizeOptions
from edgegen.zoo.mlperf_tiny import INPUT_SHAPES, MLPERF_TINY, random_weights


def _no_training(model, epochs):
    raise AssertionError("these specs do not retrain")


def compressed_qgraph(name: str, filters: FilterPruneSpec | None = None):
    """(compression result, int8 graph, data) of ``name`` with random
    weights, half of every layer pruned, 4-bit shared weights (and
    ``filters``), quantized on synthetic data."""
    model = random_weights(MLPERF_TINY[name](), seed=0)
    spec = default_spec(model, sparsity=0.5, conv_bits=4, fc_bits=4, prune_steps=1,
                        retrain_epochs=0, finetune_epochs=0)
    result = compress(model, replace(spec, filters=filters), train_fn=_no_training,
                      eval_fn=lambda _: None, progress=False, log=lambda _: None,
                      example_input=torch.zeros((1,) + INPUT_SHAPES[name]))
    data = synthetic_dataset(INPUT_SHAPES[name], train=32, test=8)
    qgraph, _, accuracy = measure(result, name, data, QuantizeOptions(calib_samples=32))
    assert accuracy is None  # synthetic data has no labels
    return result, qgraph, data
