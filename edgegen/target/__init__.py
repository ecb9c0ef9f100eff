"""Microcontroller targets: board files, firmware folders, cross builds,
budget checks and bit-exact verification under QEMU.

The entry points (see ``pipeline``): ``build_firmware``, ``verify_firmware``,
``verify_on_board``; boards by name with ``load_board``/``known_boards``.
"""

from edgegen.target.boards import Board, known_boards, load_board
from edgegen.target.pipeline import (
    BoardVerifyResult,
    FirmwareBuild,
    FootprintReport,
    InstructionCounts,
    build_firmware,
    measure_footprint,
    random_vectors,
    verify_firmware,
    verify_on_board,
)

__all__ = [
    "Board",
    "BoardVerifyResult",
    "FirmwareBuild",
    "FootprintReport",
    "InstructionCounts",
    "build_firmware",
    "measure_footprint",
    "known_boards",
    "load_board",
    "random_vectors",
    "verify_firmware",
    "verify_on_board",
]
