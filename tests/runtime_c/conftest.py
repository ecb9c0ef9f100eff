"""Fixtures for the C runtime tests: the runtime, built once per session
for each kernel variant (every kernel test runs on both)."""

import pytest

from edgegen.host.compiler import build_runtime_library

from .support import CKernels

# The portable C, and the Arm DSP kernels with the instructions modelled in
# C (eg_dsp.h): the same tests check both against the golden model.
VARIANTS = {
    "portable": (),
    "dsp": ("EG_KERNELS_DSP=1", "EG_DSP_EMULATE"),
}


@pytest.fixture(scope="session", params=sorted(VARIANTS))
def runtime(request, tmp_path_factory):
    """(ffi, lib) of the whole runtime_c/ compiled into a shared library."""
    workdir = tmp_path_factory.mktemp(f"runtime-{request.param}")
    ffi, lib = build_runtime_library(workdir, defines=VARIANTS[request.param])
    yield ffi, lib


@pytest.fixture(scope="session")
def ck(runtime):
    """The C kernels behind the golden model's numpy signatures."""
    return CKernels(*runtime)
