"""Build for a board, check the budget, verify under QEMU.

    build_firmware   QGraph -> firmware folder, cross-compiled, sizes measured
                     and checked against the board (UserError if over budget)
    verify_firmware  run a built folder's harness under QEMU on int8 vectors,
                     compare every output byte with the golden model, count
                     executed instructions per inference and per layer
    verify_on_board  both, into a work folder

The CLI's ``build --board``, ``verify --board`` and ``deploy --board`` are
thin layers over these three functions.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegen import __version__
from edgegen.emit.generate import generate_sources
from edgegen.ir import QConv2D, QFullyConnected, QGraph
from edgegen.output_folder import atomic_folder
from edgegen.plan.arena import plan_memory
from edgegen.quantize.artifact import content_hash
from edgegen.reference.golden import run_golden
from edgegen.target import firmware
from edgegen.target.boards import Board, load_board
from edgegen.target.budget import (
    Consumer,
    Footprint,
    budget_problems,
    check_budget,
    flash_consumers,
    ram_consumers,
)
from edgegen.target.cross import BUILD_DIR, ImageSize, measure_image, run_make
from edgegen.target.plugin import build_plugin, read_marker_counts
from edgegen.target.qemu import (
    FirmwareRunError,
    Timeouts,
    check_exit,
    qemu_arguments,
    require_qemu,
    run_elf,
    timeouts_for,
)
from edgegen.verify.compare import Comparison, compare_outputs

DEFAULT_SELFTEST_VECTORS = 4
# Instructions per multiply-accumulate assumed for time limits only (the
# plain C kernels measure 6-15 at -Os): a generous upper bound.
_INSTRUCTIONS_PER_MAC = 40
_INSTRUCTIONS_PER_INFERENCE_FLOOR = 100_000


@dataclass(frozen=True)
class FirmwareBuild:
    board: Board
    prefix: str
    folder: Path
    opt: str
    footprint: Footprint  # the model on this board: what is checked against its limits
    flash_consumers: tuple[Consumer, ...]
    ram_consumers: tuple[Consumer, ...]
    images: dict  # "footprint" | "selftest" | "harness" -> ELF path
    image_sizes: dict  # image -> (flash bytes, RAM bytes)
    selftest_vectors: int
    layer_names: tuple[str, ...]
    input_size: int  # bytes of one input vector
    output_size: int  # bytes of one output vector
    instructions_estimate: int  # per inference, for time limits only

    @property
    def flash_bytes(self) -> int:
        return self.footprint.flash_bytes

    @property
    def ram_bytes(self) -> int:
        return self.footprint.ram_bytes

    def summary_lines(self) -> list[str]:
        f, b = self.footprint, self.board
        lines = [
            f"{self.prefix} for {b.name} ({self.opt}): flash {f.flash_bytes:,} B of {b.flash_bytes:,} "
            f"({f.flash_bytes / b.flash_bytes:.1%}), RAM {f.ram_bytes:,} B of {b.ram_bytes:,} "
            f"({f.ram_bytes / b.ram_bytes:.1%})",
            f"  flash = text {f.text:,} + rodata {f.rodata:,} + data {f.data:,}; RAM = data {f.data:,} "
            f"+ bss {f.bss:,} (arena {f.arena_bytes:,}, input/output {f.io_bytes:,}) "
            f"+ stack estimate {f.stack.bytes:,}",
        ]
        for caveat in f.stack.caveats:
            lines.append(f"  stack estimate caveat: {caveat}")
        lines.append(f"  firmware folder {self.folder}: " + ", ".join(
            f"{name}.elf" for name in self.images) + f"; self-test with {self.selftest_vectors} golden vectors")
        return lines


def estimate_instructions(qgraph: QGraph) -> int:
    """A generous upper bound of the instructions per inference (limits only)."""
    macs = 0
    for node in qgraph.nodes:
        if isinstance(node.op, QConv2D):
            macs += qgraph.tensor(node.output).size * int(np.prod(node.op.weight.shape[1:]))
        elif isinstance(node.op, QFullyConnected):
            macs += node.op.weight.size
    return max(_INSTRUCTIONS_PER_INFERENCE_FLOOR, _INSTRUCTIONS_PER_MAC * macs)


def _as_vectors(qgraph: QGraph, vectors) -> np.ndarray:
    return _int8_rows(vectors, qgraph.tensor(qgraph.input).size)


def _int8_rows(vectors, size: int) -> np.ndarray:
    """int8 vectors as a contiguous (n, size) array; ValueError if they are
    not int8 or not whole inputs of ``size`` values."""
    array = np.asarray(vectors)
    if array.dtype != np.int8:
        raise ValueError(f"input vectors must be int8, got {array.dtype}")
    if array.ndim == 0 or len(array) == 0 or array.size != len(array) * size:
        raise ValueError(f"input vectors of shape {array.shape} are not a batch of inputs of {size} values")
    return np.ascontiguousarray(array.reshape(len(array), size))


def random_vectors(qgraph: QGraph, count: int, seed: int = 0) -> np.ndarray:
    """``count`` uniformly random int8 inputs, (count, input size)."""
    size = qgraph.tensor(qgraph.input).size
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(count, size), dtype=np.int64).astype(np.int8)


def golden_outputs(qgraph: QGraph, vectors: np.ndarray) -> np.ndarray:
    vectors = _as_vectors(qgraph, vectors)
    shape = (len(vectors),) + tuple(qgraph.tensor(qgraph.input).shape)
    return np.asarray(run_golden(qgraph, vectors.reshape(shape)), np.int8).reshape(len(vectors), -1)


@dataclass(frozen=True)
class FootprintReport:
    """The footprint image measured, and what does not fit the board."""

    prefix: str
    footprint: Footprint
    flash_consumers: tuple[Consumer, ...]  # biggest first
    ram_consumers: tuple[Consumer, ...]
    problems: tuple[str, ...]  # one line per exceeded limit

    @property
    def fits(self) -> bool:
        return not self.problems


def _write_and_measure(folder: Path, qgraph: QGraph, board: Board, selftest: firmware.SelftestVectors,
                       opt: str, extra_cflags: tuple[str, ...]) -> tuple[firmware.FolderLayout, FootprintReport]:
    """Write the folder, build the footprint image and measure it."""
    plan = plan_memory(qgraph)
    sources = generate_sources(qgraph, plan)
    layout = firmware.write_firmware_folder(folder, qgraph, board, sources, plan.arena_size, selftest, opt=opt)
    run_make(folder, board, [f"{BUILD_DIR}/footprint.elf"], extra_cflags=extra_cflags)
    size = _measure(folder, board, layout, "footprint")
    io_bytes = qgraph.tensor(qgraph.input).size + qgraph.tensor(qgraph.output).size
    footprint = Footprint.of(size, max(1, plan.arena_size), io_bytes)
    report = FootprintReport(
        prefix=sources.prefix, footprint=footprint,
        flash_consumers=tuple(flash_consumers(qgraph, sources.arrays, size.symbols, footprint)),
        ram_consumers=tuple(ram_consumers(qgraph, plan, footprint)),
        problems=tuple(budget_problems(board, footprint)),
    )
    return layout, report


def _selftest_vectors(qgraph: QGraph, vectors, provenance: str | None) -> firmware.SelftestVectors:
    if vectors is None:
        vectors = random_vectors(qgraph, DEFAULT_SELFTEST_VECTORS)
        provenance = provenance or f"{len(vectors)} uniformly random int8 inputs, seed 0"
    vectors = _as_vectors(qgraph, vectors)
    return firmware.golden_selftest_vectors(
        qgraph, vectors, provenance or f"{len(vectors)} input vectors chosen by the caller")


def measure_footprint(qgraph: QGraph, board: Board | str, *, opt: str = firmware.DEFAULT_OPT) -> FootprintReport:
    """Flash and RAM of the model on ``board`` without the budget check (for
    reports about models that do not fit); builds in a temporary folder."""
    board = board if isinstance(board, Board) else load_board(board)
    selftest = _selftest_vectors(qgraph, None, None)
    with tempfile.TemporaryDirectory(prefix="edgegen-footprint-") as tmp:
        _, report = _write_and_measure(Path(tmp), qgraph, board, selftest, opt, ())
    return report


def build_firmware(qgraph: QGraph, board: Board | str, out_dir: Path, *, vectors=None,
                   vectors_provenance: str | None = None, opt: str = firmware.DEFAULT_OPT,
                   force: bool = False, extra_cflags: tuple[str, ...] = ()) -> FirmwareBuild:
    """Write and cross-compile the firmware folder ``out_dir`` for ``board``.

    ``vectors``: int8 inputs whose golden outputs the self-test embeds
    (default: DEFAULT_SELFTEST_VECTORS random inputs), described by
    ``vectors_provenance`` in the generated C. ``extra_cflags`` go to every
    compilation (test builds of the harness use them).
    Raises UserError if the model is over the board's flash or RAM budget,
    if a tool is missing or a compilation fails; ``out_dir`` is then left
    untouched (everything is built in a temporary folder renamed at the end).
    """
    board = board if isinstance(board, Board) else load_board(board)
    selftest = _selftest_vectors(qgraph, vectors, vectors_provenance)
    out_dir = Path(out_dir).resolve()
    with atomic_folder(out_dir, force) as folder:
        layout, report = _write_and_measure(folder, qgraph, board, selftest, opt, extra_cflags)
        check_budget(board, report.prefix, report.footprint, list(report.flash_consumers),
                     list(report.ram_consumers), opt)
        images = list(layout.image_mains)
        run_make(folder, board, ["all"], extra_cflags=extra_cflags)
        sizes = {name: _measure(folder, board, layout, name) for name in images}
        firmware.write_readme(folder, _readme_context(qgraph, board, report.prefix, report.footprint, opt,
                                                      selftest.count))
    return FirmwareBuild(
        board=board, prefix=report.prefix, folder=out_dir, opt=opt, footprint=report.footprint,
        flash_consumers=report.flash_consumers, ram_consumers=report.ram_consumers,
        images={name: out_dir / BUILD_DIR / f"{name}.elf" for name in images},
        image_sizes={name: (s.flash_bytes, s.ram_bytes) for name, s in sizes.items()},
        selftest_vectors=selftest.count,
        layer_names=tuple(node.name for node in qgraph.nodes),
        input_size=qgraph.tensor(qgraph.input).size,
        output_size=qgraph.tensor(qgraph.output).size,
        instructions_estimate=estimate_instructions(qgraph),
    )


def _measure(folder: Path, board: Board, layout: firmware.FolderLayout, image: str) -> ImageSize:
    objects = [folder / BUILD_DIR / "obj" / o for o in layout.image_objects(image)]
    return measure_image(folder / BUILD_DIR / f"{image}.elf", objects, firmware.STACK_ROOT[board.arch])


def _readme_context(qgraph: QGraph, board: Board, prefix: str, footprint: Footprint, opt: str,
                    selftest_vectors: int) -> dict:
    command = " ".join(qemu_arguments(board, Path("build/selftest.elf"))) if board.emulated else ""
    return {
        "version": __version__, "board": board, "prefix": prefix, "source_name": qgraph.name,
        "model_hash": content_hash(qgraph), "opt": opt, "selftest_vectors": selftest_vectors,
        "flash": f"{footprint.flash_bytes:,}", "ram": f"{footprint.ram_bytes:,}",
        "arena": f"{footprint.arena_bytes:,}", "stack": f"{footprint.stack.bytes:,}",
        "selftest_failed_code": int(firmware.ExitCode.SELFTEST_FAILED),
        "qemu_command": f"{board.qemu.binary} {command}" if board.emulated else "",
    }


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
    vectors = _int8_rows(vectors, build.input_size)
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
    from edgegen.target.elf import ElfFile

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
    seconds: float  # wall time of the QEMU runs
    flash_bytes: int
    ram_bytes: int

    @property
    def bit_exact(self) -> bool:
        return self.comparison.bit_exact and "PASS" in self.selftest

    def lines(self) -> list[str]:
        i = self.instructions
        lines = [
            self.comparison.line(f"{self.board} (QEMU)"),
            f"  self-test image: {self.selftest}",
            f"  instructions per inference ({i.opt}): {i.total:,}"
            + (f" (min {i.minimum:,} over {self.vectors} vectors)" if i.minimum != i.total else
               f" (every one of {self.vectors} vectors)"),
        ]
        width = max([len("(call, return)")] + [len(name) for name, _ in i.per_layer])
        for name, count in i.per_layer:
            lines.append(f"    {name:<{width}} {count:>12,}")
        lines.append(f"    {'(call, return)':<{width}} {i.call_overhead:>12,}")
        lines.append(f"  flash {self.flash_bytes:,} B, RAM {self.ram_bytes:,} B; QEMU {self.seconds:.1f} s")
        return lines


def verify_firmware(build: FirmwareBuild, qgraph: QGraph, vectors, workdir: Path, *,
                    timeouts: Timeouts | None = None) -> BoardVerifyResult:
    """Run ``vectors`` through the build's harness and its self-test image."""
    vectors = _as_vectors(qgraph, vectors)
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
