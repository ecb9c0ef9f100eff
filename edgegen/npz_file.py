"""The container of edgegen's artifacts: one ``.npz`` with a JSON header.

numpy's zip of arrays, read with ``allow_pickle=False`` (an artifact can't
run code); ``header`` holds UTF-8 JSON with the format name and version.
Writes are atomic (temporary file in the same folder, then rename); reads
turn every way a file can be damaged into one UserError naming the file and
the command that makes a good one.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from edgegen.errors import UserError


def write_npz(path: Path, header: dict, arrays: dict[str, np.ndarray]) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_npz(path: Path, *, fmt: str, version: int, what: str, remedy: str) -> tuple[dict, dict]:
    """(header, arrays) of an artifact of format ``fmt`` at ``version``.

    ``what`` names the artifact in messages ("quantized model"), ``remedy``
    is the command that regenerates it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} not found: {remedy}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, EOFError) as exc:
        raise UserError(
            f"{path} is not a readable edgegen {what} ({type(exc).__name__}: {exc}); "
            f"it is truncated or corrupt: {remedy}"
        ) from None
    if not isinstance(header, dict) or header.get("format") != fmt:
        found = header.get("format") if isinstance(header, dict) else None
        raise UserError(f"{path} is not an edgegen {what} (format {found!r})")
    if header.get("version") != version:
        raise UserError(
            f"{path} has format version {header.get('version')}, this edgegen reads version "
            f"{version}: {remedy} with this edgegen"
        )
    return header, arrays
