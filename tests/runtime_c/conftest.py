"""Fixtures for the C runtime tests: the runtime, built once per session."""

import pytest

from edgegen.host.compiler import build_runtime_library

from .support import CKernels


@pytest.fixture(scope="session")
def runtime(tmp_path_factory):
    """(ffi, lib) of the whole runtime_c/ compiled into a shared library."""
    ffi, lib = build_runtime_library(tmp_path_factory.mktemp("runtime"))
    yield ffi, lib


@pytest.fixture(scope="session")
def ck(runtime):
    """The C kernels behind the golden model's numpy signatures."""
    return CKernels(*runtime)
