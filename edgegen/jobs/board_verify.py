"""The board verify job: a firmware's outputs under QEMU, byte for byte.

    verify_firmware  run a built folder's harness under QEMU on int8 vectors,
                     compare every output byte with the golden model, count
                     executed instructions per inference and per layer, and
                     run the self-test image
    verify_on_board  build_firmware into a work folder, then verify_firmware

A crash, a hang or output of the wrong size raises FirmwareRunError (a
UserError); a byte that differs is a result (``comparison``), not an error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from edgegen.firmware.boards import Board, load_board
from edgegen.firmware.built import FirmwareBuild
from edgegen.firmware.harness import InstructionCounts, run_harness, run_selftest
from edgegen.firmware.qemu import Timeouts, require_qemu
from edgegen.firmware.vectors import as_vectors, golden_outputs
from edgegen.ir import QGraph
from edgegen.jobs.firmware_build import build_firmware
from edgegen.jobs.lower import StorageChoice
from edgegen.verify.compare import Comparison, compare_outputs


@dataclass(frozen=True)
class BoardVerifyResult:
    board: str
    vectors: int
    comparison: Comparison
    instructions: InstructionCounts
    selftest: str  # the self-test image's report line
    seconds: float  # wall time of the verification (QEMU runs and golden model)
    flash_bytes: int
    ram_bytes: int
    kernels: str = "portable"  # the runtime's kernel path the firmware was built with

    @property
    def bit_exact(self) -> bool:
        """Every harness output byte equal, and the self-test passed."""
        return self.comparison.bit_exact and ": PASS (" in self.selftest

    def lines(self) -> list[str]:
        i = self.instructions
        spread = f"; min {i.minimum:,}" if i.minimum != i.total else "; the same for every vector"
        lines = [
            self.comparison.line(f"{self.board} (QEMU)"),
            f"  self-test image: {self.selftest}",
            f"  executed instructions per inference ({i.opt}, {self.kernels} kernels, worst of "
            f"{self.vectors} vectors): "
            f"{i.total:,}{spread}",
        ]
        width = max([len("(call, return)")] + [len(name) for name, _ in i.per_layer])
        for name, count in i.per_layer:
            lines.append(f"    {name:<{width}} {count:>12,}")
        lines.append(f"    {'(call, return)':<{width}} {i.call_overhead:>12,}")
        lines.append(f"  flash {self.flash_bytes:,} B, RAM {self.ram_bytes:,} B; verified in {self.seconds:.1f} s")
        return lines


def verify_firmware(build: FirmwareBuild, qgraph: QGraph, vectors, workdir: Path, *,
                    timeouts: Timeouts | None = None) -> BoardVerifyResult:
    """Run ``vectors`` through the build's harness and its self-test image."""
    vectors = as_vectors(qgraph, vectors)
    start = time.perf_counter()
    run = run_harness(build, vectors, Path(workdir) / "harness", timeouts=timeouts)
    golden = golden_outputs(qgraph, vectors)
    if run.outputs.shape != golden.shape:
        raise ValueError(f"the firmware in {build.folder} was not built from this model: its outputs "
                         f"have {run.outputs.shape[1]} bytes, the model's {golden.shape[1]}")
    selftest = run_selftest(build, Path(workdir) / "selftest")
    return BoardVerifyResult(
        board=build.board.name, vectors=len(vectors), comparison=compare_outputs(golden, run.outputs),
        instructions=run.instructions, selftest=selftest, seconds=time.perf_counter() - start,
        flash_bytes=build.flash_bytes, ram_bytes=build.ram_bytes, kernels=build.kernels,
    )


def verify_on_board(qgraph: QGraph, board: Board | str, vectors, workdir: Path, *,
                    opt: str | None = None, kernels: str | None = None,
                    timeouts: Timeouts | None = None,
                    storage: StorageChoice = StorageChoice()) -> BoardVerifyResult:
    """Build into ``workdir``/firmware-<board> and verify there (``opt``,
    ``kernels``: as for ``build_firmware``, the board's fields by default)."""
    board = board if isinstance(board, Board) else load_board(board)
    require_qemu(board)  # before building: a missing emulator or a real board stops here
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    build = build_firmware(qgraph, board, workdir / f"firmware-{board.name}", opt=opt,
                           kernels=kernels, force=True, storage=storage)
    return verify_firmware(build, qgraph, vectors, workdir / f"run-{board.name}", timeouts=timeouts)
