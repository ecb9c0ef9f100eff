"""Sizes measured from compiled objects, never estimated.

``symbol_sizes`` reads the symbol table of an object file with ``nm``; the
report attributes each const array of the weights file to its layer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgegen.errors import UserError
from edgegen.external_tool import run_tool


def symbol_sizes(obj: Path, nm: str = "nm") -> dict[str, int]:
    """Defined symbols of ``obj`` and their sizes in bytes."""
    tool = shutil.which(nm)
    if tool is None:
        raise UserError(f"'{nm}' not found: install binutils (apt-get install binutils)")
    result = run_tool([tool, "-S", "--defined-only", "-t", "d", str(obj)])
    if result.returncode != 0:
        raise UserError(f"{nm} failed on {obj}: {result.stderr.strip()[:500]}")
    sizes = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:  # value size type name (symbols without size have 3)
            sizes[parts[3]] = int(parts[1])
    return sizes
