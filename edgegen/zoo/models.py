"""The model zoo: small classic networks for 28×28 grayscale images, and the
MLPerf Tiny reference networks (``edgegen.zoo.mlperf_tiny``).

Each factory returns a fresh, randomly initialised module whose children have
readable names (``conv1``, ``pool1``, ``fc1``, ``block2.depthwise`` …), so that
module paths in compression specs and reports name real layers.

Besides the two LeNets, the zoo holds the compact architectures of the
lecture at Fashion-MNIST scale: each keeps its paper's building block but is
sized for a Cortex-M4 with 256 KB of flash and 64 KB of RAM (int8 weights
well under 256 K, the feature maps at 28×28 no wider than 16 channels), and
written the way the published definitions are, with ``F.relu``,
``torch.cat`` and ``+`` in ``forward``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from edgegen.zoo.mlperf_tiny import INPUT_SHAPES, MLPERF_TINY


def lenet300() -> nn.Sequential:
    """LeNet-300-100: a 784-300-100-10 fully connected net with ReLU (266,610 params)."""
    return nn.Sequential(
        OrderedDict(
            [
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(28 * 28, 300)),
                ("relu1", nn.ReLU()),
                ("fc2", nn.Linear(300, 100)),
                ("relu2", nn.ReLU()),
                ("fc3", nn.Linear(100, 10)),
            ]
        )
    )


def lenet5() -> nn.Sequential:
    """The Caffe LeNet of Deep Compression (431,080 params).

    Two 5×5 convolutions (20 and 50 filters) each followed by 2×2 max pooling,
    with no activation after the convolutions, then 800-500-10 fully connected
    with a ReLU between.
    """
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 20, kernel_size=5)),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(20, 50, kernel_size=5)),
                ("pool2", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(50 * 4 * 4, 500)),
                ("relu1", nn.ReLU()),
                ("fc2", nn.Linear(500, 10)),
            ]
        )
    )


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
             groups: int = 1) -> nn.Sequential:
    """A bias-free convolution ("same" padding) and its BatchNorm, as ``conv`` and ``bn``."""
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                           padding=kernel_size // 2, groups=groups, bias=False)),
        ("bn", nn.BatchNorm2d(out_channels)),
    ]))


class FireModule(nn.Module):
    """SqueezeNet's Fire module: a 1×1 squeeze, then 1×1 and 3×3 expands
    concatenated along the channels, every convolution followed by BN and a
    ReLU (BN, which the original predates, lets it train in a few epochs;
    it folds into the convolutions)."""

    def __init__(self, in_channels: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = _conv_bn(in_channels, squeeze, 1)
        self.expand1x1 = _conv_bn(squeeze, expand, 1)
        self.expand3x3 = _conv_bn(squeeze, expand, 3)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    """SqueezeNet (Iandola et al.) at 28×28: a 3×3 stem, four Fire modules
    in two stages separated by max pooling, and SqueezeNet's classifier — a
    1×1 convolution to the classes, averaged over the map (no Linear)."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = _conv_bn(1, 32)  # 28x28x32, the widest map
        self.pool1 = nn.MaxPool2d(2)
        self.fire1 = FireModule(32, 16, 32)  # 14x14x64
        self.fire2 = FireModule(64, 16, 32)
        self.pool2 = nn.MaxPool2d(2)
        self.fire3 = FireModule(64, 32, 64)  # 7x7x128
        self.fire4 = FireModule(128, 32, 64)
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Conv2d(128, classes, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()

    def forward(self, x):
        x = self.pool1(F.relu(self.stem(x)))
        x = self.pool2(self.fire2(self.fire1(x)))
        x = self.fire4(self.fire3(x))
        # No ReLU after the classifier, unlike the original: logits that
        # cannot go below zero slow the training down.
        return self.flatten(self.pool(self.classifier(self.dropout(x))))


class SeparableBlock(nn.Module):
    """MobileNet's depthwise-separable block: a depthwise 3×3 (BN, ReLU6),
    then a pointwise 1×1 (BN, ReLU6)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.depthwise = _conv_bn(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pointwise = _conv_bn(in_channels, out_channels, 1)

    def forward(self, x):
        return F.relu6(self.pointwise(F.relu6(self.depthwise(x))))


class MobileNet(nn.Module):
    """MobileNet (Howard et al.) at 28×28: a full 3×3 stem, then
    depthwise-separable blocks doubling the channels where they halve the
    map, global average pooling and one Linear layer."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = _conv_bn(1, 16)  # 28x28x16
        self.block1 = SeparableBlock(16, 32, stride=2)  # 14x14x32
        self.block2 = SeparableBlock(32, 64)  # 14x14x64
        self.block3 = SeparableBlock(64, 128, stride=2)  # 7x7x128
        self.block4 = SeparableBlock(128, 128)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(128, classes)

    def forward(self, x):
        x = F.relu6(self.stem(x))
        x = self.block4(self.block3(self.block2(self.block1(x))))
        return self.fc(self.flatten(self.pool(x)))


class ShuffleUnit(nn.Module):
    """ShuffleNet's unit (Zhang et al.): a grouped 1×1 convolution to a
    quarter of the output channels (BN, ReLU), a channel shuffle, a
    depthwise 3×3 (BN), a grouped 1×1 back up (BN). With stride 1 the input
    is added; with stride 2 the 2×2 average-pooled input is concatenated, so
    the branch makes only the channels the unit adds. ``first_grouped``:
    the paper leaves the first 1×1 dense when the input is narrow."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, stride: int,
                 first_grouped: bool = True):
        super().__init__()
        self.groups = groups
        self.stride = stride
        branch = out_channels - in_channels if stride == 2 else out_channels
        bottleneck = out_channels // 4
        self.compress = _conv_bn(in_channels, bottleneck, 1, groups=groups if first_grouped else 1)
        self.shuffle = nn.ChannelShuffle(groups)
        self.depthwise = _conv_bn(bottleneck, bottleneck, 3, stride, groups=bottleneck)
        self.expand = _conv_bn(bottleneck, branch, 1, groups=groups)
        self.shortcut = nn.AvgPool2d(2) if stride == 2 else nn.Identity()

    def forward(self, x):
        y = self.shuffle(F.relu(self.compress(x)))
        y = self.expand(self.depthwise(y))
        if self.stride == 2:
            return F.relu(torch.cat([self.shortcut(x), y], 1))
        return F.relu(x + y)


class ShuffleNet(nn.Module):
    """ShuffleNet (g = 3) at 28×28: a 3×3 stem, two stages of three units
    (the first of each strided, 24 → 60 → 120 channels), global average
    pooling and one Linear layer."""

    def __init__(self, classes: int = 10, groups: int = 3):
        super().__init__()
        self.stem = _conv_bn(1, 24)  # 28x28x24
        self.stage1 = nn.Sequential(OrderedDict([
            ("unit1", ShuffleUnit(24, 60, groups, stride=2, first_grouped=False)),  # 14x14x60
            ("unit2", ShuffleUnit(60, 60, groups, stride=1)),
            ("unit3", ShuffleUnit(60, 60, groups, stride=1)),
        ]))
        self.stage2 = nn.Sequential(OrderedDict([
            ("unit1", ShuffleUnit(60, 120, groups, stride=2)),  # 7x7x120
            ("unit2", ShuffleUnit(120, 120, groups, stride=1)),
            ("unit3", ShuffleUnit(120, 120, groups, stride=1)),
        ]))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(120, classes)

    def forward(self, x):
        x = self.stage2(self.stage1(F.relu(self.stem(x))))
        return self.fc(self.flatten(self.pool(x)))


class SeparableConv(nn.Module):
    """Xception's separable convolution: a depthwise 3×3 straight into a
    pointwise 1×1 (no BN or ReLU between), then BN."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels,
                                   bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.bn(self.pointwise(self.depthwise(x)))


class XceptionBlock(nn.Module):
    """Xception's block: two separable convolutions with a ReLU before
    each, added to the input. A block that halves the map ends in a 3×3
    stride-2 max pooling and its shortcut is a 1×1 stride-2 convolution
    (BN) to the new width."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.sep1 = SeparableConv(in_channels, out_channels)
        self.sep2 = SeparableConv(out_channels, out_channels)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()
        self.shortcut = (_conv_bn(in_channels, out_channels, 1, stride)
                         if stride != 1 or in_channels != out_channels else nn.Identity())

    def forward(self, x):
        y = self.sep2(F.relu(self.sep1(F.relu(x))))
        return self.pool(y) + self.shortcut(x)


class Xception(nn.Module):
    """Xception (Chollet) at 28×28: its two-convolution stem (the second
    strided, 16 then 32 channels), an entry block that halves the map again
    (32 → 64 channels, 7×7), two middle blocks at 64, a separable exit
    convolution to 128, global average pooling and one Linear layer. The
    separable convolutions run at 14×14 and below: at 28×28, a block's
    input and two outputs would not fit 64 KB of RAM together."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem1 = _conv_bn(1, 16)  # 28x28x16
        self.stem2 = _conv_bn(16, 32, stride=2)  # 14x14x32
        self.entry = XceptionBlock(32, 64, stride=2)  # 7x7x64
        self.middle1 = XceptionBlock(64, 64)
        self.middle2 = XceptionBlock(64, 64)
        self.exit = SeparableConv(64, 128)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(128, classes)

    def forward(self, x):
        x = F.relu(self.stem2(F.relu(self.stem1(x))))
        x = self.middle2(self.middle1(self.entry(x)))
        x = F.relu(self.exit(F.relu(x)))
        return self.fc(self.flatten(self.pool(x)))


class BasicBlock(nn.Module):
    """ResNet's basic block (He et al.): 3×3 conv, BN, ReLU, 3×3 conv, BN,
    added to the input, ReLU. A block that changes the shape takes a 1×1
    strided convolution (BN) as its shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv_bn(in_channels, out_channels, 3, stride)
        self.conv2 = _conv_bn(out_channels, out_channels, 3)
        self.shortcut = (_conv_bn(in_channels, out_channels, 1, stride)
                         if stride != 1 or in_channels != out_channels else nn.Identity())

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    """A small ResNet at 28×28: a 3×3 stem (16 channels), two stages of
    one basic block each that halve the map and double the channels
    (14×14×32, 7×7×64), global average pooling and one Linear layer."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = _conv_bn(1, 16)  # 28x28x16
        self.layer1 = BasicBlock(16, 32, stride=2)  # 14x14x32
        self.layer2 = BasicBlock(32, 64, stride=2)  # 7x7x64
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.layer2(self.layer1(F.relu(self.stem(x))))
        return self.fc(self.flatten(self.pool(x)))


def squeezenet() -> nn.Module:
    """SqueezeNet's Fire modules at 28×28."""
    return SqueezeNet()


def mobilenet() -> nn.Module:
    """MobileNet's depthwise-separable blocks at 28×28."""
    return MobileNet()


def shufflenet() -> nn.Module:
    """ShuffleNet's units (grouped 1×1, channel shuffle, depthwise) at 28×28."""
    return ShuffleNet()


def xception() -> nn.Module:
    """Xception's separable convolutions with residual shortcuts at 28×28."""
    return Xception()


def resnet() -> nn.Module:
    """A small ResNet of basic blocks at 28×28."""
    return ResNet()


def multiply_accumulates(model: nn.Module, input_shape: tuple[int, ...] = (1, 28, 28)) -> int:
    """Multiply-accumulates of one inference of ``model`` on one input of
    ``input_shape`` (C, H, W): every weight position of every Conv2d (its
    output size times its kernel's size per output channel) and Linear."""
    total = 0

    def count(module, _inputs, output):
        nonlocal total
        total += output[0].numel() * module.weight[0].numel()

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros((1,) + tuple(input_shape)))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return total


ZOO: dict[str, Callable[[], nn.Module]] = {
    "lenet300": lenet300,
    "lenet5": lenet5,
    "squeezenet": squeezenet,
    "mobilenet": mobilenet,
    "shufflenet": shufflenet,
    "xception": xception,
    "resnet": resnet,
    **MLPERF_TINY,
}

# Zoo models whose data is not on this machine: without --data they run on
# random inputs of this (C, H, W) or (F,) shape, with random weights.
SYNTHETIC_INPUTS: dict[str, tuple[int, ...]] = dict(INPUT_SHAPES)
