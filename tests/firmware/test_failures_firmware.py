"""The harness can fail: corrupted output, hangs, crashes, a failing
self-test, missing tools and compiler errors are all reported clearly."""

import numpy as np
import pytest

from edgegen.errors import UserError
from edgegen.firmware.boards import load_board
from edgegen.firmware.cross import run_make
from edgegen.firmware.folder import SelftestVectors, write_selftest
from edgegen.firmware.harness import run_harness, run_selftest, split_marker_counts
from edgegen.firmware.plugin import read_marker_counts
from edgegen.firmware.qemu import FirmwareRunError, Timeouts
from edgegen.firmware.vectors import golden_outputs, random_vectors
from edgegen.jobs.board_verify import verify_firmware, verify_on_board
from edgegen.jobs.firmware_build import build_firmware
from firmware_helpers import require_board_tools

SHORT = Timeouts(total=60, stall=3)


def emulated(name: str):
    board = load_board(name)
    require_board_tools(board, emulate=True)
    return board


def test_corrupted_output_is_a_mismatch_at_its_position(qgraphs, tmp_path):
    board = emulated("qemu-mps2-an386")
    qgraph = qgraphs["lenet300"]
    build = build_firmware(qgraph, board, tmp_path / "fw", extra_cflags=("-DEG_HARNESS_CORRUPT_VECTOR=2",))

    result = verify_firmware(build, qgraph, random_vectors(qgraph, 5), tmp_path / "run")

    assert not result.bit_exact
    comparison = result.comparison
    assert comparison.mismatched_vectors == 1
    assert (comparison.first.vector, comparison.first.byte) == (2, 0)
    assert comparison.first.got == comparison.first.expected ^ 1
    assert "MISMATCH on 1 of 5 vectors" in result.lines()[0]


@pytest.mark.parametrize("board_name", ["qemu-mps2-an386", "qemu-virt-rv32"])
def test_a_hang_is_stopped_by_the_watchdog(qgraphs, tmp_path, board_name):
    board = emulated(board_name)
    qgraph = qgraphs["lenet300"]
    build = build_firmware(qgraph, board, tmp_path / "fw", extra_cflags=("-DEG_HARNESS_HANG",))
    with pytest.raises(FirmwareRunError, match="no progress for 3 s.*hangs"):
        run_harness(build, random_vectors(qgraph, 3), tmp_path / "run", timeouts=SHORT)


def test_the_overall_time_limit_holds(qgraphs, tmp_path):
    board = emulated("qemu-mps2-an386")
    qgraph = qgraphs["lenet300"]
    build = build_firmware(qgraph, board, tmp_path / "fw", extra_cflags=("-DEG_HARNESS_HANG",))
    with pytest.raises(FirmwareRunError, match="no exit within 2 s"):
        run_harness(build, random_vectors(qgraph, 3), tmp_path / "run", timeouts=Timeouts(total=2, stall=60))


@pytest.mark.parametrize("board_name", ["qemu-mps2-an385", "qemu-virt-rv32"])
def test_a_crash_is_reported_as_a_crash(qgraphs, tmp_path, board_name):
    board = emulated(board_name)
    qgraph = qgraphs["lenet300"]
    build = build_firmware(qgraph, board, tmp_path / "fw", extra_cflags=("-DEG_HARNESS_CRASH",))
    with pytest.raises(FirmwareRunError, match="exited with status 10: the firmware crashed"):
        run_harness(build, random_vectors(qgraph, 3), tmp_path / "run", timeouts=SHORT)


def test_a_failing_selftest_names_the_first_mismatch(qgraphs, tmp_path):
    board = emulated("qemu-mps2-an505")
    qgraph = qgraphs["lenet300"]
    inputs = random_vectors(qgraph, 3, seed=7)
    build = build_firmware(qgraph, board, tmp_path / "fw", vectors=inputs, vectors_provenance="3 random")
    passed = run_selftest(build, tmp_path / "pass")
    assert passed == "lenet300 selftest: PASS (3 vectors, every output byte equal)"

    wrong = golden_outputs(qgraph, inputs).copy()
    expected = int(wrong[1, 3]) + (1 if wrong[1, 3] < 127 else -1)
    got = int(wrong[1, 3])
    wrong[1, 3] = expected
    write_selftest(build.folder, qgraph, build.prefix, build.footprint.arena_bytes,
                   SelftestVectors(inputs, wrong, "3 random, one output altered"),
                   io_in_arena=build.footprint.io_in_arena)
    run_make(build.folder, board, ["build/selftest.elf"])

    line = run_selftest(build, tmp_path / "fail")
    assert line == f"lenet300 selftest: FAIL at vector 1, byte 3: expected {expected}, got {got}"


def board_file_variant(tmp_path, source: str, name: str, old: str, new: str):
    text = load_board(source).path.read_text()
    text = text.replace(f'name = "{source}"', f'name = "{name}"')
    assert old in text
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace(old, new))
    return load_board(path)


def test_missing_qemu_names_its_package(qgraphs, tmp_path):
    board = board_file_variant(tmp_path, "qemu-mps2-an386", "no-qemu", 'binary = "qemu-system-arm"',
                               'binary = "qemu-system-edgegen-missing"')
    message = r"qemu-system-edgegen-missing not found.*apt-get install qemu-system-arm"
    with pytest.raises(UserError, match=message):
        verify_on_board(qgraphs["lenet300"], board, random_vectors(qgraphs["lenet300"], 2), tmp_path / "w")


def test_missing_cross_compiler_names_its_package(qgraphs, tmp_path):
    board = board_file_variant(tmp_path, "nucleo-f411re", "no-gcc", 'toolchain = "arm-none-eabi"',
                               'toolchain = "edgegen-missing-eabi"')
    message = r"edgegen-missing-eabi-gcc not found.*apt-get install gcc-arm-none-eabi"
    with pytest.raises(UserError, match=message):
        build_firmware(qgraphs["lenet300"], board, tmp_path / "fw")
    assert not (tmp_path / "fw").exists()


def test_real_boards_cannot_be_emulated(qgraphs, tmp_path):
    with pytest.raises(UserError, match="nucleo-f411re is not emulated.*self-test"):
        verify_on_board(qgraphs["lenet300"], "nucleo-f411re", random_vectors(qgraphs["lenet300"], 2),
                        tmp_path)


def test_unknown_board_in_build(qgraphs, tmp_path):
    with pytest.raises(UserError, match="unknown board 'nucleo'.*nucleo-f411re"):
        build_firmware(qgraphs["lenet300"], "nucleo", tmp_path / "fw")


def test_compiler_errors_are_quoted(qgraphs, tmp_path):
    board = load_board("nucleo-f411re")
    require_board_tools(board)
    with pytest.raises(UserError, match=r"failed:\n.*edgegen_missing_header\.h"):
        build_firmware(qgraphs["lenet300"], board, tmp_path / "fw",
                       extra_cflags=("-include", "edgegen_missing_header.h"))
    assert not (tmp_path / "fw").exists()
    assert not list(tmp_path.glob(".fw.tmp-*"))


def test_existing_folder_needs_force(qgraphs, tmp_path):
    (tmp_path / "fw").mkdir()
    with pytest.raises(UserError, match="already exists"):
        build_firmware(qgraphs["lenet300"], "nucleo-f411re", tmp_path / "fw")


def test_marker_counts_are_split_per_layer():
    # cost 3; vector 0: 10 before, layers at +20 and +103, after at +110.
    hits = (0, 3, 10, 30, 113, 120)
    counts = split_marker_counts(hits, 1, ("a", "b"), "-Os")
    assert counts.marker_cost == 3
    assert counts.per_layer == (("a", 17), ("b", 80))
    assert counts.per_vector == (110 - 3 * 3,)
    assert counts.call_overhead == 4


def test_missing_marker_calls_are_an_error():
    with pytest.raises(FirmwareRunError, match="saw 5 marker calls, expected 6"):
        split_marker_counts((0, 3, 10, 30, 113), 1, ("a", "b"), "-Os")


def test_damaged_count_files_are_errors(tmp_path):
    with pytest.raises(UserError, match="wrote no counts.txt"):
        read_marker_counts(tmp_path / "counts.txt")
    (tmp_path / "counts.txt").write_text("total 12\nhits 3\n1\n2\n")
    with pytest.raises(UserError, match="holds 2 marker counts, its header says 3"):
        read_marker_counts(tmp_path / "counts.txt")
    (tmp_path / "counts.txt").write_text("garbage")
    with pytest.raises(UserError, match="not a complete instruction-count record"):
        read_marker_counts(tmp_path / "counts.txt")


def test_wrong_vectors_are_refused(qgraphs):
    with pytest.raises(ValueError, match="must be int8"):
        golden_outputs(qgraphs["lenet300"], np.zeros((2, 784), np.float32))
    with pytest.raises(ValueError, match="not a batch of inputs of 784 values"):
        golden_outputs(qgraphs["lenet300"], np.zeros((2, 100), np.int8))
