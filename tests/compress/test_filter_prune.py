"""Filter pruning: channel groups, exact removal of silent filters, L1 ranking,
parameter targets, rebuilding from the kept channels, clear refusals."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from compact_models import FireNet, ResidualNet, ShuffleUnit, separable_net
from edgegen.compress.filter_prune import (
    KeptFilters,
    apply_kept_filters,
    filter_groups,
    prune_filters,
)
from edgegen.compress.prune import pruned_count
from edgegen.errors import UserError
from edgegen.zoo import models
from edgegen.zoo.mlperf_tiny import with_batchnorm_statistics

IMAGE = torch.zeros(1, 1, 28, 28)


class _ShuffleBlock(nn.Module):
    """A channel shuffle into a depthwise 3x3 with BN, a pointwise 1x1, a
    residual add around them (ShuffleNet's unit without its grouped 1x1s)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 12, 3, stride=2, padding=1)
        self.depthwise = nn.Conv2d(12, 12, 3, padding=1, groups=12)
        self.bn = nn.BatchNorm2d(12)
        self.pointwise = nn.Conv2d(12, 12, 1)
        self.fc = nn.Linear(12 * 7 * 7, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        y = self.bn(self.depthwise(F.channel_shuffle(x, 3)))
        x = F.relu(x + self.pointwise(y))
        return self.fc(torch.flatten(F.max_pool2d(x, 2), 1))


def _random(factory, seed=0):
    """A model in eval mode with random weights and BatchNorm statistics
    that are not the identity."""
    torch.manual_seed(seed)
    return with_batchnorm_statistics(factory())


def _silence(model, channels):
    """Make output channels exactly 0: filters and biases of convs, the
    affine of BatchNorms (its output is then 0 whatever it reads)."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, indices in channels.items():
            module = modules[name]
            module.weight[indices] = 0.0
            if module.bias is not None:
                module.bias[indices] = 0.0


def _images(count=8, seed=1):
    return torch.rand(count, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _channels(model):
    return {name: m.weight.shape[0] for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))}


def _assert_same_outputs(original, pruned):
    images = _images()
    with torch.no_grad():
        torch.testing.assert_close(pruned(images), original(images), rtol=1e-5, atol=1e-5)


def _drop(indices, count):
    return tuple(i for i in range(count) if i not in indices)


# --- groups -------------------------------------------------------------------


def test_groups_follow_adds_depthwise_shuffles_and_concats():
    groups = {g.name: g for g in filter_groups(_random(ResidualNet), IMAGE)}
    assert groups["stem"].layers == ("stem", "conv2", "side")  # joined by the two adds
    assert groups["conv1"].layers == ("conv1",)
    assert "fc" not in groups  # feeds the output
    separable = filter_groups(_random(separable_net), IMAGE)
    assert [(g.layers, g.followers) for g in separable] == [(("0", "3"), ("3",)), (("6", "8"), ("8",))]
    (shuffle,) = filter_groups(_random(_ShuffleBlock), IMAGE)
    assert shuffle.layers == ("stem", "depthwise", "pointwise")
    assert shuffle.units == 12 // 3 - 1  # a unit is one position of each of the 3 shuffle groups
    fire = filter_groups(_random(FireNet), IMAGE)
    assert [g.layers for g in fire] == [("stem",), ("squeeze",), ("expand1",), ("expand3",)]
    assert [g.name for g in filter_groups(models.lenet5(), IMAGE)] == ["conv1", "conv2", "fc1"]


# --- exact removal: silent filters go, the outputs stay -------------------------


def test_residual_group_loses_the_same_channels_everywhere():
    model = _random(ResidualNet)
    _silence(model, {"stem": [2, 5], "conv2": [2, 5], "bn2": [2, 5], "side": [2, 5],
                     "conv1": [3], "bn1": [3]})
    pruned = prune_filters(model, IMAGE, ratios={"side": 0.25, "conv1": 0.125})
    kept = _drop({2, 5}, 8)
    assert pruned.kept.as_dict() == {"stem": kept, "conv1": _drop({3}, 8), "conv2": kept, "side": kept}
    assert _channels(pruned.model) == {"stem": 6, "conv1": 7, "bn1": 7, "conv2": 6, "bn2": 6,
                                       "side": 6, "fc": 10}
    assert pruned.model.conv2.in_channels == 7 and pruned.model.side.in_channels == 6
    assert pruned.model.fc.in_features == 6 * 7 * 7
    _assert_same_outputs(model, pruned.model)


def test_flatten_into_linear_loses_the_channel_blocks():
    model = models.lenet5().eval()
    _silence(model, {"conv2": [7]})
    pruned = prune_filters(model, IMAGE, ratios={"conv2": 0.02})
    assert pruned.kept.as_dict() == {"conv2": _drop({7}, 50)}
    columns = [c for c in range(800) if not 7 * 16 <= c < 8 * 16]  # one 4x4 block per channel
    np.testing.assert_array_equal(pruned.model.fc1.weight.detach().numpy(),
                                  model.fc1.weight.detach().numpy()[:, columns])
    _assert_same_outputs(model, pruned.model)


def test_concat_maps_its_channels_to_each_input():
    model = _random(FireNet)
    _silence(model, {"expand3": [2], "squeeze": [0]})
    pruned = prune_filters(model, IMAGE, ratios={"expand3": 1 / 8, "squeeze": 1 / 8})
    assert pruned.kept.as_dict() == {"squeeze": _drop({0}, 8), "expand3": _drop({2}, 8)}
    assert pruned.model.expand1.in_channels == pruned.model.expand3.in_channels == 7
    columns = [c for c in range(16 * 49) if not (8 + 2) * 49 <= c < (8 + 3) * 49]
    np.testing.assert_array_equal(pruned.model.fc.weight.detach().numpy(),
                                  model.fc.weight.detach().numpy()[:, columns])
    _assert_same_outputs(model, pruned.model)


def test_depthwise_layers_and_batchnorms_follow_their_input():
    model = _random(separable_net)
    _silence(model, {"0": [1], "1": [1], "3": [1], "4": [1], "6": [4, 9], "8": [8, 9, 18, 19]})
    pruned = prune_filters(model, IMAGE, ratios={"0": 1 / 8, "6": 2 / 16})
    assert pruned.kept.as_dict() == {"0": _drop({1}, 8), "3": _drop({1}, 8), "6": _drop({4, 9}, 16),
                                     "8": _drop({8, 9, 18, 19}, 32)}
    depthwise, multiplied = pruned.model[3], pruned.model[8]
    assert (depthwise.in_channels, depthwise.out_channels, depthwise.groups) == (7, 7, 7)
    assert (multiplied.in_channels, multiplied.out_channels, multiplied.groups) == (14, 28, 14)
    assert pruned.model[1].num_features == pruned.model[4].num_features == 7
    _assert_same_outputs(model, pruned.model)


def test_a_channel_shuffle_keeps_its_groups_equal():
    model = _random(_ShuffleBlock)
    # shuffle position 1 of each group of 4: channels 1, 5, 9, read by the
    # depthwise layer at 3, 4, 5 (shuffled), added to the pointwise outputs 1, 5, 9
    _silence(model, {"stem": [1, 5, 9], "depthwise": [3, 4, 5], "bn": [3, 4, 5],
                     "pointwise": [1, 5, 9]})
    pruned = prune_filters(model, IMAGE, ratios={"stem": 0.25})
    assert pruned.kept.as_dict() == {"stem": _drop({1, 5, 9}, 12), "depthwise": _drop({3, 4, 5}, 12),
                                     "pointwise": _drop({1, 5, 9}, 12)}
    assert pruned.model.stem.out_channels % 3 == 0
    _assert_same_outputs(model, pruned.model)


class _ViewShuffleNet(nn.Module):
    """A shuffle written out as PyTorch users do, into a grouped convolution."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.fc = nn.Linear(8 * 14 * 14, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        n, c, h, w = x.size()
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        return self.fc(torch.flatten(F.relu(self.grouped(x)), 1))


def test_view_shuffles_and_grouped_convolutions_keep_groups_consistent():
    model = _random(_ViewShuffleNet)
    groups = {g.name: g for g in filter_groups(model, IMAGE)}
    # the grouped conv reads the same local positions in both of its groups,
    # which the shuffle fills from stem channels c, c + 2, c + 4, c + 6
    assert groups["stem"].units == 2 - 1 and groups["grouped"].units == 4 - 1
    _silence(model, {"stem": [1, 3, 5, 7]})  # shuffled to 2, 6, 3, 7: local inputs 2 and 3
    pruned = prune_filters(model, IMAGE, ratios={"stem": 0.5, "grouped": 0.5})
    grouped = pruned.model.grouped
    assert (grouped.in_channels, grouped.out_channels, grouped.groups) == (4, 4, 2)
    assert pruned.kept.as_dict()["stem"] == (0, 2, 4, 6)
    kept_out = pruned.kept.as_dict()["grouped"]
    assert [k // 4 for k in kept_out] == [0, 0, 1, 1]  # two filters from each group
    assert [k % 4 for k in kept_out[:2]] == [k % 4 for k in kept_out[2:]]
    np.testing.assert_array_equal(grouped.weight.detach().numpy(),
                                  model.grouped.weight.detach().numpy()[list(kept_out)][:, [0, 1]])
    with torch.no_grad():
        pruned.model(_images())


# --- ranking and targets ------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), ratio=st.floats(0.0, 0.99))
def test_l1_ranking_removes_the_smallest_norm_filters(seed, ratio):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 12, 3), nn.ReLU(), nn.Conv2d(12, 5, 3), nn.Flatten(),
                          nn.Linear(5 * 4 * 4, 3)).eval()
    pruned = prune_filters(model, torch.zeros(1, 1, 8, 8), ratios={"0": ratio})
    norms = model[0].weight.detach().double().abs().sum(dim=(1, 2, 3)).numpy()
    count = min(11, pruned_count(12, ratio))
    removed = set(np.argsort(norms, kind="stable")[:count].tolist())
    assert pruned.kept.as_dict().get("0", tuple(range(12))) == _drop(removed, 12)
    assert pruned.model[2].in_channels == 12 - count
    np.testing.assert_array_equal(pruned.model[2].weight.detach().numpy(),
                                  model[2].weight.detach().numpy()[:, list(_drop(removed, 12))])


def test_a_parameter_target_is_reached_by_one_ratio():
    model = models.lenet5().eval()
    total = sum(p.numel() for p in model.parameters())
    pruned = prune_filters(model, IMAGE, params=0.5)
    left = sum(p.numel() for p in pruned.model.parameters())
    assert 1 - left / total >= 0.5
    lost = {group.name: count / (group.units + 1) for group, count in pruned.groups}
    assert max(lost.values()) - min(lost.values()) < 0.05  # one ratio, rounded per group
    with pytest.raises(UserError, match="at most"):
        prune_filters(model, IMAGE, params=0.9999)  # ~80 parameters must stay


def test_the_callers_model_is_untouched():
    model = _random(ResidualNet)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    prune_filters(model, IMAGE, ratios={"stem": 0.5})
    assert model.training and model.bn1.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# --- rebuilding from the kept channels -----------------------------------------


@pytest.mark.parametrize("factory", [separable_net, ResidualNet, ShuffleUnit, _ShuffleBlock, FireNet,
                                     _ViewShuffleNet, models.lenet5])
def test_kept_filters_rebuild_the_architecture_from_the_model_code(factory):
    model = _random(factory)
    pruned = prune_filters(model, IMAGE, ratios={g.name: 0.5 for g in filter_groups(model, IMAGE)})
    rebuilt = apply_kept_filters(_random(factory, seed=9), pruned.kept)
    rebuilt.load_state_dict(pruned.model.state_dict())
    images = _images()
    with torch.no_grad():
        assert torch.equal(rebuilt(images), pruned.model(images))


def test_kept_filters_that_split_a_group_are_refused():
    kept = KeptFilters((1, 1, 28, 28), (("stem", _drop({0}, 8)), ("conv2", _drop({1}, 8))))
    with pytest.raises(UserError, match="do not match the model's channel groups"):
        apply_kept_filters(_random(ResidualNet), kept)
    with pytest.raises(UserError, match="do not fit the model"):
        apply_kept_filters(_random(ResidualNet), KeptFilters((1, 1, 28, 28), (("nope", (0,)),)))


# --- refusals -----------------------------------------------------------------


@pytest.mark.parametrize("factory, ratios, message", [
    (models.lenet5, {"fc2": 0.5}, "cannot remove filters of layer 'fc2': its output channels feed "
                                  "the model's output"),
    (models.lenet5, {"pool1": 0.5}, "not a Conv2d or Linear of the model"),
    (separable_net, {"3": 0.5}, "layer '3' is depthwise and follows its input channels; give the "
                                "ratio to '0'"),
    (ResidualNet, {"stem": 0.5, "side": 0.25}, "'stem' and 'side' are joined"),
    (models.lenet5, {"conv1": 1.0}, "must be a fraction in [0, 1)"),
])
def test_unprunable_layers_are_refused_clearly(factory, ratios, message):
    with pytest.raises(UserError) as error:
        prune_filters(_random(factory), IMAGE, ratios=ratios)
    assert message in str(error.value)


class _HardCodedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        return self.fc(self.conv(x).view(-1, 4 * 26 * 26))


def test_a_forward_with_a_constant_channel_count_is_refused():
    with pytest.raises(UserError, match="no longer runs.*channel count as a constant"):
        prune_filters(_HardCodedNet().eval(), IMAGE, ratios={"conv": 0.5})


class _Sigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3)
        self.fc = nn.Linear(4 * 24 * 24, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv2(torch.sigmoid(self.conv1(x))), 1))


def test_channels_through_an_unknown_operation_stay_whole():
    model = _Sigmoid().eval()
    assert [g.name for g in filter_groups(model, IMAGE)] == ["conv2"]
    with pytest.raises(UserError, match="pass through sigmoid"):
        prune_filters(model, IMAGE, ratios={"conv1": 0.5})
