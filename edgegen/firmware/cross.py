"""Cross-compilation: the firmware folder's own Makefile, run by edgegen.

edgegen builds exactly what a user building the folder by hand would get:
it runs ``make`` in the folder rather than keeping a second copy of the
compile commands. Then it reads the sizes from the linked ELF and the stack
estimate from the call-graph files the compiler wrote beside the objects.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgegen.errors import UserError
from edgegen.external_tool import run_tool
from edgegen.firmware.boards import Board
from edgegen.firmware.elf import ElfFile, SectionTotals
from edgegen.firmware.stack import StackEstimate, estimate_stack, load_call_graph

BUILD_DIR = "build"
_SHOWN_LINES = 15


def require_cross_compiler(board: Board) -> str:
    """The path of the board's gcc, or a UserError naming its package."""
    gcc = board.tool("gcc")
    path = shutil.which(gcc)
    if path is None:
        raise UserError(f"{gcc} not found: install it (apt-get install {board.toolchain_package}) "
                        f"to build for {board.name}")
    return path


def require_make() -> str:
    path = shutil.which("make")
    if path is None:
        raise UserError("make not found: install it (apt-get install make)")
    return path


def run_make(folder: Path, board: Board, targets: list[str], *, extra_cflags: tuple[str, ...] = (),
             jobs: int | None = None) -> None:
    """``make targets`` in ``folder``; a failure becomes a UserError quoting
    the compiler's or linker's first lines."""
    require_cross_compiler(board)
    command = [require_make(), "-C", str(folder), f"-j{jobs or min(4, os.cpu_count() or 1)}",
               "--no-print-directory", *targets]
    if extra_cflags:
        command.append("EXTRA_CFLAGS=" + " ".join(extra_cflags))
    result = run_tool(command)
    if result.returncode != 0:
        raise UserError(f"building {' '.join(targets)} for {board.name} failed:\n"
                        + _first_error_lines(result.stderr or result.stdout))


def _first_error_lines(text: str) -> str:
    """The compiler's messages without make's own noise."""
    lines = [line for line in text.splitlines() if not line.startswith("make")]
    lines = lines or text.splitlines()
    shown = "\n".join(lines[:_SHOWN_LINES])
    if len(lines) > _SHOWN_LINES:
        shown += f"\n... ({len(lines) - _SHOWN_LINES} more lines)"
    return shown


@dataclass(frozen=True)
class ImageSize:
    """Sizes of one linked image, measured from its ELF."""

    totals: SectionTotals
    stack: StackEstimate
    symbols: dict  # name -> bytes, functions and data objects

    @property
    def flash_bytes(self) -> int:
        return self.totals.flash

    @property
    def ram_bytes(self) -> int:
        return self.totals.ram + self.stack.bytes


def measure_image(elf: Path, objects: list[Path], stack_root: str) -> ImageSize:
    """Flash/RAM of ``elf``; the stack from the .ci files of ``objects``."""
    image = ElfFile(elf)
    call_graph_files = [o.with_suffix(".ci") for o in objects if o.with_suffix(".ci").is_file()]
    stack = estimate_stack(load_call_graph(call_graph_files), stack_root)
    return ImageSize(image.totals(), stack, image.symbol_sizes())
