"""The storage table: every bit counted once, totals equal the layer sums."""

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


def test_totals_are_the_sum_of_the_layers():
    rng = np.random.default_rng(0)
    n1 = _fc(_sparse_weight(rng, (30, 200), 0.1, [-90, -7, 3, 55, 127]), "a")
    n2 = _fc(_sparse_weight(rng, (10, 30), 0.5, [-1, 1, 2]), "b")
    p = QuantParams(1.0, 0)
    q = QGraph("g", (n1, n2), (QTensor("x", (200,), p), QTensor("a", (30,), p),
                               QTensor("b", (10,), p)), "x", "b", Rounding.DOUBLE)
    table = storage_table(q)
    layers = table.layers
    assert [s.name for s in layers] == ["a", "b"]
    for attr in ("total_bits_p", "total_bits_pq", "total_bits_pqh", "float_bits"):
        assert table.total(attr) == sum(getattr(s, attr) for s in layers)
    assert table.bytes_pqh * 8 == sum(s.total_bits_pqh for s in layers)
    d = table.as_dict()
    assert d["pqh_bytes"] == table.bytes_pqh and d["rate_pqh"] == table.float_bytes / table.bytes_pqh
    a = layers[0]
    # overhead: codebook of 5 int8 values, 30 int32 biases, one multiplier+shift (one scale)
    assert a.overhead_bits == 8 * 5 + BIAS_BITS * 30 + REQUANT_BITS
    assert a.index_bits == 3 and a.codebook_entries == 5
    assert a.float_bits == 32 * (30 * 200 + 30)
    assert a.nonzeros == int((n1.op.weight != 0).sum())


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
