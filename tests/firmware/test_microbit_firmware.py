"""qemu-microbit: a Cortex-M0 (ARMv6-M: Thumb-1 only, no FPU, no divide,
unaligned accesses fault) with 256 KB of flash and 16 KB of RAM.

Models sized for it run bit-exact with instruction counts; a model whose
14,400 B arena leaves about 1 KB of RAM still runs, because the harness adds
no buffers of its own; the dense LeNets and an 18 KB activation are refused
with the budget error."""

import pytest

from edgegen.encode.storage_plan import FormatRequest
from edgegen.errors import UserError
from edgegen.firmware.boards import load_board
from edgegen.firmware.elf import ElfFile
from edgegen.firmware.harness import run_harness
from edgegen.ir import QReshape
from edgegen.jobs.board_verify import verify_on_board
from edgegen.jobs.firmware_build import build_firmware
from edgegen.jobs.lower import StorageChoice
from firmware_helpers import board_vectors, check_verified_run, require_board_tools

BOARD = "qemu-microbit"
TEST_IMAGES = 8
RANDOM_VECTORS = 8
# Dense int8 weights, as the budget statements below are about: --format auto
# may store a layer compressed instead (Huffman alone saves ~8 % of a trained
# LeNet-300-100, enough to squeeze it into 256 KB).
DENSE = StorageChoice(FormatRequest("dense"))


def microbit(emulate: bool = True):
    board = load_board(BOARD)
    require_board_tools(board, emulate=emulate)
    return board


@pytest.mark.parametrize("model", ["small_conv", "lenet5_fc64"])
def test_bit_exact_on_the_cortex_m0(small_qgraphs, fashion, tmp_path, model):
    board = microbit()
    qgraph = small_qgraphs[model]
    vectors = board_vectors(qgraph, fashion, TEST_IMAGES, RANDOM_VECTORS)

    result = verify_on_board(qgraph, board, vectors, tmp_path)

    check_verified_run(result, board, qgraph, vectors)
    # A view costs nothing: the marker's own cost is subtracted exactly on
    # Thumb-1 too (where a negative argument would take two instructions).
    views = [node.name for node in qgraph.nodes if isinstance(node.op, QReshape)]
    assert views and all(dict(result.instructions.per_layer)[name] == 0 for name in views)


def test_counts_repeat_exactly_on_the_cortex_m0(small_qgraphs, fashion, tmp_path):
    board = microbit()
    qgraph = small_qgraphs["small_conv"]
    build = build_firmware(qgraph, board, tmp_path / "fw")
    vectors = board_vectors(qgraph, fashion, 2, 2)

    first = run_harness(build, vectors, tmp_path / "one")
    second = run_harness(build, vectors, tmp_path / "two")

    assert first.instructions == second.instructions and first.instructions.marker_cost > 0
    assert (first.outputs == second.outputs).all()


def test_a_full_ram_leaves_the_harness_enough(small_qgraphs, tmp_path):
    """LeNet-5's arena (14,400 B) holds the input and output too (they fit
    beside conv1's output and the last layers while those are alive; 794 B
    more as separate buffers), leaving about 1.5 KB of the 16 KB: the
    harness reads each vector through semihosting into the model's input
    in the arena and writes the output from there, so its static RAM is
    exactly the footprint image's."""
    board = microbit(emulate=False)
    build = build_firmware(small_qgraphs["lenet5_fc64"], board, tmp_path / "fw", storage=DENSE)

    f = build.footprint
    assert f.io_in_arena and (f.arena_bytes, f.io_bytes) == (14_400, 0)
    footprint = ElfFile(build.images["footprint"]).totals()
    harness = ElfFile(build.images["harness"]).totals()
    assert harness.ram == footprint.ram  # data + bss: arena, input, output and nothing else
    assert footprint.ram <= f.arena_bytes + f.io_bytes + 8  # alignment padding only
    _, harness_ram = build.image_sizes["harness"]  # static RAM + stack estimate
    assert harness_ram <= board.ram_bytes
    assert harness_ram - f.ram_bytes < 64  # the harness's stack: a few words more than the model's
    assert board.ram_bytes - harness_ram > 512  # what is left, stack estimate included


@pytest.mark.parametrize("model", ["lenet300", "lenet5"])
def test_the_dense_lenets_do_not_fit_its_flash(qgraphs, tmp_path, model):
    board = microbit(emulate=False)
    with pytest.raises(UserError) as error:
        build_firmware(qgraphs[model], board, tmp_path / "fw", storage=DENSE)
    message = str(error.value)
    assert message.startswith(f"{model} does not fit qemu-microbit: flash ")
    first = message.splitlines()[0]
    assert "of 262,144 B (over by" in first and "RAM" not in first  # RAM would fit
    assert "Biggest flash consumers:" in message and "edgegen compress" in message
    assert not (tmp_path / "fw").exists() and not list(tmp_path.iterdir())


def test_an_activation_over_its_ram_is_refused(small_qgraphs, tmp_path):
    board = microbit(emulate=False)
    with pytest.raises(UserError) as error:
        build_firmware(small_qgraphs["wide_conv"], board, tmp_path / "fw", storage=DENSE)
    message = str(error.value)
    first = message.splitlines()[0]
    assert first.startswith("wide_conv does not fit qemu-microbit: RAM ")
    assert "of 16,384 B (over by" in first and "flash" not in first
    lines = message.splitlines()
    biggest = lines[lines.index("Biggest RAM consumers:") + 1]
    assert "output 24x24x32 int8" in biggest and "18,432 B" in biggest
    assert not (tmp_path / "fw").exists()
