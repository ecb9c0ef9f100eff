"""Weight sharing: k-means, the reserved zero slot, centroid gradients, the int8 grid."""

import numpy as np
import pytest
import torch
from torch import nn

from edgegen.compress.prune import apply_mask, magnitude_mask
from edgegen.compress.share import (
    FILLER_SLOT,
    CodebookWeight,
    attach_codebook,
    cluster_layer,
    codebook_parameter,
    codebook_parameters,
    finetune_centroids,
    initial_centroids,
    kmeans_1d,
    remove_sharing,
    share_weights,
    shared_layers,
    snap_codebook,
    snap_codebooks,
)
from edgegen.compress.spec import KMeansInit, PruneSpec, ShareSpec
from edgegen.encode import DEFAULT_FILLER_INDEX, decode_layer, encode_layer
from edgegen.reference.numerics import round_half_away


def _values(n=2000, seed=0):
    return np.random.default_rng(seed).normal(0, 0.05, n)


def test_filler_slot_is_edgegen_encode_filler_index():
    assert FILLER_SLOT == DEFAULT_FILLER_INDEX == 0


def test_linear_init_spaces_centroids_evenly_between_min_and_max():
    values = _values()
    start = initial_centroids(values, 31, KMeansInit.LINEAR, seed=0)
    assert start[0] == values.min() and start[-1] == values.max()
    np.testing.assert_allclose(np.diff(start), (values.max() - values.min()) / 30, rtol=1e-12)


def test_density_init_follows_the_cdf():
    values = _values()
    start = initial_centroids(values, 5, KMeansInit.DENSITY, seed=0)
    np.testing.assert_array_equal(start, np.quantile(values, [0, 0.25, 0.5, 0.75, 1]))


@pytest.mark.parametrize("init", list(KMeansInit))
def test_kmeans_is_deterministic_sorted_and_converged(init):
    values = _values()
    centroids, labels = kmeans_1d(values, 15, init=init, seed=7)
    again_centroids, again_labels = kmeans_1d(values, 15, init=init, seed=7)
    np.testing.assert_array_equal(centroids, again_centroids)
    np.testing.assert_array_equal(labels, again_labels)
    assert np.all(np.diff(centroids) >= 0)
    # converged: each value sits at its nearest centroid, each used centroid is its cluster's mean
    distance = np.abs(values[:, None] - centroids[None, :])
    assert np.all(distance[np.arange(values.size), labels] <= distance.min(axis=1))
    for k in np.unique(labels):
        np.testing.assert_allclose(centroids[k], values[labels == k].mean(), rtol=1e-12)


def test_random_init_depends_on_the_seed():
    values = _values()
    first = initial_centroids(values, 8, KMeansInit.RANDOM, seed=1)
    second = initial_centroids(values, 8, KMeansInit.RANDOM, seed=2)
    assert not np.array_equal(first, second)
    assert np.isin(first, values).all()


def _pruned_linear(seed=0, sparsity=0.6):
    torch.manual_seed(seed)
    layer = nn.Linear(12, 8)
    apply_mask(layer, magnitude_mask(layer.weight, PruneSpec(sparsity=sparsity)))
    return layer


def test_cluster_layer_reserves_slot_zero_for_pruned_weights():
    layer = _pruned_linear()
    mask = layer.parametrizations.weight[0].mask
    shared = cluster_layer(layer.weight, mask, ShareSpec(bits=3))
    assert shared.codebook.shape == (8,) and shared.codebook[0] == 0.0
    assert (shared.indices[~mask] == 0).all()
    assert (shared.indices[mask] >= 1).all()
    # the encoder's filler contract holds: it accepts the layer and gives the indices back
    encoded = encode_layer(mask.numpy(), shared.indices.numpy(), index_bits=3, gap_bits=2)
    decoded_mask, decoded_indices = decode_layer(encoded)
    np.testing.assert_array_equal(decoded_mask, mask.numpy())
    np.testing.assert_array_equal(decoded_indices, shared.indices.numpy())


def test_centroid_gradient_is_the_sum_of_its_weights_gradients():
    torch.manual_seed(0)
    layer = nn.Linear(30, 20).double()
    mask = magnitude_mask(layer.weight, PruneSpec(sparsity=0.5))
    shared = cluster_layer(layer.weight, mask, ShareSpec(bits=3))
    x = torch.randn(7, 30, dtype=torch.float64)

    # The plain model: the shared weight as a leaf, so its gradient is per weight.
    weight = shared.weight().double().requires_grad_()
    (nn.functional.linear(x, weight, layer.bias) ** 2).sum().backward()
    expected = torch.zeros(8, dtype=torch.float64)
    for slot in range(1, 8):
        expected[slot] = weight.grad[(shared.indices == slot) & mask].sum()

    attach_codebook(layer, shared)
    (layer(x) ** 2).sum().backward()
    grad = codebook_parameter(layer).grad
    assert grad[0] == 0.0
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-15)


def _tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 4))


def _train_fn(make_optimizer):
    generator = torch.Generator().manual_seed(3)
    x, y = torch.rand(32, 16, generator=generator), torch.randint(0, 4, (32,), generator=generator)

    def train_fn(model, epochs):
        optimizer = make_optimizer(model.parameters())
        for _ in range(10 * epochs):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()

    return train_fn


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01),
        lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    ],
    ids=["sgd-momentum-decay", "adamw"],
)
def test_finetuning_keeps_slot_zero_and_pruned_weights_at_zero(make_optimizer):
    model = _tiny_net()
    for layer in (model[1], model[3]):
        apply_mask(layer, magnitude_mask(layer.weight, PruneSpec(sparsity=0.5)))
    before = share_weights(model, {"1": ShareSpec(bits=2), "3": ShareSpec(bits=3)}, seed=0)
    finetune_centroids(model, _train_fn(make_optimizer), epochs=2)
    after = shared_layers(model)
    assert codebook_parameters(model) == [codebook_parameter(model[1]), codebook_parameter(model[3])]
    for name in ("1", "3"):
        assert after[name].codebook[0] == 0.0
        assert not torch.equal(after[name].codebook, before[name].codebook)  # it did train
        assert torch.equal(after[name].indices, before[name].indices)
        assert (after[name].indices[after[name].mask] != 0).all()
        weight = dict(model.named_modules())[name].weight
        assert (weight[~after[name].mask] == 0).all()
        assert len(torch.unique(weight[after[name].mask])) <= (1 << after[name].bits) - 1


def test_snapped_weights_are_exactly_scale_times_q():
    model = _tiny_net()
    for layer in (model[1], model[3]):
        apply_mask(layer, magnitude_mask(layer.weight, PruneSpec(sparsity=0.3)))
    share_weights(model, {"1": ShareSpec(bits=4), "3": ShareSpec(bits=8)}, seed=0)
    finetune_centroids(model, _train_fn(lambda p: torch.optim.Adam(p, lr=0.01)), epochs=1)
    shared = shared_layers(model)
    snapped = snap_codebooks(model)
    remove_sharing(model)
    for name, layer in (("1", model[1]), ("3", model[3])):
        s, q = snapped[name].scale, snapped[name].q
        indices, mask = shared[name].indices.numpy(), shared[name].mask.numpy()
        weight = layer.weight.detach().numpy()
        assert type(layer.weight) is nn.Parameter
        assert q.dtype == np.int8 and q[0] == 0 and np.abs(q).max() == 127
        assert q.min() >= -127
        assert np.float32(s) == s > 0
        np.testing.assert_array_equal(weight, np.float32(s) * q.astype(np.float32)[indices])
        assert (weight[mask] != 0).all() and (weight[~mask] == 0).all()
        # edgegen's symmetric int8 rounding, given s as the per-tensor scale, gives q back
        np.testing.assert_array_equal(round_half_away(weight.astype(np.float64) / s), q[indices])
        # and so does recomputing the per-tensor scale from the weights
        recomputed = np.abs(weight).astype(np.float64).max() / 127
        np.testing.assert_array_equal(round_half_away(weight / recomputed), q[indices])


def test_snap_keeps_small_used_centroids_off_zero_and_ignores_unused_slots():
    codebook = torch.tensor([0.0, -1.0, 0.001, 0.5, 99.0])
    used = torch.tensor([False, True, True, True, False])
    snapped = snap_codebook(codebook, used)
    np.testing.assert_array_equal(snapped.q, [0, -127, 1, 64, 0])
    assert snapped.scale == float(np.float32(1.0 / 127))


def test_codebook_weight_right_inverse_recovers_the_codebook():
    indices = torch.tensor([[1, 2, 0], [2, 1, 3]])
    mask = indices > 0
    parametrization = CodebookWeight(indices, mask, bits=2)
    codebook = torch.tensor([0.0, 0.25, -1.5, 3.0])
    torch.testing.assert_close(parametrization.right_inverse(parametrization(codebook)), codebook, rtol=0, atol=0)


def test_sharing_a_layer_that_holds_a_gradient_still_trains():
    layer = _pruned_linear()
    x = torch.randn(4, 12)
    layer(x).sum().backward()  # the masked weight's gradient, of the weight's shape
    share_weights(layer, {"": ShareSpec(bits=2)})
    layer(x).sum().backward()
    assert codebook_parameter(layer).grad.shape == (4,)
    remove_sharing(layer)
    assert layer.weight.grad is None and layer.weight.shape == (8, 12)
