"""Verification on emulated boards: the harness under QEMU, byte for byte.

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

import numpy as np

from edgegen.data.datasets import image_to_int8
from edgegen.ir import QGraph
from edgegen.target import firmware
from edgegen.target.boards import Board, load_board
from edgegen.target.build import (
    FirmwareBuild,
    as_vectors,
    build_firmware,
    golden_outputs,
    int8_rows,
    random_vectors,
)
from edgegen.target.elf import ElfFile
from edgegen.target.plugin import build_plugin, read_marker_counts
from edgegen.target.qemu import (
    FirmwareRunError,
    Timeouts,
    check_exit,
    require_qemu,
    run_elf,
    timeouts_for,
)
from edgegen.verify.compare import Comparison, compare_outputs


@dataclass(frozen=True)
class InstructionCounts:
    """Executed instructions per inference, from the QEMU plugin: exact and
    repeatable for a given build and input. The marker calls' own cost is
    subtracted. Counts can differ by a few instructions between inputs
    (data-dependent branches), hence per-vector totals."""

    opt: str
    per_vector: tuple[int, ...]  # total per inference, for each vector
    per_layer: tuple[tuple[str, int], ...]  # (layer, mean over vectors)
    marker_cost: int  # instructions of one marker call, subtracted

    @property
    def total(self) -> int:
        """The worst case over the vectors run."""
        return max(self.per_vector)

    @property
    def minimum(self) -> int:
        return min(self.per_vector)

    @property
    def call_overhead(self) -> int:
        """Mean instructions outside the layers (invoke's return, the call)."""
        return round(float(np.mean(self.per_vector))) - sum(n for _, n in self.per_layer)


def split_marker_counts(hits: tuple[int, ...], vectors: int, layer_names: tuple[str, ...],
                        opt: str) -> InstructionCounts:
    """Marker hits -> counts. The harness calls the marker twice (an empty
    pair: its own cost), then per vector: before invoke, after each layer,
    after invoke."""
    layers = len(layer_names)
    expected = 2 + vectors * (layers + 2)
    if len(hits) != expected:
        raise FirmwareRunError(f"the instruction counter saw {len(hits)} marker calls, expected "
                               f"{expected} ({vectors} vectors x ({layers} layers + 2) + 2): the "
                               "harness did not run every inference")
    h = np.asarray(hits, dtype=np.int64)
    cost = int(h[1] - h[0])
    steps = np.diff(h[2:].reshape(vectors, layers + 2), axis=1) - cost
    if (steps < 0).any():
        raise FirmwareRunError("instruction counts went backwards: the marker calls are out of order")
    per_layer = steps[:, :layers].mean(axis=0)
    return InstructionCounts(
        opt=opt,
        per_vector=tuple(int(t) for t in steps.sum(axis=1)),
        per_layer=tuple((name, int(round(n))) for name, n in zip(layer_names, per_layer)),
        marker_cost=cost,
    )


@dataclass(frozen=True)
class HarnessRun:
    outputs: np.ndarray  # (vectors, output size) int8
    instructions: InstructionCounts
    seconds: float  # QEMU wall time


def run_harness(build: FirmwareBuild, vectors, workdir: Path, *,
                timeouts: Timeouts | None = None) -> HarnessRun:
    """Run the build's harness under QEMU on ``vectors``; FirmwareRunError
    on a crash, a hang (timeouts), or output of the wrong size."""
    if "harness" not in build.images:
        raise FirmwareRunError(f"{build.board.name} is not emulated: no harness to run")
    vectors = int8_rows(vectors, build.input_size)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("output.bin", "counts.txt"):
        (workdir / stale).unlink(missing_ok=True)
    vectors.tofile(workdir / "input.bin")
    elf = build.images["harness"]
    plugin = _plugin_spec(elf)
    timeouts = timeouts or timeouts_for(build.instructions_estimate, len(vectors))
    run = run_elf(build.board, elf, workdir, timeouts, plugin=plugin, progress_file=workdir / "output.bin")
    check_exit(run, build.board, elf)
    outputs = _read_outputs(workdir / "output.bin", len(vectors), build)
    counts = read_marker_counts(workdir / "counts.txt")
    instructions = split_marker_counts(counts.hits, len(vectors), build.layer_names, build.opt)
    return HarnessRun(outputs, instructions, run.seconds)


def _plugin_spec(elf: Path) -> str:
    plugin = build_plugin()
    if "," in str(plugin):
        raise FirmwareRunError(f"the plugin path {plugin} contains a comma, which QEMU's -plugin "
                               "option cannot take: set EDGEGEN_CACHE to a path without one")
    marker = ElfFile(elf).function_address("eg_count_marker")
    # out= is relative: QEMU runs in the work folder.
    return f"{plugin},marker=0x{marker:x},out=counts.txt"


def _read_outputs(path: Path, vectors: int, build: FirmwareBuild) -> np.ndarray:
    if not path.is_file():
        raise FirmwareRunError(f"the harness on {build.board.name} exited without writing output.bin")
    data = np.fromfile(path, dtype=np.int8)
    expected = vectors * build.output_size
    if data.size != expected:
        raise FirmwareRunError(f"output.bin from {build.board.name} holds {data.size} bytes, expected "
                               f"{expected} ({vectors} outputs of {build.output_size}): the harness "
                               "wrote garbage")
    return data.reshape(vectors, build.output_size)


def run_selftest(build: FirmwareBuild, workdir: Path, *, timeouts: Timeouts | None = None) -> str:
    """Run the self-test image under QEMU; its report line (PASS or FAIL)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    elf = build.images["selftest"]
    timeouts = timeouts or timeouts_for(build.instructions_estimate, build.selftest_vectors)
    run = run_elf(build.board, elf, workdir, timeouts)
    lines = [line for line in run.console.splitlines() if "selftest:" in line]
    if run.exit_code not in (firmware.ExitCode.OK, firmware.ExitCode.SELFTEST_FAILED) or not lines:
        check_exit(run, build.board, elf)
        raise FirmwareRunError(f"{elf.name} on {build.board.name} printed no self-test report")
    return lines[-1].strip()


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
            f"  executed instructions per inference ({i.opt}, worst of {self.vectors} vectors): "
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
        flash_bytes=build.flash_bytes, ram_bytes=build.ram_bytes,
    )


def verify_on_board(qgraph: QGraph, board: Board | str, vectors, workdir: Path, *,
                    opt: str = firmware.DEFAULT_OPT, timeouts: Timeouts | None = None) -> BoardVerifyResult:
    """Build into ``workdir``/firmware-<board> and verify there."""
    board = board if isinstance(board, Board) else load_board(board)
    require_qemu(board)  # before building: a missing emulator or a real board stops here
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    build = build_firmware(qgraph, board, workdir / f"firmware-{board.name}", opt=opt, force=True)
    return verify_firmware(build, qgraph, vectors, workdir / f"run-{board.name}", timeouts=timeouts)


def verification_vectors(qgraph: QGraph, images: np.ndarray, random_count: int,
                         seed: int = 0) -> np.ndarray:
    """The vectors of an on-board verification, as on the host: uint8
    test-set ``images`` (N, H, W) as int8 model inputs, then
    ``random_count`` uniformly random int8 inputs; (n, input size)."""
    size = qgraph.tensor(qgraph.input).size
    pictures = image_to_int8(np.asarray(images)).reshape(len(images), size)
    return np.concatenate([pictures, random_vectors(qgraph, random_count, seed)])
