"""Bit packing: the documented bit order and exact round trips."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.encode.bitstream import (
    BitReader,
    BitWriter,
    pack_fixed,
    pack_variable,
    padded_bytes,
    unpack_bits,
    unpack_fixed,
)

SETTINGS = settings(derandomize=True, max_examples=100, deadline=None)


def test_fields_are_written_msb_first_and_padded_with_zeros():
    # 101 then 010: stream 101010, padded to 10101000.
    assert pack_fixed([0b101, 0b010], 3) == bytes([0b10101000])
    writer = BitWriter()
    writer.write(0b101, 3)
    writer.write(0b01, 2)
    assert writer.to_bytes() == bytes([0xA8])
    assert writer.bit_length == 5


def test_a_field_may_straddle_bytes():
    assert pack_fixed([0x1FF, 0x001], 9) == bytes([0xFF, 0x80, 0x40])
    assert unpack_fixed(bytes([0xFF, 0x80, 0x40]), 9, 2).tolist() == [0x1FF, 0x001]


def test_empty_input_packs_to_nothing():
    assert pack_fixed([], 7) == b""
    assert unpack_fixed(b"", 7, 0).tolist() == []
    assert pack_variable([], []) == (b"", 0)
    assert BitWriter().to_bytes() == b""


@SETTINGS
@given(
    bits=st.integers(1, 32),
    data=st.data(),
)
def test_fixed_fields_round_trip(bits, data):
    values = data.draw(st.lists(st.integers(0, (1 << bits) - 1), max_size=60))
    packed = pack_fixed(values, bits)
    assert len(packed) == padded_bytes(len(values) * bits)
    assert unpack_fixed(packed, bits, len(values)).tolist() == values
    padding = unpack_bits(packed, 8 * len(packed))[len(values) * bits :]
    assert not padding.any()


@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 32), st.integers(0, 2**32 - 1)), max_size=50))
def test_variable_fields_round_trip(fields):
    widths = [width for width, _ in fields]
    values = [value & ((1 << width) - 1) for width, value in fields]
    packed, bit_length = pack_variable(values, widths)
    assert bit_length == sum(widths)
    assert len(packed) == padded_bytes(bit_length)
    reader = BitReader(packed, bit_length)
    assert [reader.read(width) for width in widths] == values
    assert reader.remaining == 0


@SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(1, 20), st.integers(0, 2**20 - 1), st.booleans()), max_size=40
    )
)
def test_writer_and_reader_agree_field_by_field_and_in_bulk(fields):
    writer = BitWriter()
    for width, value, in_bulk in fields:
        value &= (1 << width) - 1
        if in_bulk:
            writer.write_fixed([value, value], width)
        else:
            writer.write(value, width)
    reader = BitReader(writer.to_bytes(), writer.bit_length)
    for width, value, in_bulk in fields:
        value &= (1 << width) - 1
        if in_bulk:
            assert reader.read_fixed(width, 2).tolist() == [value, value]
        else:
            assert reader.read(width) == value
    assert reader.remaining == 0
    with pytest.raises(EOFError):
        reader.read_bit()


def test_reader_reads_single_bits_in_stream_order():
    reader = BitReader(bytes([0b10110000]), 4)
    assert [reader.read_bit() for _ in range(4)] == [1, 0, 1, 1]
    assert reader.read(0) == 0
    with pytest.raises(EOFError):
        reader.read(1)


def test_write_bits_appends_a_packed_stream_unaligned():
    writer = BitWriter()
    writer.write(1, 1)
    writer.write_bits(bytes([0b11100000]), 3)
    assert writer.to_bytes() == bytes([0b11110000])
    assert writer.bit_length == 4


@pytest.mark.parametrize("values, bits", [([8], 3), ([-1], 4), ([1.5], 4), ([0], 0), ([0], 33)])
def test_values_that_do_not_fit_are_refused(values, bits):
    with pytest.raises(ValueError):
        pack_fixed(values, bits)


def test_variable_fields_must_fit_their_width():
    with pytest.raises(ValueError):
        pack_variable([4], [2])
    with pytest.raises(ValueError):
        pack_variable([0], [0])


def test_unpacking_more_than_the_data_holds_is_refused():
    with pytest.raises(ValueError):
        unpack_fixed(bytes(2), 9, 2)


def test_a_400k_entry_layer_round_trips():
    # A large layer's stream; its speed is for a benchmark (bench/), not a test.
    values = np.random.default_rng(0).integers(0, 1 << 16, size=400_000)
    packed = pack_fixed(values, 16)
    variable, _ = pack_variable(values & 0xFFF, np.full(values.size, 12))
    np.testing.assert_array_equal(unpack_fixed(packed, 16, values.size), values)
    np.testing.assert_array_equal(unpack_fixed(variable, 12, values.size), values & 0xFFF)
