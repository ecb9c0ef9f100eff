"""A self-contained firmware folder for one board.

    model/     the generated model, its runtime and the self-test with its
               golden vectors: what a user's firmware links (CMakeLists.txt)
    board/     start-up code, linker scripts, board support and the mains of
               edgegen's three images (footprint, selftest, harness)
    Makefile   builds the library and the images with the board's toolchain
    CMakeLists.txt, README.md

Every value is prepared here (flags, object lists, golden vectors formatted
by ``edgegen.emit.c_format``); the templates in ``templates/firmware/`` only
lay them out.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from edgegen import __version__
from edgegen.emit.c_format import c_array_body, comment_text
from edgegen.emit.generate import GeneratedSources
from edgegen.emit.templates import template_environment
from edgegen.firmware.boards import DEFAULT_KERNELS, DEFAULT_OPT_LEVEL, Board, check_opt_flag
from edgegen.firmware.budget import Footprint
from edgegen.firmware.exit_codes import ExitCode
from edgegen.firmware.qemu import qemu_arguments
from edgegen.firmware.vectors import golden_outputs
from edgegen.host.compiler import WARNING_FLAGS
from edgegen.ir import QGraph
from edgegen.quantize.artifact import content_hash

DEFAULT_OPT = f"-{DEFAULT_OPT_LEVEL}"
# The compile definition that selects the runtime's Arm DSP paths; the
# portable C needs none.
KERNEL_DEFINES = {"dsp": ("EG_KERNELS_DSP=1",), "portable": ()}
# The footprint image is linked with regions this large, so that a model
# over budget still links and can be measured (see board/measure.ld).
MEASURE_REGION_BYTES = 256 * 1024 * 1024


# Per architecture: the entry symbol and an instruction that always faults.
_ENTRY = {"arm": "Reset_Handler", "riscv": "_start"}
_UNDEFINED_INSTRUCTION = {"arm": "udf #0", "riscv": "unimp"}
# The C function at the root of the call graph, for the stack estimate.
STACK_ROOT = {"arm": "Reset_Handler", "riscv": "eg_startup"}
IN_ARENA_ENTRY = "invoke_in_arena"  # <prefix>_invoke_in_arena


@dataclass(frozen=True)
class SelftestVectors:
    """Golden input/output pairs embedded in the self-test."""

    inputs: np.ndarray  # (n, input size) int8
    outputs: np.ndarray  # (n, output size) int8, from the golden model
    provenance: str  # where the inputs came from, printed in the C comment

    @property
    def count(self) -> int:
        return len(self.inputs)


def golden_selftest_vectors(qgraph: QGraph, inputs: np.ndarray, provenance: str) -> SelftestVectors:
    """Pairs ``inputs`` with the golden model's outputs."""
    inputs = np.asarray(inputs, dtype=np.int8)
    if len(inputs) == 0:
        raise ValueError("the self-test needs at least one vector")
    inputs = inputs.reshape(len(inputs), -1)
    return SelftestVectors(inputs, golden_outputs(qgraph, inputs), provenance)


@dataclass(frozen=True)
class FolderLayout:
    """Paths relative to the folder: what the Makefile builds from what.
    The Makefile's object lists are rendered from here, and the stack
    estimate reads the call graphs of exactly an image's objects."""

    prefix: str
    model_sources: tuple[str, ...]
    selftest_source: str
    board_sources: tuple[str, ...]  # linked into every image
    image_mains: dict  # image name -> its main source

    @staticmethod
    def object_of(source: str) -> str:
        """Object path under build/obj for a source path."""
        return str(Path(source).with_suffix(".o"))

    def model_objects(self) -> list[str]:
        return [self.object_of(s) for s in self.model_sources]

    def hooked_model_objects(self) -> list[str]:
        """The harness's model: invoke rebuilt with the marker hooks."""
        invoke = f"model/{self.prefix}.c"
        return [f"hooked/{self.prefix}.o" if s == invoke else self.object_of(s)
                for s in self.model_sources]

    def image_objects(self, image: str) -> list[str]:
        """Every object linked into ``image``, in link order."""
        objects = [self.object_of(s) for s in self.board_sources]
        objects.append(self.object_of(self.image_mains[image]))
        if image == "selftest":
            return objects + [self.object_of(self.selftest_source)] + self.model_objects()
        if image == "harness":
            return objects + ["board/eg_marker.o"] + self.hooked_model_objects()
        return objects + self.model_objects()


def _layout(board: Board, sources: GeneratedSources, runtime_files: list[str]) -> FolderLayout:
    prefix = sources.prefix
    model = [f"model/{prefix}.c", f"model/{prefix}_weights.c"] + [f"model/runtime/{f}" for f in runtime_files]
    if board.arch == "arm":
        support = ["board/startup_cortex_m.c"]
    else:
        support = ["board/startup_riscv.S"]
        if board.emulated:
            support.append("board/eg_semihost_trap.S")
    support += ["board/eg_startup.c", "board/eg_board.c", "board/eg_libc.c"]
    mains = {"footprint": "board/footprint_main.c", "selftest": "board/selftest_main.c"}
    if board.emulated:
        mains["harness"] = "board/harness_main.c"
    return FolderLayout(prefix, tuple(model), f"model/{prefix}_selftest.c", tuple(support), mains)


def _hex(value: int) -> str:
    return f"0x{value:08X}"


def _model_context(qgraph: QGraph, prefix: str, arena_size: int, io_in_arena: bool) -> dict:
    return {
        "version": __version__,
        "prefix": prefix,
        "PREFIX": prefix.upper(),
        "source_name": comment_text(qgraph.name),
        "model_hash": content_hash(qgraph),
        # C forbids zero-length arrays; a model without arena still gets one byte.
        "arena_bytes": max(1, arena_size),
        # The images call <prefix>_invoke_in_arena (input and output in the
        # arena of arena_size bytes) or <prefix>_invoke (separate buffers).
        "io_in_arena": io_in_arena,
        "entry_point": IN_ARENA_ENTRY if io_in_arena else "invoke",
    }


def board_text(board: Board) -> dict:
    """The board's free-text fields as they may appear in comments."""
    return {"board_name": comment_text(board.name), "board_description": comment_text(board.description)}


def _selftest_context(selftest: SelftestVectors) -> dict:
    return {
        "vectors": selftest.count,
        "provenance": comment_text(selftest.provenance),
        "inputs": c_array_body(selftest.inputs),
        "outputs": c_array_body(selftest.outputs),
    }


def kernel_flags(kernels: str) -> tuple[str, ...]:
    """-D flags of the kernel path ("dsp" or "portable")."""
    return tuple(f"-D{define}" for define in KERNEL_DEFINES[kernels])


def _compile_context(sources: GeneratedSources, opt: str, kernels: str) -> dict:
    """How the model and runtime are compiled: the values the Makefile and
    CMakeLists.txt record, so that a user's build is edgegen's."""
    return {
        "opt": opt,
        "kernels": kernels,
        "kernel_flags": " ".join(kernel_flags(kernels)),
        # What selects the DSP paths, for the comments and CMake's option.
        "dsp_flags": " ".join(kernel_flags("dsp")),
        "dsp_defines": " ".join(KERNEL_DEFINES["dsp"]),
        "model_define_flags": " ".join(sources.define_flags),
        "model_defines": list(sources.defines),
    }


def _context(qgraph: QGraph, board: Board, arena_size: int, io_in_arena: bool,
             selftest: SelftestVectors, layout: FolderLayout, compile_context: dict) -> dict:
    return {
        **_model_context(qgraph, layout.prefix, arena_size, io_in_arena),
        **_selftest_context(selftest),
        **board_text(board),
        "board": board,
        "exit_codes": [(code.name, int(code)) for code in ExitCode],
        "fault_code": int(ExitCode.FAULT),
        "test_device": _hex(board.qemu.test_device) if board.qemu and board.qemu.test_device else "",
        "entry": _ENTRY[board.arch],
        "undefined_instruction": _UNDEFINED_INSTRUCTION[board.arch],
        "cpu_flags": " ".join(shlex.quote(f) for f in board.cflags),
        "warning_flags": " ".join(WARNING_FLAGS),
        **compile_context,
        "extra_ldflags": [],
        "objects": {
            "model": layout.model_objects(),
            "selftest": layout.object_of(layout.selftest_source),
        },
        "images": {name: layout.image_objects(name) for name in layout.image_mains},
        "sources": {"model": list(layout.model_sources), "selftest": layout.selftest_source},
    }


def _board_files(board: Board) -> dict[str, str]:
    """board/<file> -> template, for this board's architecture and kind."""
    files = {
        "eg_board.h": "eg_board.h.j2",
        "eg_board.c": "eg_board_emulated.c.j2" if board.emulated else "eg_board_real.c.j2",
        "eg_startup.c": "eg_startup.c.j2",
        "eg_libc.c": "eg_libc.c.j2",
        "footprint_main.c": "footprint_main.c.j2",
        "selftest_main.c": "selftest_main.c.j2",
    }
    if board.arch == "arm":
        files["startup_cortex_m.c"] = "startup_cortex_m.c.j2"
    else:
        files["startup_riscv.S"] = "startup_riscv.S.j2"
        if board.emulated:
            files["eg_semihost_trap.S"] = "eg_semihost_trap.S.j2"
    if board.emulated:
        files.update({"eg_marker.h": "eg_marker.h.j2", "eg_marker.c": "eg_marker.c.j2",
                      "harness_main.c": "harness_main.c.j2"})
    return files


def _linker_script(env: jinja2.Environment, context: dict, board: Board, measure: bool) -> str:
    flash = MEASURE_REGION_BYTES if measure else board.flash_bytes
    ram = MEASURE_REGION_BYTES if measure else board.ram_bytes
    return env.get_template("firmware/linker.ld.j2").render(
        context, measure=measure,
        flash_origin=_hex(board.flash_origin), flash_length=_hex(flash),
        ram_origin=_hex(board.ram_origin), ram_length=_hex(ram),
    )


def write_firmware_folder(folder: Path, qgraph: QGraph, board: Board, sources: GeneratedSources,
                          arena_size: int, selftest: SelftestVectors, *,
                          opt: str = DEFAULT_OPT, kernels: str = DEFAULT_KERNELS,
                          io_in_arena: bool = False) -> FolderLayout:
    """Write every source of the folder (nothing is compiled here).
    ``opt``: -O2, -Os or -O3; ``kernels``: "dsp" or "portable" (the caller
    has checked that the board can run it). ``io_in_arena``: edgegen's
    images call ``<prefix>_invoke_in_arena`` with an arena of ``arena_size``
    bytes holding the input and output (its IO_ARENA_SIZE), else
    ``<prefix>_invoke`` with separate buffers and ``arena_size`` bytes of
    arena (see ``edgegen.firmware.budget.StaticBuffers``)."""
    folder = Path(folder)
    _check_compile_choice(opt, kernels)
    sources.write(folder / "model")
    runtime_files = sorted(p.name for p in (folder / "model" / "runtime").glob("*.c"))
    layout = _layout(board, sources, runtime_files)
    context = _context(qgraph, board, arena_size, io_in_arena, selftest, layout,
                       _compile_context(sources, opt, kernels))
    env = template_environment()

    def render(template: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(env.get_template(f"firmware/{template}").render(context))

    write_selftest(folder, qgraph, layout.prefix, arena_size, selftest, io_in_arena=io_in_arena)
    for name, template in _board_files(board).items():
        render(template, folder / "board" / name)
    (folder / "board" / "linker.ld").write_text(_linker_script(env, context, board, measure=False))
    (folder / "board" / "measure.ld").write_text(_linker_script(env, context, board, measure=True))
    render("Makefile.j2", folder / "Makefile")
    render("CMakeLists.txt.j2", folder / "CMakeLists.txt")
    return layout


def _check_compile_choice(opt: str, kernels: str) -> None:
    # Both are written unquoted into the Makefile: only known values.
    check_opt_flag(opt)
    if kernels not in KERNEL_DEFINES:
        raise ValueError(f"kernels must be one of {', '.join(KERNEL_DEFINES)}, got {kernels!r}")


def write_selftest(folder: Path, qgraph: QGraph, prefix: str, arena_size: int,
                   selftest: SelftestVectors, *, io_in_arena: bool = False) -> None:
    """model/<prefix>_selftest.h and .c with ``selftest``'s golden vectors;
    ``arena_size`` and ``io_in_arena`` as for write_firmware_folder."""
    context = {**_model_context(qgraph, prefix, arena_size, io_in_arena),
               **_selftest_context(selftest)}
    env = template_environment()
    model = Path(folder) / "model"
    for suffix in ("h", "c"):
        text = env.get_template(f"firmware/selftest.{suffix}.j2").render(context)
        (model / f"{prefix}_selftest.{suffix}").write_text(text)


def write_readme(folder: Path, qgraph: QGraph, board: Board, prefix: str, footprint: Footprint,
                 opt: str, selftest_vectors: int, kernels: str = DEFAULT_KERNELS) -> None:
    """README.md, written last: it quotes the measured sizes."""
    command = " ".join(qemu_arguments(board, Path("build/selftest.elf"))) if board.emulated else ""
    context = {
        "version": __version__, "board": board, **board_text(board), "prefix": prefix,
        "source_name": comment_text(qgraph.name),
        "model_hash": content_hash(qgraph), "opt": opt, "kernels": kernels,
        "dsp_flags": " ".join(kernel_flags("dsp")), "selftest_vectors": selftest_vectors,
        "flash": f"{footprint.flash_bytes:,}", "ram": f"{footprint.ram_bytes:,}",
        "flash_limit": f"{board.flash_bytes:,}", "ram_limit": f"{board.ram_bytes:,}",
        "arena": f"{footprint.arena_bytes:,}", "stack": f"{footprint.stack.bytes:,}",
        "io_in_arena": footprint.io_in_arena,
        "selftest_failed_code": int(ExitCode.SELFTEST_FAILED),
        "qemu_command": f"{board.qemu.binary} {command}" if board.emulated else "",
    }
    text = template_environment().get_template("firmware/README.md.j2").render(context)
    (Path(folder) / "README.md").write_text(text)
