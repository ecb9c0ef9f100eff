"""Microcontroller targets: board files, firmware folders, cross builds,
budget checks and bit-exact verification under QEMU.

The entry points: ``build_firmware`` and ``measure_footprint`` (``build``),
``verify_firmware`` and ``verify_on_board`` (``verify``); boards by name
with ``load_board``/``known_boards``.
"""

from edgegen.target.boards import Board, known_boards, load_board
from edgegen.target.build import (
    FirmwareBuild,
    FootprintReport,
    build_firmware,
    measure_footprint,
    random_vectors,
)
from edgegen.target.verify import (
    BoardVerifyResult,
    InstructionCounts,
    verification_vectors,
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
    "verification_vectors",
    "verify_firmware",
    "verify_on_board",
]
