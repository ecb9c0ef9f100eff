"""Fixtures shared across the suite (tool requirements: toolchain_support.py)."""

import pytest


@pytest.fixture(scope="session")
def fashion():
    """Fashion-MNIST from Debian's dataset-fashion-mnist (installed by scripts/setup.sh)."""
    from edgegen.data.datasets import load_dataset

    return load_dataset()
