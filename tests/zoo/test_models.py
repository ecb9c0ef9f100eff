import numpy as np
import pytest
import torch
from qgraph_support import zoo_qgraph
from torch import nn

from edgegen.firmware.qemu import multiply_accumulates as qgraph_multiply_accumulates
from edgegen.frontend.limits import constant_bytes
from edgegen.frontend.torch_import import import_model
from edgegen.ir import Add, ChannelShuffle, Concat, Conv2D
from edgegen.plan.arena import plan_memory
from edgegen.reference.float_model import nchw_to_nhwc, run_float
from edgegen.zoo.models import ZOO, lenet5, lenet300, multiply_accumulates

COMPACT = ("squeezenet", "mobilenet", "shufflenet", "xception", "resnet")

LENET5_PARAMS, LENET5_MACS = 431_080, 2_293_000
FLASH_BYTES, RAM_BYTES = 256 * 1024, 64 * 1024
# Of the M4's 64 KB of RAM, what the live activations may take: the rest is
# the stack, the im2col scratch and the application's own data.
ACTIVATION_BYTES = 48 * 1024


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _randomized(model: nn.Module) -> nn.Module:
    """``model`` with BatchNorm statistics and affine terms far from their
    initial identity, so that folding them is tested."""
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            size = bn.num_features
            bn.running_mean.copy_(torch.rand(size, generator=generator) - 0.5)
            bn.running_var.copy_(0.5 + torch.rand(size, generator=generator))
            bn.weight.copy_(0.5 + torch.rand(size, generator=generator))
            bn.bias.copy_(torch.rand(size, generator=generator) - 0.5)
    return model.eval()


def _imported(name: str):
    torch.manual_seed(0)
    model = _randomized(ZOO[name]())
    return model, import_model(model, torch.zeros(1, 1, 28, 28), name)


def test_lenet5_is_the_caffe_lenet_of_deep_compression():
    model = lenet5()
    assert n_params(model) == LENET5_PARAMS
    assert multiply_accumulates(model) == LENET5_MACS
    names = [name for name, _ in model.named_children()]
    assert names == ["conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "relu1", "fc2"]
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_lenet300_is_784_300_100_10():
    model = lenet300()
    assert n_params(model) == 266_610
    assert multiply_accumulates(model) == 784 * 300 + 300 * 100 + 100 * 10
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [300, 100, 10]
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_zoo_factories_return_fresh_models():
    for factory in ZOO.values():
        a, b = factory(), factory()
        assert a is not b
        assert next(a.parameters()) is not next(b.parameters())


@pytest.mark.parametrize("name", COMPACT)
def test_float_graph_computes_what_pytorch_does(name):
    """The importer's semantics on the whole network: branches, joins,
    folded BatchNorm, fused activations, the flatten after global pooling."""
    model, graph = _imported(name)
    x = torch.rand((5, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x).numpy()
    got = run_float(graph, nchw_to_nhwc(x.numpy()))
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", COMPACT)
def test_compact_model_is_smaller_than_lenet5_and_fits_the_flash(name):
    model = ZOO[name]()
    params, macs = n_params(model), multiply_accumulates(model)
    assert params < LENET5_PARAMS or macs < LENET5_MACS
    assert params < FLASH_BYTES // 2  # int8 weights take well under half the flash
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("name", COMPACT)
def test_int8_model_fits_a_cortex_m4(name):
    """Dense int8 constants well under 256 KB of flash, and the activation
    arena the planner lays out (branches live until their last reader) under
    48 KB of the 64 KB of RAM."""
    _, graph = _imported(name)
    assert 0 < constant_bytes(graph) < FLASH_BYTES // 2
    assert plan_memory(zoo_qgraph(name)).arena_size <= ACTIVATION_BYTES


@pytest.mark.parametrize("name", COMPACT + ("lenet5",))
def test_multiply_accumulates_agree_with_the_quantized_graph(name):
    torch.manual_seed(0)
    assert multiply_accumulates(ZOO[name]()) == qgraph_multiply_accumulates(zoo_qgraph(name))


def _ops(graph, kind) -> list:
    return [node for node in graph.nodes if isinstance(node.op, kind)]


def test_squeezenet_is_fire_modules_and_a_convolutional_classifier():
    model, graph = _imported("squeezenet")
    fires = [name for name, _ in model.named_children() if name.startswith("fire")]
    assert fires == ["fire1", "fire2", "fire3", "fire4"]
    assert [name for name, _ in model.fire1.named_children()] == ["squeeze", "expand1x1",
                                                                  "expand3x3"]
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert len(_ops(graph, Concat)) == 4  # each Fire joins its two expands


def test_mobilenet_is_depthwise_separable_blocks():
    model, graph = _imported("mobilenet")
    blocks = [m for name, m in model.named_children() if name.startswith("block")]
    assert len(blocks) == 4
    for block in blocks:
        depthwise, pointwise = block.depthwise.conv, block.pointwise.conv
        assert depthwise.groups == depthwise.in_channels == depthwise.out_channels
        assert depthwise.kernel_size == (3, 3) and pointwise.kernel_size == (1, 1)
        assert isinstance(block.depthwise.bn, nn.BatchNorm2d)
    convs = _ops(graph, Conv2D)
    assert len(convs) == 1 + 2 * len(blocks)  # every BatchNorm folded away
    assert not _ops(graph, Add) and not _ops(graph, Concat)


def test_shufflenet_is_grouped_units_with_a_channel_shuffle():
    model = ZOO["shufflenet"]()
    units = [m for stage in (model.stage1, model.stage2) for m in stage]
    assert [u.stride for u in units] == [2, 1, 1, 2, 1, 1]
    for unit in units:
        assert isinstance(unit.shuffle, nn.ChannelShuffle)
        assert unit.depthwise.conv.groups == unit.depthwise.conv.in_channels
        assert unit.expand.conv.groups == 3
        assert isinstance(unit.shortcut, nn.AvgPool2d if unit.stride == 2 else nn.Identity)
    assert units[0].compress.conv.groups == 1  # the paper's dense first 1x1 on a narrow input
    assert all(u.compress.conv.groups == 3 for u in units[1:])
    x = torch.rand(1, 1, 28, 28)
    with torch.no_grad():
        assert model.stage1(model.stem(x)).shape == (1, 60, 14, 14)


def test_shufflenet_graph_shuffles_adds_and_concatenates():
    _, graph = _imported("shufflenet")
    assert len(_ops(graph, ChannelShuffle)) == 6
    assert len(_ops(graph, Add)) == 4 and len(_ops(graph, Concat)) == 2


def test_xception_is_separable_convolutions_with_residual_shortcuts():
    model, graph = _imported("xception")
    entry = model.entry
    assert entry.sep1.depthwise.groups == entry.sep1.depthwise.in_channels
    shortcut = entry.shortcut.conv
    assert shortcut.kernel_size == (1, 1) and shortcut.stride == (2, 2)
    assert isinstance(model.middle1.shortcut, nn.Identity)
    assert len(_ops(graph, Add)) == 3  # the entry block and the two middle blocks
    depthwise = [n for n in _ops(graph, Conv2D) if n.op.groups > 1]
    assert len(depthwise) == 7  # two per block, one in the exit


def test_resnet_is_basic_blocks_with_residual_adds():
    model, graph = _imported("resnet")
    for layer in (model.layer1, model.layer2):
        assert layer.conv1.conv.stride == (2, 2)
        assert layer.shortcut.conv.kernel_size == (1, 1)
    assert len(_ops(graph, Add)) == 2
    assert all(n.op.groups == 1 for n in _ops(graph, Conv2D))


def test_the_cli_help_lists_every_zoo_model():
    from edgegen.cli import ZOO_NAMES

    assert ZOO_NAMES.split(", ") == list(ZOO)
