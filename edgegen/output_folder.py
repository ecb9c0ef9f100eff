"""Output folders that appear whole or not at all.

Everything is written into a hidden temporary folder beside the target and
renamed into place at the end, so an error half-way (a compiler failure, a
bad checkpoint, Ctrl-C) never leaves a half-written folder behind.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from edgegen.errors import UserError


def check_target(out: Path, force: bool) -> None:
    """Refuse an existing folder unless ``force``; called before any work."""
    if out.exists() and not force:
        raise UserError(f"output folder {out} already exists: choose another --out or pass --force")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder: choose another --out")
    if out.parent.exists() and not out.parent.is_dir():
        raise UserError(f"cannot create {out}: {out.parent} is not a folder")


@contextlib.contextmanager
def atomic_folder(out: Path, force: bool):
    """Yield a temporary folder; on success it replaces ``out``."""
    out = Path(out).resolve()
    check_target(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
