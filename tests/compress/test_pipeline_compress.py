"""compress() end to end on LeNet-300-100 with a few hundred Fashion-MNIST samples."""

import numpy as np
import pytest
import torch

from edgegen.compress import METHODS, PruneSpec, ShareSpec, compress, default_spec
from edgegen.compress.prune import pruned_count
from edgegen.zoo.models import lenet300
from edgegen.zoo.train import evaluate, train

SPARSITY = {"fc1": 0.92, "fc2": 0.91, "fc3": 0.74}  # Han et al. 2015 for LeNet-300-100
SAMPLES = 2000  # training samples: enough to learn something in a second


@pytest.fixture(scope="module")
def compressed(fashion):
    torch.manual_seed(0)
    model = lenet300()
    train(model, fashion, epochs=3, progress=False, max_train_samples=SAMPLES)
    original = {k: v.clone() for k, v in model.state_dict().items()}

    def train_fn(m, epochs):
        train(m, fashion, epochs=epochs, progress=False, max_train_samples=SAMPLES)

    def eval_fn(m):
        return evaluate(m, fashion, limit=500)

    spec = default_spec(model, sparsity=SPARSITY, fc_bits=4, prune_steps=2, retrain_epochs=1, finetune_epochs=1)
    lines = []
    result = compress(model, spec, train_fn=train_fn, eval_fn=eval_fn, progress=False, log=lines.append)
    return model, original, result, lines


def test_registry_maps_each_spec_type_to_its_stage():
    assert list(METHODS) == [PruneSpec, ShareSpec]


def test_compress_leaves_the_callers_model_alone(compressed):
    model, original, _, _ = compressed
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())


def test_compress_reaches_the_requested_sparsity_and_codebook_size(compressed):
    _, _, result, _ = compressed
    modules = dict(result.model.named_modules())
    assert [layer.name for layer in result.layers] == ["fc1", "fc2", "fc3"]
    for layer in result.layers:
        weight = modules[layer.name].weight.detach().numpy()
        assert layer.kind == "fc" and layer.weight_shape == weight.shape and layer.bits == 4
        assert np.count_nonzero(~layer.mask) == pruned_count(layer.mask.size, SPARSITY[layer.name])
        np.testing.assert_array_equal(weight != 0, layer.mask)
        assert len(np.unique(weight[weight != 0])) <= 2**layer.bits - 1
        np.testing.assert_array_equal(weight, layer.shared_weight())
        assert layer.codebook_q.dtype == np.int8 and layer.codebook_q.shape == (16,)
        assert layer.codebook_q[0] == 0 and (layer.indices[~layer.mask] == 0).all()
        assert (layer.indices[layer.mask] > 0).all()
    assert all(type(p) is torch.nn.Parameter for p in result.model.parameters())
    assert set(result.model.state_dict()) == {f"{n}.{p}" for n in SPARSITY for p in ("weight", "bias")}


def test_compress_reports_every_stage(compressed):
    _, _, result, lines = compressed
    stages = ["baseline", "prune", "share", "finetune", "snap"]
    assert list(result.stage_accuracy) == stages and list(result.stage_seconds) == stages
    assert len(lines) == 5 and "fc1 92.0%" in lines[-1]
    accuracy = result.stage_accuracy
    assert accuracy["baseline"] > 0.6
    assert accuracy["snap"] > accuracy["baseline"] - 0.1  # retraining kept most of it
    assert "| fc1 | fc | 235200 | 92.0% | 4 |" in result.summary()
