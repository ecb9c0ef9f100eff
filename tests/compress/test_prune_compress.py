"""Magnitude pruning: exact masks, masks enforced through training, iterative rounds."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from edgegen.compress.prune import (
    apply_mask,
    iterative_prune,
    magnitude_mask,
    mask_of,
    masks_of,
    pruned_count,
    remove_masks,
    step_sparsity,
)
from edgegen.compress.spec import PruneSpec


def _tiny_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def _batch(seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(16, 1, 8, 8, generator=generator), torch.randint(0, 5, (16,), generator=generator)


@pytest.mark.parametrize("quality", [0.0, 0.3, 1.0, 2.5])
def test_quality_keeps_exactly_the_weights_above_threshold(quality):
    weight = torch.randn(40, 30, generator=torch.Generator().manual_seed(3))
    values = weight.numpy().astype(np.float64)
    threshold = quality * values.std(ddof=1)
    mask = magnitude_mask(weight, PruneSpec(quality=quality))
    np.testing.assert_array_equal(mask.numpy(), np.abs(values) > threshold)


def test_quality_prunes_a_weight_exactly_at_the_threshold():
    weight = torch.tensor([[-1.0, 0.0, 1.0]])  # unbiased std exactly 1
    assert not magnitude_mask(weight, PruneSpec(quality=1.0)).any()
    np.testing.assert_array_equal(magnitude_mask(weight, PruneSpec(quality=0.5)).numpy(), [[True, False, True]])


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 12),
    columns=st.integers(1, 12),
    sparsity=st.floats(0, 0.99),
    seed=st.integers(0, 1000),
)
def test_target_sparsity_prunes_exactly_the_smallest(rows, columns, sparsity, seed):
    weight = torch.randn(rows, columns, generator=torch.Generator().manual_seed(seed))
    mask = magnitude_mask(weight, PruneSpec(sparsity=sparsity))
    n = rows * columns
    assert n - int(mask.sum()) == pruned_count(n, sparsity) == int(np.floor(sparsity * n + 0.5))
    magnitude = weight.abs()
    if 0 < mask.sum() < n:
        assert magnitude[~mask].max() <= magnitude[mask].min()


def test_target_sparsity_breaks_ties_in_row_major_order():
    weight = torch.tensor([[0.5, -0.5, 0.5], [0.5, 0.1, -0.5]])
    mask = magnitude_mask(weight, PruneSpec(sparsity=0.5))
    # 0.1 first, then the two earliest of the tied 0.5s
    np.testing.assert_array_equal(mask.numpy(), [[False, False, True], [True, False, True]])


def test_keep_makes_masks_nested():
    weight = torch.randn(20, 20, generator=torch.Generator().manual_seed(0))
    keep = torch.rand(20, 20, generator=torch.Generator().manual_seed(1)) > 0.3
    mask = magnitude_mask(weight, PruneSpec(sparsity=0.6), keep=keep)
    assert not (mask & ~keep).any()
    assert int((~mask).sum()) == pruned_count(400, 0.6)


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)


def _adam(model):
    return torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.01)


def _adamw(model):
    return torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)


@pytest.mark.parametrize("make_optimizer", [_sgd, _adam, _adamw])
def test_masks_survive_training(make_optimizer):
    model = _tiny_net()
    layers = {"0": model[0], "3": model[3]}
    # An optimizer that already holds momentum from before pruning: the hardest case.
    optimizer = make_optimizer(model)
    x, y = _batch()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    optimizer.zero_grad()
    masks = {name: magnitude_mask(layer.weight, PruneSpec(sparsity=0.7)) for name, layer in layers.items()}
    for name, layer in layers.items():
        apply_mask(layer, masks[name])
    optimizer = make_optimizer(model)  # rebuilt over the parametrized model, as train_fn does
    for _ in range(5):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        for name, layer in layers.items():
            grad = layer.parametrizations.weight.original.grad
            assert (grad[~masks[name]] == 0).all()
        optimizer.step()
        for name, layer in layers.items():
            assert (layer.weight[~masks[name]] == 0).all()
    trained = {name: layer.weight.detach().clone() for name, layer in layers.items()}
    remove_masks(model)
    for name, layer in layers.items():
        assert type(layer.weight) is nn.Parameter
        assert (layer.weight[~masks[name]] == 0).all()
        assert not torch.signbit(layer.weight[~masks[name]]).any()  # +0.0, not -0.0
        assert torch.equal(layer.weight.detach(), trained[name])
        assert (layer.weight[masks[name]] != 0).all()


def test_apply_mask_again_replaces_the_mask():
    layer = nn.Linear(6, 4)
    first = magnitude_mask(layer.weight, PruneSpec(sparsity=0.25))
    apply_mask(layer, first)
    second = magnitude_mask(layer.weight, PruneSpec(sparsity=0.5), keep=first)
    apply_mask(layer, second)
    assert torch.equal(mask_of(layer), second)
    assert len(layer.parametrizations.weight) == 1
    with pytest.raises(ValueError, match="bool tensor of shape"):
        apply_mask(layer, torch.ones(4, 7, dtype=torch.bool))


def test_step_sparsity_rises_to_the_target():
    fractions = [step_sparsity(0.92, step, 4) for step in range(1, 5)]
    assert fractions == sorted(fractions) and fractions[-1] == 0.92
    # kept fraction shrinks by the same factor each round
    kept = [1 - f for f in [0.0] + fractions]
    ratios = [b / a for a, b in zip(kept, kept[1:])]
    assert max(ratios) - min(ratios) < 1e-9


def test_iterative_prune_reaches_the_target_in_nested_rounds():
    model = _tiny_net()
    x, y = _batch()
    seen = []

    def train_fn(m, epochs):
        seen.append({name: mask.clone() for name, mask in masks_of(m).items()})
        optimizer = _sgd(m)
        for _ in range(epochs):
            optimizer.zero_grad()
            nn.functional.cross_entropy(m(x), y).backward()
            optimizer.step()

    specs = {"0": PruneSpec(sparsity=0.5), "3": PruneSpec(sparsity=0.9)}
    masks = iterative_prune(model, specs, train_fn, steps=3, epochs_per_step=2, progress=False)
    assert len(seen) == 3
    for earlier, later in zip(seen, seen[1:] + [masks]):
        for name in specs:
            assert not (later[name] & ~earlier[name]).any()
    assert int((~masks["0"]).sum()) == pruned_count(model[0].weight.numel(), 0.5)
    assert int((~masks["3"]).sum()) == pruned_count(model[3].weight.numel(), 0.9)
    assert (model[3].weight[~masks["3"]] == 0).all()


def test_one_shot_iterative_prune_with_quality_is_the_threshold_mask():
    model = _tiny_net()
    expected = magnitude_mask(model[3].weight, PruneSpec(quality=0.8))
    masks = iterative_prune(model, {"3": PruneSpec(quality=0.8)}, None, steps=1, progress=False)
    assert torch.equal(masks["3"], expected)


def test_retraining_needs_a_train_fn():
    with pytest.raises(ValueError, match="train_fn"):
        iterative_prune(_tiny_net(), {"3": PruneSpec(sparsity=0.5)}, None, steps=2, epochs_per_step=1)
