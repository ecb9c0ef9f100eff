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
