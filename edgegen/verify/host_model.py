"""The generated C, compiled on the host and called through cffi."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edgegen.build.host import cdef_from_header, compile_shared_library, load_library


class HostModel:
    """A generated model folder (``<prefix>.h/.c``, ``<prefix>_weights.c``,
    ``runtime/``) built into a shared library and loaded in-process."""

    def __init__(self, source_dir: Path, prefix: str, build_dir: Path, *,
                 cc: str | None = None, opt: str = "-O2", extra_flags=()):
        source_dir = Path(source_dir)
        runtime = source_dir / "runtime"
        sources = [source_dir / f"{prefix}.c", source_dir / f"{prefix}_weights.c"]
        sources += sorted(runtime.glob("*.c"))
        build_dir.mkdir(parents=True, exist_ok=True)
        # dlopen returns the already loaded library for a path it has seen, so
        # the file name carries a hash of what went into it.
        digest = _digest(sources, (cc or "", opt) + tuple(extra_flags))
        self.library_path = compile_shared_library(
            sources, [source_dir, runtime], build_dir / f"lib{prefix}-{digest}.so",
            cc=cc, opt=opt, extra_flags=extra_flags,
        )
        self.ffi, self.lib = load_library(
            self.library_path, cdef_from_header(source_dir / f"{prefix}.h")
        )
        header = (source_dir / f"{prefix}.h").read_text()
        self.input_size = _macro(header, f"{prefix.upper()}_INPUT_SIZE")
        self.output_size = _macro(header, f"{prefix.upper()}_OUTPUT_SIZE")
        self.arena_size = _macro(header, f"{prefix.upper()}_ARENA_SIZE")
        self._invoke = getattr(self.lib, f"{prefix}_invoke")

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """int8 outputs (N, OUTPUT_SIZE) for int8 inputs (N, ...) in model layout."""
        batch = np.ascontiguousarray(inputs, dtype=np.int8).reshape(len(inputs), -1)
        if batch.shape[1] != self.input_size:
            raise ValueError(f"model takes {self.input_size} int8 values, got {batch.shape[1]}")
        out = np.zeros((len(batch), self.output_size), dtype=np.int8)
        arena = self.ffi.new("int8_t[]", max(self.arena_size, 1))
        out_buf = self.ffi.new("int8_t[]", self.output_size)
        for i, row in enumerate(batch):
            status = self._invoke(self.ffi.from_buffer("int8_t[]", row), out_buf, arena)
            if status != 0:
                raise RuntimeError(f"{self.library_path.name}: invoke returned {status} on vector {i}")
            out[i] = np.frombuffer(self.ffi.buffer(out_buf), dtype=np.int8)
        return out


def _digest(sources, flags) -> str:
    h = hashlib.sha256("\0".join(flags).encode())
    for path in sources:
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _macro(header: str, name: str) -> int:
    for line in header.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "#define" and parts[1] == name:
            return int(parts[2].strip("()"))
    raise ValueError(f"generated header defines no {name}")
