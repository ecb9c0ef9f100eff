import gzip
import struct

import numpy as np
import pytest

from edgegen.data.idx import read_idx
from edgegen.errors import UserError


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_uint8_round_trip(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    data = idx_bytes(images)
    path = tmp_path / "images"  # no extension: gzip is detected from the magic bytes
    path.write_bytes(gzip.compress(data) if compress else data)
    got = read_idx(path)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, images)
    got[0, 0, 0] = 1  # writable copy


@pytest.mark.parametrize(
    ("dtype", "code"), [(np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)]
)
def test_other_dtypes_are_big_endian(tmp_path, dtype, code):
    array = (np.arange(12).reshape(3, 4) - 5).astype(dtype)
    path = tmp_path / "x.idx"
    path.write_bytes(idx_bytes(array, code))
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, array)


def test_labels_1d(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx(path), labels)


def write(tmp_path, data: bytes):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(data)
    return path


def test_corrupt_magic(tmp_path):
    data = bytearray(idx_bytes(np.zeros((2, 3), np.uint8)))
    data[0] = 0x12
    path = write(tmp_path, bytes(data))
    with pytest.raises(UserError, match=r"bad-idx3-ubyte is not an IDX file: magic number 12"):
        read_idx(path)


def test_unknown_type_code(tmp_path):
    path = write(tmp_path, idx_bytes(np.zeros((2, 3), np.uint8), type_code=0x07))
    with pytest.raises(UserError, match="unknown data type code 0x07"):
        read_idx(path)


def test_truncated_data(tmp_path):
    path = write(tmp_path, idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-10])
    with pytest.raises(UserError, match=r"bad-idx3-ubyte is truncated: shape \(4, 28, 28\) needs 3152 bytes"):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = write(tmp_path, idx_bytes(np.zeros((4, 28, 28), np.uint8))[:9])
    with pytest.raises(UserError, match="truncated: the header declares 3 dimensions"):
        read_idx(path)


def test_too_short_for_magic(tmp_path):
    with pytest.raises(UserError, match="too short"):
        read_idx(write(tmp_path, b"\0\0"))


def test_trailing_bytes(tmp_path):
    path = write(tmp_path, idx_bytes(np.zeros((2, 2), np.uint8)) + b"\0")
    with pytest.raises(UserError, match="1 extra"):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    blob = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8)))
    path = write(tmp_path, blob[: len(blob) // 2])
    with pytest.raises(UserError, match="bad-idx3-ubyte is a corrupt or truncated gzip file"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_idx(tmp_path / "nope")
