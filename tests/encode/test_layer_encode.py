"""Whole layers: exact round trips through both storage variants, and sizes
that equal the bits and bytes actually produced."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.encode import (
    FORMAT_VERSION,
    choose_gap_bits,
    decode_layer,
    encode_layer,
    padded_bytes,
    unpack_fixed,
)

SETTINGS = settings(derandomize=True, max_examples=120, deadline=None)


def random_layer(rng, shape, density, index_bits, filler_index=0):
    mask = rng.random(shape) < density
    low = 1 if filler_index == 0 else 0
    high = (1 << index_bits) - (1 if filler_index == (1 << index_bits) - 1 else 0)
    indices = rng.integers(low, high, size=shape)
    return mask, indices


def assert_round_trip(encoded, mask, indices):
    for huffman in (True, False):
        decoded_mask, decoded_indices = decode_layer(encoded, huffman=huffman)
        np.testing.assert_array_equal(decoded_mask, mask)
        np.testing.assert_array_equal(decoded_indices[mask], indices[mask])
        filler = encoded.filler_index or 0
        assert (decoded_indices[~mask] == filler).all()


def assert_sizes_match_the_stored_streams(encoded):
    sizes = encoded.sizes
    entries = encoded.entries
    assert sizes.entries == entries == sizes.nonzeros + sizes.fillers
    # P+Q: fixed-width fields, exactly as packed.
    assert sizes.weight_bits_pq == entries * encoded.index_bits
    assert sizes.index_bits_pq == entries * encoded.gap_bits
    assert len(encoded.weight_indices) == padded_bytes(sizes.weight_bits_pq)
    assert len(encoded.gaps) == padded_bytes(sizes.index_bits_pq)
    assert len(encoded.row_pointers) == padded_bytes(sizes.row_pointer_bits)
    assert sizes.row_pointer_bits == sizes.rows * encoded.row_pointer_width
    assert sizes.stored_bytes_pq == (
        len(encoded.row_pointers) + len(encoded.weight_indices) + len(encoded.gaps)
    )
    # P+Q+H: coded payload plus its stored table.
    coded_bytes = 0
    for stream, bits, table_bits in (
        (encoded.weight_huffman, sizes.weight_bits_pqh, sizes.weight_table_bits),
        (encoded.gap_huffman, sizes.index_bits_pqh, sizes.index_table_bits),
    ):
        stored_table = stream.table.to_bytes()
        assert table_bits == stream.table.size_bits
        assert len(stored_table) == padded_bytes(table_bits)
        assert len(stream.data) == padded_bytes(stream.bit_length)
        assert bits == stream.bit_length + table_bits
        assert stream.count == entries
        coded_bytes += len(stream.data) + len(stored_table)
    assert sizes.stored_bytes_pqh == len(encoded.row_pointers) + coded_bytes
    assert sizes.total_bits_pq == (
        sizes.weight_bits_pq + sizes.index_bits_pq + sizes.row_pointer_bits
    )
    assert sizes.total_bits_pqh == (
        sizes.weight_bits_pqh + sizes.index_bits_pqh + sizes.row_pointer_bits
    )


@st.composite
def layers(draw):
    rows = draw(st.integers(0, 10))
    columns = draw(st.integers(1, 300))
    density = draw(st.sampled_from([0.0, 0.005, 0.03, 0.1, 0.35, 0.8, 1.0]))
    index_bits = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if index_bits == 1:  # one usable slot besides the filler
        mask = rng.random((rows, columns)) < density
        return mask, np.ones((rows, columns), dtype=np.int64), index_bits
    return (*random_layer(rng, (rows, columns), density, index_bits), index_bits)


@SETTINGS
@given(layer=layers(), max_code_length=st.integers(8, 16))
def test_random_layers_round_trip_and_are_counted_exactly(layer, max_code_length):
    mask, indices, index_bits = layer
    encoded = encode_layer(mask, indices, index_bits, max_code_length=max_code_length)
    assert encoded.gap_bits == choose_gap_bits(mask, index_bits)
    assert encoded.sizes.nonzeros == np.count_nonzero(mask)
    assert_round_trip(encoded, mask, indices)
    assert_sizes_match_the_stored_streams(encoded)
    for stream in (encoded.weight_huffman, encoded.gap_huffman):
        assert stream.table.max_length <= max_code_length


@pytest.mark.parametrize("gap_bits", [1, 2, 4, 8, 12])
@pytest.mark.parametrize("density", [0.001, 0.05, 0.5])
def test_a_given_gap_width_is_used(gap_bits, density):
    mask, indices = random_layer(np.random.default_rng(gap_bits), (20, 400), density, 5)
    encoded = encode_layer(mask, indices, 5, gap_bits=gap_bits)
    assert encoded.gap_bits == gap_bits
    assert max(encoded.gap_huffman.table.symbols, default=0) <= (1 << gap_bits) - 1
    assert_round_trip(encoded, mask, indices)
    assert_sizes_match_the_stored_streams(encoded)


def test_a_layer_without_a_filler_slot():
    mask, indices = random_layer(np.random.default_rng(1), (6, 200), 0.02, 3, filler_index=None)
    encoded = encode_layer(mask, indices, 3, filler_index=None)
    assert encoded.sizes.fillers == 0
    assert encoded.gap_bits == choose_gap_bits(mask, 3, fillers_allowed=False)
    assert_round_trip(encoded, mask, indices)
    assert_sizes_match_the_stored_streams(encoded)


def test_the_last_slot_may_be_the_filler_slot():
    mask, indices = random_layer(np.random.default_rng(2), (4, 90), 0.05, 4, filler_index=15)
    encoded = encode_layer(mask, indices, 4, gap_bits=2, filler_index=15)
    assert encoded.sizes.fillers > 0
    assert_round_trip(encoded, mask, indices)


def test_an_empty_layer_still_decodes():
    mask = np.zeros((3, 10), dtype=bool)
    encoded = encode_layer(mask, np.zeros((3, 10), dtype=int), 4)
    assert encoded.entries == 0 and encoded.weight_indices == b"" and encoded.gaps == b""
    assert unpack_fixed(encoded.row_pointers, encoded.row_pointer_width, 3).tolist() == [0, 0, 0]
    assert_round_trip(encoded, mask, np.zeros((3, 10), dtype=int))
    assert_sizes_match_the_stored_streams(encoded)
    assert all(math.isnan(v) for v in dataclasses.astuple(encoded.sizes.bits_per_weight()))


def test_bits_per_weight_are_the_paper_columns():
    mask, indices = random_layer(np.random.default_rng(4), (30, 300), 0.1, 5)
    sizes = encode_layer(mask, indices, 5).sizes
    per_weight = sizes.bits_per_weight()
    assert per_weight.weight_pq == sizes.weight_bits_pq / sizes.nonzeros
    assert per_weight.weight_pqh == sizes.weight_bits_pqh / sizes.nonzeros
    assert per_weight.index_pq == sizes.index_bits_pq / sizes.nonzeros
    assert per_weight.index_pqh == sizes.index_bits_pqh / sizes.nonzeros


@pytest.mark.parametrize(
    "index_bits, kwargs, error",
    [
        (0, {}, "index_bits"),
        (17, {}, "index_bits"),
        (3, {"filler_index": 8}, "filler_index"),
        (2, {}, "does not fit"),  # index 5 in 2 bits
        (4, {"max_code_length": 0}, "max_code_length"),
    ],
)
def test_bad_arguments_are_refused(index_bits, kwargs, error):
    mask = np.array([[True, False, True]])
    indices = np.array([[5, 0, 1]])
    with pytest.raises(ValueError, match=error):
        encode_layer(mask, indices, index_bits, **kwargs)


def test_an_unknown_format_version_is_refused():
    mask = np.array([[True, False]])
    encoded = encode_layer(mask, np.array([[1, 0]]), 2)
    assert encoded.version == FORMAT_VERSION
    with pytest.raises(ValueError, match="format version"):
        decode_layer(dataclasses.replace(encoded, version=FORMAT_VERSION + 1))


def test_a_400k_weight_layer_round_trips():
    # The size of a large fully connected layer (e.g. 500 x 800) at 8 % density.
    # Its speed is for a benchmark (bench/) to measure, not for a test to assert.
    rng = np.random.default_rng(5)
    mask, indices = random_layer(rng, (500, 800), 0.08, 5)
    encoded = encode_layer(mask, indices, 5)
    decoded_mask, decoded_indices = decode_layer(encoded)
    np.testing.assert_array_equal(decoded_mask, mask)
    np.testing.assert_array_equal(decoded_indices[mask], indices[mask])
