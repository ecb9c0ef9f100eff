"""Inputs the CLI tests share: a small data set and untrained LeNet-300 and LeNet-5."""

import pytest
import torch

from edgegen.zoo import models
from idx_support import write_tiny_dataset


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A small MNIST-format folder: 300 training and 100 test images."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tinymnist"), 300, 100)


def _random_checkpoint(factory, folder):
    torch.manual_seed(0)
    path = folder / f"{factory.__name__}.pt"
    torch.save(factory().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def lenet300_ckpt(tmp_path_factory):
    """A LeNet-300-100 checkpoint with seeded random weights."""
    return _random_checkpoint(models.lenet300, tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="session")
def lenet5_ckpt(tmp_path_factory):
    """A LeNet-5 checkpoint with seeded random weights."""
    return _random_checkpoint(models.lenet5, tmp_path_factory.mktemp("ckpt"))


@pytest.fixture()
def user_module(tmp_path, monkeypatch):
    """``user_module(name, source)``: a model module of the user's, written
    to the test's folder as ``name.py``, the folder made the current one and
    put on the path (as a user runs edgegen beside their code); the folder."""
    def write(name: str, source: str):
        (tmp_path / f"{name}.py").write_text(source)
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))
        return tmp_path
    return write
