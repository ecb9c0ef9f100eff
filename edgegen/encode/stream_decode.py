"""Reading stored weights back the way the C kernels read them.

``decode_stored`` takes only what ``StoredWeights`` holds (the arrays and
struct fields that go into the C) and walks them with the algorithms of
``runtime_c/`` (bit reader, lookup-table Huffman decoder, gap cursor), so
that a stream that decodes here to the model's weights decodes to them on
the chip. Generation runs it on every layer before writing a file
(``verify_stored``); a mismatch is a generation error.
"""

from __future__ import annotations

import numpy as np

from edgegen.encode.bitstream import unpack_fixed
from edgegen.encode.storage import (
    ArrayRef,
    LUT_LENGTH_SHIFT,
    PAIR_GAP_SHIFT,
    PAIR_LENGTH_SHIFT,
    STREAM_FORMAT_VERSION,
    DENSE_LAYOUTS,
    StoredWeights,
    dense_matrix,
)


class StreamError(ValueError):
    """Stored weights that do not decode (damaged stream or table)."""


def _field(stored: StoredWeights, position: int):
    return stored.struct[position]


def _array(stored: StoredWeights, name) -> np.ndarray:
    if isinstance(name, ArrayRef):
        name = name.name
    if name is None or name not in stored.arrays:
        raise StreamError(f"the weights struct names an array {name!r} that is not stored")
    return stored.arrays[name]


def _codebook_values(stored: StoredWeights, indices: np.ndarray) -> np.ndarray:
    codebook = _array(stored, "codebook")
    if codebook.size == 0 or codebook[0] != 0:
        raise StreamError("codebook slot 0 must hold 0")
    if indices.size and int(indices.max()) >= codebook.size:
        raise StreamError(f"an index ({int(indices.max())}) is past the codebook "
                          f"({codebook.size} slots)")
    return codebook[indices]


def _stream_bytes(stored: StoredWeights, first) -> bytes:
    """A stream's bytes in stream order: the arrays hold them reversed
    behind their padding, the struct points at byte 0 (the last element)."""
    stream = _array(stored, first)
    if not isinstance(first, ArrayRef) or first.offset != stream.size - 1:
        raise StreamError("the stream pointer is not at the stream's first byte")
    return stream[::-1].tobytes()


def _decode_codebook(stored: StoredWeights) -> np.ndarray:
    rows, columns = stored.shape
    bits = _field(stored, 3)
    data = _stream_bytes(stored, _field(stored, 4))
    try:
        indices = unpack_fixed(data, bits, rows * columns)
    except ValueError as error:
        raise StreamError(str(error)) from error
    return _codebook_values(stored, indices).reshape(rows, columns)


def _place(stored: StoredWeights, gaps, values, row_entries) -> np.ndarray:
    """The dense matrix from entries (gap, weight) and entries per row."""
    rows, columns = stored.shape
    row_entries = np.asarray(row_entries, dtype=np.int64)
    if row_entries.shape != (rows,) or int(row_entries.sum()) != len(gaps):
        raise StreamError(f"row_entries describe {int(row_entries.sum())} entries in "
                          f"{row_entries.size} rows, the stream holds {len(gaps)}")
    gaps = np.asarray(gaps, dtype=np.int64)
    row_of = np.repeat(np.arange(rows), row_entries)
    advance = np.cumsum(gaps + 1)
    row_first = np.concatenate(([0], np.cumsum(row_entries)[:-1]))
    before_row = np.where(row_first > 0, advance[np.maximum(row_first - 1, 0)], 0)
    columns_of = advance - before_row[row_of] - 1
    if columns_of.size and int(columns_of.max()) >= columns:
        raise StreamError(f"an entry lies past the last column ({columns - 1})")
    dense = np.zeros((rows, columns), dtype=np.int8)
    # Fillers land on pruned columns with weight 0; survivors overwrite nothing.
    dense[row_of, columns_of] = np.asarray(values, dtype=np.int8)
    return dense


def _decode_sparse(stored: StoredWeights) -> np.ndarray:
    bits = _field(stored, 3)
    entries = _array(stored, _field(stored, 5)).astype(np.int64)
    if _field(stored, 4) == 16:
        gaps, indices = entries, _array(stored, _field(stored, 6)).astype(np.int64)
        if indices.shape != gaps.shape:
            raise StreamError("the gap and index planes differ in length")
    else:
        gaps, indices = entries >> bits, entries & ((1 << bits) - 1)
    return _place(stored, gaps, _codebook_values(stored, indices), _array(stored, _field(stored, 7)))


class _Reader:
    """runtime_c/eg_bit_reader.h in Python: a 32-bit window, byte refills."""

    def __init__(self, data: bytes):
        self.data = data
        self.next = 0
        self.bits = 0
        self.count = 0
        self.refill()

    def refill(self) -> None:
        while self.count <= 24:
            if self.next >= len(self.data):
                raise StreamError("the stream ends before its entries do")
            self.bits |= self.data[self.next] << (24 - self.count)
            self.next += 1
            self.count += 8

    def consume(self, length: int) -> None:
        self.bits = (self.bits << length) & 0xFFFFFFFF
        self.count -= length

    def huffman(self, table) -> int:
        lut, lut_bits, max_length, first, count, offset, symbols = table
        entry = int(lut[self.bits >> (32 - lut_bits)])
        if entry:
            self.consume(entry >> LUT_LENGTH_SHIFT)
            return entry & ((1 << LUT_LENGTH_SHIFT) - 1)
        for length in range(lut_bits + 1, max_length + 1):
            rank = (self.bits >> (32 - length)) - int(first[length])
            if 0 <= rank < int(count[length]):
                self.consume(length)
                return int(symbols[int(offset[length]) + rank])
        raise StreamError("a bit pattern in the stream is no code of its table")


def _table(stored: StoredWeights, fields: tuple):
    lut, lut_bits, max_length, *rest = fields
    if max_length == 0:
        return None
    if not 1 <= lut_bits <= 12 or not 1 <= max_length <= 12:
        raise StreamError("a Huffman table has lengths outside 1..12")
    arrays = [None if name is None else _array(stored, name) for name in rest]
    if max_length > lut_bits and any(a is None for a in arrays):
        raise StreamError("a Huffman table with long codes lacks its canonical arrays")
    lut = _array(stored, lut)
    if lut.size != 1 << lut_bits:
        raise StreamError("a Huffman lookup table has the wrong size")
    return (lut, lut_bits, max_length, *arrays)


def _pairs(stored: StoredWeights, gap_table):
    name, pair_bits = _field(stored, 7), _field(stored, 8)
    if name is None:
        if pair_bits != 0:
            raise StreamError("pair_bits without a pair lookup")
        return None
    if gap_table is None or not 1 <= pair_bits <= 12:
        raise StreamError("a pair lookup needs gap codes and 1..12 bits")
    pairs = _array(stored, name)
    if pairs.size != 1 << pair_bits:
        raise StreamError("the pair lookup has the wrong size")
    return pairs, pair_bits


def _decode_huffman(stored: StoredWeights) -> np.ndarray:
    row_entries = _array(stored, _field(stored, 4)).astype(np.int64)
    gap_table = _table(stored, _field(stored, 5))
    index_table = _table(stored, _field(stored, 6))
    if index_table is None:
        raise StreamError("the index code of a Huffman layer is empty")
    pairs = _pairs(stored, gap_table)
    total = int(row_entries.sum())
    reader = _Reader(_stream_bytes(stored, _field(stored, 3)))
    gaps = np.zeros(total, dtype=np.int64)
    weights = np.zeros(total, dtype=np.int64)
    for k in range(total):
        reader.refill()
        entry = int(pairs[0][reader.bits >> (32 - pairs[1])]) if pairs else 0
        if entry:  # the kernel's one-lookup path: both codes at once
            reader.consume(entry >> PAIR_LENGTH_SHIFT)
            gaps[k] = (entry >> PAIR_GAP_SHIFT) & 0x7FF
            weights[k] = ((entry & 0xFFFF) ^ 0x8000) - 0x8000
            continue
        if gap_table is not None:
            gaps[k] = reader.huffman(gap_table)
        index = reader.huffman(index_table)
        weights[k] = int(_codebook_values(stored, np.array([index]))[0])
    if gaps.size and int(gaps.max()) > 2047:
        raise StreamError("a gap is longer than a decoded entry holds (2047)")
    return _place(stored, gaps, weights, row_entries)


def _decode_dense(stored: StoredWeights) -> np.ndarray:
    values = _array(stored, "weights").astype(np.int8)
    rows, columns = stored.shape
    layout = stored.params.get("layout", "rows")
    if values.size != rows * columns or layout not in DENSE_LAYOUTS:
        raise StreamError(f"{values.size} dense weights in layout {layout!r} for a {rows} x "
                          f"{columns} matrix")
    return dense_matrix(values.ravel(), rows, columns, layout)


_DECODERS = {
    "dense": lambda stored: _decode_dense(stored),
    "codebook": _decode_codebook,
    "sparse": _decode_sparse,
    "huffman": _decode_huffman,
}


def decode_stored(stored: StoredWeights) -> np.ndarray:
    """The int8 weight matrix that the C kernels compute with."""
    if stored.format != "dense" and _field(stored, 0) != STREAM_FORMAT_VERSION:
        raise StreamError(f"stream format version {_field(stored, 0)}; this edgegen "
                          f"reads version {STREAM_FORMAT_VERSION}")
    if stored.format not in _DECODERS:
        raise StreamError(f"unknown storage format {stored.format!r}")
    return _DECODERS[stored.format](stored)


def verify_stored(stored: StoredWeights, weight: np.ndarray, layer: str) -> None:
    """Raise StreamError unless ``stored`` decodes to ``weight`` exactly."""
    expected = np.asarray(weight, dtype=np.int8).reshape(weight.shape[0], -1)
    decoded = decode_stored(stored)
    if decoded.shape != expected.shape or not np.array_equal(decoded, expected):
        wrong = int(np.count_nonzero(decoded != expected)) if decoded.shape == expected.shape else -1
        raise StreamError(f"layer {layer}: the {stored.format} weights decode to "
                          f"{'a different shape' if wrong < 0 else f'{wrong} wrong weights'}")
