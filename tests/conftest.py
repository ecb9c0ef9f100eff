"""Fixtures shared across the suite (tool requirements: toolchain_support.py)."""

import pytest
from hypothesis import settings

# No per-example wall-clock deadline anywhere: on a loaded 2-core CI machine a
# fast property test can take a few hundred ms per example, which says nothing
# about its correctness (a slow test is a benchmark's concern, not a failure).
settings.register_profile("edgegen", deadline=None)
settings.load_profile("edgegen")


@pytest.fixture(scope="session")
def fashion():
    """Fashion-MNIST from Debian's dataset-fashion-mnist (installed by scripts/setup.sh)."""
    from edgegen.data.datasets import load_dataset

    return load_dataset()
