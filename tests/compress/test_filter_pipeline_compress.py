"""Filter pruning as a compress stage: fine-tuned, followed by Deep
Compression, saved and rebuilt from the model code, deployed bit-exact."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from compact_models import FireNet, ResidualNet, ShuffleUnit, separable_net
from edgegen.compress import FilterPruneSpec, compress, default_spec
from edgegen.compress.artifact import artifact_of, load_compressed, save_compressed
from edgegen.compress.filter_prune import filter_groups, prune_filters
from edgegen.errors import UserError
from edgegen.jobs.deploy import VerifyOptions, deploy
from edgegen.jobs.lower import StorageChoice
from edgegen.jobs.quantize import QuantizeOptions
from edgegen.zoo import models
from edgegen.zoo.train import evaluate, train

SAMPLES = 1000  # training samples per epoch: a second or two
IMAGE = torch.zeros(1, 1, 28, 28)
QUIET = QuantizeOptions(calib_samples=200)
VERIFY = VerifyOptions(test_samples=200, random_samples=100)


def _parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def compressed(fashion):
    torch.manual_seed(0)
    model = ResidualNet()
    train(model, fashion, epochs=2, progress=False, max_train_samples=3 * SAMPLES, lr=3e-3)
    model.eval()
    trained = []  # the parameter count of each model handed to train_fn

    def train_fn(m, epochs):
        trained.append(_parameters(m))
        train(m, fashion, epochs=epochs, progress=False, max_train_samples=SAMPLES, lr=1e-3)

    def eval_fn(m):
        return evaluate(m, fashion, limit=300)

    spec = default_spec(model, sparsity=0.5, conv_bits=6, fc_bits=5, prune_steps=1,
                        retrain_epochs=1, finetune_epochs=1)
    spec = replace(spec, filters=FilterPruneSpec(ratios={"side": 0.25, "conv1": 0.5}, finetune_epochs=1))
    result = compress(model, spec, train_fn=train_fn, eval_fn=eval_fn, progress=False,
                      log=lambda *_: None, example_input=IMAGE)
    return model, result, trained


def test_filter_pruning_runs_first_and_is_fine_tuned(compressed):
    model, result, trained = compressed
    assert list(result.stage_accuracy) == ["baseline", "filters", "filter-ft", "prune", "share",
                                           "finetune", "snap"]
    kept = result.filters.as_dict()
    assert [len(kept[n]) for n in ("stem", "conv1", "conv2", "side")] == [6, 4, 6, 6]
    assert kept["stem"] == kept["conv2"] == kept["side"]  # one add group
    # every retraining, the filter fine-tuning first, trains the smaller model
    assert len(trained) == 3 and all(count < _parameters(model) for count in trained)
    accuracy = result.stage_accuracy
    assert accuracy["filter-ft"] > accuracy["filters"] + 0.1  # fine-tuning wins back what pruning lost
    assert "Filters (output channels) left after filter pruning: stem 6, conv1 4" in result.summary()


def test_deep_compression_applies_to_the_smaller_layers(compressed):
    _, result, _ = compressed
    modules = dict(result.model.named_modules())
    assert result.layer("conv1").weight_shape == (4, 6, 3, 3)
    for layer in result.layers:
        weight = modules[layer.name].weight.detach().numpy()
        assert weight.shape == layer.weight_shape
        np.testing.assert_array_equal(weight != 0, layer.mask)
        assert abs(layer.sparsity - 0.5) < 0.01
        if layer.bits is not None:
            np.testing.assert_array_equal(weight, layer.shared_weight())
    assert [layer.name for layer in result.layers if layer.bits] == ["stem", "conv1", "conv2", "side", "fc"]


def test_batchnorm_of_shared_convolutions_is_folded_before_sharing(compressed):
    _, result, _ = compressed
    assert result.folds == (("conv1", "bn1"), ("conv2", "bn2"))
    assert isinstance(result.model.bn1, nn.Identity) and isinstance(result.model.bn2, nn.Identity)
    assert result.model.conv1.bias is not None
    assert "BatchNorm folded before weight sharing: bn1 into conv1, bn2 into conv2" in result.summary()


@pytest.fixture(scope="module")
def reloaded(compressed, tmp_path_factory):
    """The saved artifact, loaded into a fresh ResidualNet as the CLI does."""
    _, result, _ = compressed
    path = tmp_path_factory.mktemp("artifact") / "c.npz"
    save_compressed(path, artifact_of(result, {"factory": "compact_models:ResidualNet"}, {}))
    artifact = load_compressed(path)
    model = artifact.shaped_model(ResidualNet())
    model.load_state_dict(artifact.state_dict)
    return artifact, model.eval()


def test_the_artifact_rebuilds_the_pruned_model_from_the_model_code(compressed, reloaded):
    _, result, _ = compressed
    artifact, model = reloaded
    assert artifact.filters == result.filters and artifact.folds == result.folds
    images = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(images), result.model(images))


@pytest.mark.parametrize("storage", ["dense", "codebook", "sparse", "huffman"])
def test_pruned_and_compressed_deploys_bit_exact(reloaded, storage, fashion, tmp_path):
    artifact, model = reloaded
    outcome = deploy(model, "residual_pruned", fashion, tmp_path / "out", quantize_options=QUIET,
                     verify_options=VERIFY, weight_grids=artifact.weight_grids(),
                     storage=StorageChoice.from_options(storage, "balanced"), log=lambda *_: None)
    assert outcome.comparison.bit_exact, outcome.comparison.line("host")


def _save_edited(path, result, edit):
    """Save ``result`` as an artifact at ``path`` with ``edit(header)`` applied."""
    save_compressed(path, artifact_of(result, {"zoo": "lenet5"}, {}))
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes())
    edit(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)


def test_damaged_kept_filters_are_refused(compressed, tmp_path):
    _, result, _ = compressed
    path = tmp_path / "c.npz"

    def drop_one(header):
        header["filters"]["layers"][0]["kept"] = header["filters"]["layers"][0]["kept"][:-1]

    _save_edited(path, result, drop_one)
    with pytest.raises(UserError, match=r"corrupt compressed model: filters.layers\[0\] \('stem'\): "
                                        "'kept' must list its 6 kept channels"):
        load_compressed(path)


@pytest.mark.parametrize("edit, message", [
    (lambda folds: folds.append(["conv9", "bn9"]), r"folds\[2\]: convolution 'conv9' needs its weight and bias"),
    (lambda folds: folds.append(["conv1", "bn3"]), r"'folds' names a module twice"),
    (lambda folds: folds[0].pop(), r"folds\[0\] must be \[CONV, BATCHNORM\]"),
    (lambda folds: folds.__setitem__(0, ["conv1", "stem"]), r"folds\[0\]: BatchNorm 'stem' is folded but"),
])
def test_damaged_folds_are_refused(compressed, tmp_path, edit, message):
    _, result, _ = compressed
    path = tmp_path / "c.npz"
    _save_edited(path, result, lambda header: edit(header["folds"]))
    with pytest.raises(UserError, match="corrupt compressed model: " + message):
        load_compressed(path)


def test_a_fold_that_does_not_fit_the_model_code_is_refused(reloaded):
    artifact, _ = reloaded
    for folds, reason in [((("conv1", "bn2"),), r"the model has no such Conv2d \(Linear\) followed"),
                          ((("conv2", "bn1"),), "the model has no such Conv2d"),  # counts differ
                          ((("side", "bn2"),), "in this model code the BatchNorm does not directly follow")]:
        moved = replace(artifact, folds=folds)
        with pytest.raises(UserError, match=f"cannot fold BatchNorm '{folds[0][1]}' into layer "
                                            f"'{folds[0][0]}': {reason}"):
            moved.shaped_model(ResidualNet())


@pytest.mark.parametrize("factory", [separable_net, ResidualNet, ShuffleUnit, FireNet, models.lenet5])
def test_filter_pruned_models_deploy_bit_exact(factory, fashion, tmp_path):
    torch.manual_seed(4)
    model = factory().eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            with torch.no_grad():
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    ratios = {group.name: 0.5 for group in filter_groups(model, IMAGE)}
    pruned = prune_filters(model, IMAGE, ratios=ratios).model
    assert _parameters(pruned) < _parameters(model)
    outcome = deploy(pruned, "pruned", fashion, tmp_path / "out", quantize_options=QUIET,
                     verify_options=VERIFY, log=lambda *_: None)
    assert outcome.comparison.bit_exact, outcome.comparison.line("host")


def test_filter_pruning_needs_an_example_input():
    spec = replace(default_spec(models.lenet5()), filters=FilterPruneSpec(params=0.5))
    with pytest.raises(ValueError, match="example_input"):
        compress(models.lenet5(), spec, train_fn=lambda m, e: None, eval_fn=lambda m: 0.0,
                 progress=False, log=lambda *_: None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 900) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(["filters", "input_shape", "layers", "layer", "kept", "name"]),
       value=json_values)
def test_any_damage_to_the_kept_filters_is_a_clear_error(compressed, tmp_path, where, value):
    _, result, _ = compressed
    path = tmp_path / "c.npz"

    def damage(header):
        filters = header["filters"]
        if where == "filters":
            header["filters"] = value
        elif where in ("input_shape", "layers"):
            filters[where] = value
        elif where == "layer":
            filters["layers"][0] = value
        else:
            filters["layers"][0][where] = value

    _save_edited(path, result, damage)
    try:
        artifact = load_compressed(path)
    except UserError as error:
        assert "corrupt" in str(error)
        return
    try:  # what loads is refused when applied, or the weights do not fit (the CLI says so)
        model = artifact.shaped_model(ResidualNet())
        model.load_state_dict(artifact.state_dict)
    except (UserError, RuntimeError):
        return
    assert artifact.filters == result.filters  # or the damage changed nothing that matters
