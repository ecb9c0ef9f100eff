"""Every runtime_c/*.c compiles with zero warnings (-Werror) on every toolchain.

A missing compiler skips its case, unless EDGEGEN_REQUIRE_TOOLCHAINS=1 (CI),
where it fails (toolchain_support.require_tool).
"""

import subprocess

import pytest

from edgegen import paths
from edgegen.host.compiler import WARNING_FLAGS, runtime_sources
from toolchain_support import require_tool

TOOLCHAINS = {
    "gcc -O0": ("gcc", ["-O0"]),
    "gcc -O2": ("gcc", ["-O2"]),
    "gcc -O3": ("gcc", ["-O3"]),
    "clang -O2": ("clang", ["-O2"]),
    "clang -Oz": ("clang", ["-Oz"]),
    "cortex-m4": ("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-Os"]),
    "cortex-m4 dsp -O2": ("arm-none-eabi-gcc",
                          ["-mcpu=cortex-m4", "-mthumb", "-O2", "-DEG_KERNELS_DSP=1"]),
    "cortex-m33 dsp -Os": ("arm-none-eabi-gcc",
                           ["-mcpu=cortex-m33", "-mthumb", "-Os", "-DEG_KERNELS_DSP=1",
                            "-DEG_FIXED_ROUNDING=1"]),
    "cortex-m7 dsp -O3": ("arm-none-eabi-gcc",
                          ["-mcpu=cortex-m7", "-mthumb", "-O3", "-DEG_KERNELS_DSP=1",
                           "-DEG_FIXED_ROUNDING=0"]),
    "gcc dsp emulated": ("gcc", ["-O2", "-DEG_KERNELS_DSP=1", "-DEG_DSP_EMULATE"]),
    "cortex-m0": ("arm-none-eabi-gcc", ["-mcpu=cortex-m0", "-mthumb", "-Os"]),
    "rv32imac": ("riscv64-unknown-elf-gcc",
                 ["-march=rv32imac", "-mabi=ilp32", "-Os", "-ffreestanding"]),
}
PACKAGES = {"arm-none-eabi-gcc": "gcc-arm-none-eabi", "riscv64-unknown-elf-gcc": "gcc-riscv64-unknown-elf"}


@pytest.mark.parametrize("name", list(TOOLCHAINS))
def test_runtime_compiles_without_warnings(tmp_path, name):
    cc, flags = TOOLCHAINS[name]
    compiler = require_tool(cc, PACKAGES.get(cc, cc))
    sources = runtime_sources()
    assert sources, "no C sources in runtime_c/"
    command = [compiler, *WARNING_FLAGS, *flags, f"-I{paths.RUNTIME_DIR}", "-c",
               *map(str, sources)]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stderr == "", run.stderr  # not even a note
    assert sorted(p.name for p in tmp_path.glob("*.o")) == sorted(
        s.with_suffix(".o").name for s in sources
    )


def test_dsp_kernels_refuse_a_core_without_the_extension(tmp_path):
    """EG_KERNELS_DSP on a Cortex-M3 stops the build with a message that
    names the fix, rather than run C models of the instructions."""
    compiler = require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    source = paths.RUNTIME_DIR / "fully_connected.c"
    command = [compiler, *WARNING_FLAGS, "-mcpu=cortex-m3", "-mthumb", "-Os",
               "-DEG_KERNELS_DSP=1", f"-I{paths.RUNTIME_DIR}", "-c", str(source)]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode != 0
    assert "needs a core with the Arm DSP extension" in run.stderr
    assert "build the portable kernels" in run.stderr
