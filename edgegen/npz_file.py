"""The container of edgegen's artifacts: one ``.npz`` with a JSON header.

numpy's zip of arrays, read without pickle (an artifact can't run code);
``header`` holds UTF-8 JSON with the format name and version. Writes are
atomic (temporary file in the same folder, then rename); reads turn every
way a file can be damaged into one UserError naming the file and the
command that makes a good one.

Reading does not trust the file: the zip's table of entries is checked
before anything is decompressed (a zip bomb declares sizes it cannot back
up, and a damaged ``.npy`` header can declare a shape of terabytes), each
``.npy`` header is parsed and checked against its entry's size before its
array is allocated, and only plain numeric arrays come out (native byte
order, bools normalised to 0/1): no object, string, structured or datetime
arrays reach a loader.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from edgegen.errors import UserError, brief
from edgegen.output_folder import apply_umask

# Far above any model edgegen can fit on a microcontroller, far below what
# would exhaust a workstation's memory.
MAX_ARRAY_BYTES = 512 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024  # the JSON header (real ones are a few KB)
MAX_ENTRIES = 65536
_NUMERIC_KINDS = "biufc"  # bool, int, uint, float, complex
_NPY_SUFFIX = ".npy"
# Everything numpy, zipfile, zlib and json raise on damaged bytes (a JSON
# header nested thousands deep raises RecursionError, a RuntimeError).
_DAMAGE = (OSError, ValueError, KeyError, IndexError, TypeError, EOFError, RuntimeError,
           NotImplementedError, OverflowError, zipfile.BadZipFile, zlib.error, struct.error)


class _Damaged(Exception):
    """A structural problem found while reading; becomes the UserError."""


def write_npz(path: Path, header: dict, arrays: dict[str, np.ndarray]) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
        apply_umask(tmp)  # mkstemp makes 0600; an artifact is not secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_npz(path: Path, *, fmt: str, version: int, what: str, remedy: str) -> tuple[dict, dict]:
    """(header, arrays) of an artifact of format ``fmt`` at ``version``.

    ``what`` names the artifact in messages ("quantized model"), ``remedy``
    is the command that regenerates it. Arrays are numeric, native-endian
    and writable; the header is a JSON object."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} not found: {remedy}")
    try:
        arrays = _read_arrays(path, what, remedy)
        header = _parse_header(arrays.pop("header", None))
    except _Damaged as exc:
        raise UserError(f"{path} is not a readable edgegen {what} ({exc}); "
                        f"it is truncated or corrupt: {remedy}") from None
    except _DAMAGE as exc:
        raise UserError(
            f"{path} is not a readable edgegen {what} ({type(exc).__name__}: {_short(exc)}); "
            f"it is truncated or corrupt: {remedy}"
        ) from None
    if header.get("format") != fmt:
        raise UserError(f"{path} is not an edgegen {what} (format {brief(header.get('format'))}): {remedy}")
    if header.get("version") != version:
        raise UserError(
            f"{path} has format version {brief(header.get('version'))}, this edgegen reads version "
            f"{version}: {remedy} with this edgegen"
        )
    return header, arrays




def read_plain_arrays(path: Path, *, what: str, remedy: str,
                      limit: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of any ``.npz`` (no header required) or of one ``.npy``
    (under the key ``""``), checked as artifacts are: numeric, sizes backed
    by the file, at most ``limit`` bytes (default ``MAX_ARRAY_BYTES``), no pickle."""
    path = Path(path)
    limit = MAX_ARRAY_BYTES if limit is None else limit
    try:
        if path.suffix.lower() == ".npy":
            return {"": _read_npy_file(path, what, remedy, limit)}
        return _read_arrays(path, what, remedy, limit)
    except _Damaged as exc:
        raise UserError(f"{path} is not a readable {what} ({exc}): {remedy}") from None
    except _DAMAGE as exc:
        raise UserError(f"{path} is not a readable {what} ({type(exc).__name__}: {_short(exc)}): "
                        f"{remedy}") from None


def _read_npy_file(path: Path, what: str, remedy: str, limit: int) -> np.ndarray:
    size = path.stat().st_size
    if size > limit + MAX_HEADER_BYTES:
        raise UserError(f"{path} is {size} bytes, more than edgegen's limit of {limit // 2**20} MiB "
                        f"for a {what}: {remedy}")
    with open(path, "rb") as stream:
        return _read_npy(stream, zipfile.ZipInfo(path.name), size)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no detail"


def _read_arrays(path: Path, what: str, remedy: str,
                 limit: int | None = None) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
        _check_entries(path, entries, what, remedy,
                       MAX_ARRAY_BYTES if limit is None else limit)
        arrays = {}
        for info in entries:
            with archive.open(info) as stream:
                arrays[info.filename[: -len(_NPY_SUFFIX)]] = _read_npy(stream, info, info.file_size)
    return arrays


def _check_entries(path: Path, entries: list[zipfile.ZipInfo], what: str, remedy: str,
                   limit: int) -> None:
    """Refuse before decompressing anything: sizes come from the zip's own
    table, which ZipFile enforces while reading (it stops at file_size)."""
    if len(entries) > MAX_ENTRIES:
        raise _Damaged(f"{len(entries)} entries, more than any edgegen artifact has")
    names = set()
    for info in entries:
        if not info.filename.endswith(_NPY_SUFFIX):
            raise _Damaged(f"entry {brief(info.filename)} is not a .npy array")
        if info.filename in names:
            raise _Damaged(f"entry {brief(info.filename)} appears twice")
        names.add(info.filename)
        if info.flag_bits & 0x1:
            raise _Damaged(f"entry {brief(info.filename)} is encrypted")
        # bzip2/lzma could inflate a few KB into GB per read: savez never uses them.
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Damaged(f"entry {brief(info.filename)} uses zip compression method {info.compress_type}")
    total = sum(info.file_size for info in entries)
    if total > limit:
        raise UserError(
            f"{path} declares {total} bytes of arrays, more than edgegen's limit of "
            f"{limit // 2**20} MiB for a {what} (edgegen/npz_file.py): it is corrupt or "
            f"too large; {remedy}"
        )


def _read_npy(stream, info: zipfile.ZipInfo, file_size: int) -> np.ndarray:
    """One .npy entry (or file) of ``file_size`` bytes, its header checked
    against that size before the array is allocated."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise _Damaged(f"entry {brief(info.filename)} has .npy version {version}")
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise _Damaged(f"entry {brief(info.filename)} holds {dtype} data, not plain numbers")
    if any(d < 0 for d in shape):
        raise _Damaged(f"entry {brief(info.filename)} has a negative dimension in shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    stored = file_size - stream.tell()
    if nbytes != stored:
        raise _Damaged(f"entry {brief(info.filename)} declares shape {shape} ({nbytes} bytes) "
                       f"but holds {stored} bytes of data")
    data = stream.read(nbytes)
    if len(data) != nbytes:
        raise _Damaged(f"entry {brief(info.filename)} ends after {len(data)} of {nbytes} bytes")
    array = np.frombuffer(bytearray(data), dtype=dtype)
    array = array.reshape(shape, order="F" if fortran else "C")
    return _plain(array)


def _plain(array: np.ndarray) -> np.ndarray:
    """Native byte order, C order, and bools that are really 0 or 1 (a
    damaged byte 0x02 would otherwise count as 2 in arithmetic)."""
    if array.dtype.kind == "b":
        return array.view(np.uint8) != 0  # a new C-ordered array
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    # Not np.ascontiguousarray: it would turn a 0-d array into shape (1,).
    return array if array.flags.c_contiguous else array.copy(order="C")


def _parse_header(raw) -> dict:
    if raw is None:
        raise _Damaged("no header array")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _Damaged(f"the header is {raw.dtype} of shape {raw.shape}, not UTF-8 bytes")
    if raw.size > MAX_HEADER_BYTES:
        raise _Damaged(f"the header is {raw.size} bytes, more than any edgegen artifact has")
    header = json.loads(raw.tobytes().decode("utf-8"))
    if not isinstance(header, dict):
        raise _Damaged(f"the header is a JSON {type(header).__name__}, not an object")
    return header
