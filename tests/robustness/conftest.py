"""Fixtures of the robustness suite: a small data set, a user's model folder,
and a runner that checks the CLI's promises on every case."""

import sys
import textwrap
from pathlib import Path

import pytest
import torch
from idx_support import write_tiny_dataset

USER_MODELS = textwrap.dedent("""
    import sys
    import torch.nn as nn

    def net():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))

    def other_net():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU6(), nn.Linear(16, 10))

    def flatten_only():
        return nn.Sequential(nn.Flatten())

    def huge():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 100000))

    def exits():
        sys.exit(3)
""")

# Importing this module or calling f leaves a mark: the test asserts there is none.
EVIL = textwrap.dedent("""
    from pathlib import Path
    Path(__file__).with_name("EVIL_RAN").write_text("imported")

    def f():
        Path(__file__).with_name("EVIL_RAN").write_text("called")
""")

SLOW_CC = "#!/bin/sh\nsleep {seconds}\nexec gcc \"$@\"\n"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """An MNIST-format folder: 200 training and 60 test images."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tinydata"), 200, 60)


@pytest.fixture()
def user_dir(tmp_path, monkeypatch):
    """The user's working folder: their model module, a checkpoint of
    ``net``, a file of their own; the current directory of the test."""
    (tmp_path / "usermodels.py").write_text(USER_MODELS)
    (tmp_path / "evil.py").write_text(EVIL)
    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))
    torch.save(net.state_dict(), tmp_path / "net.pt")
    (tmp_path / "notes.txt").write_text("the user's notes")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("EDGEGEN_CACHE", str(tmp_path / ".cache"))
    yield tmp_path
    sys.modules.pop("usermodels", None)


@pytest.fixture()
def slow_cc(tmp_path_factory):
    """A C compiler that waits before compiling: a window in which a run
    is known to be in progress."""
    def make(seconds: float) -> Path:
        path = tmp_path_factory.mktemp("cc") / f"slowcc-{seconds}"
        path.write_text(SLOW_CC.format(seconds=seconds))
        path.chmod(0o755)
        return path
    return make
