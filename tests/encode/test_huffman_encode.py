"""Canonical length-limited Huffman codes: optimality, code properties,
exact round trips through both decoders, tables and degenerate streams."""

import heapq
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.encode.bitstream import padded_bytes
from edgegen.encode.huffman import (
    CanonicalTable,
    HuffmanStream,
    build_table,
    decode_canonical,
    huffman_decode,
    huffman_encode,
    limited_code_lengths,
    shannon_entropy_bits,
)

SETTINGS = settings(derandomize=True, max_examples=150, deadline=None)


def textbook_huffman_lengths(counts) -> list[int]:
    """Unlimited Huffman, the textbook way: merge the two lightest trees."""
    if len(counts) == 1:
        return [1]
    heap = [(count, [i]) for i, count in enumerate(counts)]
    heapq.heapify(heap)
    lengths = [0] * len(counts)
    while len(heap) > 1:
        weight_a, leaves_a = heapq.heappop(heap)
        weight_b, leaves_b = heapq.heappop(heap)
        for leaf in leaves_a + leaves_b:
            lengths[leaf] += 1
        heapq.heappush(heap, (weight_a + weight_b, leaves_a + leaves_b))
    return lengths


def brute_force_limited_cost(counts, max_length) -> int:
    """Cheapest total over every length assignment obeying Kraft and the limit.

    Some optimal code gives heavier symbols codes no longer than lighter ones
    (swap two lengths otherwise), so trying non-decreasing lengths over the
    counts sorted heaviest first is enough.
    """
    heaviest_first = sorted(counts, reverse=True)
    best = None
    for lengths in itertools.combinations_with_replacement(range(1, max_length + 1), len(counts)):
        if sum(Fraction(1, 2**length) for length in lengths) <= 1:
            total = cost(heaviest_first, lengths)
            best = total if best is None else min(best, total)
    return best


def cost(counts, lengths) -> int:
    return int(np.dot(counts, lengths))


def code_strings(table: CanonicalTable) -> list[str]:
    return [
        format(int(code), f"0{int(length)}b")
        for code, length in zip(table.codes(), table.lengths())
    ]


def assert_valid_canonical_code(table: CanonicalTable, max_code_length: int):
    codes = code_strings(table)
    lengths = table.lengths().tolist()
    assert max(lengths, default=0) <= max_code_length
    assert sum(Fraction(1, 2**length) for length in lengths) <= 1
    for a, b in itertools.permutations(codes, 2):
        assert not b.startswith(a), f"{a} is a prefix of {b}"
    # Canonical: ordered by (length, symbol); each code is the previous + 1,
    # shifted left by the length difference; the first is all zeros.
    assert list(zip(lengths, table.symbols)) == sorted(zip(lengths, table.symbols))
    if codes:
        assert set(codes[0]) == {"0"}
    for (code_a, len_a), (code_b, len_b) in zip(
        zip(table.codes(), lengths), zip(table.codes()[1:], lengths[1:])
    ):
        assert code_b == (code_a + 1) << (len_b - len_a)


def assert_round_trip(stream, encoded: HuffmanStream):
    stream = np.asarray(stream, dtype=np.int64)
    np.testing.assert_array_equal(huffman_decode(encoded), stream)
    reference = decode_canonical(encoded.table, encoded.data, encoded.count, encoded.bit_length)
    np.testing.assert_array_equal(reference, stream)
    assert len(encoded.data) == padded_bytes(encoded.bit_length)
    symbols, counts = np.unique(stream, return_counts=True)
    length_of = dict(zip(encoded.table.symbols, encoded.table.lengths().tolist()))
    assert encoded.bit_length == sum(length_of[s] * c for s, c in zip(symbols.tolist(), counts))


streams = st.one_of(
    st.lists(st.integers(0, 5), max_size=200),
    st.lists(st.integers(0, 300), max_size=300),
    # skewed: geometric-like, the shape of gap and centroid-index streams
    st.lists(st.integers(0, 12).map(lambda k: (k * k) // 8), max_size=400),
)


@SETTINGS
@given(stream=streams, max_code_length=st.integers(9, 16))
def test_random_streams_round_trip_with_valid_canonical_codes(stream, max_code_length):
    encoded = huffman_encode(stream, max_code_length=max_code_length)
    assert_round_trip(stream, encoded)
    assert_valid_canonical_code(encoded.table, max_code_length)


@SETTINGS
@given(counts=st.lists(st.integers(1, 10_000), min_size=1, max_size=80))
def test_lengths_are_optimal_when_the_limit_does_not_bind(counts):
    textbook = textbook_huffman_lengths(counts)
    limit = max(max(textbook), 1)
    for max_code_length in (limit, 16):
        lengths = limited_code_lengths(counts, max_code_length)
        assert cost(counts, lengths) == cost(counts, textbook)


@SETTINGS
@given(
    counts=st.lists(st.integers(1, 1000), min_size=2, max_size=6),
    max_code_length=st.integers(1, 4),
)
def test_lengths_are_optimal_under_a_binding_limit(counts, max_code_length):
    if len(counts) > 2**max_code_length:
        with pytest.raises(ValueError):
            limited_code_lengths(counts, max_code_length)
        return
    lengths = limited_code_lengths(counts, max_code_length)
    assert lengths.max() <= max_code_length
    assert sum(Fraction(1, 2**int(l)) for l in lengths) <= 1
    assert cost(counts, lengths) == brute_force_limited_cost(counts, max_code_length)


def test_fibonacci_counts_need_the_limit():
    counts = [1, 1]
    while len(counts) < 16:
        counts.append(counts[-1] + counts[-2])
    assert max(textbook_huffman_lengths(counts)) == 15
    stream = np.repeat(np.arange(16), counts)
    encoded = huffman_encode(stream, max_code_length=5)
    assert encoded.table.max_length == 5
    assert_valid_canonical_code(encoded.table, 5)
    assert_round_trip(stream, encoded)
    assert encoded.bit_length == brute_force_limited_cost(counts, 5)
    assert encoded.bit_length > cost(counts, textbook_huffman_lengths(counts))


def test_empty_stream():
    encoded = huffman_encode([])
    assert encoded.table.counts == () and encoded.table.symbols == ()
    assert (encoded.data, encoded.bit_length, encoded.count) == (b"", 0, 0)
    assert huffman_decode(encoded).size == 0
    assert decode_canonical(encoded.table, b"", 0).size == 0
    assert shannon_entropy_bits([]) == 0.0
    assert CanonicalTable.from_bytes(encoded.table.to_bytes()) == encoded.table


def test_a_single_symbol_gets_a_one_bit_code():
    encoded = huffman_encode([7] * 11)
    assert encoded.table.counts == (1,) and encoded.table.symbols == (7,)
    assert encoded.bit_length == 11 and encoded.data == bytes(2)
    assert_round_trip([7] * 11, encoded)
    assert shannon_entropy_bits([7] * 11) == 0.0


@pytest.mark.parametrize("k", [1, 2, 3, 4, 8])
def test_equally_likely_power_of_two_alphabet_gets_k_bit_codes(k):
    stream = np.tile(np.arange(2**k), 3)
    encoded = huffman_encode(stream, max_code_length=k)
    assert encoded.table.counts == (0,) * (k - 1) + (2**k,)
    assert encoded.table.codes().tolist() == list(range(2**k))  # symbol s -> code s
    assert encoded.bit_length == k * stream.size == shannon_entropy_bits(stream)
    assert_round_trip(stream, encoded)


def test_too_many_symbols_for_the_limit_are_refused():
    with pytest.raises(ValueError, match="cannot have distinct codes"):
        huffman_encode(np.arange(9), max_code_length=3)
    with pytest.raises(ValueError, match="max_code_length"):
        huffman_encode([1, 2], max_code_length=17)


def test_entropy_bounds_the_huffman_total():
    rng = np.random.default_rng(3)
    stream = rng.geometric(0.3, size=5000)
    encoded = huffman_encode(stream, max_code_length=16)
    entropy = shannon_entropy_bits(stream)
    # Huffman is within one bit per symbol of the entropy, never below it.
    assert entropy <= encoded.bit_length < entropy + stream.size
    assert shannon_entropy_bits([0, 0, 1, 2]) == pytest.approx(6.0)  # 2*1 + 2*2 bits
    assert math.isclose(shannon_entropy_bits([0, 1] * 4), 8.0)


@SETTINGS
@given(stream=streams, symbol_bits=st.integers(9, 12))
def test_tables_serialise_exactly_and_their_size_is_counted(stream, symbol_bits):
    table = build_table(stream, symbol_bits=symbol_bits)
    stored = table.to_bytes()
    assert len(stored) == padded_bytes(table.size_bits)
    assert CanonicalTable.from_bytes(stored) == table
    expected = 15 + table.max_length * table.count_width + len(table.symbols) * symbol_bits
    assert table.size_bits == expected


def test_table_layout_is_the_documented_one():
    table = CanonicalTable(counts=(1, 0, 2), symbols=(4, 1, 6), symbol_bits=3)
    # codes: 4 -> 0, 1 -> 100, 6 -> 101
    assert code_strings(table) == ["0", "100", "101"]
    # L=3, count_width=2, symbol_width=3 | counts 01 00 10 | symbols 100 001 110
    bits = "00011" "00010" "00011" "01" "00" "10" "100" "001" "110"
    assert table.size_bits == len(bits)
    padded = bits + "0" * (-len(bits) % 8)
    assert table.to_bytes() == int(padded, 2).to_bytes(len(padded) // 8, "big")


def test_a_stream_can_be_coded_with_a_given_table():
    table = CanonicalTable(counts=(1, 0, 2), symbols=(4, 1, 6), symbol_bits=3)
    encoded = huffman_encode([4, 6, 1, 4], table=table)
    assert (encoded.data, encoded.bit_length) == (bytes([0b01011000]), 8)  # 0 101 100 0
    assert_round_trip([4, 6, 1, 4], encoded)
    with pytest.raises(ValueError, match="does not code"):
        huffman_encode([5], table=table)


def test_corrupt_and_truncated_streams_are_refused_by_both_decoders():
    table = CanonicalTable(counts=(1, 0, 2), symbols=(4, 1, 6), symbol_bits=3)
    unused_code = HuffmanStream(table, bytes([0b11000000]), 3, 1)  # 11x: no code
    truncated = HuffmanStream(table, bytes([0b10000000]), 2, 1)  # 10 then nothing
    for stream in (unused_code, truncated):
        with pytest.raises(ValueError):
            huffman_decode(stream)
        with pytest.raises(ValueError):
            decode_canonical(stream.table, stream.data, stream.count, stream.bit_length)


@pytest.mark.parametrize(
    "counts, symbols, symbol_bits",
    [
        ((3,), (0, 1, 2), 2),  # three 1-bit codes: Kraft sum 3/2
        ((1, 1), (0,), 2),  # counts and symbols disagree
        ((1, 0), (0,), 2),  # trailing empty length
        ((2,), (0, 4), 2),  # symbol too wide
        ((2,), (1, 1), 2),  # duplicate symbol
    ],
)
def test_malformed_tables_are_refused(counts, symbols, symbol_bits):
    with pytest.raises(ValueError):
        CanonicalTable(counts, symbols, symbol_bits)


def test_a_truncated_table_is_refused():
    stored = CanonicalTable((0, 4), (0, 1, 2, 3), 8).to_bytes()
    with pytest.raises(ValueError, match="truncated"):
        CanonicalTable.from_bytes(stored[:3])
