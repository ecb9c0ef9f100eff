"""Plain helpers of the board tests (fixtures are in conftest.py)."""

import numpy as np

from edgegen.firmware.boards import Board
from edgegen.firmware.qemu import multiply_accumulates
from edgegen.firmware.vectors import verification_vectors
from edgegen.jobs.quantize import int8_inputs
from toolchain_support import require_tool


def require_board_tools(board: Board, emulate: bool = False) -> None:
    """Skip (or fail in CI) when the board's compiler or emulator is missing."""
    require_tool(board.tool("gcc"), board.toolchain_package)
    require_tool("make", "make")
    if emulate:
        require_tool(board.qemu.binary, board.qemu.package)


def board_vectors(qgraph, fashion, images: int, random: int, seed: int = 0) -> np.ndarray:
    """The first ``images`` test-set images, then ``random`` int8 inputs."""
    return verification_vectors(qgraph, int8_inputs(qgraph, fashion, fashion.test_inputs[:images]),
                                random, seed)


def check_verified_run(result, board: Board, qgraph, vectors) -> None:
    """What every board verification must show: bit-exact outputs and
    self-test, per-layer counts for every layer, sizes within the board."""
    assert result.comparison.bit_exact, result.comparison.line(board.name)
    assert result.vectors == len(vectors)
    assert result.selftest.endswith("PASS (4 vectors, every output byte equal)")
    assert result.bit_exact
    counts = result.instructions
    assert counts.opt == f"-{board.opt}" and len(counts.per_vector) == len(vectors)
    assert [name for name, _ in counts.per_layer] == [node.name for node in qgraph.nodes]
    # Every multiply-accumulate costs at least one instruction; the layers
    # account for all but a few instructions of an inference.
    assert counts.total >= multiply_accumulates(qgraph)
    assert 0 <= counts.call_overhead < 50
    assert 0 < result.flash_bytes <= board.flash_bytes and 0 < result.ram_bytes <= board.ram_bytes
