"""Fixtures for the board tests: small quantized models, a private cache."""

import pytest
import torch
from torch import nn

from compact_models import FireNet, ResidualNet, ShuffleUnit, WideFireNet, separable_net
from edgegen.jobs.quantize import QuantizeOptions, quantize_model
from edgegen.zoo import models

CALIBRATION_SAMPLES = 100


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Build the QEMU plugin into a cache of these tests, not the user's
    (module scope: other test folders keep the real cache)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGEGEN_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def qgraphs(fashion):
    """lenet300 and lenet5 with random weights (seed 0), quantized: the
    arithmetic and the sizes are those of trained models."""
    graphs = {}
    for name in ("lenet300", "lenet5"):
        torch.manual_seed(0)
        model = getattr(models, name)().eval()
        options = QuantizeOptions(calib_samples=CALIBRATION_SAMPLES)
        graphs[name] = quantize_model(model, name, fashion, options)
    return graphs


def small_conv() -> nn.Sequential:
    """Two small convolutions and a classifier: fits any board; both
    convolutions run fused with their pooling (1 KB arena, 2.9 KB unfused)."""
    return nn.Sequential(nn.Conv2d(1, 4, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 8, 5),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10))


def lenet5_fc64() -> nn.Sequential:
    """LeNet-5's convolutions with a 64-unit first classifier layer: 80 KB of
    dense weights instead of 433 KB. The first pooling's windows overlap
    (3x3, stride 2, padded: the same 12x12 output), so conv1 does not run
    fused and its whole 24x24x20 output exists: a 14,400 B arena, as
    LeNet-5's before fusion (fusing conv2 would not lower that peak, so it
    is not fused either)."""
    return nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(3, stride=2, padding=1),
                         nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(800, 64), nn.ReLU(), nn.Linear(64, 10))


def wide_conv() -> nn.Sequential:
    """A first convolution with 32 filters: an 18 KB activation (its pooling
    windows overlap, so it is not fused away), 46 KB of weights."""
    return nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1),
                         nn.Flatten(), nn.Linear(12 * 12 * 32, 10))


def small_conv_softmax() -> nn.Sequential:
    """small_conv ending in a softmax: TFLite's int8 SOFTMAX on the board."""
    return nn.Sequential(*small_conv(), nn.Softmax(dim=1))


def small_conv_log_softmax() -> nn.Sequential:
    """small_conv ending in log_softmax: TFLite's int8 LOG_SOFTMAX."""
    return nn.Sequential(*small_conv(), nn.LogSoftmax(dim=1))


def counted_avg_pools() -> nn.Sequential:
    """AvgPool2d with padding and count_include_pad=True (PyTorch's default):
    a 3x3/2 whose ceil_mode overhang is not counted, then a 2x2/2 after a
    convolution (fusable with it)."""
    return nn.Sequential(nn.Conv2d(1, 8, 5, stride=2), nn.ReLU(),
                         nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),  # 12 -> 7
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AvgPool2d(2, stride=2, padding=1),  # 7 -> 4
                         nn.Flatten(), nn.Linear(4 * 4 * 8, 10))


SMALL_MODELS = {"small_conv": small_conv, "lenet5_fc64": lenet5_fc64, "wide_conv": wide_conv,
                "separable": separable_net, "residual": ResidualNet, "shuffle": ShuffleUnit,
                "fire": FireNet, "widefire": WideFireNet, "softmax": small_conv_softmax,
                "log_softmax": small_conv_log_softmax, "counted_avg_pool": counted_avg_pools}


@pytest.fixture(scope="session")
def small_qgraphs(fashion):
    """Models sized for a 256 KB / 16 KB part, random weights (seed 0), quantized."""
    graphs = {}
    for name, factory in SMALL_MODELS.items():
        torch.manual_seed(0)
        options = QuantizeOptions(calib_samples=CALIBRATION_SAMPLES)
        graphs[name] = quantize_model(factory().eval(), name, fashion, options)
    return graphs
