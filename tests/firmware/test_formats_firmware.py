"""Every storage format on every emulated architecture: the compressed
LeNet-5 shape (conv and fully connected layers, 8 % density, a shared
codebook) runs bit-exact under QEMU on the Cortex-M4F, RV32 and the
16 KB Cortex-M0, with each format forced on every layer; so does a
ShuffleNet unit (grouped and depthwise convolutions) on the M4F and RV32."""

import pytest

from edgegen.encode.storage import FORMATS
from edgegen.encode.storage_plan import FormatRequest
from edgegen.firmware.boards import load_board
from edgegen.jobs.board_verify import verify_on_board
from edgegen.jobs.lower import StorageChoice, lower
from compact_models import ShuffleUnit
from firmware_helpers import board_vectors, require_board_tools
from qgraph_support import compressed_like, module_qgraph, zoo_qgraph

BOARDS = ("qemu-mps2-an386", "qemu-virt-rv32", "qemu-microbit")


@pytest.fixture(scope="module")
def compressed_lenet5():
    return compressed_like(zoo_qgraph("lenet5"), density=0.08, values=31)


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "dense"])
@pytest.mark.parametrize("board_name", BOARDS)
def test_every_format_is_bit_exact_on_every_architecture(compressed_lenet5, fashion, tmp_path,
                                                         board_name, fmt):
    board = load_board(board_name)
    require_board_tools(board, emulate=True)
    vectors = board_vectors(compressed_lenet5, fashion, 3, 3)
    result = verify_on_board(compressed_lenet5, board, vectors, tmp_path,
                             storage=StorageChoice(FormatRequest(fmt), "speed"))
    assert result.bit_exact, result.comparison.line(board_name)
    assert result.ram_bytes <= board.ram_bytes


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("board_name", BOARDS[:2])
def test_grouped_and_depthwise_layers_in_every_format(fashion, tmp_path, board_name, fmt):
    """The compressed conv kernels with groups (ShuffleNet's grouped 1x1s,
    a grouped 3x3, a depthwise 3x3), and the dense grouped tile."""
    board = load_board(board_name)
    require_board_tools(board, emulate=True)
    qgraph = compressed_like(module_qgraph(ShuffleUnit, "shuffle"), density=0.3, values=15)
    vectors = board_vectors(qgraph, fashion, 3, 3)
    choice = StorageChoice(FormatRequest(fmt), "speed")
    assert set(lower(qgraph, choice).storage.formats().values()) == {fmt}
    result = verify_on_board(qgraph, board, vectors, tmp_path, storage=choice)
    assert result.bit_exact, result.comparison.line(board_name)


def test_cost_model_choice_fits_the_cortex_m0(compressed_lenet5, fashion, tmp_path):
    """LeNet-5's 14,400 B arena, its input and output, the conv scratch and
    the stack within the micro:bit's 16 KB, with the formats the cost model
    picks for size."""
    board = load_board("qemu-microbit")
    require_board_tools(board, emulate=True)
    vectors = board_vectors(compressed_lenet5, fashion, 2, 2)
    result = verify_on_board(compressed_lenet5, board, vectors, tmp_path,
                             storage=StorageChoice(FormatRequest(), "size"))
    assert result.bit_exact
    assert result.ram_bytes <= board.ram_bytes
