"""Build-only size checks for every real board, the over-budget error, and
the firmware folder's own build files (Makefile, CMakeLists.txt)."""

import subprocess

import pytest

from edgegen.errors import UserError
from edgegen.firmware.boards import load_board
from edgegen.firmware.elf import ElfFile
from edgegen.encode.storage_plan import FormatRequest
from edgegen.jobs.firmware_build import build_firmware, measure_footprint
from edgegen.jobs.lower import StorageChoice
from firmware_helpers import require_board_tools, require_tool

FITTING = ["nucleo-f411re", "stm32f746g-disco", "nrf52840-dk", "rp2040-pico", "esp32-c3"]
# Dense int8 constants of the models: weights + biases + requantization.
MIN_CONSTANT_BYTES = {"lenet300": 266_000, "lenet5": 431_000}


@pytest.mark.parametrize("board_name", FITTING)
@pytest.mark.parametrize("model", ["lenet300", "lenet5"])
def test_real_board_build_is_size_checked(qgraphs, tmp_path, model, board_name):
    board = load_board(board_name)
    require_board_tools(board)

    build = build_firmware(qgraphs[model], board, tmp_path / "fw")

    f = build.footprint
    assert f.flash_bytes == f.text + f.rodata + f.data
    assert f.ram_bytes == f.data + f.bss + f.stack.bytes
    assert MIN_CONSTANT_BYTES[model] < f.rodata and f.flash_bytes <= board.flash_bytes
    assert f.arena_bytes + f.io_bytes <= f.bss and f.ram_bytes <= board.ram_bytes
    assert 64 <= f.stack.bytes < 1024 and f.stack.path[0] in ("Reset_Handler", "eg_startup")
    assert set(build.images) == {"footprint", "selftest"}  # nothing to emulate
    assert all(path.is_file() for path in build.images.values())
    # The self-test image carries its golden vectors on top of the model.
    assert build.image_sizes["selftest"][0] > f.flash_bytes
    folder = tmp_path / "fw"
    for name in ("Makefile", "CMakeLists.txt", "README.md", f"model/{model}_selftest.c",
                 f"model/{model}_selftest.h", "board/linker.ld", f"build/lib{model}.a"):
        assert (folder / name).is_file(), name
    assert "eg_board_log" in (folder / "README.md").read_text()


@pytest.mark.parametrize("model", ["lenet300", "lenet5"])
def test_over_budget_names_the_consumers(qgraphs, tmp_path, model):
    board = load_board("stm32l031")
    require_board_tools(board)
    with pytest.raises(UserError) as error:
        build_firmware(qgraphs[model], board, tmp_path / "fw")
    message = str(error.value)
    assert message.startswith(f"{model} does not fit stm32l031: flash ")
    assert "of 32,768 B (over by" in message
    lines = message.splitlines()
    biggest = lines[lines.index("Biggest flash consumers:") + 1]
    assert "fc1: weights, bias and requantization" in biggest
    assert "edgegen compress" in message and "codebook" in message
    if model == "lenet5":  # its RAM fits the 8 KB: conv1 and conv2 run fused with their pools
        assert "RAM" not in lines[0]
    assert not (tmp_path / "fw").exists() and not list(tmp_path.iterdir())


def test_measure_footprint_reports_without_failing(qgraphs):
    board = load_board("stm32l031")
    require_board_tools(board)
    report = measure_footprint(qgraphs["lenet5"], board)
    assert not report.fits and len(report.problems) == 1  # flash; RAM fits (fused convolutions)
    assert report.footprint.ram_bytes <= board.ram_bytes
    assert report.footprint.flash_bytes > 400_000
    assert report.flash_consumers[0].layer == "fc1"


@pytest.mark.parametrize("board_name", ["qemu-mps2-an386", "esp32-c3"])
def test_makefile_rebuilds_without_a_single_warning(qgraphs, tmp_path, board_name):
    board = load_board(board_name)
    require_board_tools(board)
    build = build_firmware(qgraphs["lenet5"], board, tmp_path / "fw")
    sizes_before = {name: ElfFile(path).totals() for name, path in build.images.items()}

    subprocess.run(["make", "-C", str(build.folder), "clean"], check=True, capture_output=True)
    run = subprocess.run(["make", "-C", str(build.folder), "-j2", "all"], capture_output=True, text=True)

    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # -Werror and --fatal-warnings: not even a note
    assert {name: ElfFile(path).totals() for name, path in build.images.items()} == sizes_before


def test_elf_sizes_match_binutils(qgraphs, tmp_path):
    board = load_board("rp2040-pico")
    require_board_tools(board)
    build = build_firmware(qgraphs["lenet300"], board, tmp_path / "fw")
    text = subprocess.run([board.tool("size"), "-A", str(build.images["footprint"])],
                          capture_output=True, text=True, check=True).stdout
    sections = {line.split()[0]: int(line.split()[1]) for line in text.splitlines()
                if line.startswith(".") and len(line.split()) == 3}
    totals = ElfFile(build.images["footprint"]).totals()
    assert totals.text == sections[".text"]
    assert totals.rodata == sections[".vectors"] + sections[".rodata"] + sections.get(".ARM.exidx", 0)
    assert totals.bss == sections[".bss"]


def test_cmake_library_and_selftest_on_the_host(qgraphs, tmp_path):
    """The folder drops into a CMake project: build it with the host
    compiler and run the self-test there (it must PASS off-target too).
    The board's DSP kernels need its core: the host builds the portable C,
    switched with the folder's EG_KERNELS_DSP cache variable."""
    require_tool("cmake", "cmake")
    require_tool("gcc", "gcc")
    board = load_board("nrf52840-dk")
    require_board_tools(board)
    build_firmware(qgraphs["lenet300"], board, tmp_path / "fw")
    project = tmp_path / "app"
    project.mkdir()
    (project / "main.c").write_text(
        '#include <stdio.h>\n#include "lenet300_selftest.h"\n'
        "static void print(const char *text) { fputs(text, stdout); }\n"
        "int main(void) { return lenet300_selftest(print); }\n")
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nproject(app C)\n"
        f"add_subdirectory({tmp_path / 'fw'} lenet300)\n"
        "add_executable(app main.c)\ntarget_link_libraries(app PRIVATE lenet300_selftest)\n")
    build_dir = tmp_path / "cmake-build"
    subprocess.run(["cmake", "-S", str(project), "-B", str(build_dir), "-DCMAKE_C_COMPILER=gcc",
                    "-DEG_KERNELS_DSP=OFF"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build_dir)], check=True, capture_output=True)
    run = subprocess.run([str(build_dir / "app")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    assert run.stdout == "lenet300 selftest: PASS (4 vectors, every output byte equal)\n"


@pytest.mark.parametrize("fmt, described", [("dense", "input windows of two output pixels"),
                                            ("sparse", "one decoded filter")])
def test_conv_scratch_is_described_by_its_format(qgraphs, fmt, described):
    """The RAM list says what a convolution's scratch holds: the dense
    kernel's im2col windows, a compressed kernel's decoded filter."""
    board = load_board("qemu-mps2-an386")
    require_board_tools(board)
    report = measure_footprint(qgraphs["lenet5"], board,
                               storage=StorageChoice(FormatRequest(fmt), "size"))
    scratch = [c for c in report.ram_consumers if "scratch" in c.what]
    assert {c.layer for c in scratch} == {"conv1", "conv2"}
    assert all(described in c.what for c in scratch)


def test_a_pointwise_scratch_is_described_as_widened_pixels():
    """A dense 1x1 convolution's scratch holds two input pixels widened to
    16 bits, not im2col windows; a 3x3's holds the windows."""
    from compact_models import FireNet
    from qgraph_support import module_qgraph

    board = load_board("qemu-mps2-an386")
    require_board_tools(board)
    report = measure_footprint(module_qgraph(FireNet, "fire"), board,
                               storage=StorageChoice(FormatRequest("dense"), "size"))
    described = {c.layer: c.what for c in report.ram_consumers if "scratch" in c.what}
    assert "widened to 16 bits" in described["expand1"]
    assert "im2col" in described["expand3"]
