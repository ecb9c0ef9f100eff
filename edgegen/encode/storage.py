"""The storage formats the generated C computes on (docs/storage_formats.md).

A weight layer is a matrix: one row per output channel, one column per
input feature (fully connected) or filter tap (convolution, OHWI order).
``store_layer`` turns it into the C-ready arrays and struct fields of one
format; ``edgegen.encode.stream_decode`` reads them back the way the C
kernels do, so that generation can prove every stream before writing it.

* ``dense``: the int8 matrix;
* ``codebook``: every position as a ``b``-bit index into an int8 codebook
  (slot 0 holds 0, padded to 2^b slots), MSB-first fields;
* ``sparse``: nonzeros only, each an 8-bit entry ``(gap << b) | index``
  or a 16-bit one (an 8-bit gap and an 8-bit index in two planes), with the
  relative column indices and fillers of ``relative_index``, plus the
  number of entries of each row;
* ``huffman``: the sparse entries (or, with ``gap_bits=0``, every
  position's index) canonically Huffman-coded in one interleaved stream
  (gap code, then index code, per entry), with lookup tables for the C
  decoder.

Every byte the kernel reads is in ``StoredWeights.arrays``; their sizes
are what the compiled object holds for the layer's weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgegen.encode.bitstream import pack_fixed, pack_variable
from edgegen.encode.huffman import CanonicalTable, build_table
from edgegen.encode.relative_index import encode_relative
from edgegen.ir import frozen_array

STREAM_FORMAT_VERSION = 1  # EG_STREAM_FORMAT_VERSION in runtime_c/eg_runtime.h
FORMATS = ("dense", "codebook", "sparse", "huffman")
STREAM_PADDING = 4  # zero bytes after every bit stream (the C reader reads ahead)
MAX_CODE_LENGTH = 12  # two codes must fit the 25 bits a refilled reader holds
MAX_LUT_BITS = 12
LUT_LENGTH_SHIFT = 12  # a lookup entry is (length << 12) | symbol
MAX_ROW_ENTRIES = (1 << 16) - 1  # row_entries are uint16
MAX_GAP_SYMBOL_BITS = 11  # a decoded entry keeps its gap in 11 bits (pair lookup)

# Bytes of each weights struct on a 32-bit target (pointers and int32 fields).
STRUCT_BYTES = {"dense": 0, "codebook": 6 * 4, "sparse": 9 * 4, "huffman": (5 + 2 * 7 + 3) * 4}
PAIR_LENGTH_SHIFT = 27  # a pair lookup entry is (length << 27) | (gap << 16) | weight (16 bits)
PAIR_GAP_SHIFT = 16
MAX_PAIR_BITS = 12


@dataclass(frozen=True)
class ArrayRef:
    """A struct field pointing ``offset`` elements into a stored array."""

    name: str
    offset: int


class FormatUnavailable(ValueError):
    """A layer cannot be stored in the format asked for (e.g. a row with more
    entries than a uint16 counts)."""


@dataclass(frozen=True, eq=False)
class WeightMatrix:
    """A layer's int8 weights as a matrix, with the codebook they index."""

    values: np.ndarray  # int8 (rows, columns)
    codebook: np.ndarray  # int8, codebook[0] == 0, then the distinct nonzero values
    indices: np.ndarray  # int64 (rows, columns): codebook slot of every weight

    @property
    def index_bits(self) -> int:
        return max(1, math.ceil(math.log2(len(self.codebook))))

    @property
    def mask(self) -> np.ndarray:
        return self.indices != 0

    @property
    def max_row_nonzeros(self) -> int:
        return int(self.mask.sum(axis=1).max(initial=0))

    @property
    def nonzeros(self) -> int:
        return int(self.mask.sum())


def weight_matrix(weight: np.ndarray, codebook: np.ndarray | None = None) -> WeightMatrix:
    """The matrix view of an int8 weight tensor (rows = first axis). Without
    ``codebook`` the distinct nonzero values form it; with one, every weight
    must be one of its values and its slot 0 must hold 0."""
    values = np.asarray(weight, dtype=np.int8).reshape(weight.shape[0], -1)
    nonzero = np.unique(values[values != 0])
    if codebook is None:
        codebook = np.concatenate(([0], nonzero)).astype(np.int8)
    codebook = np.asarray(codebook, dtype=np.int8)
    if codebook.size == 0 or codebook[0] != 0 or codebook.size > 256:
        raise ValueError("a codebook has 1..256 int8 values and 0 in slot 0")
    if np.unique(codebook).size != codebook.size:
        raise ValueError("a codebook value appears twice")
    if not np.isin(nonzero, codebook).all():
        raise ValueError("a weight is not a value of its layer's codebook")
    slot = {int(v): i for i, v in enumerate(codebook)}
    lookup = np.zeros(256, dtype=np.int64)
    for value, i in slot.items():
        lookup[value + 128] = i
    indices = lookup[values.astype(np.int64) + 128]
    return WeightMatrix(frozen_array(values, np.int8), frozen_array(codebook, np.int8),
                        frozen_array(indices, np.int64))


@dataclass(frozen=True, eq=False)
class StoredWeights:
    """One layer's weights in one format, ready for C.

    ``arrays`` maps a field name to its const array (dtype int8, uint8,
    uint16, uint32); ``struct`` lists the fields of the C weights struct in
    order: an int, the name of an array (a pointer to it), an ``ArrayRef``
    (a pointer into it), None (NULL) or a nested tuple (a nested struct). ``params`` are the choices that shaped the
    bytes (index width, entry width, gap width, lookup widths).
    """

    format: str
    shape: tuple[int, int]
    arrays: dict
    struct: tuple
    params: dict
    entries: int  # stored entries the kernel visits (positions for codebook/dense)
    max_row_nonzeros: int
    version: int = STREAM_FORMAT_VERSION

    @property
    def array_bytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())

    @property
    def flash_bytes(self) -> int:
        """Arrays plus the weights struct on a 32-bit target."""
        return self.array_bytes + STRUCT_BYTES[self.format]

    def scratch_bytes(self, is_conv: bool) -> int:
        """RAM a convolution kernel needs to decode one filter (0 for dense
        and for fully connected layers, which decode nothing into RAM)."""
        if not is_conv or self.format == "dense":
            return 0
        return TAP_BYTES * self.max_row_nonzeros + SCRATCH_ALIGNMENT_SLACK


TAP_BYTES = 7  # EG_CONV_TAP_BYTES
SCRATCH_ALIGNMENT_SLACK = 3  # EG_CONV_SCRATCH_BYTES: room to align the int32 offsets
# The dense convolution copies the windows of two output pixels into
# scratch (im2col), except for 1x1 filters, whose windows are contiguous:
# their two pixels are widened to int16 there (DSP kernels), four bytes
# per value of each whole group of four channels, plus alignment slack.
IM2COL_PIXELS = 2
WIDENED_BYTES_PER_CHANNEL = IM2COL_PIXELS * 2


def dense_conv_scratch_bytes(kernel_h: int, kernel_w: int, filter_channels: int) -> int:
    """EG_CONV2D_S8_SCRATCH_BYTES: the dense convolution's im2col buffer
    (two windows of int8 inputs, each one group's ``filter_channels`` =
    input channels / groups), or for a 1x1 filter its two pixels widened
    (0 with fewer than four channels)."""
    if kernel_h == 1 and kernel_w == 1:
        whole = filter_channels // 4 * 4
        return WIDENED_BYTES_PER_CHANNEL * whole + SCRATCH_ALIGNMENT_SLACK if whole else 0
    return IM2COL_PIXELS * kernel_h * kernel_w * filter_channels


def _reversed_stream(data: bytes) -> np.ndarray:
    """A bit stream in reverse byte order after 4 zero bytes: a little-
    endian word load just below byte k then holds bytes k..k+3 most
    significant first, the window the decoders need (no byte swap)."""
    return np.frombuffer(bytes(STREAM_PADDING) + data[::-1], dtype=np.uint8).copy()


def _padded_codebook(matrix: WeightMatrix) -> np.ndarray:
    slots = np.zeros(1 << matrix.index_bits, dtype=np.int8)
    slots[: matrix.codebook.size] = matrix.codebook
    return slots


# A dense fully connected layer stores its rows in blocks of ROW_BLOCK,
# interleaved by ROW_BLOCK columns: eg_fully_connected_s8 then reads the
# weights of four rows for four inputs from one pointer, one word per row.
ROW_BLOCK = 4


def interleave_rows(values: np.ndarray) -> np.ndarray:
    """The flat dense-FC layout: for each block of ROW_BLOCK rows, each
    chunk of ROW_BLOCK columns holds those rows' values one row after the
    other; the last columns % ROW_BLOCK columns of a block follow, row by
    row; the last rows % ROW_BLOCK rows follow, row-major."""
    rows, columns = values.shape
    b = ROW_BLOCK
    full_rows, full_columns = rows - rows % b, columns - columns % b
    parts = []
    for r in range(0, full_rows, b):
        block = values[r:r + b]
        chunks = block[:, :full_columns].reshape(b, full_columns // b, b).transpose(1, 0, 2)
        parts += [chunks.ravel(), block[:, full_columns:].ravel()]
    parts.append(values[full_rows:].ravel())
    return np.concatenate(parts).astype(values.dtype)


def deinterleave_rows(flat: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """The matrix stored by interleave_rows."""
    order = interleave_rows(np.arange(rows * columns).reshape(rows, columns))
    values = np.empty(rows * columns, dtype=flat.dtype)
    values[order] = flat
    return values.reshape(rows, columns)


# How a dense layer's int8 matrix (rows = output channels) is laid out for
# its kernel: "rows" row-major (convolutions: OHWI filters one after
# another), "row_blocks" (fully connected: interleave_rows), "columns"
# column-major (depthwise convolutions: [tap][output channel], the channels
# innermost like their NHWC inputs).
DENSE_LAYOUTS = ("rows", "row_blocks", "columns")


def dense_values(values: np.ndarray, layout: str) -> np.ndarray:
    """The flat array of the matrix ``values`` in ``layout``."""
    if layout == "row_blocks":
        return interleave_rows(values)
    if layout == "columns":
        return values.T.ravel().copy()
    return values.ravel().copy()


def dense_matrix(flat: np.ndarray, rows: int, columns: int, layout: str) -> np.ndarray:
    """The matrix that dense_values laid out as ``flat``."""
    if layout == "row_blocks":
        return deinterleave_rows(flat, rows, columns)
    if layout == "columns":
        return flat.reshape(columns, rows).T.copy()
    return flat.reshape(rows, columns)


def store_dense(matrix: WeightMatrix, layout: str = "rows") -> StoredWeights:
    """The int8 matrix in the kernel's ``layout`` (DENSE_LAYOUTS)."""
    rows, columns = matrix.values.shape
    params = {"nonzeros": matrix.nonzeros, "layout": layout}
    return StoredWeights("dense", (rows, columns),
                         {"weights": dense_values(matrix.values, layout)}, (),
                         params, rows * columns, matrix.max_row_nonzeros)


def store_codebook(matrix: WeightMatrix) -> StoredWeights:
    bits = matrix.index_bits
    rows, columns = matrix.values.shape
    arrays = {
        "codebook": _padded_codebook(matrix),
        "indices": _reversed_stream(pack_fixed(matrix.indices.ravel(), bits)),
    }
    struct = (STREAM_FORMAT_VERSION, "codebook", 1 << bits, bits,
              ArrayRef("indices", arrays["indices"].size - 1), matrix.max_row_nonzeros)
    params = {"index_bits": bits, "nonzeros": matrix.nonzeros}
    return StoredWeights("codebook", (rows, columns), arrays, struct, params, rows * columns,
                         matrix.max_row_nonzeros)


def _row_entries(row_ends: np.ndarray) -> np.ndarray:
    per_row = np.diff(np.asarray(row_ends, dtype=np.int64), prepend=0)
    if per_row.max(initial=0) > MAX_ROW_ENTRIES:
        raise FormatUnavailable(f"a row holds {int(per_row.max())} entries, more than "
                                f"{MAX_ROW_ENTRIES}")
    return per_row.astype(np.uint16)


def store_sparse(matrix: WeightMatrix, entry_bits: int) -> StoredWeights:
    """``entry_bits`` 8: one byte ``(gap << index_bits) | index`` per entry
    (``gap_bits = 8 - index_bits``); 16: an 8-bit gap plane and an 8-bit
    index plane (``gap_bits = 8``), two byte loads per entry."""
    if entry_bits not in (8, 16):
        raise ValueError(f"entry_bits must be 8 or 16, got {entry_bits}")
    bits = matrix.index_bits
    gap_bits = 8 if entry_bits == 16 else 8 - bits
    if gap_bits < 1:
        raise FormatUnavailable(f"{bits}-bit indices leave no gap field in {entry_bits}-bit entries")
    streams = encode_relative(matrix.mask, matrix.indices, gap_bits)
    arrays = {"codebook": _padded_codebook(matrix)}
    if entry_bits == 16:
        arrays["entries"] = np.asarray(streams.gaps, dtype=np.uint8)
        arrays["indices"] = np.asarray(streams.indices, dtype=np.uint8)
    else:
        arrays["entries"] = ((streams.gaps << bits) | streams.indices).astype(np.uint8)
    arrays["row_entries"] = _row_entries(streams.row_ends)
    struct = (STREAM_FORMAT_VERSION, "codebook", 1 << bits, bits, entry_bits, "entries",
              "indices" if entry_bits == 16 else None, "row_entries", matrix.max_row_nonzeros)
    params = {"index_bits": bits, "entry_bits": entry_bits, "gap_bits": gap_bits,
              "fillers": streams.fillers, "nonzeros": matrix.nonzeros}
    return StoredWeights("sparse", matrix.values.shape, arrays, struct, params,
                         streams.entries, matrix.max_row_nonzeros)


@dataclass(frozen=True)
class CodeTables:
    """A canonical code as the C decoder reads it (eg_huffman_table)."""

    lut: np.ndarray  # uint16[2^lut_bits]
    lut_bits: int
    max_length: int
    first: np.ndarray | None  # uint16[max_length + 1], None when every code fits the lookup
    count: np.ndarray | None
    offset: np.ndarray | None
    symbols: np.ndarray | None


def code_tables(table: CanonicalTable, lut_bits: int) -> CodeTables:
    """Lookup of the first ``lut_bits`` bits (at most the longest code) and,
    for longer codes, the per-length canonical arrays."""
    longest = table.max_length
    k = max(1, min(lut_bits, longest))
    lut = np.zeros(1 << k, dtype=np.uint16)
    lengths = table.lengths()
    for symbol, length, code in zip(table.symbols, lengths, table.codes()):
        if length <= k:
            start = int(code) << (k - int(length))
            lut[start: start + (1 << (k - int(length)))] = (int(length) << LUT_LENGTH_SHIFT) | symbol
    if longest <= k:
        return CodeTables(lut, k, longest, None, None, None, None)
    counts = np.zeros(longest + 1, dtype=np.int64)
    counts[1:] = table.counts
    first = np.zeros(longest + 1, dtype=np.int64)
    code = 0
    for length in range(1, longest + 1):
        first[length] = code
        code = (code + counts[length]) << 1
    offset = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return CodeTables(lut, k, longest, first.astype(np.uint16), counts.astype(np.uint16),
                      offset.astype(np.uint16), np.asarray(table.symbols, dtype=np.uint16))


def _stream_table(stream: np.ndarray, symbol_bits: int) -> CanonicalTable:
    """The code of a stream; an empty stream still gets a one-code table,
    because the C decoder needs one to exist."""
    if stream.size == 0:
        return CanonicalTable((1,), (0,), symbol_bits)
    return build_table(stream, max_code_length=MAX_CODE_LENGTH, symbol_bits=symbol_bits)


def _interleave(first: tuple[np.ndarray, np.ndarray] | None,
                second: tuple[np.ndarray, np.ndarray]) -> bytes:
    """Codes and their lengths, entry by entry: first's code then second's."""
    codes, widths = second
    if first is not None:
        codes = np.stack([first[0], codes], axis=1).ravel()
        widths = np.stack([first[1], widths], axis=1).ravel()
    data, _ = pack_variable(codes, widths)
    return data


def _coded(stream: np.ndarray, table: CanonicalTable) -> tuple[np.ndarray, np.ndarray]:
    """The code and code length of every symbol of ``stream``."""
    symbols = np.asarray(table.symbols, dtype=np.int64)
    code_of = np.zeros(int(symbols.max()) + 1, dtype=np.int64)
    length_of = np.zeros_like(code_of)
    code_of[symbols] = table.codes()
    length_of[symbols] = table.lengths()
    stream = np.asarray(stream, dtype=np.int64)
    return code_of[stream], length_of[stream]


def _table_fields(prefix: str, tables: CodeTables | None, arrays: dict) -> tuple:
    if tables is None:
        return (None, 0, 0, None, None, None, None)
    arrays[f"{prefix}_lut"] = tables.lut
    names = []
    for part in ("first", "count", "offset", "symbols"):
        value = getattr(tables, part)
        if value is None:
            names.append(None)
        else:
            arrays[f"{prefix}_{part}"] = value
            names.append(f"{prefix}_{part}")
    return (f"{prefix}_lut", tables.lut_bits, tables.max_length, *names)


def pair_table(gap_table: CanonicalTable, index_table: CanonicalTable, codebook: np.ndarray,
               pair_bits: int) -> np.ndarray:
    """uint32[2^pair_bits]: for the next ``pair_bits`` bits, the entry whose
    gap code and index code both end within them, as (length << 27) |
    (gap << 16) | its weight as a 16-bit two's complement value; 0 where
    they do not."""
    table = np.zeros(1 << pair_bits, dtype=np.uint32)
    gaps = zip(gap_table.symbols, gap_table.lengths(), gap_table.codes())
    for gap, gap_length, gap_code in gaps:
        for index, index_length, index_code in zip(index_table.symbols, index_table.lengths(),
                                                   index_table.codes()):
            length = int(gap_length + index_length)
            if length > pair_bits or index >= codebook.size:
                continue
            code = (int(gap_code) << int(index_length)) | int(index_code)
            start = code << (pair_bits - length)
            table[start: start + (1 << (pair_bits - length))] = (
                (length << PAIR_LENGTH_SHIFT) | (int(gap) << PAIR_GAP_SHIFT)
                | (int(codebook[index]) & 0xFFFF))
    return table


def store_huffman(matrix: WeightMatrix, gap_bits: int, lut_bits: int,
                  pair_bits: int = 0) -> StoredWeights:
    """``gap_bits`` 1..11: the sparse entries with gaps of that width;
    ``gap_bits`` 0: every position's index, no gap codes. ``pair_bits``
    1..12 adds a lookup that decodes a whole entry (sparse entries only)."""
    if pair_bits and (gap_bits == 0 or not 1 <= pair_bits <= MAX_PAIR_BITS):
        raise FormatUnavailable(f"a pair lookup needs sparse entries and 1..{MAX_PAIR_BITS} bits")
    if not 0 <= gap_bits <= MAX_GAP_SYMBOL_BITS:
        raise ValueError(f"gap_bits must be 0..{MAX_GAP_SYMBOL_BITS}, got {gap_bits}")
    if not 1 <= lut_bits <= MAX_LUT_BITS:
        raise ValueError(f"lut_bits must be 1..{MAX_LUT_BITS}, got {lut_bits}")
    bits = matrix.index_bits
    rows, columns = matrix.values.shape
    if gap_bits == 0:
        indices = matrix.indices.ravel()
        row_entries = np.full(rows, columns, dtype=np.int64)
        if columns > MAX_ROW_ENTRIES:
            raise FormatUnavailable(f"a row of {columns} positions is longer than {MAX_ROW_ENTRIES}")
        gap_table = None
        fillers = 0
    else:
        streams = encode_relative(matrix.mask, matrix.indices, gap_bits)
        indices = np.asarray(streams.indices)
        row_entries = _row_entries(streams.row_ends)
        gap_table = _stream_table(np.asarray(streams.gaps), gap_bits)
        fillers = streams.fillers
    index_table = _stream_table(indices, bits)
    arrays = {"codebook": matrix.codebook.copy()}
    gap_codes = None if gap_table is None else _coded(np.asarray(streams.gaps), gap_table)
    index_codes = _coded(indices, index_table)
    arrays["stream"] = _reversed_stream(_interleave(gap_codes, index_codes))
    # Codes the lookup does not cover cost the decoder a canonical search.
    long_codes = int(np.count_nonzero(index_codes[1] > lut_bits))
    if gap_codes is not None:
        long_codes += int(np.count_nonzero(gap_codes[1] > lut_bits))
    arrays["row_entries"] = np.asarray(row_entries, dtype=np.uint16)
    gap_tables = None if gap_table is None else code_tables(gap_table, lut_bits)
    index_tables = code_tables(index_table, lut_bits)
    pair_misses = 0
    if pair_bits:
        arrays["pairs"] = pair_table(gap_table, index_table, matrix.codebook, pair_bits)
        pair_misses = int(np.count_nonzero(gap_codes[1] + index_codes[1] > pair_bits))
    first_byte = ArrayRef("stream", arrays["stream"].size - 1)
    struct = (STREAM_FORMAT_VERSION, "codebook", int(matrix.codebook.size), first_byte,
              "row_entries", _table_fields("gaps", gap_tables, arrays),
              _table_fields("indices", index_tables, arrays),
              "pairs" if pair_bits else None, pair_bits, matrix.max_row_nonzeros)
    params = {"index_bits": bits, "gap_bits": gap_bits, "lut_bits": lut_bits,
              "fillers": fillers, "nonzeros": matrix.nonzeros, "long_codes": long_codes,
              "pair_bits": pair_bits, "pair_misses": pair_misses,
              "gap_code_length": 0 if gap_table is None else gap_table.max_length,
              "index_code_length": index_table.max_length}
    return StoredWeights("huffman", (rows, columns), arrays, struct, params,
                         int(indices.size), matrix.max_row_nonzeros)
