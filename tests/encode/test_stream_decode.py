"""Decode-verify: what generation proves before it writes a stream."""

from dataclasses import replace

import numpy as np
import pytest

from edgegen.encode import storage, storage_plan
from edgegen.encode.storage import (
    store_codebook,
    store_dense,
    store_huffman,
    store_sparse,
    weight_matrix,
)
from edgegen.encode.stream_decode import StreamError, decode_stored, verify_stored
from qgraph_support import compressed_like, tiny_qgraph


def layer(seed=0, shape=(6, 40), density=0.2, values=9):
    rng = np.random.default_rng(seed)
    book = rng.choice(np.concatenate((np.arange(-127, 0), np.arange(1, 128))), values,
                      replace=False)
    weight = rng.choice(book, size=shape).astype(np.int8)
    weight[rng.random(shape) > density] = 0
    return weight


STORES = {
    "dense": store_dense,
    "dense-fully-connected": lambda m: store_dense(m, "row_blocks"),
    "dense-depthwise": lambda m: store_dense(m, "columns"),
    "codebook": store_codebook,
    "sparse8": lambda m: store_sparse(m, 8),
    "sparse16": lambda m: store_sparse(m, 16),
    "huffman": lambda m: store_huffman(m, 3, 4),
    "huffman-every-position": lambda m: store_huffman(m, 0, 4),
    "huffman-pairs": lambda m: store_huffman(m, 3, 4, 9),
}


@pytest.mark.parametrize("name", list(STORES))
def test_every_layout_decodes_to_its_weights(name):
    weight = layer()
    stored = STORES[name](weight_matrix(weight))
    np.testing.assert_array_equal(decode_stored(stored), weight)
    verify_stored(stored, weight, "l")


@pytest.mark.parametrize("rows, columns", [(1, 1), (3, 9), (4, 4), (4, 7), (9, 3), (10, 37),
                                           (8, 16)])
def test_fully_connected_row_blocks(rows, columns):
    """Every value once, at the position eg_fully_connected_s8 reads it:
    16-value chunks of four rows, then the block's tail columns row by
    row, then the last rows whole."""
    weight = np.arange(rows * columns).reshape(rows, columns)
    flat = storage.interleave_rows(weight)
    assert sorted(flat.tolist()) == list(range(rows * columns))
    np.testing.assert_array_equal(storage.deinterleave_rows(flat, rows, columns), weight)
    if rows >= 4 and columns >= 4:
        np.testing.assert_array_equal(flat[:8], [*weight[0, :4], *weight[1, :4]])
    np.testing.assert_array_equal(flat[len(flat) - (rows % 4) * columns:],
                                  weight[rows - rows % 4:].ravel())


def _damaged(stored, field, flip):
    arrays = dict(stored.arrays)
    array = arrays[field].copy()
    flip(array)
    arrays[field] = array
    return replace(stored, arrays=arrays)


def _flip_used(name, field):
    """A change the decoder must see: the pair lookup's entries that some
    bit pattern uses (an entry no stream reaches may change unseen)."""
    if field == "pairs":
        return lambda a: a.__setitem__(a != 0, a[a != 0] ^ 1)
    return lambda a: a.__setitem__(len(a) // 2, a[len(a) // 2] ^ 0x5A)


@pytest.mark.parametrize("name,field", [
    ("codebook", "indices"), ("sparse8", "entries"), ("sparse16", "entries"),
    ("sparse16", "indices"), ("huffman", "stream"), ("huffman", "row_entries"),
    ("huffman-every-position", "stream"), ("codebook", "codebook"), ("huffman-pairs", "pairs"),
    ("huffman-pairs", "stream"),
])
def test_a_damaged_array_is_caught(name, field):
    weight = layer(seed=1)
    stored = STORES[name](weight_matrix(weight))

    with pytest.raises(StreamError):
        verify_stored(_damaged(stored, field, _flip_used(name, field)), weight, "l")


def test_a_damaged_huffman_table_is_caught():
    weight = layer(seed=2)
    stored = store_huffman(weight_matrix(weight), 3, 4)
    damaged = _damaged(stored, "indices_lut", lambda a: a.__setitem__(slice(None), 0))
    with pytest.raises(StreamError, match="no code"):
        decode_stored(damaged)


def test_a_wrong_version_is_refused():
    stored = store_sparse(weight_matrix(layer()), 16)
    with pytest.raises(StreamError, match="version"):
        decode_stored(replace(stored, struct=(2,) + stored.struct[1:]))


def test_generation_refuses_a_stream_that_does_not_decode(monkeypatch):
    """An encoder bug never reaches a file: plan_storage decodes what it
    chose and stops when it differs from the QGraph's weights."""
    qgraph = compressed_like(tiny_qgraph(), density=0.5, values=5)
    real = storage.store_sparse

    def broken(matrix, entry_bits):
        stored = real(matrix, entry_bits)
        return _damaged(stored, "entries", lambda a: a.__setitem__(0, a[0] ^ 1))

    monkeypatch.setattr(storage_plan, "store_sparse", broken)
    with pytest.raises(RuntimeError, match="does not decode"):
        storage_plan.plan_storage(qgraph, storage_plan.FormatRequest("sparse"))
