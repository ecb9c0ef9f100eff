"""lenet300 and lenet5 verified byte-exact on every emulated board, with
executed-instruction counts per inference and per layer."""

import pytest

from edgegen.firmware.boards import load_board
from edgegen.firmware.harness import run_harness
from edgegen.jobs.board_verify import verify_on_board
from edgegen.jobs.firmware_build import build_firmware
from firmware_helpers import board_vectors, check_verified_run, require_board_tools

# qemu-microbit (256 KB flash) holds neither dense LeNet: test_microbit_firmware.py.
EMULATED = ["qemu-mps2-an386", "qemu-mps2-an500", "qemu-mps2-an505", "qemu-mps2-an385", "qemu-virt-rv32"]
TEST_IMAGES = 16
RANDOM_VECTORS = 16


@pytest.mark.parametrize("board_name", EMULATED)
@pytest.mark.parametrize("model", ["lenet300", "lenet5"])
def test_bit_exact_on_emulated_board(qgraphs, fashion, tmp_path, model, board_name):
    board = load_board(board_name)
    require_board_tools(board, emulate=True)
    qgraph = qgraphs[model]
    vectors = board_vectors(qgraph, fashion, TEST_IMAGES, RANDOM_VECTORS)

    result = verify_on_board(qgraph, board, vectors, tmp_path)

    check_verified_run(result, board, qgraph, vectors)


def test_counts_repeat_exactly_and_views_cost_nothing(qgraphs, fashion, tmp_path):
    board = load_board("qemu-mps2-an386")
    require_board_tools(board, emulate=True)
    qgraph = qgraphs["lenet5"]
    build = build_firmware(qgraph, board, tmp_path / "fw")
    vectors = board_vectors(qgraph, fashion, 3, 3)

    first = run_harness(build, vectors, tmp_path / "one").instructions
    second = run_harness(build, vectors, tmp_path / "two").instructions

    assert first == second
    # flatten is a view: its hook follows the previous one directly, and
    # the marker's own cost is subtracted exactly.
    assert dict(first.per_layer)["flatten"] == 0
    assert first.marker_cost > 0


def test_outputs_differ_between_inputs(qgraphs, fashion, tmp_path):
    """Guards against a harness that writes the same bytes for every input."""
    board = load_board("qemu-virt-rv32")
    require_board_tools(board, emulate=True)
    qgraph = qgraphs["lenet300"]
    build = build_firmware(qgraph, board, tmp_path / "fw")
    run = run_harness(build, board_vectors(qgraph, fashion, 4, 4), tmp_path / "run")
    assert len({row.tobytes() for row in run.outputs}) > 1


BLOCKS = ["separable", "residual", "shuffle", "fire", "widefire", "softmax", "log_softmax",
          "counted_avg_pool"]
# The Cortex-M3 runs eg_dot.h's Thumb-2 assembly tile: its 1x1, grouped and 3x3
# filters here hold 2, 4, 8, 9, 27 and 72 values (shorter than one step, whole
# steps, and steps with a tail of 1 to 3).
THUMB2_BLOCKS = ["separable", "shuffle", "fire"]


@pytest.mark.parametrize(("model", "board_name"),
                         [(m, b) for b in ("qemu-mps2-an386", "qemu-virt-rv32") for m in BLOCKS]
                         + [(m, "qemu-mps2-an385") for m in THUMB2_BLOCKS])
def test_compact_network_blocks_are_bit_exact(small_qgraphs, fashion, tmp_path, model,
                                              board_name):
    """Depthwise, grouped, add, shuffle, concat, softmax and average pooling
    counting its padding on a DSP board and two portable ones (RISC-V C, M3
    assembly tile)."""
    board = load_board(board_name)
    require_board_tools(board, emulate=True)
    qgraph = small_qgraphs[model]
    vectors = board_vectors(qgraph, fashion, TEST_IMAGES, RANDOM_VECTORS)
    check_verified_run(verify_on_board(qgraph, board, vectors, tmp_path), board, qgraph, vectors)

