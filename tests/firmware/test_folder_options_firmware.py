"""The optimisation level, the kernel path and the model's own definitions
reach every compilation that the firmware folder's Makefile and
CMakeLists.txt run (rendered only: ``make -n`` and a CMake configure, no
cross compiler needed)."""

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgegen.firmware.boards import load_board
from edgegen.firmware.folder import golden_selftest_vectors, write_firmware_folder
from edgegen.jobs.firmware_build import FirmwareOptions
from edgegen.jobs.lower import lower
from qgraph_support import tiny_qgraph
from toolchain_support import require_tool

DSP_FLAG = "-DEG_KERNELS_DSP=1"


@pytest.fixture(scope="module")
def tiny():
    qgraph = tiny_qgraph()
    return qgraph, lower(qgraph)


def render(folder, tiny, board_name: str, opt: str, kernels: str):
    qgraph, lowered = tiny
    inputs = np.zeros((1, qgraph.tensor(qgraph.input).size), dtype=np.int8)
    selftest = golden_selftest_vectors(qgraph, inputs, "zeros")
    write_firmware_folder(folder, qgraph, load_board(board_name), lowered.sources,
                          lowered.memory.arena_size, selftest, opt=opt, kernels=kernels)
    return lowered.sources


def make_variable(makefile: str, name: str) -> str:
    match = re.search(rf"^{name} \?= ?(.*)$", makefile, re.MULTILINE)
    assert match, f"{name} ?= missing"
    return match.group(1).strip()


def c_compilations(folder, *make_args: str) -> list[str]:
    """The compiler command lines of ``make all``, printed by ``make -n``."""
    require_tool("make", "make")
    run = subprocess.run(["make", "-n", "-C", str(folder), *make_args, "all"],
                         capture_output=True, text=True, check=True)
    return [line for line in run.stdout.splitlines() if re.search(r" -c \S+\.c ", line)]


@pytest.mark.parametrize("board_name, opt, kernels", [
    ("qemu-mps2-an386", "-O2", "dsp"),
    ("qemu-mps2-an386", "-Os", "portable"),
    ("qemu-virt-rv32", "-O3", "portable"),
])
def test_makefile_records_and_applies_the_choice(tmp_path, tiny, board_name, opt, kernels):
    sources = render(tmp_path, tiny, board_name, opt, kernels)
    assert sources.define_flags  # the model's rounding, at least
    makefile = (tmp_path / "Makefile").read_text()
    assert make_variable(makefile, "OPT") == opt
    assert make_variable(makefile, "KERNELS") == (DSP_FLAG if kernels == "dsp" else "")
    assert "make KERNELS=" in makefile  # how to build the other path
    commands = c_compilations(tmp_path)
    # model, runtime, hooked model and board sources: every C compilation.
    assert any("model/runtime/" in c for c in commands) and any("hooked/" in c for c in commands)
    for command in commands:
        flags = command.split()
        assert opt in flags and all(d in flags for d in sources.define_flags), command
        assert (DSP_FLAG in flags) == (kernels == "dsp"), command


def test_make_variables_override_the_recorded_choice(tmp_path, tiny):
    render(tmp_path, tiny, "qemu-mps2-an386", "-Os", "dsp")
    for command in c_compilations(tmp_path, "OPT=-O3", "KERNELS="):
        flags = command.split()
        assert "-O3" in flags and "-Os" not in flags and DSP_FLAG not in flags, command


@pytest.mark.parametrize("kernels, cache", [("dsp", []), ("portable", []),
                                            ("dsp", ["-DEG_KERNELS_DSP=OFF", "-DEG_OPT=-O3"])])
def test_cmake_records_and_applies_the_choice(tmp_path, tiny, kernels, cache):
    require_tool("cmake", "cmake")
    require_tool("gcc", "gcc")
    folder = tmp_path / "fw"
    sources = render(folder, tiny, "nrf52840-dk", "-O2", kernels)
    text = (folder / "CMakeLists.txt").read_text()
    assert 'set(EG_OPT "-O2" CACHE STRING' in text
    option = re.search(r'^option\(EG_KERNELS_DSP ".*"\s+(ON|OFF)\)$', text, re.MULTILINE)
    assert option and option.group(1) == ("ON" if kernels == "dsp" else "OFF")
    project = tmp_path / "app"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(
        f"cmake_minimum_required(VERSION 3.13)\nproject(app C)\nadd_subdirectory({folder} tiny)\n")
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(project), "-B", str(build), "-DCMAKE_C_COMPILER=gcc",
                    "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", *cache], check=True, capture_output=True)
    commands = json.loads((build / "compile_commands.json").read_text())
    assert {Path(c["file"]).name for c in commands} >= {"tiny.c", "tiny_selftest.c", "conv2d.c"}
    opt = "-O3" if cache else "-O2"
    dsp = kernels == "dsp" and not cache
    for command in commands:
        flags = command["command"].split()
        assert opt in flags and all(d in flags for d in sources.define_flags), command
        assert (DSP_FLAG in flags) == dsp, command


def test_firmware_options_default_to_the_board_fields():
    assert FirmwareOptions().resolve(load_board("qemu-mps2-an386")) == FirmwareOptions("-O2", "dsp")
    assert FirmwareOptions().resolve(load_board("qemu-virt-rv32")) == FirmwareOptions("-O2", "portable")
    assert FirmwareOptions().resolve(load_board("qemu-microbit")) == FirmwareOptions("-Os", "portable")
    asked = FirmwareOptions("-O2", "portable")
    assert asked.resolve(load_board("qemu-mps2-an386")) == asked
