"""Reader for the IDX format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number ``00 00 <dtype> <ndim>``, then ``ndim``
big-endian uint32 dimensions, then the elements in row-major order, big-endian.
Files may be gzip-compressed; that is detected from the first two bytes, not
from the file name.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from edgegen.errors import UserError

_GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian numpy dtype.
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"IDX file {path} not found") from None
    except OSError as exc:
        raise UserError(f"cannot read IDX file {path}: {exc.strerror or exc}") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise UserError(
            f"{path} is a corrupt or truncated gzip file ({exc}): download it again"
        ) from None


def read_idx(path: Path | str) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian array of its shape.

    Raises ``UserError`` naming the file if the magic number, type code or
    dimensions are invalid, or if the data is shorter or longer than the
    header says.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise UserError(
            f"{path} is not an IDX file: {len(data)} bytes, too short for the 4-byte header"
        )
    if data[0] != 0 or data[1] != 0:
        raise UserError(
            f"{path} is not an IDX file: magic number {data[:4].hex()} "
            "does not start with 0000"
        )
    type_code, ndim = data[2], data[3]
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
    if len(data) < header_size:
        raise UserError(
            f"{path} is truncated: the header declares {ndim} dimensions "
            f"but the file ends after {len(data)} bytes"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    count = 1
    for dim in shape:
        count *= dim
    expected = header_size + count * dtype.itemsize
    if len(data) < expected:
        raise UserError(
            f"{path} is truncated: shape {shape} needs {expected} bytes, "
            f"the file has {len(data)}"
        )
    if len(data) > expected:
        raise UserError(
            f"{path} is corrupt: shape {shape} needs {expected} bytes, "
            f"the file has {len(data)} ({len(data) - expected} extra)"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header_size)
    return array.astype(dtype.newbyteorder("="), copy=True).reshape(shape)
