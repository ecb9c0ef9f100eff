"""The firmware build job: a QGraph to a cross-built, budget-checked folder.

    build_firmware     QGraph -> firmware folder, cross-compiled, sizes
                       measured and checked against the board (UserError if
                       the model or a test image is over budget)
    measure_footprint  the same measurement without the check, for reports

The stages it sequences: plan and emit (the model's C), ``firmware.folder``
(the folder), ``firmware.cross`` (make, sizes), ``firmware.budget`` (limits).
Verification under QEMU is the job ``board_verify``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgegen.errors import UserError
from edgegen.firmware import folder as firmware_folder
from edgegen.firmware.boards import Board, kernels_for, load_board, opt_flag_for
from edgegen.firmware.budget import FootprintReport, StaticBuffers, check_budget, footprint_report
from edgegen.firmware.built import FirmwareBuild
from edgegen.firmware.cross import BUILD_DIR, ImageSize, measure_image, run_make
from edgegen.firmware.folder import FolderLayout, SelftestVectors
from edgegen.firmware.qemu import estimate_instructions
from edgegen.firmware.vectors import as_vectors, random_vectors
from edgegen.ir import QGraph
from edgegen.encode.storage_plan import FormatRequest
from edgegen.jobs.lower import Lowered, StorageChoice, lower
from edgegen.output_folder import atomic_folder

DEFAULT_SELFTEST_VECTORS = 4


@dataclass(frozen=True)
class FirmwareOptions:
    """How the firmware is compiled; None takes the board's own field."""

    opt: str | None = None  # -O2, -Os or -O3 (the board's ``opt``)
    kernels: str | None = None  # "dsp" or "portable" (the board's ``kernels``)

    def resolve(self, board: Board) -> "FirmwareOptions":
        """Both values filled in for ``board``; UserError if it cannot run
        the kernels asked for."""
        return FirmwareOptions(opt_flag_for(board, self.opt), kernels_for(board, self.kernels))


def _write_and_measure(folder: Path, qgraph: QGraph, board: Board, selftest: SelftestVectors,
                       options: FirmwareOptions, extra_cflags: tuple[str, ...],
                       storage: StorageChoice) -> tuple[FolderLayout, FootprintReport, Lowered]:
    """Write the folder, build the footprint image and measure it."""
    lowered = lower(qgraph, storage)
    buffers = StaticBuffers.of(qgraph, lowered.memory)
    layout = firmware_folder.write_firmware_folder(
        folder, qgraph, board, lowered.sources, buffers.arena_bytes, selftest, opt=options.opt,
        kernels=options.kernels, io_in_arena=buffers.io_in_arena)
    run_make(folder, board, [f"{BUILD_DIR}/footprint.elf"], extra_cflags=extra_cflags)
    size = _measure(folder, board, layout, "footprint")
    return layout, footprint_report(qgraph, lowered, size, board), lowered


def _fits_smaller(storage: StorageChoice, report: FootprintReport) -> bool:
    """An ``auto`` choice over the flash budget is tried again for size: the
    cost model may trade speed for bytes when the board needs it, but a
    format the user named is never changed."""
    over_flash = any(p.startswith("flash") for p in report.problems)
    return (over_flash and storage.request == FormatRequest() and storage.optimize != "size")


def _selftest_vectors(qgraph: QGraph, vectors, provenance: str | None) -> SelftestVectors:
    if vectors is None:
        vectors = random_vectors(qgraph, DEFAULT_SELFTEST_VECTORS)
        provenance = provenance or f"{len(vectors)} uniformly random int8 inputs, seed 0"
    vectors = as_vectors(qgraph, vectors)
    return firmware_folder.golden_selftest_vectors(
        qgraph, vectors, provenance or f"{len(vectors)} input vectors chosen by the caller")


def measure_footprint(qgraph: QGraph, board: Board | str, *, opt: str | None = None,
                      kernels: str | None = None,
                      storage: StorageChoice = StorageChoice()) -> FootprintReport:
    """Flash and RAM of the model on ``board`` without the budget check (for
    reports about models that do not fit); builds in a temporary folder.
    ``opt`` and ``kernels`` as for ``build_firmware``."""
    board = board if isinstance(board, Board) else load_board(board)
    options = FirmwareOptions(opt, kernels).resolve(board)
    selftest = _selftest_vectors(qgraph, None, None)
    with tempfile.TemporaryDirectory(prefix="edgegen-footprint-") as tmp:
        _, report, _ = _write_and_measure(Path(tmp), qgraph, board, selftest, options, (), storage)
    return report


def build_firmware(qgraph: QGraph, board: Board | str, out_dir: Path, *, vectors=None,
                   vectors_provenance: str | None = None, opt: str | None = None,
                   kernels: str | None = None, force: bool = False,
                   extra_cflags: tuple[str, ...] = (),
                   inputs: tuple[Path, ...] = (),
                   storage: StorageChoice = StorageChoice()) -> FirmwareBuild:
    """Write and cross-compile the firmware folder ``out_dir`` for ``board``.

    ``vectors``: int8 inputs whose golden outputs the self-test embeds
    (default: DEFAULT_SELFTEST_VECTORS random inputs), described by
    ``vectors_provenance`` in the generated C. ``opt`` (-O2, -Os, -O3) and
    ``kernels`` ("dsp", "portable"): how the model is compiled, recorded in
    the folder's Makefile and CMakeLists.txt (default: the board's ``opt``
    and ``kernels`` fields; "dsp" on a board without the Arm DSP extension is
    a UserError). ``extra_cflags`` go to every
    compilation (test builds of the harness use them). ``storage``: how
    the weights are stored (``--format``, ``--optimize``).
    Raises UserError if the model (or one of edgegen's test images) is over
    the board's flash or RAM budget, if a tool is missing or a compilation
    fails; ``out_dir`` is then left untouched (everything is built in a
    temporary folder renamed at the end). ``force`` replaces only a folder
    that edgegen wrote, never one holding ``inputs``.
    """
    board = board if isinstance(board, Board) else load_board(board)
    options = FirmwareOptions(opt, kernels).resolve(board)
    selftest = _selftest_vectors(qgraph, vectors, vectors_provenance)
    out_dir = Path(out_dir).resolve()
    with atomic_folder(out_dir, force, inputs) as folder:
        layout, report, lowered = _write_and_measure(folder, qgraph, board, selftest, options,
                                                     extra_cflags, storage)
        note = None
        if _fits_smaller(storage, report):
            first = report.footprint.flash_bytes
            layout, report, lowered = _write_and_measure(
                folder, qgraph, board, selftest, options, extra_cflags,
                StorageChoice(storage.request, "size"))
            note = (f"with --optimize {storage.optimize} the model needs {first:,} B of flash, more "
                    f"than {board.name} has; stored for size instead ({report.footprint.flash_bytes:,} B)")
        check_budget(board, report.prefix, report.footprint, list(report.flash_consumers),
                     list(report.ram_consumers), options.opt)
        images = list(layout.image_mains)
        run_make(folder, board, ["all"], extra_cflags=extra_cflags)
        sizes = {name: _measure(folder, board, layout, name) for name in images}
        _check_images_fit(board, report.prefix, sizes)
        firmware_folder.write_readme(folder, qgraph, board, report.prefix, report.footprint,
                                     options.opt, selftest.count, options.kernels)
    return FirmwareBuild(
        board=board, prefix=report.prefix, folder=out_dir, opt=options.opt, kernels=options.kernels,
        footprint=report.footprint,
        flash_consumers=report.flash_consumers, ram_consumers=report.ram_consumers,
        images={name: out_dir / BUILD_DIR / f"{name}.elf" for name in images},
        image_sizes={name: (s.flash_bytes, s.ram_bytes) for name, s in sizes.items()},
        selftest_vectors=selftest.count,
        layer_names=tuple(node.name for node in qgraph.nodes),
        input_size=qgraph.tensor(qgraph.input).size,
        output_size=qgraph.tensor(qgraph.output).size,
        instructions_estimate=estimate_instructions(qgraph),
        formats=tuple(lowered.storage.formats().items()),
        storage_note=note,
    )


def _check_images_fit(board: Board, prefix: str, sizes: dict[str, ImageSize]) -> None:
    """The model fits (check_budget), but each test image must too: the
    self-test embeds its golden vectors, the harness its own few buffers,
    and nothing stops a stack from growing into them."""
    for name, size in sizes.items():
        if size.flash_bytes > board.flash_bytes or size.ram_bytes > board.ram_bytes:
            raise UserError(
                f"{prefix} fits {board.name}, but edgegen's {name} image does not: flash "
                f"{size.flash_bytes:,} B of {board.flash_bytes:,}, RAM {size.ram_bytes:,} B of "
                f"{board.ram_bytes:,} (data + bss {size.totals.ram:,} + stack estimate "
                f"{size.stack.bytes:,}). "
                + ("Embed fewer self-test vectors." if name == "selftest" else
                   "A smaller model leaves room for it."))


def _measure(folder: Path, board: Board, layout: FolderLayout, image: str) -> ImageSize:
    objects = [folder / BUILD_DIR / "obj" / o for o in layout.image_objects(image)]
    return measure_image(folder / BUILD_DIR / f"{image}.elf", objects,
                         firmware_folder.STACK_ROOT[board.arch])
