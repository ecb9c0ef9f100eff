"""The import is checked the strong way: the IR, run in float numpy, must
give PyTorch's outputs. That proves layouts (NHWC, OHWI, the permuted
flatten columns) and folds (BatchNorm, fused activations)."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgegen.errors import UserError
from edgegen.frontend.torch_import import count_parameters, import_model
from edgegen.ir import Activation, Clamp, Conv2D, FullyConnected, Reshape, Softmax
from edgegen.reference.float_model import nchw_to_nhwc, run_float


def _check_against_torch(model, shape=(1, 28, 28), n=6):
    torch.manual_seed(1)
    model.eval()
    x = torch.rand((n,) + shape)
    graph = import_model(model, x[:1], "m")
    with torch.no_grad():
        expected = model(x).numpy()
    got = run_float(graph, nchw_to_nhwc(x.numpy()))
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-4, atol=1e-4)
    return graph


def _randomize_bn(bn):
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)


def test_lenet5_shape_model_matches_torch():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10),
    )
    graph = _check_against_torch(model)
    kinds = [type(n.op) for n in graph.nodes]
    assert kinds.count(Conv2D) == 2 and kinds.count(FullyConnected) == 2
    assert graph.nodes[-2].op.activation is Activation.RELU  # fused
    assert count_parameters(graph) == 431_080
    assert graph.tensor(graph.input).shape == (28, 28, 1)


def test_batchnorm_relu6_strides_padding_avgpool_dropout():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 12, (3, 5), stride=(1, 2), padding=(2, 1)), nn.BatchNorm2d(12),
        nn.AvgPool2d(2), nn.Dropout(0.3), nn.Flatten(), nn.Linear(12 * 8 * 3, 16), nn.ReLU(),
        nn.Linear(16, 4),
    )
    _randomize_bn(model[1])
    _randomize_bn(model[4])
    graph = _check_against_torch(model)
    assert [type(n.op).__name__ for n in graph.nodes] == [
        "Conv2D", "Conv2D", "AvgPool", "Reshape", "FullyConnected", "FullyConnected"]
    assert graph.nodes[0].op.activation is Activation.RELU6


class _Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding="same")
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        x = F.relu(x)  # after a pool: cannot fuse, becomes a stand-alone clamp
        x = x.view(x.size(0), -1)
        return self.fc(x)


def test_functional_forms_view_and_standalone_relu():
    graph = _check_against_torch(_Functional())
    assert any(isinstance(n.op, Clamp) for n in graph.nodes)
    assert any(isinstance(n.op, Reshape) for n in graph.nodes)
    assert graph.nodes[0].name == "conv"


class _ExamplesMnistNet(nn.Module):
    """The network of the PyTorch examples repository's MNIST script,
    narrower (its layer sequence and functional calls, fewer channels)."""

    def __init__(self, log_softmax: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(16 * 12 * 12, 32)
        self.fc2 = nn.Linear(32, 10)
        self.log_softmax = log_softmax

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        x = self.fc2(x)
        return F.log_softmax(x, dim=1) if self.log_softmax else x


def test_the_pytorch_examples_mnist_network_imports():
    """As written (ending in F.log_softmax) it imports, log_softmax
    included, and matches PyTorch; with --drop-softmax the graph computes
    the logits (the same argmax) and says so."""
    graph = _check_against_torch(_ExamplesMnistNet(log_softmax=False))
    assert [type(n.op).__name__ for n in graph.nodes] == [
        "Conv2D", "Conv2D", "MaxPool", "Reshape", "FullyConnected", "FullyConnected"]
    assert graph.notes == ()
    with_softmax = _ExamplesMnistNet(log_softmax=True).eval()
    kept = _check_against_torch(with_softmax)
    assert kept.nodes[-1].op == Softmax(log=True) and kept.notes == ()
    dropped = import_model(with_softmax, torch.zeros(1, 1, 28, 28), drop_final_softmax=True)
    assert [type(n.op) for n in dropped.nodes] == [type(n.op) for n in graph.nodes]
    assert len(dropped.notes) == 1 and "log_softmax" in dropped.notes[0]


class _Softmaxes(nn.Module):
    def __init__(self, form: str):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(12, 8), nn.Linear(8, 4)
        self.module = nn.Softmax(dim=1)
        self.form = form

    def forward(self, x):
        x = self.fc1(x)
        if self.form == "inside":
            x = F.softmax(x, dim=1)
        x = self.fc2(x)
        if self.form == "module":
            return self.module(x)
        if self.form == "torch.softmax":
            return torch.softmax(x, 1)
        return x.log_softmax(1)


@pytest.mark.parametrize("form", ["module", "torch.softmax", "method"])
def test_a_final_softmax_in_any_form_is_dropped_on_request(form):
    model = _Softmaxes(form).eval()
    graph = import_model(model, torch.zeros(1, 12), drop_final_softmax=True)
    assert [type(n.op) for n in graph.nodes] == [FullyConnected, FullyConnected]
    x = torch.rand(5, 12)
    with torch.no_grad():
        logits = model.fc2(model.fc1(x)).numpy()
    np.testing.assert_allclose(run_float(graph, x.numpy()), logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("form", ["module", "torch.softmax", "method"])
def test_a_softmax_is_imported_as_softmax_over_the_channels(form):
    graph = _check_against_torch(_Softmaxes(form), shape=(12,))
    assert [type(n.op) for n in graph.nodes] == [FullyConnected, FullyConnected, Softmax]
    assert graph.nodes[-1].op.log == (form == "method")  # the method form is log_softmax
    assert graph.notes == ()


def test_a_softmax_inside_the_model_is_kept_even_when_a_final_one_is_dropped():
    graph = import_model(_Softmaxes("inside").eval(), torch.zeros(1, 12), drop_final_softmax=True)
    assert [type(n.op) for n in graph.nodes] == [FullyConnected, Softmax, FullyConnected]
    assert "log_softmax" in graph.notes[0]


class _SpatialSoftmax(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv, self.dim = nn.Conv2d(1, 4, 3), dim

    def forward(self, x):
        return F.softmax(self.conv(x), dim=self.dim)


def test_a_softmax_over_the_channels_of_a_feature_map_matches_torch():
    torch.manual_seed(0)
    model = _SpatialSoftmax(1).eval()
    x = torch.rand(3, 1, 6, 5)
    graph = import_model(model, x[:1])
    assert isinstance(graph.nodes[-1].op, Softmax)
    with torch.no_grad():
        expected = nchw_to_nhwc(model(x).numpy())
    np.testing.assert_allclose(run_float(graph, nchw_to_nhwc(x.numpy())), expected,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dim", [2, -1, 0])
def test_a_softmax_over_another_axis_is_refused_naming_it(dim):
    with pytest.raises(UserError, match=f"at softmax: softmax over dim={dim} of a 4-D tensor"):
        import_model(_SpatialSoftmax(dim).eval(), torch.zeros(1, 1, 6, 5))


def test_a_log_softmax_inside_the_model_matches_torch():
    class Inside(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(12, 8), nn.Linear(8, 4)

        def forward(self, x):
            return self.fc2(F.log_softmax(self.fc1(x), dim=1))

    graph = _check_against_torch(Inside(), shape=(12,))
    assert graph.nodes[1].op == Softmax(log=True)


class _GlobalPools(nn.Module):
    """Every way of writing average pooling over whole windows."""

    def __init__(self, form: str):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, stride=2, padding=1)  # 14x14x6
        self.adaptive = nn.AdaptiveAvgPool2d((7, 2))
        self.form = form
        self.fc = nn.Linear(6 * (14 if form == "adaptive-7x2" else 1), 5)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = F.avg_pool2d(x, 2, 2) if self.form.endswith("after-avg") else x
        if self.form == "adaptive-7x2":
            x = torch.flatten(self.adaptive(x), 1)
        elif self.form.startswith("F.adaptive"):
            x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        elif self.form == "mean":
            x = x.mean((2, 3))
        elif self.form == "torch.mean-keepdim":
            x = torch.mean(x, dim=[-1, -2], keepdim=True).view(x.size(0), -1)
        return self.fc(x)


@pytest.mark.parametrize("form", ["adaptive-7x2", "F.adaptive", "F.adaptive-after-avg", "mean",
                                  "torch.mean-keepdim"])
def test_average_pooling_over_whole_windows(form):
    graph = _check_against_torch(_GlobalPools(form))
    pools = [n.op for n in graph.nodes if type(n.op).__name__ == "AvgPool"]
    assert pools[-1].kernel == ((2, 7) if form == "adaptive-7x2" else
                                (7, 7) if form.endswith("after-avg") else (14, 14))


@pytest.mark.parametrize("model, message", [
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(4)),
     r"AdaptiveAvgPool2d\(4\) on 26x26: its windows are not all the same size"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.AvgPool2d(3, divisor_override=4), nn.Flatten(),
                   nn.Linear(256, 2)),
     r"AvgPool2d with divisor_override"),
])
def test_pooling_that_edgegen_cannot_compute_is_refused(model, message):
    with pytest.raises(UserError, match=message):
        import_model(model.eval(), torch.zeros(1, 1, 28, 28))


class _CeilPools(nn.Module):
    """ceil_mode=True: the last windows hang over the bottom and right."""

    def forward(self, x):
        x = nn.functional.max_pool2d(x, 2, ceil_mode=True)  # 27x25 -> 14x13
        x = nn.functional.max_pool2d(x, 3, 2, 1, ceil_mode=True)  # -> 8x7 (explicit padding)
        x = nn.functional.avg_pool2d(x, 3, 2, ceil_mode=True)  # -> 4x3, in-bounds divisor
        return nn.functional.avg_pool2d(x, 2, 1, ceil_mode=True, count_include_pad=False)


class _CountedPadPools(nn.Module):
    """AvgPool2d(count_include_pad=True, PyTorch's default) with explicit
    padding: the divisor counts the padding, not a ceil_mode overhang."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AvgPool2d(3, 2, (0, 1), count_include_pad=True)

    def forward(self, x):
        x = nn.functional.avg_pool2d(x, 3, 1, 1)  # 27x25, every window of 9
        x = nn.functional.avg_pool2d(x, 4, 2, 1, ceil_mode=True)  # -> 14x13, overhang 1
        x = nn.functional.avg_pool2d(x, (2, 3), (2, 1), (1, 1), ceil_mode=True)  # -> 8x13
        return self.pool(x)  # -> 3x7


def test_avg_pool_counting_its_padding_matches_torch():
    graph = _check_against_torch(nn.Sequential(nn.Conv2d(1, 3, 3, padding=(0, 1)),
                                               _CountedPadPools(), nn.Flatten(),
                                               nn.Linear(3 * 3 * 7, 4)),
                                 shape=(1, 29, 25))
    pools = [n.op for n in graph.nodes if type(n.op).__name__ == "AvgPool"]
    assert [p.divisor_padding for p in pools] == [(1, 1), (1, 1), (1, 1), (0, 1)]
    assert pools[1].padding == (1, 2, 1, 2)  # a ceil_mode overhang beyond the counted padding
    no_pad = import_model(nn.Sequential(nn.AvgPool2d(2, count_include_pad=False)).eval(),
                          torch.zeros(1, 1, 4, 4))
    assert no_pad.nodes[0].op.divisor_padding == (0, 0)


def test_ceil_mode_pools_match_torch():
    graph = _check_against_torch(nn.Sequential(nn.Conv2d(1, 3, 3, padding=(0, 1)), _CeilPools(),
                                               nn.Flatten(), nn.Linear(3 * 3 * 2, 4)),
                                 shape=(1, 29, 25))
    paddings = [n.op.padding for n in graph.nodes if type(n.op).__name__ in ("MaxPool", "AvgPool")]
    assert paddings[0] == (0, 1, 0, 1) and paddings[1][0] == 1


class _Shuffles(nn.Module):
    """ShuffleNet's channel shuffle in its three spellings."""

    def __init__(self, form: str, groups: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(1, 12, 3)
        self.shuffle = nn.ChannelShuffle(groups)
        self.form, self.groups = form, groups
        self.fc = nn.Linear(12 * 26 * 26, 4)

    def forward(self, x):
        x = self.conv(x)
        if self.form == "module":
            x = self.shuffle(x)
        elif self.form == "function":
            x = F.channel_shuffle(x, self.groups)
        else:
            n, c, h, w = x.size()
            x = torch.transpose(x.view(n, self.groups, c // self.groups, h, w), 1, 2)
            x = x.contiguous().view(n, -1, h, w)
        return self.fc(torch.flatten(x, 1))


@pytest.mark.parametrize("form", ["module", "function", "written out"])
def test_channel_shuffle_in_every_spelling(form):
    graph = _check_against_torch(_Shuffles(form))
    assert [type(n.op).__name__ for n in graph.nodes] == [
        "Conv2D", "ChannelShuffle", "Reshape", "FullyConnected"]
    assert graph.nodes[1].op.groups == 3


def test_a_shuffle_whose_groups_do_not_divide_the_channels_is_refused():
    with pytest.raises(UserError, match="divisible by groups"):
        import_model(_Shuffles("module", groups=5).eval(), torch.zeros(1, 1, 28, 28))


def test_a_five_dimensional_view_that_is_no_shuffle_is_refused():
    class Split(nn.Module):
        def forward(self, x):
            return torch.relu(x.view(1, 2, 2, 4, 4))
    with pytest.raises(UserError, match="5-D view that is not a channel shuffle"):
        import_model(Split(), torch.zeros(1, 4, 4, 4))


class _Concats(nn.Module):
    def __init__(self, dim=1):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(1, 5, 1)
        self.fc = nn.Linear(8 * 28 * 28, 2)
        self.dim = dim

    def forward(self, x):
        x = torch.cat((self.a(x), torch.relu(self.b(x))), dim=self.dim)
        return self.fc(torch.flatten(x, 1))


def test_a_concatenation_along_the_channels():
    graph = _check_against_torch(_Concats())
    concat = next(n for n in graph.nodes if type(n.op).__name__ == "Concat")
    assert concat.inputs == ("a", "b") and graph.tensor(concat.output).shape == (28, 28, 8)


def test_a_concatenation_along_another_axis_is_refused():
    model = _Concats(dim=2)
    model.fc = nn.Linear(3 * 56 * 28, 2)
    model.b = nn.Conv2d(1, 3, 1)
    with pytest.raises(UserError, match="concatenation along dimension 2"):
        import_model(model.eval(), torch.zeros(1, 1, 28, 28))


def test_a_mean_over_channels_is_refused():
    class ChannelMean(nn.Module):
        def forward(self, x):
            return x.mean(1)
    with pytest.raises(UserError, match=r"mean over dimensions \(1,\)"):
        import_model(ChannelMean(), torch.zeros(1, 2, 8, 8))


def test_mlp_on_flat_input():
    model = nn.Sequential(nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 3))
    graph = _check_against_torch(model, shape=(20,))
    assert graph.tensor(graph.input).shape == (20,)


def test_unsupported_operator_names_module_path_and_lists_supported():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sigmoid())
    with pytest.raises(UserError, match=r"at 1: Sigmoid.*supports: Conv2d"):
        import_model(model, torch.zeros(1, 1, 8, 8))


def test_grouped_convolutions_with_batchnorm():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 12, 1, groups=4), nn.BatchNorm2d(12),
        nn.ReLU(), nn.Conv2d(12, 6, 3, stride=2, padding=1, groups=3),
        nn.Flatten(), nn.Linear(6 * 14 * 14, 3),
    )
    _randomize_bn(model[2])
    graph = _check_against_torch(model)
    convs = [n.op for n in graph.nodes if isinstance(n.op, Conv2D)]
    assert [c.groups for c in convs] == [1, 4, 3]
    assert [c.weight.shape for c in convs[1:]] == [(12, 1, 1, 2), (6, 3, 3, 4)]


def test_groups_that_do_not_divide_the_channels_are_refused_naming_the_module():
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.Conv2d(6, 6, 3, groups=2))
    model[1].groups = 4  # nn.Conv2d checks only at construction
    with pytest.raises(UserError, match=r"at 1: Conv2d with groups=4, which does not divide "
                                        r"in_channels=6 and out_channels=6"):
        import_model(model, torch.zeros(1, 1, 8, 8))


def test_depthwise_convolutions_with_batchnorm_and_a_multiplier():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6),
        nn.BatchNorm2d(6), nn.ReLU6(), nn.Conv2d(6, 12, (3, 5), padding=(1, 2), groups=6),
        nn.Flatten(), nn.Linear(12 * 14 * 14, 3),
    )
    _randomize_bn(model[2])
    graph = _check_against_torch(model)
    convs = [n.op for n in graph.nodes if isinstance(n.op, Conv2D)]
    assert [c.groups for c in convs] == [1, 6, 6]
    assert convs[2].weight.shape == (12, 3, 5, 1)


def test_nan_weights_are_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight[0, 0] = float("nan")
    with pytest.raises(UserError, match=r"1\.weight holds NaN or Inf"):
        import_model(model, torch.zeros(1, 1, 2, 2))


def test_input_shape_mismatch_is_a_user_error():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(UserError, match=r"input shape \(1, 1, 32, 32\) does not fit"):
        import_model(model, torch.zeros(1, 1, 32, 32))


def test_flatten_as_output_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Flatten())
    with pytest.raises(UserError, match="NCHW element order"):
        import_model(model, torch.zeros(1, 1, 6, 6))


def test_batchnorm1d_after_a_linear_is_folded_into_it():
    """Linear + BatchNorm1d + ReLU, also after a flatten of a feature map
    (the fold scales rows, the flatten permutes columns): one Linear each,
    its ReLU fused, computing what PyTorch does."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2), nn.Flatten(), nn.Linear(4 * 13 * 13, 16),
        nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 8, bias=False), nn.BatchNorm1d(8),
        nn.Linear(8, 3),
    )
    _randomize_bn(model[3])
    _randomize_bn(model[6])
    graph = _check_against_torch(model)
    assert [type(n.op).__name__ for n in graph.nodes] == [
        "Conv2D", "Reshape", "FullyConnected", "FullyConnected", "FullyConnected"]
    assert graph.nodes[2].op.activation is Activation.RELU
    assert graph.nodes[3].op.activation is Activation.NONE
    assert count_parameters(graph) == 4 * 9 + 4 + 4 * 13 * 13 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3


def test_an_mlp_with_batchnorm1d_on_flat_input_matches_torch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 8), nn.BatchNorm1d(8, eps=1e-3), nn.ReLU(),
                          nn.Linear(8, 4))
    _randomize_bn(model[1])
    graph = _check_against_torch(model, shape=(20,))
    assert [type(n.op).__name__ for n in graph.nodes] == ["FullyConnected", "FullyConnected"]


@pytest.mark.parametrize("model, message", [
    (nn.Sequential(nn.BatchNorm1d(20), nn.Linear(20, 3)),
     r"at 0: BatchNorm1d that does not directly follow a Linear"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.BatchNorm1d(72), nn.Linear(72, 3)),
     r"at 2: BatchNorm1d that does not directly follow a Linear"),
    (nn.Sequential(nn.Linear(20, 8), nn.ReLU(), nn.BatchNorm1d(8)),
     r"at 2: BatchNorm1d after an activation"),
])
def test_a_batchnorm1d_edgegen_cannot_fold_is_refused_naming_it(model, message):
    shape = (1, 1, 8, 8) if isinstance(model[0], nn.Conv2d) else (1, 20)
    with pytest.raises(UserError, match=message):
        import_model(model, torch.zeros(shape))
