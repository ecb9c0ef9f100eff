"""Plain helpers of the board tests (fixtures are in conftest.py)."""

import numpy as np

from edgegen.firmware.boards import Board
from edgegen.firmware.vectors import verification_vectors
from toolchain_support import require_tool


def require_board_tools(board: Board, emulate: bool = False) -> None:
    """Skip (or fail in CI) when the board's compiler or emulator is missing."""
    require_tool(board.tool("gcc"), board.toolchain_package)
    require_tool("make", "make")
    if emulate:
        require_tool(board.qemu.binary, board.qemu.package)


def board_vectors(qgraph, fashion, images: int, random: int, seed: int = 0) -> np.ndarray:
    """The first ``images`` test-set images, then ``random`` int8 inputs."""
    return verification_vectors(qgraph, fashion.test_images[:images], random, seed)
