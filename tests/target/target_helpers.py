"""Plain helpers of the board tests (fixtures are in conftest.py)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

from edgegen.target import verification_vectors
from edgegen.target.boards import Board


def _root_conftest():
    """tests/conftest.py, loaded under a name of its own: pytest imports
    every conftest.py as "conftest", so that name is ambiguous here."""
    name = "_edgegen_root_conftest"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


require_tool = _root_conftest().require_tool


def require_board_tools(board: Board, emulate: bool = False) -> None:
    """Skip (or fail in CI) when the board's compiler or emulator is missing."""
    require_tool(board.tool("gcc"), board.toolchain_package)
    require_tool("make", "make")
    if emulate:
        require_tool(board.qemu.binary, board.qemu.package)


def board_vectors(qgraph, fashion, images: int, random: int, seed: int = 0) -> np.ndarray:
    """The first ``images`` test-set images, then ``random`` int8 inputs."""
    return verification_vectors(qgraph, fashion.test_images[:images], random, seed)
