"""Fixtures shared across the suite."""

import os
import shutil

import pytest

REQUIRE_TOOLCHAINS = os.environ.get("EDGEGEN_REQUIRE_TOOLCHAINS") == "1"


def require_tool(name: str, package: str) -> str:
    """The path of ``name``; skip when missing, unless CI requires every tool."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found (apt-get install {package})"
        if REQUIRE_TOOLCHAINS:
            pytest.fail(message + " and EDGEGEN_REQUIRE_TOOLCHAINS=1")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def fashion():
    """Fashion-MNIST from Debian's dataset-fashion-mnist (installed by scripts/setup.sh)."""
    from edgegen.data.datasets import load_dataset

    return load_dataset()
