"""The instruction counter: a QEMU TCG plugin built on the machine that runs it.

``qemu_plugin/insn_count.c`` is compiled with the host C compiler into
the cache folder, under a name that carries a hash of its source, so a
changed source is rebuilt and an unchanged one is built once per machine.
``read_marker_counts`` parses what the plugin writes at exit.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgegen.host.compiler import WARNING_FLAGS, find_compiler
from edgegen.errors import UserError
from edgegen.external_tool import run_tool
from edgegen.zoo.checkpoints import cache_dir

PLUGIN_SOURCE = Path(__file__).resolve().parent / "qemu_plugin" / "insn_count.c"


def plugin_path() -> Path:
    digest = hashlib.sha256(PLUGIN_SOURCE.read_bytes()).hexdigest()[:12]
    return cache_dir() / "qemu_plugin" / f"insn_count-{digest}.so"


def build_plugin(cc: str | None = None) -> Path:
    """The built plugin (compiled now if the cache does not hold it)."""
    target = plugin_path()
    if target.is_file():
        return target
    compiler = find_compiler(cc)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".insn_count-", suffix=".so", dir=target.parent)
    os.close(fd)
    command = [compiler, *WARNING_FLAGS, "-O2", "-shared", "-fPIC", str(PLUGIN_SOURCE), "-o", tmp]
    try:
        result = run_tool(command)
        if result.returncode != 0:
            raise UserError(f"building the QEMU instruction-count plugin with {compiler} failed:\n"
                            + "\n".join(result.stderr.splitlines()[:10]))
        os.replace(tmp, target)  # atomic: a concurrent build just replaces it
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


@dataclass(frozen=True)
class MarkerCounts:
    total: int  # instructions executed by the whole run
    hits: tuple[int, ...]  # instructions executed before each marker execution


def read_marker_counts(path: Path) -> MarkerCounts:
    """Parse the plugin's output file; a missing or damaged file is an error
    (the plugin writes it at exit, so QEMU did not exit normally)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"the instruction-count plugin wrote no {path.name}: QEMU did not exit normally")
    text = path.read_text()
    if "error" in text:
        raise UserError(f"the instruction-count plugin failed: {text.splitlines()[-1]}")
    lines = text.split()
    try:
        if lines[0] != "total" or lines[2] != "hits":
            raise ValueError(lines[:4])
        total, count = int(lines[1]), int(lines[3])
        hits = tuple(int(v) for v in lines[4:])
    except (IndexError, ValueError):
        raise UserError(f"{path} is not a complete instruction-count record") from None
    if len(hits) != count:
        raise UserError(f"{path} holds {len(hits)} marker counts, its header says {count}")
    return MarkerCounts(total, hits)
