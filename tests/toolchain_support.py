"""Which external tools a test needs, and what to do when one is missing.

A missing compiler or emulator skips the test on a developer's machine and
fails it in CI, where .ci/run sets EDGEGEN_REQUIRE_TOOLCHAINS=1: there a
skipped check would be a check that silently never ran.
"""

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
