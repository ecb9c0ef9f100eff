"""Build for a board: firmware folder, cross-compilation, budget check.

    build_firmware     QGraph -> firmware folder, cross-compiled, sizes
                       measured and checked against the board (UserError if
                       the model is over budget)
    measure_footprint  the same measurement without the check, for reports

Verification under QEMU is in ``edgegen.target.verify``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegen import __version__
from edgegen.emit.c_format import comment_text
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
from edgegen.target.qemu import qemu_arguments

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
    images: dict[str, Path]  # "footprint", "selftest", "harness" (emulated boards) -> ELF
    image_sizes: dict[str, tuple[int, int]]  # image -> (flash bytes, RAM bytes)
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
        images = ", ".join(f"{name}.elf" for name in self.images)
        lines.append(f"  firmware folder {self.folder}: {images}; self-test with "
                     f"{self.selftest_vectors} golden vectors")
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


def as_vectors(qgraph: QGraph, vectors) -> np.ndarray:
    return int8_rows(vectors, qgraph.tensor(qgraph.input).size)


def int8_rows(vectors, size: int) -> np.ndarray:
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
    vectors = as_vectors(qgraph, vectors)
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
                       opt: str, extra_cflags: tuple[str, ...]
                       ) -> tuple[firmware.FolderLayout, FootprintReport]:
    """Write the folder, build the footprint image and measure it."""
    plan = plan_memory(qgraph)
    sources = generate_sources(qgraph, plan)
    layout = firmware.write_firmware_folder(folder, qgraph, board, sources, plan.arena_size, selftest,
                                            opt=opt)
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
    vectors = as_vectors(qgraph, vectors)
    return firmware.golden_selftest_vectors(
        qgraph, vectors, provenance or f"{len(vectors)} input vectors chosen by the caller")


def measure_footprint(qgraph: QGraph, board: Board | str, *,
                      opt: str = firmware.DEFAULT_OPT) -> FootprintReport:
    """Flash and RAM of the model on ``board`` without the budget check (for
    reports about models that do not fit); builds in a temporary folder."""
    board = board if isinstance(board, Board) else load_board(board)
    selftest = _selftest_vectors(qgraph, None, None)
    with tempfile.TemporaryDirectory(prefix="edgegen-footprint-") as tmp:
        _, report = _write_and_measure(Path(tmp), qgraph, board, selftest, opt, ())
    return report


def build_firmware(qgraph: QGraph, board: Board | str, out_dir: Path, *, vectors=None,
                   vectors_provenance: str | None = None, opt: str = firmware.DEFAULT_OPT,
                   force: bool = False, extra_cflags: tuple[str, ...] = (),
                   inputs: tuple[Path, ...] = ()) -> FirmwareBuild:
    """Write and cross-compile the firmware folder ``out_dir`` for ``board``.

    ``vectors``: int8 inputs whose golden outputs the self-test embeds
    (default: DEFAULT_SELFTEST_VECTORS random inputs), described by
    ``vectors_provenance`` in the generated C. ``extra_cflags`` go to every
    compilation (test builds of the harness use them).
    Raises UserError if the model is over the board's flash or RAM budget,
    if a tool is missing or a compilation fails; ``out_dir`` is then left
    untouched (everything is built in a temporary folder renamed at the end).
    ``force`` replaces only a folder that edgegen wrote, never one holding
    ``inputs``.
    """
    board = board if isinstance(board, Board) else load_board(board)
    selftest = _selftest_vectors(qgraph, vectors, vectors_provenance)
    out_dir = Path(out_dir).resolve()
    with atomic_folder(out_dir, force, inputs) as folder:
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
        "version": __version__, "board": board, **firmware.board_text(board), "prefix": prefix,
        "source_name": comment_text(qgraph.name),
        "model_hash": content_hash(qgraph), "opt": opt, "selftest_vectors": selftest_vectors,
        "flash": f"{footprint.flash_bytes:,}", "ram": f"{footprint.ram_bytes:,}",
        "flash_limit": f"{board.flash_bytes:,}", "ram_limit": f"{board.ram_bytes:,}",
        "arena": f"{footprint.arena_bytes:,}", "stack": f"{footprint.stack.bytes:,}",
        "selftest_failed_code": int(firmware.ExitCode.SELFTEST_FAILED),
        "qemu_command": f"{board.qemu.binary} {command}" if board.emulated else "",
    }
