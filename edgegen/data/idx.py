"""Reader for the IDX format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number ``00 00 <dtype> <ndim>``, then ``ndim``
big-endian uint32 dimensions, then the elements in row-major order, big-endian.
Files may be gzip-compressed; that is detected from the first two bytes, not
from the file name.

The file is read as a stream: the header first, then exactly the bytes it
declares. Absurd dimensions are refused before anything is allocated, and a
gzip bomb is never inflated past what the header promises.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from edgegen.errors import UserError

_GZIP_MAGIC = b"\x1f\x8b"
# Far above any MNIST-format data set (EMNIST's largest file is ~550 MB),
# far below what would exhaust a workstation's memory.
MAX_IDX_BYTES = 1024**3
_CHUNK = 1 << 20
# What gzip and zlib raise on a damaged stream (BadGzipFile is an OSError).
_GZIP_DAMAGE = (EOFError, OSError, zlib.error, struct.error, ValueError)

# IDX type code -> big-endian numpy dtype.
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class _Source:
    """The decompressed bytes of an IDX file, read on demand."""

    def __init__(self, path: Path, file: BinaryIO):
        self.path = path
        self.gzipped = file.read(2) == _GZIP_MAGIC
        file.seek(0)
        self.stream = gzip.GzipFile(fileobj=file, mode="rb") if self.gzipped else file

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the data)."""
        chunks, left = [], n
        try:
            while left > 0:
                chunk = self.stream.read(min(left, _CHUNK))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        except _GZIP_DAMAGE as exc:
            if not self.gzipped:
                raise UserError(f"cannot read IDX file {self.path}: {exc}") from None
            raise UserError(
                f"{self.path} is a corrupt or truncated gzip file ({type(exc).__name__}: {exc}): "
                "download it again"
            ) from None
        return b"".join(chunks)

    def count_rest(self, limit: int) -> tuple[int, bool]:
        """How many bytes remain, counting at most ``limit`` (and whether there are more)."""
        total = 0
        while total <= limit:
            chunk = self.read(_CHUNK)
            if not chunk:
                return total, False
            total += len(chunk)
        return total, True


def _open(path: Path) -> BinaryIO:
    try:
        if path.exists() and not path.is_file():  # a FIFO or device would block or never end
            raise UserError(f"IDX file {path} is not a regular file")
        return open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"IDX file {path} not found") from None
    except OSError as exc:
        raise UserError(f"cannot read IDX file {path}: {exc.strerror or exc}") from None


def read_idx(path: Path | str) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian array of its shape.

    Raises ``UserError`` naming the file if the magic number, type code or
    dimensions are invalid, if the data would exceed ``MAX_IDX_BYTES``, or
    if the data is shorter or longer than the header says.
    """
    path = Path(path)
    with _open(path) as file:
        try:
            source = _Source(path, file)
            return _read(source)
        except OSError as exc:  # the raw file itself failed to read
            raise UserError(f"cannot read IDX file {path}: {exc.strerror or exc}") from None


def _read(source: _Source) -> np.ndarray:
    path = source.path
    magic = source.read(4)
    if len(magic) < 4:
        raise UserError(
            f"{path} is not an IDX file: {len(magic)} bytes, too short for the 4-byte header"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise UserError(
            f"{path} is not an IDX file: magic number {magic.hex()} does not start with 0000"
        )
    type_code, ndim = magic[2], magic[3]
    dtype = _DTYPES.get(type_code)
    if dtype is None:
        known = ", ".join(f"0x{code:02x}" for code in _DTYPES)
        raise UserError(
            f"{path} is not a valid IDX file: unknown data type code 0x{type_code:02x} "
            f"(known: {known})"
        )
    if ndim == 0:
        raise UserError(f"{path} is not a valid IDX file: it declares 0 dimensions")
    header_size = 4 + 4 * ndim
    dims = source.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise UserError(
            f"{path} is truncated: the header declares {ndim} dimensions "
            f"but the file ends after {4 + len(dims)} bytes"
        )
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    nbytes = math.prod(shape) * dtype.itemsize
    expected = header_size + nbytes
    if nbytes > MAX_IDX_BYTES:
        raise UserError(
            f"{path} declares shape {shape} of {dtype.itemsize}-byte values, {nbytes} bytes: more "
            f"than edgegen's limit of {MAX_IDX_BYTES // 2**20} MiB for one IDX file "
            "(MAX_IDX_BYTES in edgegen/data/idx.py); the header is corrupt"
        )
    data = source.read(nbytes)
    if len(data) < nbytes:
        raise UserError(
            f"{path} is truncated: shape {shape} needs {expected} bytes, "
            f"the file has {header_size + len(data)}"
        )
    # Counting stops after a chunk: a gzip bomb behind the data is not inflated.
    extra, more = source.count_rest(_CHUNK)
    if extra:
        has = f"more than {expected + extra}" if more else str(expected + extra)
        raise UserError(
            f"{path} is corrupt: shape {shape} needs {expected} bytes, the file has {has} "
            f"({'more than ' if more else ''}{extra} extra)"
        )
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
    return array.astype(dtype.newbyteorder("="), copy=True).reshape(shape)
