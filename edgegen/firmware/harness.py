"""The test images under QEMU: the harness on int8 vectors, the self-test.

The harness reads input.bin and writes output.bin through semihosting and
calls the instruction-count marker around every inference and after every
layer; ``split_marker_counts`` turns the plugin's record of those calls into
instructions per inference and per layer.

A crash, a hang or output of the wrong size raises FirmwareRunError (a
UserError); comparing the outputs with the golden model is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegen.firmware.built import FirmwareBuild
from edgegen.firmware.elf import ElfFile
from edgegen.firmware.exit_codes import ExitCode
from edgegen.firmware.plugin import build_plugin, read_marker_counts
from edgegen.firmware.qemu import FirmwareRunError, Timeouts, check_exit, run_elf, timeouts_for
from edgegen.firmware.vectors import int8_rows


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
    if run.exit_code not in (ExitCode.OK, ExitCode.SELFTEST_FAILED) or not lines:
        check_exit(run, build.board, elf)
        raise FirmwareRunError(f"{elf.name} on {build.board.name} printed no self-test report")
    return lines[-1].strip()
