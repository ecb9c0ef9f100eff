"""A firmware folder once built: what verification and reports read of it.

``edgegen.jobs.firmware_build`` makes one (write the folder, cross-compile,
check the budget); the harness runs its images (``harness``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgegen.firmware.boards import Board
from edgegen.firmware.budget import Consumer, Footprint


@dataclass(frozen=True)
class FirmwareBuild:
    board: Board
    prefix: str
    folder: Path
    opt: str  # -O2, -Os or -O3
    kernels: str  # "dsp" or "portable": the runtime's kernel path
    footprint: Footprint  # the model on this board: what is checked against its limits
    flash_consumers: tuple[Consumer, ...]
    ram_consumers: tuple[Consumer, ...]
    images: dict[str, Path]  # "footprint", "selftest", "harness" (emulated boards) -> ELF
    image_sizes: dict[str, tuple[int, int]]  # image -> (flash bytes, RAM bytes incl. stack estimate)
    selftest_vectors: int
    layer_names: tuple[str, ...]
    input_size: int  # bytes of one input vector
    output_size: int  # bytes of one output vector
    instructions_estimate: int  # per inference, for time limits only
    formats: tuple[tuple[str, str], ...] = ()  # (weight layer, storage format)
    storage_note: str | None = None  # why the storage differs from what was asked

    @property
    def flash_bytes(self) -> int:
        return self.footprint.flash_bytes

    @property
    def ram_bytes(self) -> int:
        return self.footprint.ram_bytes

    def summary_lines(self) -> list[str]:
        f, b = self.footprint, self.board
        buffers = (f"arena {f.arena_bytes:,} holding the input and output: "
                   f"{self.prefix}_invoke_in_arena" if f.io_in_arena else
                   f"arena {f.arena_bytes:,}, input/output {f.io_bytes:,}")
        lines = [
            f"{self.prefix} for {b.name} ({self.opt}, {self.kernels} kernels): flash "
            f"{f.flash_bytes:,} B of {b.flash_bytes:,} "
            f"({f.flash_bytes / b.flash_bytes:.1%}), RAM {f.ram_bytes:,} B of {b.ram_bytes:,} "
            f"({f.ram_bytes / b.ram_bytes:.1%})",
            f"  flash = text {f.text:,} + rodata {f.rodata:,} + data {f.data:,}; RAM = data {f.data:,} "
            f"+ bss {f.bss:,} ({buffers}) + stack estimate {f.stack.bytes:,}",
        ]
        if self.formats:
            lines.append("  weights stored: " + ", ".join(f"{n} {f}" for n, f in self.formats))
        if self.storage_note:
            lines.append(f"  note: {self.storage_note}")
        for caveat in f.stack.caveats:
            lines.append(f"  stack estimate caveat: {caveat}")
        images = ", ".join(f"{name}.elf" for name in self.images)
        lines.append(f"  firmware folder {self.folder}: {images}; self-test with "
                     f"{self.selftest_vectors} golden vectors")
        return lines
