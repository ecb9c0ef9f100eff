"""edgegen.plan.fusion: which conv + pool pairs run fused, and their bands."""

from dataclasses import replace

import numpy as np
from hypothesis import given, settings, strategies as st

from edgegen.ir import QClamp, QMaxPool, QNode, QTensor
from edgegen.plan.fusion import (ROWS_PER_BAND, band_rows, candidate_pairs, fusable, plan_fusion,
                                 rows_per_band)
from qgraph_support import conv_pool_qgraph

STAGE = {"channels": 4, "kernel": (3, 3), "stride": (1, 1), "padding": (1, 1, 1, 1), "pool": "max",
         "pool_kernel": (2, 2), "pool_stride": (2, 2), "pool_padding": (0,) * 4}


def graph(**changes):
    return conv_pool_qgraph(np.random.default_rng(0), height=12, width=10, in_channels=2,
                            stages=[{**STAGE, **changes}])


def test_conv_then_pool_is_fused():
    q = graph()
    assert fusable(q, 0) and not fusable(q, 1)
    (pair,) = plan_fusion(q)
    assert (pair.conv, pair.pool, pair.pooled_rows, pair.bands) == (0, 1, 6, 6)
    assert (pair.band_rows, pair.band_bytes) == (2, 2 * 10 * 4)


def test_overlapping_pool_windows_are_not_fused():
    q = graph(pool_kernel=(3, 3), pool_stride=(2, 2))
    assert not fusable(q, 0) and candidate_pairs(q) == ()


def test_windows_overlapping_only_in_columns_are_fused():
    assert fusable(graph(pool_kernel=(2, 3), pool_stride=(2, 1)), 0)


def test_a_stride_longer_than_the_window_skips_rows():
    """Pool 2 rows every 3: the bands are rows 0-1, 3-4, 6-7, 9-10 of 12."""
    q = graph(pool_kernel=(2, 2), pool_stride=(3, 2), pool="avg")
    (pair,) = candidate_pairs(q)
    assert band_rows(q.nodes[1].op, 12, pair.pooled_rows, 1) == [(0, 2), (3, 5), (6, 8), (9, 11)]


def test_a_clamp_between_stops_fusion():
    q = graph(clamp=True)
    assert [type(n.op).__name__ for n in q.nodes[:3]] == ["QConv2D", "QClamp", "QMaxPool"]
    assert candidate_pairs(q) == ()


def test_a_conv_output_read_twice_is_not_fused():
    q = graph()
    conv = q.nodes[0]
    side = QTensor("side", q.tensor(conv.output).shape, q.tensor(conv.output).qparams)
    q = replace(q, nodes=q.nodes + (QNode("side", QClamp(0, 127), (conv.output,), "side"),),
                tensors=q.tensors + (side,))
    assert not fusable(q, 0)


def test_a_pool_that_reads_another_tensor_is_not_fused():
    """conv0 -> pool0, then conv1 whose next node pools conv0's output."""
    q = conv_pool_qgraph(np.random.default_rng(0), height=12, width=10, in_channels=2,
                         stages=[STAGE, STAGE], head="none")
    pool = QNode("pool1", q.nodes[3].op, (q.nodes[0].output,), q.nodes[3].output)
    assert isinstance(pool.op, QMaxPool)
    q2 = replace(q, nodes=q.nodes[:3] + (pool,))
    assert not fusable(q2, 2)


def test_rows_per_band_follow_the_format():
    assert rows_per_band({"a": "dense", "b": "huffman", "c": "sparse"}) == \
        {"a": ROWS_PER_BAND["dense"], "b": ROWS_PER_BAND["huffman"], "c": ROWS_PER_BAND["sparse"]}
    q = graph()
    (pair,) = candidate_pairs(q, {"conv0": 4})
    assert (pair.rows_per_band, pair.bands, pair.band_rows) == (4, 2, 8)
    (pair,) = candidate_pairs(q, {"conv0": 100})  # at most one band of every row
    assert (pair.rows_per_band, pair.bands) == (6, 1)


def test_a_single_band_is_not_worth_fusing():
    """One band holds the whole conv output: fusing saves nothing and keeps
    the conv's input alive longer, so plan_fusion leaves the pair unfused."""
    q = graph()
    assert candidate_pairs(q, {"conv0": 6})[0].bands == 1
    assert plan_fusion(q, {"conv0": "dense"}) != ()
    import edgegen.plan.fusion as fusion

    saved = dict(fusion.ROWS_PER_BAND)
    try:
        fusion.ROWS_PER_BAND["dense"] = 6
        assert plan_fusion(q, {"conv0": "dense"}) == ()
    finally:
        fusion.ROWS_PER_BAND.update(saved)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(h=st.integers(1, 20), kernel=st.integers(1, 4), extra=st.integers(0, 2),
       pad=st.integers(0, 3), rows=st.integers(1, 5))
def test_bands_hold_exactly_the_rows_of_their_windows(h, kernel, extra, pad, rows):
    """The band of pooled rows [r, r + rows) is the union of their windows'
    in-bounds rows (windows do not overlap: stride >= kernel)."""
    stride, pad = kernel + extra, min(pad, kernel - 1)
    pooled = (h + pad - kernel) // stride + 1  # no bottom padding
    if pooled < 1:
        return
    op = QMaxPool((kernel, 1), (stride, 1), (pad, 0, 0, 0), -128, 127)
    spans = band_rows(op, h, pooled, rows)
    for b, (begin, end) in enumerate(spans):
        wanted = set()
        for p in range(b * rows, min((b + 1) * rows, pooled)):
            start = p * stride - pad
            wanted |= {y for y in range(start, start + kernel) if 0 <= y < h}
        assert set(range(begin, end)) >= wanted and begin == min(wanted) and end == max(wanted) + 1
