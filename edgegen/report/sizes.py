"""Sizes measured from compiled objects, never estimated.

``symbol_sizes`` reads the symbol table of an object file with ``nm``;
``weight_bytes_per_layer`` compiles a generated weights file on the host
and attributes each of its const arrays to its layer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgegen.emit.generate import GeneratedSources
from edgegen.errors import UserError
from edgegen.external_tool import run_tool
from edgegen.host.compiler import compile_executable


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


def weight_bytes_per_layer(sources: GeneratedSources, folder: Path, cc: str | None) -> dict[str, int]:
    """Bytes of const data per layer, from the weights file ``sources`` wrote
    into ``folder``, compiled (-Os, with the model's definitions, as every
    compilation of it) into ``folder``/build/weights.o."""
    obj = compile_executable(
        [folder / f"{sources.prefix}_weights.c"], [folder, folder / "runtime"],
        folder / "build" / "weights.o",
        cc=cc, opt="-Os", extra_flags=("-c", *sources.define_flags),
    )
    return const_bytes_per_layer(sources, symbol_sizes(obj), str(obj))


def const_bytes_per_layer(sources: GeneratedSources, sizes: dict[str, int],
                          where: str) -> dict[str, int]:
    """Bytes of each layer's const arrays and weights struct, from the symbol
    sizes of the object (or image) ``where`` they were compiled into."""
    per_layer: dict[str, int] = {}
    for item in (*sources.arrays, *sources.structs):
        if item.symbol not in sizes:
            raise RuntimeError(f"{item.symbol} missing from {where}")
        per_layer[item.layer] = per_layer.get(item.layer, 0) + sizes[item.symbol]
    return per_layer
