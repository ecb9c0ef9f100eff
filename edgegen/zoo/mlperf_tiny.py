"""The four reference networks of MLPerf Tiny v1.0, in PyTorch.

MLPerf Tiny (mlcommons/tiny, ``benchmark/training/``) is the benchmark the
microcontroller inference tools (TFLite Micro, CMSIS-NN, X-CUBE-AI, ...)
publish their latency and energy on. Its four tasks each come with one
reference network, written in Keras and shipped as int8 ``.tflite``
files. Writing the same layer lists here lets edgegen be measured on the
networks those tools are measured on, layer for layer:

* ``kws_dscnn``: keyword spotting, DS-CNN (Zhang et al., *Hello Edge*) on
  49x10 MFCCs, 12 classes, 2,656,768 multiply-accumulates;
* ``ic_resnet8``: image classification, ResNet-8 on 32x32x3 CIFAR-10,
  10 classes, 12,501,632 MACs;
* ``vww_mobilenet``: visual wake words, MobileNetV1 at width 0.25 on
  96x96x3, 2 classes, 7,489,664 MACs;
* ``ad_autoencoder``: anomaly detection, a fully connected autoencoder on
  640 log-mel values (5 frames of 128), 264,192 MACs.

Each factory returns a fresh, randomly initialised module with readable
child names. The classifiers end in a softmax in eval mode only: training
gets the logits (for ``cross_entropy``), the imported graph (the importer
traces in eval mode) ends in a softmax as the reference ``.tflite`` files do.

Where PyTorch cannot say what Keras says, the shapes and the arithmetic
count are kept and the difference is named: when Keras' ``padding='same'``
needs an odd amount of padding (the stride-2 layers on even inputs, the rows
of DS-CNN's first convolution) it puts the extra pixel after (bottom,
right), where PyTorch's symmetric padding in effect puts it before, so the
window grid sits one pixel up or left: weights trained in Keras would need
an explicit asymmetric pad. Keras' BatchNormalization defaults (epsilon
1e-3, momentum 0.99) are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

# Keras' BatchNormalization defaults (PyTorch's momentum is 1 - Keras').
BatchNorm2d = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)
BatchNorm1d = partial(nn.BatchNorm1d, eps=1e-3, momentum=0.01)


class DepthwiseSeparable(nn.Module):
    """A depthwise 3x3 (BN, ReLU), then a pointwise 1x1 (BN, ReLU): the
    block of DS-CNN and of MobileNetV1, with Keras' biases."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1,
                                   groups=in_channels)
        self.bn1 = BatchNorm2d(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)
        self.bn2 = BatchNorm2d(out_channels)

    def forward(self, x):
        x = F.relu(self.bn1(self.depthwise(x)))
        return F.relu(self.bn2(self.pointwise(x)))


class DSCNN(nn.Module):
    """DS-CNN, keyword spotting (``keyword_spotting/keras_model.py``): a
    10x4 stride-2 convolution of 64 filters to 25x5 (padding (5, 1): the
    shape of Keras' 'same'), four depthwise-separable blocks of 64, dropout,
    average pooling with the reference's window of (49 // 2, 10 // 2) =
    (24, 5) (its last row of the 25x5 map is not read), Linear 64 -> 12."""

    def __init__(self, classes: int = 12, filters: int = 64, blocks: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(1, filters, (10, 4), stride=2, padding=(5, 1))
        self.bn1 = BatchNorm2d(filters)
        self.dropout1 = nn.Dropout(0.2)
        self.blocks = nn.Sequential(*(DepthwiseSeparable(filters, filters)
                                      for _ in range(blocks)))
        self.dropout2 = nn.Dropout(0.4)
        self.pool = nn.AvgPool2d((49 // 2, 10 // 2))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(filters, classes)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        x = self.dropout1(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(self.dropout2(self.blocks(x)))
        x = self.fc(self.flatten(x))
        return x if self.training else self.softmax(x)


class ResidualStack(nn.Module):
    """One stack of ResNet-8: 3x3 conv (BN, ReLU), 3x3 conv (BN), added to
    the stack's input, ReLU. A strided stack takes a 1x1 strided
    convolution with a bias and no BatchNorm as its shortcut, as the
    reference does."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn1 = BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = BatchNorm2d(out_channels)
        self.shortcut = (nn.Conv2d(in_channels, out_channels, 1, stride=stride)
                         if stride != 1 or in_channels != out_channels else nn.Identity())

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(self.shortcut(x) + y)


class ResNet8(nn.Module):
    """ResNet-8, image classification (``image_classification/keras_model.py``):
    a 3x3 convolution of 16, three residual stacks (32x32x16, 16x16x32,
    8x8x64), 8x8 average pooling, Linear 64 -> 10."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = BatchNorm2d(16)
        self.stack1 = ResidualStack(16, 16)
        self.stack2 = ResidualStack(16, 32, stride=2)
        self.stack3 = ResidualStack(32, 64, stride=2)
        self.pool = nn.AvgPool2d(8)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, classes)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.stack3(self.stack2(self.stack1(x)))
        x = self.fc(self.flatten(self.pool(x)))
        return x if self.training else self.softmax(x)


# MobileNetV1 at width 1 (Howard et al., Table 1): the pointwise output
# channels and the depthwise stride of the thirteen separable blocks.
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                       (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


class MobileNetV1(nn.Module):
    """MobileNetV1, visual wake words (``visual_wake_words/vww_model.py``):
    a 3x3 stride-2 convolution of 32 x width, the thirteen separable blocks
    of the paper at ``width``, average pooling over the final 3x3 map (at
    96x96), Linear -> 2. ReLU where Keras' MobileNet has ReLU6, as the
    reference does."""

    def __init__(self, classes: int = 2, width: float = 0.25, input_size: int = 96):
        super().__init__()
        channels = int(32 * width)
        self.conv1 = nn.Conv2d(3, channels, 3, stride=2, padding=1)
        self.bn1 = BatchNorm2d(channels)
        blocks = []
        for out_channels, stride in MOBILENET_V1_BLOCKS:
            blocks.append(DepthwiseSeparable(channels, int(out_channels * width), stride))
            channels = int(out_channels * width)
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AvgPool2d(input_size // 32)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, classes)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        x = self.fc(self.flatten(self.pool(x)))
        return x if self.training else self.softmax(x)


class DenseBlock(nn.Module):
    """Linear, BatchNorm1d, ReLU: the autoencoder's hidden layer."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self.bn = BatchNorm1d(out_features)

    def forward(self, x):
        return F.relu(self.bn(self.fc(x)))


class DenseAutoencoder(nn.Module):
    """The anomaly detection autoencoder (``anomaly_detection/keras_model.py``,
    the DCASE 2020 task 2 baseline): 640 -> 128 x4 -> 8 -> 128 x4 -> 640,
    every hidden layer Linear + BatchNorm1d + ReLU, the output a plain
    Linear (the reconstruction; the anomaly score is its error)."""

    def __init__(self, inputs: int = 640, hidden: int = 128, bottleneck: int = 8):
        super().__init__()
        self.encoder = nn.Sequential(
            DenseBlock(inputs, hidden), DenseBlock(hidden, hidden), DenseBlock(hidden, hidden),
            DenseBlock(hidden, hidden), DenseBlock(hidden, bottleneck))
        self.decoder = nn.Sequential(
            DenseBlock(bottleneck, hidden), DenseBlock(hidden, hidden),
            DenseBlock(hidden, hidden), DenseBlock(hidden, hidden))
        self.output = nn.Linear(hidden, inputs)

    def forward(self, x):
        return self.output(self.decoder(self.encoder(x)))


def kws_dscnn() -> nn.Module:
    """Keyword spotting: DS-CNN on (1, 49, 10) MFCCs, 12 classes."""
    return DSCNN()


def ic_resnet8() -> nn.Module:
    """Image classification: ResNet-8 on (3, 32, 32) CIFAR-10 images."""
    return ResNet8()


def vww_mobilenet() -> nn.Module:
    """Visual wake words: MobileNetV1 x0.25 on (3, 96, 96) images, person or not."""
    return MobileNetV1()


def ad_autoencoder() -> nn.Module:
    """Anomaly detection: the 640-128-8-128-640 autoencoder."""
    return DenseAutoencoder()


MLPERF_TINY: dict[str, Callable[[], nn.Module]] = {
    "kws_dscnn": kws_dscnn,
    "ic_resnet8": ic_resnet8,
    "vww_mobilenet": vww_mobilenet,
    "ad_autoencoder": ad_autoencoder,
}

# One sample's shape, NCHW without the batch (a vector: its length).
INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    "kws_dscnn": (1, 49, 10),
    "ic_resnet8": (3, 32, 32),
    "vww_mobilenet": (3, 96, 96),
    "ad_autoencoder": (640,),
}


def with_batchnorm_statistics(model: nn.Module) -> nn.Module:
    """``model`` in eval mode, each BatchNorm (1d or 2d) given statistics and
    an affine map that are not the identity (drawn from torch's generator),
    as training would leave them: a fold or a channel removal that ignores
    them then changes the output."""
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model.eval()


def random_weights(model: nn.Module, seed: int) -> nn.Module:
    """``model`` (changed in place) with weights drawn again from ``seed``,
    whatever the generator's state when it was built, and trained-looking
    BatchNorms (``with_batchnorm_statistics``), in eval mode: an untrained
    stand-in whose every layer, BatchNorm included, changes the output.

    Weights are He-normal (the reference's ``kernel_initializer`` for
    ResNet-8 and MobileNet): PyTorch's default shrinks the signal by a
    third per layer, so that after a dozen layers the BatchNorms' offsets
    alone set the output and every input gives the same bytes, which would
    make a bit-exactness test blind."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)):
            module.reset_parameters()
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return with_batchnorm_statistics(model)
