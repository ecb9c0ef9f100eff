"""Which external tools and data a test needs, and what to do when one is missing.

A missing compiler, emulator or data set skips the test on a developer's
machine and fails it in CI, where .ci/run sets EDGEGEN_REQUIRE_TOOLCHAINS=1:
there a skipped check would be a check that silently never ran.
"""

import os
import shutil
from pathlib import Path

import pytest

REQUIRE_TOOLCHAINS = os.environ.get("EDGEGEN_REQUIRE_TOOLCHAINS") == "1"


def missing(message: str) -> None:
    """Skip the calling test because ``message`` names something missing;
    fail it instead when CI requires everything (EDGEGEN_REQUIRE_TOOLCHAINS=1)."""
    if REQUIRE_TOOLCHAINS:
        pytest.fail(message + " and EDGEGEN_REQUIRE_TOOLCHAINS=1")
    pytest.skip(message)


def require_tool(name: str, package: str) -> str:
    """The path of ``name``; skip when missing, unless CI requires every tool."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} not found (apt-get install {package})")
    return path


def require_dataset() -> Path:
    """The default data set's folder (Fashion-MNIST from Debian's
    dataset-fashion-mnist); skip when it is missing, unless CI requires it."""
    from edgegen.data.datasets import DEFAULT_DATA_DIR

    if not DEFAULT_DATA_DIR.is_dir():
        missing(f"Fashion-MNIST not found in {DEFAULT_DATA_DIR} "
                "(apt-get install dataset-fashion-mnist)")
    return DEFAULT_DATA_DIR
