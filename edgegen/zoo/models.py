"""The model zoo: small classic networks for 28×28 grayscale images.

Each factory returns a fresh, randomly initialised ``nn.Sequential`` whose
children have readable names (``conv1``, ``pool1``, ``fc1`` …), so that module
paths in compression specs and reports name real layers.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from torch import nn


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


ZOO: dict[str, Callable[[], nn.Module]] = {
    "lenet300": lenet300,
    "lenet5": lenet5,
}
