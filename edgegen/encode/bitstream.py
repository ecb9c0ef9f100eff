"""Bit-level packing shared by every storage format.

Bit order, fixed for all of ``edgegen.encode`` and for the C decoders:

* a stream is a sequence of bits stored MSB-first: bit ``k`` of the stream is
  bit ``7 - k % 8`` of byte ``k // 8`` (numpy's ``packbits`` "big" order);
* a ``b``-bit field is written most significant bit first, so the field
  ``0b101`` followed by ``0b01`` is the stream ``1 0 1 0 1`` = byte ``0xA8``;
* a stream ends with zero bits up to the next whole byte; those padding bits
  count in every reported size (``padded_bytes``).

Huffman codes follow the same rule (first code bit = most significant), which
is what lets a decoder build the code one bit at a time with
``code = (code << 1) | next_bit``.

The array functions (``pack_fixed``, ``pack_variable``, ``unpack_fixed``) are
vectorised: a 400k-entry layer packs in milliseconds. ``BitWriter`` and
``BitReader`` are for small headers and for the reference decoders that
mirror C, one field or bit at a time.
"""

from __future__ import annotations

import numpy as np

MAX_FIELD_BITS = 32  # row pointers of large layers need more than 16 bits


def padded_bytes(bit_length: int) -> int:
    """Bytes a stream of ``bit_length`` bits occupies, padding included."""
    return (bit_length + 7) // 8


def _check_field_bits(bits: int) -> None:
    if not 1 <= bits <= MAX_FIELD_BITS:
        raise ValueError(f"field width must be 1..{MAX_FIELD_BITS} bits, got {bits}")


def _as_unsigned(values, bits: int) -> np.ndarray:
    """``values`` as a flat int64 array, checked to fit ``bits`` unsigned bits."""
    array = np.asarray(values)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"field values must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64).ravel()
    if array.size and (array.min() < 0 or array.max() >= (1 << bits)):
        raise ValueError(
            f"field values must lie in 0..{(1 << bits) - 1} for {bits} bits, "
            f"got {array.min()}..{array.max()}"
        )
    return array


def pack_fixed(values, bits: int) -> bytes:
    """``values`` (unsigned, each < 2^bits) as consecutive ``bits``-bit fields,
    MSB first, zero-padded to a whole byte."""
    _check_field_bits(bits)
    array = _as_unsigned(values, bits)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    matrix = ((array[:, None] >> shifts[None, :]) & 1).astype(np.uint8)
    return np.packbits(matrix.ravel()).tobytes()


def unpack_fixed(data: bytes, bits: int, count: int) -> np.ndarray:
    """The first ``count`` ``bits``-bit fields of ``data`` (int64 array)."""
    _check_field_bits(bits)
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    stream = unpack_bits(data, count * bits)
    weights = np.int64(1) << np.arange(bits - 1, -1, -1, dtype=np.int64)
    return stream.reshape(count, bits).astype(np.int64) @ weights


def pack_variable(values, widths) -> tuple[bytes, int]:
    """Fields of varying width back to back (Huffman codes): field ``i`` is
    ``values[i]`` in ``widths[i]`` bits. Returns the padded bytes and the
    number of meaningful bits."""
    widths = np.asarray(widths, dtype=np.int64).ravel()
    values = np.asarray(values, dtype=np.int64).ravel()
    if values.shape != widths.shape:
        raise ValueError(f"{values.size} values but {widths.size} widths")
    if widths.size == 0:
        return b"", 0
    longest = int(widths.max())
    if widths.min() < 1 or longest > MAX_FIELD_BITS:
        raise ValueError(f"field widths must be 1..{MAX_FIELD_BITS} bits")
    if values.min() < 0 or np.any(values >> widths):
        raise ValueError("a field value does not fit its width")
    # Bit t of the stream belongs to the field ending at bit `end` (exclusive)
    # and is that field's bit number `end - 1 - t`, counted from the LSB.
    ends = np.cumsum(widths)
    bit_length = int(ends[-1])
    shifts = np.repeat(ends - 1, widths) - np.arange(bit_length, dtype=np.int64)
    stream = (np.repeat(values, widths) >> shifts) & 1
    return np.packbits(stream.astype(np.uint8)).tobytes(), bit_length


def unpack_bits(data: bytes, bit_length: int) -> np.ndarray:
    """The first ``bit_length`` bits of ``data`` as a uint8 array of 0/1."""
    if bit_length > 8 * len(data):
        raise ValueError(f"stream of {len(data)} bytes is shorter than {bit_length} bits")
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=bit_length)


class BitWriter:
    """Appends fields to a bit stream (order: see the module docstring)."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []  # uint8 arrays of 0/1 bits
        self._bit_length = 0

    @property
    def bit_length(self) -> int:
        """Bits written so far, padding excluded."""
        return self._bit_length

    def write(self, value: int, bits: int) -> None:
        """One unsigned field; ``bits`` may be 0 (writes nothing)."""
        if bits == 0 and value == 0:
            return
        self.write_fixed([value], bits)

    def write_fixed(self, values, bits: int) -> None:
        """Many ``bits``-bit fields at once."""
        _check_field_bits(bits)
        array = _as_unsigned(values, bits)
        shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
        self._append(((array[:, None] >> shifts[None, :]) & 1).astype(np.uint8).ravel())

    def write_bits(self, data: bytes, bit_length: int) -> None:
        """The first ``bit_length`` bits of an already packed stream."""
        self._append(unpack_bits(data, bit_length))

    def _append(self, bits: np.ndarray) -> None:
        self._chunks.append(bits)
        self._bit_length += int(bits.size)

    def to_bytes(self) -> bytes:
        """The stream, zero-padded to a whole byte."""
        if not self._chunks:
            return b""
        return np.packbits(np.concatenate(self._chunks)).tobytes()


class BitReader:
    """Reads fields back, one at a time, the way a C decoder walks a stream.

    ``bit_length`` bounds the stream (default: every bit of ``data``, padding
    included); reading past it raises ``EOFError``.
    """

    def __init__(self, data: bytes, bit_length: int | None = None) -> None:
        if bit_length is None:
            bit_length = 8 * len(data)
        if not 0 <= bit_length <= 8 * len(data):
            raise ValueError(f"bit_length {bit_length} outside 0..{8 * len(data)}")
        self._data = bytes(data)
        self._end = bit_length
        self._position = 0

    @property
    def position(self) -> int:
        """Index of the next bit to read."""
        return self._position

    @property
    def remaining(self) -> int:
        return self._end - self._position

    def read_bit(self) -> int:
        position = self._position
        if position >= self._end:
            raise EOFError("read past the end of the bit stream")
        self._position = position + 1
        return (self._data[position >> 3] >> (7 - (position & 7))) & 1

    def read(self, bits: int) -> int:
        """One unsigned ``bits``-bit field (``bits`` may be 0: returns 0)."""
        if bits < 0:
            raise ValueError(f"bits must be >= 0, got {bits}")
        start, stop = self._position, self._position + bits
        if stop > self._end:
            raise EOFError("read past the end of the bit stream")
        self._position = stop
        # The whole bytes spanning the field, as one big-endian integer, then
        # drop the bits after the field and those before it.
        span = int.from_bytes(self._data[start >> 3 : (stop + 7) >> 3], "big")
        trailing = (-stop) % 8
        return (span >> trailing) & ((1 << bits) - 1)

    def read_fixed(self, bits: int, count: int) -> np.ndarray:
        """``count`` ``bits``-bit fields at once (int64 array)."""
        _check_field_bits(bits)
        stop = self._position + bits * count
        if stop > self._end:
            raise EOFError("read past the end of the bit stream")
        window = unpack_bits(self._data, stop)[self._position :]
        self._position = stop
        weights = np.int64(1) << np.arange(bits - 1, -1, -1, dtype=np.int64)
        return window.reshape(count, bits).astype(np.int64) @ weights
