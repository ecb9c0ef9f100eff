"""Inputs the CLI tests share: a small data set and an untrained LeNet-300."""

import pytest
import torch

from edgegen.zoo import models
from idx_support import write_tiny_dataset


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A small MNIST-format folder: 300 training and 100 test images."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tinymnist"), 300, 100)


@pytest.fixture(scope="session")
def lenet300_ckpt(tmp_path_factory):
    """A LeNet-300-100 checkpoint with seeded random weights."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "lenet300.pt"
    torch.save(models.lenet300().state_dict(), path)
    return path
