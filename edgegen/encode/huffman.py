"""Canonical Huffman codes with a bounded code length (Deep Compression §4).

Code lengths
    Optimal among prefix codes whose codes are at most ``max_code_length``
    bits long (default 12, at most 16), by package-merge (Larmore and
    Hirschberg 1990): an optimal length-limited code is the solution of a
    "coin collector" problem. Symbols sorted by count are the coins of every
    denomination 2^-1 .. 2^-L; starting from the smallest denomination, the
    list is paired into packages (sums of adjacent weights) that are merged,
    in weight order, into the list of the next denomination. Of the final
    list the 2n - 2 lightest items are taken; a symbol's code length is the
    number of taken items that contain it, counted back through the lists.
    When the limit does not bind, the total equals plain Huffman's.
    A stream with one distinct symbol gets the 1-bit code ``0``.

Canonical codes
    Symbols are ordered by (length, symbol value). The first symbol gets the
    all-zero code of its length; each next symbol gets the previous code + 1,
    shifted left by the length difference. So the table is fully described
    by ``counts`` (number of codes of each length 1..L, L = longest length)
    and ``symbols`` (the symbols in canonical order).

Stored table (``CanonicalTable.to_bytes``, sizes counted in ``size_bits``)
    MSB-first bit stream (see ``bitstream``):
    ``L`` in 5 bits, ``count_width`` in 5 bits, ``symbol_width`` in 5 bits,
    then ``L`` counts of ``count_width`` bits (lengths 1..L; ``count_width``
    = bit length of the largest count, 0 when ``L = 0``), then
    ``sum(counts)`` symbols of ``symbol_width`` bits. An empty stream has
    ``L = 0``, no counts and no symbols. A C decoder may keep ``counts`` and
    ``symbols`` as plain ``const`` arrays instead; the information is the same.

Coded stream
    The codes of the symbols back to back, first code bit first (the stream
    bit order of ``bitstream``), zero-padded to a byte. The number of symbols
    is stored beside it (for a sparse layer: the last row pointer).

Decoding one symbol (the algorithm the C decoder implements). Only the
table is needed: ``counts[len]`` = number of codes of length ``len`` for
``len = 1..L`` (1-based here; the Python tuple is ``counts[len - 1]``) and
``symbols[]`` in canonical order. All integers fit 32 bits (L <= 16). Bit
``pos`` of the stream is ``(data[pos >> 3] >> (7 - (pos & 7))) & 1``::

    code  = 0      // the bits read so far, as an integer
    first = 0      // first canonical code of the current length
    index = 0      // position in symbols[] of that first code
    for len = 1 .. L:
        code  = code | next_bit()          // append one bit
        count = counts[len]
        if code - first < count:            // a code of this length
            return symbols[index + (code - first)]
        index = index + count               // skip this length's codes
        first = (first + count) << 1
        code  = code << 1
    error: no code matches (corrupt stream or table)

``code >= first`` holds throughout, so unsigned arithmetic is safe. At
most L iterations per symbol and no table beyond ``counts`` and
``symbols``; a faster C variant may add a 2^k-entry lookup for the first k
bits, provided it decodes to the same symbols.

``decode_canonical`` is that algorithm in Python (the reference);
``huffman_decode`` is a table-lookup fast path that must give the same
symbols.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgegen.encode.bitstream import (
    BitReader,
    BitWriter,
    pack_variable,
    padded_bytes,
    unpack_bits,
)

DEFAULT_MAX_CODE_LENGTH = 12
MAX_CODE_LENGTH_LIMIT = 16  # codes and the lookup table stay small on an MCU
HEADER_FIELD_BITS = 5  # width of each of the table's three header fields
MAX_SYMBOL_BITS = (1 << HEADER_FIELD_BITS) - 1


def _check_max_code_length(max_code_length: int) -> None:
    if not 1 <= max_code_length <= MAX_CODE_LENGTH_LIMIT:
        raise ValueError(
            f"max_code_length must be 1..{MAX_CODE_LENGTH_LIMIT}, got {max_code_length}"
        )


def _as_stream(stream) -> np.ndarray:
    array = np.asarray(stream)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"symbols must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64).ravel()
    if array.size and array.min() < 0:
        raise ValueError("symbols must be >= 0")
    return array


def symbol_counts(stream) -> tuple[np.ndarray, np.ndarray]:
    """The distinct symbols of ``stream`` (ascending) and how often each occurs."""
    return np.unique(_as_stream(stream), return_counts=True)


def shannon_entropy_bits(stream) -> float:
    """The entropy limit of coding ``stream`` symbol by symbol:
    sum over symbols of count * -log2(count / total)."""
    _, counts = symbol_counts(stream)
    total = int(counts.sum())
    return math.fsum(int(c) * math.log2(total / int(c)) for c in counts)


# ----------------------------------------------------------- code lengths


def _package_merge_levels(sorted_weights: np.ndarray, max_code_length: int) -> list:
    """For each denomination, from 2^-L up to 2^-1, which items of its
    weight-ordered list are leaves (True) and which are packages (False)."""
    leaf_flags = np.ones(sorted_weights.size, dtype=bool)
    items = sorted_weights
    levels = [leaf_flags]
    for _ in range(max_code_length - 1):
        paired = items[: items.size // 2 * 2]
        packages = paired[0::2] + paired[1::2]  # already in weight order
        weights = np.concatenate((sorted_weights, packages))
        flags = np.concatenate((leaf_flags, np.zeros(packages.size, dtype=bool)))
        # Stable: on equal weights leaves come first, and leaves stay in
        # their sorted order, so a prefix of the list holds the lightest leaves.
        order = np.argsort(weights, kind="stable")
        items = weights[order]
        levels.append(flags[order])
    return levels


def limited_code_lengths(counts, max_code_length: int = DEFAULT_MAX_CODE_LENGTH) -> np.ndarray:
    """Optimal code lengths (int64, aligned with ``counts``) under the limit.

    ``counts`` are positive symbol frequencies; at most 2^max_code_length of them.
    """
    _check_max_code_length(max_code_length)
    counts = np.asarray(counts, dtype=np.int64).ravel()
    if counts.size and counts.min() <= 0:
        raise ValueError("symbol counts must be positive")
    if counts.size <= 1:
        return np.ones(counts.size, dtype=np.int64)  # a lone symbol still needs a bit
    if counts.size > 1 << max_code_length:
        raise ValueError(
            f"{counts.size} symbols cannot have distinct codes of at most "
            f"{max_code_length} bits"
        )
    by_weight = np.argsort(counts, kind="stable")
    levels = _package_merge_levels(counts[by_weight], max_code_length)
    lengths_by_weight = np.zeros(counts.size, dtype=np.int64)
    taken = 2 * counts.size - 2  # items of the 2^-1 list that pay for n - 1
    for is_leaf in reversed(levels):
        leaves_taken = int(np.count_nonzero(is_leaf[:taken]))
        lengths_by_weight[:leaves_taken] += 1  # each taken leaf: one more bit
        taken = 2 * (taken - leaves_taken)  # a package holds two items below
    lengths = np.empty_like(lengths_by_weight)
    lengths[by_weight] = lengths_by_weight
    return lengths


# ----------------------------------------------------------- canonical table


@dataclass(frozen=True)
class CanonicalTable:
    """A canonical code: ``counts[l - 1]`` codes of length ``l`` for l = 1..L,
    given to ``symbols`` in this order; symbols stored in ``symbol_bits`` bits."""

    counts: tuple[int, ...]
    symbols: tuple[int, ...]
    symbol_bits: int

    def __post_init__(self) -> None:
        if sum(self.counts) != len(self.symbols):
            raise ValueError(
                f"counts describe {sum(self.counts)} codes for {len(self.symbols)} symbols"
            )
        if self.counts and self.counts[-1] == 0:
            raise ValueError("the longest length must have a code")
        if len(self.counts) > MAX_CODE_LENGTH_LIMIT:
            raise ValueError(f"codes longer than {MAX_CODE_LENGTH_LIMIT} bits")
        if not 0 <= self.symbol_bits <= MAX_SYMBOL_BITS:
            raise ValueError(f"symbol_bits must be 0..{MAX_SYMBOL_BITS}")
        if any(not 0 <= s < 1 << self.symbol_bits for s in self.symbols):
            raise ValueError(f"a symbol does not fit {self.symbol_bits} bits")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("a symbol appears twice in the table")
        if kraft_numerator(self.counts) > 1 << self.max_length:
            raise ValueError("over-subscribed code: Kraft sum above 1")

    @classmethod
    def from_lengths(cls, symbols, lengths, symbol_bits: int) -> "CanonicalTable":
        """The canonical table giving ``symbols[i]`` a code of ``lengths[i]`` bits."""
        pairs = sorted(zip((int(l) for l in lengths), (int(s) for s in symbols)))
        longest = pairs[-1][0] if pairs else 0
        counts = [0] * longest
        for length, _ in pairs:
            counts[length - 1] += 1
        return cls(tuple(counts), tuple(s for _, s in pairs), symbol_bits)

    @property
    def max_length(self) -> int:
        return len(self.counts)

    def lengths(self) -> np.ndarray:
        """Code length of each symbol, in canonical order."""
        return np.repeat(np.arange(1, self.max_length + 1, dtype=np.int64), self.counts)

    def codes(self) -> np.ndarray:
        """Code of each symbol, in canonical order (an integer of ``length`` bits)."""
        codes = []
        first = 0
        for count in self.counts:
            codes.extend(range(first, first + count))
            first = (first + count) << 1
        return np.asarray(codes, dtype=np.int64)

    @property
    def count_width(self) -> int:
        return max(self.counts).bit_length() if self.counts else 0

    @property
    def size_bits(self) -> int:
        """Bits of the stored table (``to_bytes`` before padding)."""
        return (
            3 * HEADER_FIELD_BITS
            + self.max_length * self.count_width
            + len(self.symbols) * self.symbol_bits
        )

    def to_bytes(self) -> bytes:
        writer = BitWriter()
        writer.write(self.max_length, HEADER_FIELD_BITS)
        writer.write(self.count_width, HEADER_FIELD_BITS)
        writer.write(self.symbol_bits, HEADER_FIELD_BITS)
        if self.counts:
            writer.write_fixed(self.counts, self.count_width)
        if self.symbols and self.symbol_bits:
            writer.write_fixed(self.symbols, self.symbol_bits)
        return writer.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> "CanonicalTable":
        """The table stored by ``to_bytes``; ValueError on a malformed one."""
        reader = BitReader(data)
        try:
            longest = reader.read(HEADER_FIELD_BITS)
            count_width = reader.read(HEADER_FIELD_BITS)
            symbol_bits = reader.read(HEADER_FIELD_BITS)
            counts = tuple(reader.read(count_width) for _ in range(longest))
            symbols = tuple(reader.read(symbol_bits) for _ in range(sum(counts)))
        except EOFError as error:
            raise ValueError("Huffman table is truncated") from error
        return cls(counts, symbols, symbol_bits)


def kraft_numerator(counts) -> int:
    """2^L times the Kraft sum of a code with ``counts`` codes per length 1..L
    (<= 2^L for every prefix code, = 2^L for a complete one)."""
    longest = len(counts)
    return sum(count << (longest - length) for length, count in enumerate(counts, 1))


def build_table(
    stream, *, max_code_length: int = DEFAULT_MAX_CODE_LENGTH, symbol_bits: int | None = None
) -> CanonicalTable:
    """The optimal length-limited canonical code of ``stream``'s symbols.

    ``symbol_bits`` is the width of a stored symbol (e.g. the index or gap
    width); by default the narrowest that holds the largest symbol.
    """
    symbols, counts = symbol_counts(stream)
    if symbol_bits is None:
        symbol_bits = max(1, int(symbols.max()).bit_length()) if symbols.size else 0
    lengths = limited_code_lengths(counts, max_code_length)
    return CanonicalTable.from_lengths(symbols, lengths, symbol_bits)


# ----------------------------------------------------------- coded streams


@dataclass(frozen=True)
class HuffmanSize:
    """Everything a decoder needs, in bits: the coded stream and its table."""

    count: int  # symbols in the stream
    payload_bits: int
    table_bits: int

    @property
    def total_bits(self) -> int:
        return self.payload_bits + self.table_bits

    @property
    def stored_bytes(self) -> int:
        """Bytes of the payload and the table, each padded to a whole byte."""
        return padded_bytes(self.payload_bits) + padded_bytes(self.table_bits)


@dataclass(frozen=True)
class HuffmanStream:
    """A coded stream: ``count`` symbols in ``bit_length`` bits of ``data``."""

    table: CanonicalTable
    data: bytes
    bit_length: int
    count: int

    @property
    def size(self) -> HuffmanSize:
        return HuffmanSize(self.count, self.bit_length, self.table.size_bits)


def huffman_encode(
    stream,
    *,
    max_code_length: int = DEFAULT_MAX_CODE_LENGTH,
    symbol_bits: int | None = None,
    table: CanonicalTable | None = None,
) -> HuffmanStream:
    """``stream`` coded with its own optimal table, or with ``table``."""
    stream = _as_stream(stream)
    if table is None:
        table = build_table(stream, max_code_length=max_code_length, symbol_bits=symbol_bits)
    if stream.size and not table.symbols:
        raise ValueError("an empty table cannot code a non-empty stream")
    # The canonical slot of every stream symbol, by binary search over the
    # table's symbols in value order.
    canonical_symbols = np.asarray(table.symbols, dtype=np.int64)
    by_value = np.argsort(canonical_symbols)
    sorted_symbols = canonical_symbols[by_value]
    found = np.minimum(np.searchsorted(sorted_symbols, stream), max(sorted_symbols.size - 1, 0))
    if stream.size and np.any(sorted_symbols[found] != stream):
        raise ValueError("the stream has a symbol the table does not code")
    slot = by_value[found]
    data, bit_length = pack_variable(table.codes()[slot], table.lengths()[slot])
    return HuffmanStream(table, data, bit_length, int(stream.size))


def decode_canonical(table: CanonicalTable, data: bytes, count: int, bit_length=None) -> np.ndarray:
    """The reference decoder: the module docstring's algorithm, bit by bit."""
    reader = BitReader(data, bit_length)
    counts, symbols = table.counts, table.symbols
    out = np.empty(count, dtype=np.int64)
    for k in range(count):
        code = first = index = 0
        for count_of_length in counts:
            try:
                code |= reader.read_bit()
            except EOFError as error:
                raise ValueError("Huffman stream is truncated") from error
            if code - first < count_of_length:
                out[k] = symbols[index + code - first]
                break
            index += count_of_length
            first = (first + count_of_length) << 1
            code <<= 1
        else:
            raise ValueError(f"no Huffman code matches at symbol {k}")
    return out


def _lookup_tables(table: CanonicalTable) -> tuple[np.ndarray, np.ndarray]:
    """Symbol and code length for every L-bit window (length 0: no code).

    Canonical codes, left-aligned to L bits, are consecutive ranges in
    canonical order, so the table is each symbol repeated 2^(L - length) times.
    """
    longest = table.max_length
    spans = np.left_shift(1, longest - table.lengths())
    symbol_at = np.zeros(1 << longest, dtype=np.int64)
    length_at = np.zeros(1 << longest, dtype=np.int64)
    covered = int(spans.sum())
    symbol_at[:covered] = np.repeat(np.asarray(table.symbols, dtype=np.int64), spans)
    length_at[:covered] = np.repeat(table.lengths(), spans)
    return symbol_at, length_at


def _windows(bits: np.ndarray, width: int) -> np.ndarray:
    """For each bit position, the next ``width`` bits as an integer (zeros past the end)."""
    padded = np.concatenate((bits.astype(np.int64), np.zeros(width, dtype=np.int64)))
    windows = np.zeros(bits.size, dtype=np.int64)
    for offset in range(width):
        windows = (windows << 1) | padded[offset : offset + bits.size]
    return windows


def huffman_decode(encoded: HuffmanStream) -> np.ndarray:
    """The symbols of ``encoded`` (fast path; same result as ``decode_canonical``)."""
    table, count = encoded.table, encoded.count
    if count == 0:
        return np.empty(0, dtype=np.int64)
    if not table.symbols:
        raise ValueError("a non-empty stream needs a non-empty table")
    bits = unpack_bits(encoded.data, encoded.bit_length)
    symbol_at, length_at = _lookup_tables(table)
    windows = _windows(bits, table.max_length)
    code_length = length_at[windows].tolist()  # a Python list: fast scalar reads
    positions = []
    position = 0
    for _ in range(count):  # sequential: each code starts where the last one ended
        if position >= bits.size:
            raise ValueError("Huffman stream is truncated")
        if code_length[position] == 0:
            raise ValueError(f"no Huffman code matches at bit {position}")
        positions.append(position)
        position += code_length[position]
    if position > bits.size:
        raise ValueError("Huffman stream is truncated")
    return symbol_at[windows[np.asarray(positions, dtype=np.int64)]]
