"""The storage table: every bit counted once, checked against hand-counted sizes."""

import numpy as np

from edgegen.encode import decode_layer, encode_layer
from edgegen.ir import QFullyConnected, QGraph, QNode, QTensor, QuantParams, Requant, Rounding
from edgegen.report.compression import (
    BIAS_BITS,
    REQUANT_BITS,
    _codebook_matrix,
    layer_storage,
    storage_table,
)


def _fc(weight, name):
    out = weight.shape[0]
    rq = Requant(np.full(out, 1 << 30, np.int32), np.zeros(out, np.int32), 0, -128, 127,
                 Rounding.DOUBLE)
    op = QFullyConnected(weight.astype(np.int8), np.arange(out, dtype=np.int32),
                         np.full(out, 0.01), 0, rq)
    return QNode(name, op, ("x",), name)


def _sparse_weight(rng, shape, density, values):
    w = rng.choice(values, size=shape)
    return np.where(rng.random(shape) < density, w, 0)


def test_a_small_graph_counts_the_bits_computed_by_hand():
    """Two tiny layers whose every bit is counted here by hand.

    Layer a, 2 x 4: rows [5, 0, 0, -3] and [0, 5, 0, 0], 2 biases, one scale.
      codebook {-3, 5} -> slots 1, 2 (slot 0: zero/filler), 2-bit indices;
      survivors (0,0) (0,3) (1,1): gaps 0, 2, 1.
      P+Q, best gap width 2 (no filler; width 1 needs one filler and costs 18):
        3 entries x 2 index bits = 6, x 2 gap bits = 6,
        row pointers 2 x bit_length(3) = 4                       -> 16
      P+Q+H, best gap width 2 (width 1: 60, width 3: 61):
        indices [2, 1, 2]: codes 1 + 1 bit -> payload 3; table 15-bit header
          + 1 count x bit_length(2) + 2 symbols x 2 bits = 21  -> 24
        gaps [0, 2, 1]: code lengths 1, 2, 2 -> payload 5; table 15
          + 2 counts x 2 bits + 3 symbols x 2 bits = 25        -> 30
        row pointers 4                                          -> 58
      overhead: codebook 2 x 8 + biases 2 x 32 + one multiplier and shift 40 = 120
      P (float values in the sparse layout): 32 x (3 entries + 2 biases) + 6 + 4 = 170
      float: 32 x (8 weights + 2 biases) = 320; dense int8: 8 x 8 + 2 x 32 + 2 x 40 = 208
    Layer b, 1 x 2: row [7, 7], 1 bias.
      codebook {7}, 1-bit indices; gaps 0, 0; best gap width 1 both ways.
      P+Q: 2 + 2 + row pointer bit_length(2) = 2                 -> 6
      P+Q+H: each stream has one symbol (1-bit code): payload 2, table
        15 + 1 x 1 + 1 x 1 = 17 -> 19 each, + row pointer 2     -> 40
      overhead 8 + 32 + 40 = 80; P: 32 x (2 + 1) + 2 + 2 = 100
      float 32 x 3 = 96; dense int8 8 x 2 + 32 + 40 = 88
    """
    n1 = _fc(np.array([[5, 0, 0, -3], [0, 5, 0, 0]]), "a")
    n2 = _fc(np.array([[7, 7]]), "b")
    p = QuantParams(1.0, 0)
    q = QGraph("g", (n1, n2), (QTensor("x", (4,), p), QTensor("a", (2,), p),
                               QTensor("b", (1,), p)), "x", "b", Rounding.DOUBLE)
    table = storage_table(q)
    a, b = table.layers
    assert (a.name, b.name) == ("a", "b")
    assert (a.codebook_entries, a.index_bits, a.nonzeros, a.fillers) == (2, 2, 3, 0)
    assert (a.gap_bits_pq, a.gap_bits_pqh, a.entries_pq) == (2, 2, 3)
    assert (a.weight_bits_pq, a.index_bits_pq, a.row_pointer_bits_pq) == (6, 6, 4)
    assert (a.weight_bits_pqh, a.index_bits_pqh, a.row_pointer_bits) == (24, 30, 4)
    assert a.overhead_bits == 8 * 2 + BIAS_BITS * 2 + REQUANT_BITS == 120
    assert (a.total_bits_p, a.total_bits_pq, a.total_bits_pqh) == (170, 136, 178)
    assert (a.float_bits, a.dense_int8_bits) == (320, 208)
    assert (b.codebook_entries, b.index_bits, b.gap_bits_pq, b.gap_bits_pqh) == (1, 1, 1, 1)
    assert (b.total_bits_p, b.total_bits_pq, b.total_bits_pqh) == (100, 86, 120)
    assert (b.float_bits, b.dense_int8_bits) == (96, 88)

    assert table.float_bytes == (320 + 96) / 8 == 52
    assert table.bytes_p == (170 + 100) / 8
    assert table.bytes_pq == (136 + 86) / 8
    assert table.bytes_pqh == (178 + 120) / 8 == 37.25
    assert table.bytes_dense_int8 == (208 + 88) / 8 == 37
    assert table.huffman_stream_bytes == (24 + 30 + 19 + 19) / 8
    d = table.as_dict()
    assert (d["weights"], d["nonzeros"]) == (10, 5)
    assert (d["float_bytes"], d["pq_bytes"], d["pqh_bytes"]) == (52, 27.75, 37.25)
    assert d["rate_pq"] == 52 / 27.75 and d["rate_pqh"] == 52 / 37.25


def test_overhead_and_float_bits_of_a_larger_layer():
    rng = np.random.default_rng(0)
    weight = _sparse_weight(rng, (30, 200), 0.1, [-90, -7, 3, 55, 127])
    a = layer_storage("a", _fc(weight, "a").op)
    # overhead: codebook of 5 int8 values, 30 int32 biases, one multiplier+shift (one scale)
    assert a.overhead_bits == 8 * 5 + BIAS_BITS * 30 + REQUANT_BITS
    assert a.index_bits == 3 and a.codebook_entries == 5
    assert a.float_bits == 32 * (30 * 200 + 30)
    assert a.nonzeros == int((weight != 0).sum())


def test_layer_bits_come_from_a_real_encoding_that_decodes():
    rng = np.random.default_rng(1)
    node = _fc(_sparse_weight(rng, (16, 300), 0.07, [-50, -20, 4, 9, 90, 101, 127]), "l")
    s = layer_storage("l", node.op)
    mask, indices, codebook, bits = _codebook_matrix(node.op.weight)
    enc = encode_layer(mask, indices, bits, gap_bits=s.gap_bits_pqh)
    assert enc.sizes.weight_bits_pqh == s.weight_bits_pqh
    assert enc.sizes.index_bits_pqh == s.index_bits_pqh
    got_mask, got_indices = decode_layer(enc)
    np.testing.assert_array_equal(got_mask, mask)
    restored = np.where(got_mask, np.concatenate([[0], codebook])[got_indices], 0)
    np.testing.assert_array_equal(restored, node.op.weight)
    # Huffman is never worse than the Shannon bound of its stream
    assert s.weight_bits_pqh >= s.entropy_weight_bits
