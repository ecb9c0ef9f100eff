"""Compile C for the host and load it in-process through cffi (ABI mode).

The C API is declared once, in ``runtime_c/eg_runtime.h``: the region
between its ``/* cdef-begin */`` and ``/* cdef-end */`` markers is handed to
cffi verbatim (``cdef_from_header``), so Python never keeps a second copy.

Every compilation uses ``WARNING_FLAGS``: C99 and warnings as errors, the
same flags the target builds use, so code that passes here compiles cleanly
everywhere.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import cffi

from edgegen import paths
from edgegen.errors import UserError
from edgegen.external_tool import run_tool

WARNING_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror")

CDEF_BEGIN = "/* cdef-begin */"
CDEF_END = "/* cdef-end */"

RUNTIME_LIBRARY_NAME = "libeg_runtime.so"

_DEFAULT_COMPILERS = ("cc", "gcc")
_STDERR_LINES = 15


def find_compiler(cc: str | None = None) -> str:
    """The path of the C compiler ``cc`` (a name on PATH or a path).

    Without ``cc``, the first of ``cc`` and ``gcc`` found on PATH.
    Raises UserError if there is none.
    """
    candidates = _DEFAULT_COMPILERS if cc is None else (cc,)
    for name in candidates:
        found = shutil.which(name)
        if found is not None:
            return found
    shown = "gcc" if cc is None else cc
    raise UserError(
        f"C compiler '{shown}' not found: install it (apt-get install gcc) or pass --cc PATH"
    )


def compile_shared_library(
    sources: Iterable[Path | str],
    include_dirs: Iterable[Path | str],
    output: Path,
    *,
    cc: str | None = None,
    opt: str = "-O2",
    extra_flags: Sequence[str] = (),
) -> Path:
    """Compile ``sources`` into the shared library ``output`` (-fPIC -shared)."""
    return _compile(
        sources, include_dirs, Path(output), cc, opt, ("-fPIC", "-shared", *extra_flags)
    )


def compile_executable(
    sources: Iterable[Path | str],
    include_dirs: Iterable[Path | str],
    output: Path,
    *,
    cc: str | None = None,
    opt: str = "-O1",
    extra_flags: Sequence[str] = (),
) -> Path:
    """Compile and link ``sources`` into the program ``output`` (e.g. a
    sanitizer test driver: pass ``-fsanitize=...`` in ``extra_flags``)."""
    return _compile(sources, include_dirs, Path(output), cc, opt, tuple(extra_flags))


def _compile(sources, include_dirs, output: Path, cc, opt, flags) -> Path:
    compiler = find_compiler(cc)
    sources = [Path(s) for s in sources]
    if not sources:
        raise ValueError("nothing to compile: no C sources given")
    output.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so that a failed or interrupted
    # build never leaves a half-written file under the final name.
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    tmp = tmp_dir / output.name
    command = [
        compiler,
        *WARNING_FLAGS,
        opt,
        *flags,
        *(f"-I{d}" for d in include_dirs),
        *(str(s) for s in sources),
        "-o",
        str(tmp),
    ]
    try:
        try:
            result = run_tool(command)
        except OSError as exc:
            raise UserError(f"cannot run C compiler '{compiler}': {exc}") from exc
        if result.returncode != 0:
            raise UserError(_failure_message(compiler, sources, result))
        if not tmp.is_file():
            raise UserError(f"C compiler '{compiler}' reported success but wrote no {output.name}: "
                            "it is not a working C compiler; pass one with --cc (gcc or clang)")
        os.replace(tmp, output)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return output


def _failure_message(compiler: str, sources: list[Path], result) -> str:
    names = ", ".join(s.name for s in sources[:5])
    if len(sources) > 5:
        names += f" and {len(sources) - 5} more"
    lines = (result.stderr or result.stdout or "").splitlines()
    if not lines:
        return (f"C compiler '{compiler}' failed (exit status {result.returncode}) on {names} "
                "and printed nothing: pass a working C compiler with --cc (gcc or clang)")
    shown = "\n".join(lines[:_STDERR_LINES])
    if len(lines) > _STDERR_LINES:
        shown += f"\n... ({len(lines) - _STDERR_LINES} more lines)"
    return (
        f"C compiler '{compiler}' failed (exit status {result.returncode}) on {names}:\n"
        f"{shown}"
    )


def cdef_from_header(header: Path) -> str:
    """The declarations between the header's cdef markers, for ``ffi.cdef``."""
    text = Path(header).read_text(encoding="utf-8")
    begin = text.find(CDEF_BEGIN)
    end = text.find(CDEF_END, begin + len(CDEF_BEGIN)) if begin >= 0 else -1
    if begin < 0 or end < 0:
        raise ValueError(f"{header}: no '{CDEF_BEGIN}' ... '{CDEF_END}' region")
    return text[begin + len(CDEF_BEGIN) : end]


def load_library(path: Path, cdef: str) -> tuple[cffi.FFI, object]:
    """Open the shared library ``path`` with cffi in ABI mode.

    The process keeps a library open until it exits, and the dynamic loader
    returns the already-open library for a path it has seen: build each
    library under a new path instead of overwriting a loaded one.
    """
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    try:
        lib = ffi.dlopen(str(Path(path).resolve()))
    except OSError as exc:
        raise UserError(f"cannot load {Path(path).name}, built by the host C compiler ({exc}): "
                        "pass a compiler for this machine with --cc (gcc or clang)") from None
    return ffi, lib


def runtime_sources() -> list[Path]:
    """Every kernel file of the C runtime, in a stable order."""
    return sorted(paths.RUNTIME_DIR.glob("*.c"))


def build_runtime_library(workdir: Path, *, cc: str | None = None,
                          defines: tuple[str, ...] = ()) -> tuple[cffi.FFI, object]:
    """Compile the whole C runtime into ``workdir`` and load it.
    ``defines``: ``NAME`` or ``NAME=value`` preprocessor definitions."""
    library = compile_shared_library(
        runtime_sources(),
        [paths.RUNTIME_DIR],
        Path(workdir) / RUNTIME_LIBRARY_NAME,
        cc=cc,
        extra_flags=tuple(f"-D{d}" for d in defines),
    )
    return load_library(library, cdef_from_header(paths.RUNTIME_HEADER))
