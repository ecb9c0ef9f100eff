"""Sparse rows as (gap, index) entries with fillers: exact round trips,
worked examples at the gap limit, and the gap-width choice."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.encode.relative_index import (
    RelativeIndexStreams,
    choose_gap_bits,
    count_fillers,
    decode_relative,
    encode_relative,
    relative_index_size,
    survivor_gaps,
)

SETTINGS = settings(derandomize=True, max_examples=150, deadline=None)


def one_row(columns: int, survivors: dict[int, int]):
    """A 1-row layer: ``survivors`` maps column -> codebook index."""
    mask = np.zeros((1, columns), dtype=bool)
    indices = np.zeros((1, columns), dtype=np.int64)
    for column, index in survivors.items():
        mask[0, column] = True
        indices[0, column] = index
    return mask, indices


def entries(streams: RelativeIndexStreams) -> list[tuple[int, int]]:
    return list(zip(streams.gaps.tolist(), streams.indices.tolist()))


def assert_round_trip(mask, indices, streams):
    decoded_mask, decoded_indices = decode_relative(streams)
    np.testing.assert_array_equal(decoded_mask, mask)
    np.testing.assert_array_equal(decoded_indices[mask], indices[mask])
    filler = 0 if streams.filler_index is None else streams.filler_index
    assert (decoded_indices[~mask] == filler).all()


def test_worked_example_with_one_filler():
    # gap_bits 2: max gap 3, a filler advances 4 columns.
    mask, indices = one_row(9, {2: 5, 8: 7})
    streams = encode_relative(mask, indices, gap_bits=2)
    # col 2: gap 2. col 8: 5 columns skipped (3..7) -> filler on col 6, then gap 1.
    assert entries(streams) == [(2, 5), (3, 0), (1, 7)]
    assert streams.row_ends.tolist() == [3]
    assert (streams.nonzeros, streams.fillers) == (2, 1)
    assert_round_trip(mask, indices, streams)


@pytest.mark.parametrize(
    "gap_bits, gap, fillers, last_gap",
    [
        (1, 1, 0, 1),  # exactly 2^b - 1: fits
        (1, 2, 1, 0),  # 2^b: one filler, then gap 0
        (1, 3, 1, 1),
        (1, 1037, 518, 1),  # far beyond: 518 fillers of 2 columns each
        (2, 3, 0, 3),
        (2, 4, 1, 0),
        (2, 7, 1, 3),
        (2, 8, 2, 0),
        (2, 1037, 259, 1),
        (5, 31, 0, 31),
        (5, 32, 1, 0),
        (5, 1037, 32, 13),
        (8, 255, 0, 255),
        (8, 256, 1, 0),
        (8, 1037, 4, 13),
    ],
)
def test_gaps_at_and_past_the_limit(gap_bits, gap, fillers, last_gap):
    max_gap = (1 << gap_bits) - 1
    mask, indices = one_row(gap + 2, {gap: 3, gap + 1: 4})
    streams = encode_relative(mask, indices, gap_bits)
    assert entries(streams) == [(max_gap, 0)] * fillers + [(last_gap, 3), (0, 4)]
    assert count_fillers(mask, gap_bits) == fillers
    assert_round_trip(mask, indices, streams)


def test_first_and_last_column_and_a_dense_row():
    mask, indices = one_row(6, {0: 1, 5: 2})
    assert entries(encode_relative(mask, indices, 3)) == [(0, 1), (4, 2)]
    dense_mask = np.ones((2, 5), dtype=bool)
    dense_indices = np.arange(1, 11).reshape(2, 5)
    streams = encode_relative(dense_mask, dense_indices, 1)
    assert streams.gaps.tolist() == [0] * 10
    assert streams.row_ends.tolist() == [5, 10]
    assert_round_trip(dense_mask, dense_indices, streams)


def test_empty_layer_and_empty_rows():
    mask = np.zeros((3, 7), dtype=bool)
    streams = encode_relative(mask, np.zeros((3, 7), dtype=int), 2)
    assert streams.entries == 0 and streams.row_ends.tolist() == [0, 0, 0]
    assert_round_trip(mask, np.zeros((3, 7), dtype=int), streams)
    mask[1, 6] = True  # rows 0 and 2 stay empty; row 1 needs one filler
    indices = np.where(mask, 9, 0)
    streams = encode_relative(mask, indices, 2)
    assert streams.row_ends.tolist() == [0, 2, 2]
    assert entries(streams) == [(3, 0), (2, 9)]
    assert_round_trip(mask, indices, streams)
    no_rows, no_indices = np.zeros((0, 4), dtype=bool), np.zeros((0, 4), dtype=int)
    assert_round_trip(no_rows, no_indices, encode_relative(no_rows, no_indices, 3))


def test_trailing_pruned_columns_cost_nothing():
    mask, indices = one_row(500, {0: 1})
    assert entries(encode_relative(mask, indices, 1)) == [(0, 1)]


def test_a_row_of_only_fillers_decodes_to_an_empty_row():
    # The encoder never emits one (trailing gaps are free), but a decoder
    # must accept it: fillers are ordinary entries holding the zero slot.
    streams = RelativeIndexStreams(
        shape=(3, 10),
        gap_bits=2,
        filler_index=0,
        gaps=np.array([1, 3, 3, 0]),
        indices=np.array([4, 0, 0, 6]),
        row_ends=np.array([1, 3, 4]),
    )
    mask, indices = decode_relative(streams)
    assert np.argwhere(mask).tolist() == [[0, 1], [2, 0]]
    assert indices[0, 1] == 4 and indices[2, 0] == 6
    assert not mask[1].any()


def test_another_reserved_filler_slot():
    mask, indices = one_row(12, {0: 0, 11: 2})
    streams = encode_relative(mask, indices, 2, filler_index=3)
    assert entries(streams) == [(0, 0), (3, 3), (3, 3), (2, 2)]
    assert_round_trip(mask, indices, streams)


def test_without_a_filler_slot_every_index_is_usable():
    mask, indices = one_row(12, {0: 0, 11: 0})
    gap_bits = choose_gap_bits(mask, 4, fillers_allowed=False)
    assert gap_bits == 4  # the gap of 10 needs 4 bits
    streams = encode_relative(mask, indices, gap_bits, filler_index=None)
    assert entries(streams) == [(0, 0), (10, 0)]
    assert_round_trip(mask, indices, streams)
    with pytest.raises(ValueError, match="needs fillers"):
        encode_relative(mask, indices, 3, filler_index=None)


def test_a_survivor_on_the_filler_slot_is_refused():
    mask, indices = one_row(4, {1: 0})
    with pytest.raises(ValueError, match="reserved for filler"):
        encode_relative(mask, indices, 2)


@pytest.mark.parametrize(
    "mask, indices, error",
    [
        (np.zeros(4, dtype=bool), np.zeros(4, dtype=int), "2-D"),
        (np.zeros((2, 2), dtype=int), np.zeros((2, 2), dtype=int), "boolean"),
        (np.ones((2, 2), dtype=bool), np.ones((2, 3), dtype=int), "shape"),
        (np.ones((2, 2), dtype=bool), np.ones((2, 2)), "integers"),
        (np.ones((2, 2), dtype=bool), -np.ones((2, 2), dtype=int), ">= 0"),
    ],
)
def test_bad_layers_are_refused(mask, indices, error):
    with pytest.raises(ValueError, match=error):
        encode_relative(mask, indices, 2)


@pytest.mark.parametrize(
    "gaps, indices, row_ends, error",
    [
        ([3, 3], [1, 1], [2, 2], "past the last column"),  # columns 3 and 7 of 6
        ([0], [1], [2, 2], "row pointers"),
        ([0, 0], [1, 1], [2, 1], "row pointers"),
        ([0], [1], [1], "expected 2 row pointers"),
        ([-1], [1], [1, 1], ">= 0"),
    ],
)
def test_corrupt_streams_are_refused(gaps, indices, row_ends, error):
    streams = RelativeIndexStreams(
        (2, 6), 2, 0, np.array(gaps), np.array(indices), np.array(row_ends)
    )
    with pytest.raises(ValueError, match=error):
        decode_relative(streams)


@st.composite
def sparse_layers(draw):
    rows = draw(st.integers(0, 8))
    columns = draw(st.integers(1, 70))
    density = draw(st.sampled_from([0.0, 0.02, 0.1, 0.3, 0.7, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    mask = rng.random((rows, columns)) < density
    indices = rng.integers(1, 16, size=(rows, columns))
    return mask, indices


@SETTINGS
@given(layer=sparse_layers(), gap_bits=st.integers(1, 7))
def test_random_layers_round_trip_exactly(layer, gap_bits):
    mask, indices = layer
    streams = encode_relative(mask, indices, gap_bits)
    assert_round_trip(mask, indices, streams)
    assert streams.nonzeros == np.count_nonzero(mask)
    assert streams.fillers == count_fillers(mask, gap_bits)
    assert streams.gaps.max(initial=0) <= (1 << gap_bits) - 1
    assert (np.diff(streams.row_ends, prepend=0) >= 0).all()
    fillers = streams.indices == 0
    assert (streams.gaps[fillers] == (1 << gap_bits) - 1).all()


@SETTINGS
@given(layer=sparse_layers(), index_bits=st.integers(1, 8))
def test_chosen_gap_width_is_the_cheapest(layer, index_bits):
    mask, _ = layer
    totals = {b: relative_index_size(mask, index_bits, b).total_bits for b in range(1, 9)}
    chosen = choose_gap_bits(mask, index_bits)
    assert totals[chosen] == min(totals.values())
    assert chosen == min(b for b in totals if totals[b] == totals[chosen])


def test_size_accounting_of_a_worked_example():
    mask, indices = one_row(9, {2: 5, 8: 7})
    size = relative_index_size(mask, index_bits=4, gap_bits=2)
    # 3 entries (2 weights + 1 filler); 1 row pointer of bit_length(3) = 2 bits.
    assert (size.entries, size.fillers, size.row_pointer_width) == (3, 1, 2)
    assert size.index_stream_bits == 12 and size.gap_stream_bits == 6
    assert size.total_bits == 12 + 6 + 2


def test_survivor_gaps_restart_at_every_row():
    mask = np.array([[0, 1, 0, 1], [0, 0, 1, 0]], dtype=bool)
    rows, gaps = survivor_gaps(mask)
    assert rows.tolist() == [0, 0, 1] and gaps.tolist() == [1, 1, 2]
