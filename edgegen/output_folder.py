"""Output folders that appear whole or not at all, and never cost the user a file.

A run that writes the folder ``OUT``:

1. *claims* it by creating ``.OUT.edgegen-partial`` beside it (``mkdir`` is
   atomic) and holding an exclusive ``flock`` on that folder for the whole
   run: a second run on the same ``OUT`` fails at once with a clear message,
   and a claim left by a killed run (no lock held) is recognised and reused;
2. writes everything into the claim folder, then a *manifest*
   (``MANIFEST_NAME``: every file it wrote, with its sha256);
3. *commits* by renaming the claim folder to ``OUT`` — with
   ``RENAME_NOREPLACE`` when ``OUT`` did not exist (a folder that appeared
   meanwhile is never overwritten), or by swapping it with an ``OUT`` that
   ``--force`` may replace.

``--force`` replaces only a folder that edgegen made itself: it holds a
manifest, every file in it is listed there and unchanged (files under the
``build/`` folders edgegen made are build products and may differ), and it
holds none of the run's inputs. Anything else is refused, naming the files.

Failures, Ctrl-C and SIGTERM (which the CLI turns into an exception) remove
the claim folder and the parent folders the run created; files get the
user's umask.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from edgegen import __version__, interrupts
from edgegen.errors import UserError

MANIFEST_NAME = ".edgegen-manifest.json"
MANIFEST_FORMAT = "edgegen.output-folder"
MANIFEST_VERSION = 1
# Folders of build products (objects, libraries, ELF files): make may rewrite
# them, so their contents are not compared with the manifest.
BUILD_PRODUCTS = "build"
_PARTIAL_SUFFIX = ".edgegen-partial"
_SHOWN = 5  # files named in a refusal


def claim_path(out: Path) -> Path:
    """The claim (temporary) folder of ``out``: a hidden sibling."""
    return out.parent / f".{out.name}{_PARTIAL_SUFFIX}"


def file_mode() -> int:
    """The permission bits a new file gets under the user's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def apply_umask(path: Path) -> None:
    """Give a file made by ``mkstemp`` (always 0600) the user's usual mode."""
    os.chmod(path, file_mode())


# ------------------------------------------------------------------ checks


def check_target(out: Path, force: bool, inputs: Iterable[Path | None] = ()) -> None:
    """Refuse an output folder that this run may not write; called before any work.

    ``inputs`` are the files and folders the run reads (checkpoint, data,
    compressed model, spec, board file): ``out`` may not hold any of them."""
    out = Path(out).absolute()
    _check_not_holding_inputs(out, inputs)
    _check_parents(out)
    if os.path.lexists(out):
        if not force:
            raise UserError(f"output folder {out} already exists: choose another --out, or pass "
                            "--force to replace a folder that edgegen wrote")
        _check_replaceable(out)


def _check_not_holding_inputs(out: Path, inputs: Iterable[Path | None]) -> None:
    target = out.resolve()
    for given in inputs:
        if given is None:
            continue
        path = Path(given).resolve()
        if path == target or target in path.parents:
            raise UserError(f"--out {out} holds {given}, an input of this run: choose an "
                            "--out that does not contain the run's inputs")


def _check_parents(out: Path) -> None:
    """The nearest existing ancestor must be a writable folder."""
    parent = out.parent
    while not os.path.lexists(parent):
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"cannot create {out}: {parent} is a file, not a folder; choose another --out")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot create {out}: no permission to write in {parent}; "
                        "choose another --out")


def _check_replaceable(out: Path) -> None:
    if out.is_symlink() or not out.is_dir():
        raise UserError(f"{out} exists and is not a folder: choose another --out")
    problems = foreign_files(out)
    if problems:
        raise UserError(f"--force replaces only a folder that edgegen wrote, and {out} "
                        f"{problems}; it was left as it is: choose another --out")


def foreign_files(folder: Path) -> str | None:
    """Why ``folder`` is not purely edgegen's output, or None if it is."""
    manifest = _read_manifest(folder)
    if manifest is None:
        return "has no edgegen manifest (it was not written by edgegen)"
    files, build_dirs = manifest
    extra, changed = [], []
    for path in _walk(folder):
        rel = path.relative_to(folder).as_posix()
        if rel == MANIFEST_NAME or _under(rel, build_dirs):
            continue
        if path.is_symlink() or not path.is_file():
            extra.append(rel)
        elif rel not in files:
            extra.append(rel)
        elif _sha256(path) != files[rel]:
            changed.append(rel)
    if extra:
        return f"holds files edgegen did not write: {_listed(extra)}"
    if changed:
        return f"holds files changed since edgegen wrote them: {_listed(changed)}"
    return None


def _listed(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _under(rel: str, folders: Iterable[str]) -> bool:
    return any(rel == d or rel.startswith(d + "/") for d in folders)


def _walk(folder: Path) -> Iterator[Path]:
    """Every non-folder entry below ``folder`` (symlinks are not followed)."""
    for root, dirs, names in os.walk(folder):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            yield Path(root) / name


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- manifest


def _read_manifest(folder: Path) -> tuple[dict[str, str], list[str]] | None:
    path = folder / MANIFEST_NAME
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != MANIFEST_FORMAT or data.get("version") != MANIFEST_VERSION:
            return None
        files, build_dirs = data["files"], data["build_folders"]
        if not (isinstance(files, dict) and isinstance(build_dirs, list)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
                and all(isinstance(d, str) for d in build_dirs)):
            return None
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    return files, build_dirs


def write_manifest(folder: Path) -> None:
    """List every file under ``folder`` with its sha256 (nested output
    folders' own manifests included)."""
    files = {}
    build_dirs = []
    for path in sorted(_walk(folder)):
        rel = path.relative_to(folder).as_posix()
        if rel != MANIFEST_NAME:
            files[rel] = _sha256(path)
    for root, dirs, _ in os.walk(folder):
        build_dirs += [(Path(root) / d).relative_to(folder).as_posix()
                       for d in dirs if d == BUILD_PRODUCTS]
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
                "edgegen_version": __version__, "build_folders": sorted(build_dirs),
                "files": files}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


# ------------------------------------------------------------ claim, commit


@contextlib.contextmanager
def atomic_folder(out: Path, force: bool, inputs: Iterable[Path | None] = ()):
    """Yield the claim folder to write into; on success it becomes ``out``.

    Raises UserError when ``out`` may not be written (see ``check_target``),
    when another run is writing it, or when it changed during the run in a
    way that makes the commit unsafe; nothing of the user's is touched then."""
    out = Path(out).absolute()
    check_target(out, force, inputs)
    with interrupts.deferred():  # parents are made and recorded whole
        created = _make_parents(out.parent)
    try:
        with _claim(out) as claim:
            yield claim
            write_manifest(claim)
            interrupts.check()  # a signal whose exception was swallowed: no commit
            with interrupts.deferred():
                _commit(claim, out, force)
    except BaseException:
        _remove_created(created)
        raise


def _make_parents(parent: Path) -> list[Path]:
    """Create the missing ancestors; return those created, outermost first."""
    missing = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    created = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            _remove_created(created)
            raise UserError(f"cannot create {folder}: {exc.strerror}; choose another --out") from None
        created.append(folder)
    return created


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        try:
            folder.rmdir()  # only if still empty: someone else may use it by now
        except OSError:
            break


@contextlib.contextmanager
def _claim(out: Path):
    """The claim folder, created and locked; removed again unless the body
    renamed it (the commit)."""
    claim = claim_path(out)
    for _ in range(3):
        with interrupts.deferred():  # a claim exists with its lock, or not at all
            fd = _try_claim(claim, out)
        if fd is not None:
            break
    else:
        raise UserError(f"another edgegen run is writing {out}: wait for it to finish or choose "
                        "another --out")
    try:
        interrupts.check()
        yield claim
    except BaseException:
        _remove_claim(claim)
        raise
    finally:
        os.close(fd)


def _try_claim(claim: Path, out: Path) -> int | None:
    """The locked claim's descriptor; None to try again (a stale claim was
    removed, or another run got in between)."""
    try:
        os.mkdir(claim)
    except FileExistsError:
        _reclaim_stale(claim, out)
        return None
    except OSError as exc:
        raise UserError(f"cannot create {out} (its work folder {claim.name} beside it): "
                        f"{exc.strerror}; choose another --out") from None
    return _lock(claim)


def _lock(folder: Path) -> int | None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _reclaim_stale(claim: Path, out: Path) -> None:
    """Remove the claim folder of a run that was killed (nobody holds its
    lock); raise if a live run holds it."""
    try:
        fd = _lock(claim)
    except FileNotFoundError:
        return  # its run just finished: try again
    if fd is None:
        raise UserError(f"another edgegen run is writing {out} (its work folder {claim} is in "
                        "use): wait for it to finish or choose another --out")
    try:
        shutil.rmtree(claim)
    finally:
        os.close(fd)


def _remove_claim(claim: Path) -> None:
    shutil.rmtree(claim, ignore_errors=True)


def _commit(claim: Path, out: Path, force: bool) -> None:
    if not os.path.lexists(out):
        try:
            rename_noreplace(claim, out)
        except FileExistsError:
            raise UserError(f"{out} appeared while edgegen was running; it was not touched and "
                            "this run's output was discarded: run again with another --out") from None
        return
    if not force:
        raise UserError(f"{out} appeared while edgegen was running; it was not touched and this "
                        "run's output was discarded: run again with another --out")
    # The claim and ``out`` trade places; the old output, now at the claim's
    # path, is checked again before it is deleted: files put into it during
    # the run are never lost.
    exchange(claim, out)
    problem = foreign_files(claim)
    if problem is not None:
        exchange(claim, out)
        raise UserError(f"{out} changed while edgegen was running and {problem}; it was not "
                        "replaced and this run's output was discarded")
    shutil.rmtree(claim)


# ----------------------------------------------------------------- renames

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """Linux renameat2; False when the system or file system lacks it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.renameat2
    except (OSError, AttributeError):
        return False
    if call(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename, failing with FileExistsError if ``dst`` exists (atomically on Linux)."""
    try:
        if _renameat2(src, dst, _RENAME_NOREPLACE):
            return
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, "exists", str(dst)) from None
        raise
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "exists", str(dst))
    try:
        os.rename(src, dst)  # a folder is never renamed over a non-empty one
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise FileExistsError(errno.EEXIST, "exists", str(dst)) from None
        raise


def exchange(a: Path, b: Path) -> None:
    """Swap two folders (atomically on Linux)."""
    if _renameat2(a, b, _RENAME_EXCHANGE):
        return
    parked = a.parent / f"{a.name}.swap"
    os.rename(b, parked)
    os.rename(a, b)
    os.rename(parked, a)
