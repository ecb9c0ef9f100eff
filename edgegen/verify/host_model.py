"""The generated C, compiled on the host and called through cffi.

Nothing is taken on trust from the folder being verified: the buffer sizes
come from the quantized graph (``ModelSizes``), the header's macros and the
invoke prototypes are checked against them, the cffi declarations are
written here, and every call runs between guard bytes so that C writing
outside its buffers is reported, not left to corrupt the verifier.

Every vector goes through each entry point the model has: ``<prefix>_invoke``
(the caller's input and output buffers) and ``<prefix>_invoke_in_arena``
(input and output inside the arena); their outputs must be equal.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegen.emit.c_format import ROUNDING_VALUE, c_prefix
from edgegen.errors import UserError, VerificationFailure
from edgegen.host.compiler import compile_shared_library, load_library
from edgegen.ir import QGraph
from edgegen.plan.arena import MemoryPlan

GUARD_BYTES = 64
MAX_THREADS = 4
MIN_VECTORS_PER_THREAD = 256  # below this a thread costs more than it saves
_GUARD_VALUE = 0x5A
_GUARD = bytes([_GUARD_VALUE]) * GUARD_BYTES
_REGENERATE = "regenerate the folder with `edgegen deploy`"
INVOKE = "invoke"  # <prefix>_invoke(input, output, arena)
IN_ARENA = "invoke_in_arena"  # <prefix>_invoke_in_arena(arena)


@dataclass(frozen=True)
class InArenaSizes:
    """<prefix>_invoke_in_arena's arena: its size, where the input is read
    and where the output is left."""

    arena_size: int
    input_offset: int
    output_offset: int


@dataclass(frozen=True)
class ModelSizes:
    """What the generated API must say, from the quantized graph and its plan."""

    prefix: str
    input_size: int
    output_size: int
    arena_size: int
    # The model's eg_rounding value: the build fixes it (EG_FIXED_ROUNDING),
    # as the firmware's does. None: the kernels read it at run time.
    rounding: int | None = None
    # <prefix>_invoke_in_arena's arena; None: the model has only <prefix>_invoke.
    in_arena: InArenaSizes | None = None

    @staticmethod
    def of(qgraph: QGraph, plan: MemoryPlan) -> "ModelSizes":
        """The generated API's sizes, as the quantized graph determines them."""
        io = plan.in_arena
        in_arena = None if io is None else InArenaSizes(io.arena_size, io.input_offset,
                                                        io.output_offset)
        return ModelSizes(c_prefix(qgraph.name), qgraph.tensor(qgraph.input).size,
                          qgraph.tensor(qgraph.output).size, plan.arena_size,
                          ROUNDING_VALUE[qgraph.rounding], in_arena)

    def define_flags(self) -> tuple[str, ...]:
        return () if self.rounding is None else (f"-DEG_FIXED_ROUNDING={self.rounding}",)

    def entry_points(self) -> tuple[str, ...]:
        return (INVOKE,) if self.in_arena is None else (INVOKE, IN_ARENA)

    def prototypes(self) -> dict[str, str]:
        """entry point -> its C declaration (what cffi is told)."""
        declarations = {
            INVOKE: f"int {self.prefix}_invoke(const int8_t *input, int8_t *output, int8_t *arena);",
            IN_ARENA: f"int {self.prefix}_invoke_in_arena(int8_t *arena);",
        }
        return {entry: declarations[entry] for entry in self.entry_points()}

    def macros(self) -> dict[str, int]:
        p = self.prefix.upper()
        macros = {f"{p}_INPUT_SIZE": self.input_size, f"{p}_OUTPUT_SIZE": self.output_size,
                  f"{p}_ARENA_SIZE": self.arena_size}
        if self.in_arena is not None:
            macros.update({f"{p}_IO_ARENA_SIZE": self.in_arena.arena_size,
                           f"{p}_INPUT_OFFSET": self.in_arena.input_offset,
                           f"{p}_OUTPUT_OFFSET": self.in_arena.output_offset})
        if self.rounding is not None:
            macros[f"{p}_ROUNDING"] = self.rounding
        return macros


def model_sources(source_dir: Path, prefix: str) -> list[Path]:
    """The C files of a generated model folder; UserError naming a missing one."""
    source_dir = Path(source_dir)
    sources = [source_dir / f"{prefix}.c", source_dir / f"{prefix}_weights.c"]
    for path in sources + [source_dir / f"{prefix}.h", source_dir / f"{prefix}_weights.h"]:
        if not path.is_file():
            raise UserError(f"{path} is missing: the folder is incomplete; {_REGENERATE}")
    runtime = sorted((source_dir / "runtime").glob("*.c"))
    if not runtime:
        raise UserError(f"{source_dir / 'runtime'} holds no C sources: the folder is incomplete; "
                        f"{_REGENERATE}")
    return sources + runtime


def check_header(header: Path, sizes: ModelSizes) -> None:
    """The header must declare the sizes and the prototype the model needs."""
    try:
        text = Path(header).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {header} ({exc}); {_REGENERATE}") from None
    for name, needed in sizes.macros().items():
        found = _macro(text, name)
        if found is None or _integer(found) != needed:
            shown = "no definition" if found is None else repr(found)
            raise UserError(f"{header} gives {name} {shown}, but its quantized model needs "
                            f"{needed}: the folder's C does not match its model.qgraph.npz "
                            f"(edited or mixed up); {_REGENERATE}")
    for prototype in sizes.prototypes().values():
        if prototype not in text:
            raise UserError(f"{header} does not declare `{prototype}`: the folder's C does "
                            f"not match its model; {_REGENERATE}")


def _integer(value: str) -> int | None:
    """A macro's value if it is a plain integer, in parentheses or not, with
    comments around it; None for anything else (an expression, a name)."""
    value = re.sub(r"/\*.*?\*/|//.*$", " ", value).strip()
    while value.startswith("(") and value.endswith(")"):
        value = value[1:-1].strip()
    return int(value.rstrip("uU")) if re.fullmatch(r"[0-9]+[uU]?", value) else None


def _macro(text: str, name: str) -> str | None:
    match = re.search(rf"^[ \t]*#[ \t]*define[ \t]+{re.escape(name)}[ \t]+(.*?)[ \t]*$", text, re.M)
    return None if match is None else match.group(1)


class HostModel:
    """A generated model folder (``<prefix>.h/.c``, ``<prefix>_weights.c``,
    ``runtime/``) built into a shared library and loaded in-process."""

    def __init__(self, source_dir: Path, sizes: ModelSizes, build_dir: Path, *,
                 cc: str | None = None, opt: str = "-O2", extra_flags=()):
        source_dir = Path(source_dir)
        sources = model_sources(source_dir, sizes.prefix)
        check_header(source_dir / f"{sizes.prefix}.h", sizes)
        self.sizes = sizes
        build_dir.mkdir(parents=True, exist_ok=True)
        # dlopen returns the already loaded library for a path it has seen, so
        # the file name carries a hash of what went into it.
        extra_flags = sizes.define_flags() + tuple(extra_flags)
        digest = _digest(sources, (cc or "", opt) + extra_flags)
        self.library_path = compile_shared_library(
            sources, [source_dir, source_dir / "runtime"],
            build_dir / f"lib{sizes.prefix}-{digest}.so", cc=cc, opt=opt, extra_flags=extra_flags,
        )
        prototypes = sizes.prototypes()
        self.ffi, self.lib = load_library(self.library_path, "\n".join(prototypes.values()))
        self._functions = {}
        for entry in prototypes:
            try:
                self._functions[entry] = getattr(self.lib, f"{sizes.prefix}_{entry}")
            except AttributeError:
                raise UserError(f"{self.library_path.name} has no {sizes.prefix}_{entry}: "
                                f"the folder's C does not define it; {_REGENERATE}") from None

    @property
    def entry_points(self) -> tuple[str, ...]:
        """The model's entry points: INVOKE, and IN_ARENA when it has one."""
        return tuple(self._functions)

    def run(self, inputs: np.ndarray, entry_points: tuple[str, ...] | None = None) -> np.ndarray:
        """int8 outputs (N, OUTPUT_SIZE) for int8 inputs (N, ...) in model layout.

        Each vector goes through each of ``entry_points`` (default: every
        entry point of the model); their outputs must be equal
        (VerificationFailure naming the vector and the first byte that
        differs). Large batches run on a few threads, each with its own
        guarded buffers: cffi releases the GIL inside the C call, so the
        cores share the work. A failure reports the lowest vector index that
        failed."""
        s = self.sizes
        entries = self.entry_points if entry_points is None else tuple(entry_points)
        unknown = [e for e in entries if e not in self._functions]
        if unknown or not entries:
            raise ValueError(f"entry points must be some of {', '.join(self.entry_points)}, "
                             f"got {', '.join(entries) or 'none'}")
        batch = np.ascontiguousarray(inputs, dtype=np.int8).reshape(len(inputs), -1)
        if batch.shape[1] != s.input_size:
            raise ValueError(f"model takes {s.input_size} int8 values, got {batch.shape[1]}")
        out = np.zeros((len(batch), s.output_size), dtype=np.int8)
        workers = max(1, min(os.cpu_count() or 1, MAX_THREADS, len(batch) // MIN_VECTORS_PER_THREAD))
        if workers == 1:
            self._run_range(entries, batch, out, 0, len(batch), threading.Event())
            return out
        bounds = np.linspace(0, len(batch), workers + 1).astype(int)
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(self._run_range, entries, batch, out, int(a), int(b), stop)
                       for a, b in zip(bounds[:-1], bounds[1:])]
            try:
                for future in futures:  # in order: the first failure is the lowest index
                    future.result()
            except BaseException:
                stop.set()  # the other threads stop at their next vector
                raise
        return out

    def _run_range(self, entries: tuple[str, ...], batch: np.ndarray, out: np.ndarray,
                   first: int, end: int, stop: threading.Event) -> None:
        s = self.sizes
        buffers = _GuardedBuffers(self.ffi, s)
        for i in range(first, end):
            if stop.is_set():
                return
            row = batch[i].tobytes()
            results = [self._call(entry, buffers, row, i) for entry in entries]
            for entry, result in zip(entries[1:], results[1:]):
                differ = np.flatnonzero(result != results[0])
                if differ.size:
                    b = int(differ[0])
                    raise VerificationFailure(
                        f"{s.prefix}_{entry} and {s.prefix}_{entries[0]} differ on vector {i}, "
                        f"output byte {b}: {int(result[b])} and {int(results[0][b])}")
            out[i] = results[0]

    def _call(self, entry: str, buffers: "_GuardedBuffers", row: bytes, i: int) -> np.ndarray:
        """One vector through one entry point: its output."""
        name = f"{self.sizes.prefix}_{entry}"
        if entry == INVOKE:
            buffers.load(row)
            status = self._functions[entry](buffers.input, buffers.output, buffers.arena)
        else:
            buffers.load_in_arena(row)
            status = self._functions[entry](buffers.io_arena)
        if status != 0:
            raise VerificationFailure(f"{name} returned {status} on vector {i}")
        problem = buffers.damage(row if entry == INVOKE else None)
        if problem is not None:
            raise VerificationFailure(f"{name} {problem} on vector {i}")
        return buffers.result() if entry == INVOKE else buffers.result_in_arena()


class _GuardedBuffers:
    """Input, output and arena (and the in-arena entry point's arena), each
    between GUARD_BYTES of a known value."""

    def __init__(self, ffi, sizes: ModelSizes):
        self.ffi = ffi
        self.output_size = sizes.output_size
        self.in_arena = sizes.in_arena
        self.sizes = {"input": sizes.input_size, "output": sizes.output_size,
                      "arena": max(sizes.arena_size, 1)}
        if sizes.in_arena is not None:
            self.sizes["in-arena I/O arena"] = sizes.in_arena.arena_size
        self.blocks = {name: ffi.new("int8_t[]", size + 2 * GUARD_BYTES)
                       for name, size in self.sizes.items()}
        for block in self.blocks.values():
            ffi.memmove(block, bytes([_GUARD_VALUE]) * len(block), len(block))
        self.input, self.output, self.arena = (self.blocks[n] + GUARD_BYTES
                                               for n in ("input", "output", "arena"))
        self.io_arena = (None if sizes.in_arena is None
                         else self.blocks["in-arena I/O arena"] + GUARD_BYTES)

    def load(self, row: bytes) -> None:
        self.ffi.memmove(self.input, row, len(row))

    def load_in_arena(self, row: bytes) -> None:
        self.ffi.memmove(self.io_arena + self.in_arena.input_offset, row, len(row))

    def result(self) -> np.ndarray:
        return np.frombuffer(self.ffi.buffer(self.output, self.output_size), np.int8).copy()

    def result_in_arena(self) -> np.ndarray:
        output = self.io_arena + self.in_arena.output_offset
        return np.frombuffer(self.ffi.buffer(output, self.output_size), np.int8).copy()

    def damage(self, row: bytes | None) -> str | None:
        """What the call broke: a guard byte, or its const input ``row``
        (None: the input is not const, it is in the arena). Only the guards
        are read, not the buffers between them."""
        for name, size in self.sizes.items():
            raw = self.ffi.buffer(self.blocks[name])
            if raw[:GUARD_BYTES] != _GUARD:
                return f"wrote before the start of its {name} buffer ({size} bytes)"
            if raw[GUARD_BYTES + size:] != _GUARD:
                return f"wrote past the end of its {name} buffer ({size} bytes)"
        if row is not None and self.ffi.buffer(self.input, len(row))[:] != row:
            return "changed its const input"
        return None


def _digest(sources, flags) -> str:
    h = hashlib.sha256("\0".join(flags).encode())
    for path in sources:
        h.update(path.read_bytes())
    return h.hexdigest()[:12]
