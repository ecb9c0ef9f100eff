from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from edgegen.ir import QConv2D, QGraph, QNode, QClamp, QReshape, QTensor, QuantParams, Rounding
from edgegen.plan.arena import (ALIGNMENT, BAND_PREFIX, SCRATCH_PREFIX, Location, plan_memory,
                                 storage_roots)
from edgegen.plan.fusion import band_rows, candidate_pairs, fusable, plan_fusion
from edgegen.reference.kernels import output_size
from qgraph_support import conv_pool_qgraph

P = QuantParams(1.0, 0)


def _chain(sizes, reshape_at=()):
    """input -> clamp -> clamp ... with the given tensor sizes (flat)."""
    tensors = [QTensor("t0", (sizes[0],), P)]
    nodes = []
    for i, size in enumerate(sizes[1:], start=1):
        op = QReshape() if i in reshape_at else QClamp(-128, 127)
        if isinstance(op, QReshape):
            size = sizes[i - 1]
        tensors.append(QTensor(f"t{i}", (size,), P))
        nodes.append(QNode(f"n{i}", op, (f"t{i-1}",), f"t{i}"))
    return QGraph("g", tuple(nodes), tuple(tensors), "t0", tensors[-1].name, Rounding.DOUBLE)


def _assert_no_live_overlap(plan):
    for a in plan.buffers:
        assert a.offset % ALIGNMENT == 0
        assert a.offset + a.size <= plan.arena_size
        for b in plan.buffers:
            if a is b:
                continue
            alive_together = a.first <= b.last and b.first <= a.last
            apart = a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
            assert not alive_together or apart, (a, b)


def test_chain_uses_two_ping_pong_buffers():
    q = _chain([784, 11520, 2880, 3200, 800, 500, 10])
    plan = plan_memory(q)
    _assert_no_live_overlap(plan)
    # Input and output are the caller's; the peak is the largest adjacent pair.
    assert plan.arena_size == 11520 + 2880
    assert plan.location("t0").region == "input"
    assert plan.location("t6").region == "output"


def test_reshape_is_a_view_of_its_input():
    q = _chain([16, 40, 40, 8], reshape_at=(2,))
    plan = plan_memory(q)
    assert plan.location("t2") == plan.location("t1")
    assert len(plan.buffers) == 1


def test_output_reached_through_a_reshape_is_written_in_place():
    q = _chain([16, 40, 40], reshape_at=(2,))
    plan = plan_memory(q)
    assert plan.location("t1").region == "output"
    assert plan.arena_size == 0


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(st.integers(1, 5000), min_size=3, max_size=12))
def test_random_chains_never_share_live_bytes(sizes):
    plan = plan_memory(_chain(sizes))
    _assert_no_live_overlap(plan)
    inner = sizes[1:-1]
    pairs = [inner[i] + inner[i + 1] for i in range(len(inner) - 1)] or inner
    # Aligned, never worse than the sum of everything, never better than a live pair.
    assert max(pairs) <= plan.arena_size <= sum(((s + 3) // 4) * 4 for s in inner)



# ------------------------------------------------------------ fused pairs

@st.composite
def conv_pool_chains(draw):
    """Random conv -> pool stages (1 to 3, some with a clamp between, which
    stops fusion; pooling windows may overlap in rows, which stops it too),
    with or without a classifier after them."""
    height, width = draw(st.integers(4, 30)), draw(st.integers(4, 30))
    h, w = height, width
    stages = []
    for _ in range(draw(st.integers(1, 3))):
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        pad = (draw(st.integers(0, kh - 1)), draw(st.integers(0, kh - 1)),
               draw(st.integers(0, kw - 1)), draw(st.integers(0, kw - 1)))
        oh, ow = output_size(h, kh, stride[0], *pad[:2]), output_size(w, kw, stride[1], *pad[2:])
        pk = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        ps = (draw(st.integers(1, pk[0] + 1)), draw(st.integers(1, 3)))
        pp = (draw(st.integers(0, pk[0] - 1)), 0, draw(st.integers(0, pk[1] - 1)), 0)
        if oh < 1 or ow < 1:
            break
        ph, pw = output_size(oh, pk[0], ps[0], *pp[:2]), output_size(ow, pk[1], ps[1], *pp[2:])
        if ph < 1 or pw < 1:
            break
        stages.append({"channels": draw(st.integers(1, 12)), "kernel": (kh, kw), "stride": stride,
                       "padding": pad, "pool": draw(st.sampled_from(["max", "avg"])),
                       "pool_kernel": pk, "pool_stride": ps, "pool_padding": pp,
                       "clamp": draw(st.integers(0, 3)) == 0})
        h, w = ph, pw
    if not stages:
        stages.append({"channels": 3, "kernel": (1, 1), "stride": (1, 1), "padding": (0,) * 4,
                       "pool": "max", "pool_kernel": (1, 1), "pool_stride": (1, 1),
                       "pool_padding": (0,) * 4})
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return conv_pool_qgraph(rng, height=height, width=width, in_channels=draw(st.integers(1, 3)),
                            stages=stages, head=draw(st.sampled_from(["fc", "none"])))


def _assert_fused_pairs_planned(q, plan):
    nodes = q.nodes
    index = {b.tensor: b for b in plan.buffers}
    for pair in plan.fused:
        conv, pool = nodes[pair.conv], nodes[pair.pool]
        assert pair.pool == pair.conv + 1 and fusable(q, pair.conv)
        # No buffer for the convolution's output: a band, alive during the pair.
        assert conv.output not in index
        band = index[BAND_PREFIX + conv.name]
        assert (band.first, band.last, band.size) == (pair.conv, pair.pool, pair.band_bytes)
        assert plan.location(conv.output) == Location("band", band.offset)
        scratch = index.get(SCRATCH_PREFIX + conv.name)
        assert scratch is None or (scratch.first, scratch.last) == (pair.conv, pair.pool)
        # The convolution still reads its input while the pooling writes.
        if conv.inputs[0] in index:
            assert index[conv.inputs[0]].last >= pair.pool
        # Every band fits the buffer, and the bands cover each pooled row once.
        _, ow, oc = q.tensor(conv.output).shape
        spans = band_rows(pool.op, q.tensor(conv.output).shape[0], pair.pooled_rows,
                          pair.rows_per_band)
        assert len(spans) == pair.bands
        assert max(end - begin for begin, end in spans) * ow * oc == pair.band_bytes
        assert all(0 <= begin < end for begin, end in spans)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(q=conv_pool_chains(), rows=st.integers(1, 4), scratch=st.integers(0, 300))
def test_fused_pairs_never_share_live_bytes(q, rows, scratch):
    convs = [n.name for n in q.nodes if isinstance(n.op, QConv2D)]
    scratch = {name: scratch for name in convs}
    candidates = candidate_pairs(q, {name: rows for name in convs})
    every = plan_memory(q, scratch, candidates)
    _assert_no_live_overlap(every)
    _assert_fused_pairs_planned(q, every)
    # What plan_fusion keeps never makes the arena larger than no fusion.
    kept = plan_fusion(q, {name: "dense" for name in convs}, scratch)
    assert set(kept) <= set(candidate_pairs(q))
    unfused = plan_memory(q, scratch)
    planned = plan_memory(q, scratch, kept)
    _assert_no_live_overlap(planned)
    _assert_fused_pairs_planned(q, planned)
    assert planned.arena_size <= unfused.arena_size
    assert not kept or planned.arena_size < unfused.arena_size


def test_lenet5_shapes_fused():
    """LeNet-5's two conv + 2x2/2 max pool stages: the 24x24x20 output of
    conv1 becomes a band of two rows; the peak is conv2's pair."""
    stage = {"stride": (1, 1), "padding": (0,) * 4, "pool": "max", "pool_kernel": (2, 2),
             "pool_stride": (2, 2), "pool_padding": (0,) * 4, "kernel": (5, 5)}
    q = conv_pool_qgraph(np.random.default_rng(0), height=28, width=28, in_channels=1,
                         stages=[{**stage, "channels": 20}, {**stage, "channels": 50}])
    assert plan_memory(q).arena_size == 24 * 24 * 20 + 12 * 12 * 20
    kept = plan_fusion(q, {"conv0": "dense", "conv1": "dense"})
    assert [(p.conv, p.pool, p.band_rows, p.band_bytes) for p in kept] == \
        [(0, 1, 2, 2 * 24 * 20), (2, 3, 2, 2 * 8 * 50)]
    plan = plan_memory(q, None, kept)
    # pool1 (2880) + conv2's band (800) + pool2 (800), conv2 reading pool1.
    assert plan.arena_size == 2880 + 800 + 800
    assert plan.location("conv0").region == "band"


def test_a_fused_pair_must_be_adjacent_and_fusable():
    q = conv_pool_qgraph(np.random.default_rng(0), height=8, width=8, in_channels=1, stages=[
        {"channels": 2, "kernel": (3, 3), "stride": (1, 1), "padding": (0,) * 4, "pool": "avg",
         "pool_kernel": (2, 2), "pool_stride": (2, 2), "pool_padding": (0,) * 4}])
    (pair,) = candidate_pairs(q)
    with pytest.raises(ValueError, match="not a fusable pair"):
        plan_memory(q, None, (replace(pair, pool=pair.pool + 1),))



def _graph(nodes, sizes, output):
    """A graph for the planner: tensor sizes by name (flat shapes)."""
    tensors = tuple(QTensor(name, (size,), P) for name, size in sizes.items())
    return QGraph("g", tuple(nodes), tensors, "t0", output, Rounding.DOUBLE)


def _clamp(name, source, output):
    return QNode(name, QClamp(-128, 127), (source,), output)


def _cat(name, sources, output):
    from edgegen.ir import QConcat

    n = len(sources)
    return QNode(name, QConcat((0,) * n, (1 << 30,) * n, (1,) * n, 0), tuple(sources), output)


def test_a_concat_joins_its_first_input_in_place_when_that_saves_bytes():
    """A Fire module: squeeze s, expands e1 and e3 from it, joined. With e1
    at the start of the joined buffer the peak is s + joined + e3, not
    e1 + e3 + joined."""
    q = _graph([_clamp("squeeze", "t0", "s"), _clamp("e1x1", "s", "e1"),
                _clamp("e3x3", "s", "e3"), _cat("cat", ("e1", "e3"), "j"),
                _clamp("next", "j", "out")],
               {"t0": 100, "s": 100, "e1": 400, "e3": 400, "j": 800, "out": 800}, "out")
    separate = plan_memory(q, concat_in_place=False)
    joined = plan_memory(q)
    _assert_no_live_overlap(joined)
    assert separate.concats_in_place == () and separate.arena_size == 1600
    assert joined.concats_in_place == (3,)
    assert joined.location("e1") == joined.location("j")
    assert joined.location("e3") != joined.location("j")
    assert joined.arena_size == 1300


def test_a_concat_does_not_join_in_place_when_that_costs_bytes():
    """t1 is born before the big t2: as the start of the joined buffer it
    would hold the joined size through t2's peak, so it keeps its own."""
    q = _graph([_clamp("n1", "t0", "t1"), _clamp("n2", "t0", "t2"), _clamp("n3", "t2", "t3"),
                _cat("cat", ("t1", "t3"), "j"), _clamp("n5", "j", "out")],
               {"t0": 10, "t1": 10, "t2": 1000, "t3": 10, "j": 20, "out": 20}, "out")
    plan = plan_memory(q)
    assert plan.concats_in_place == ()
    assert plan.arena_size == plan_memory(q, concat_in_place=False).arena_size == 1024


def test_a_concat_input_read_elsewhere_or_given_twice_is_not_joined():
    shared = _graph([_clamp("n1", "t0", "a"), _clamp("n2", "t0", "b"), _cat("cat", ("a", "b"), "j"),
                     _clamp("n4", "a", "c"), _cat("cat2", ("j", "c"), "out")],
                    {"t0": 8, "a": 400, "b": 400, "j": 800, "c": 400, "out": 1200}, "out")
    assert 2 not in plan_memory(shared).concats_in_place
    twice = _graph([_clamp("n1", "t0", "a"), _cat("cat", ("a", "a"), "j"), _clamp("n3", "j", "out")],
                   {"t0": 8, "a": 400, "j": 800, "out": 800}, "out")
    assert plan_memory(twice).concats_in_place == ()


def test_chained_concats_join_into_the_last_buffer():
    """The joined output of one concat, itself the first input of the next,
    lives at the start of the next one's buffer with its own first input."""
    q = _graph([_clamp("n1", "t0", "a"), _clamp("n2", "t0", "b"), _cat("cat1", ("a", "b"), "ab"),
                _clamp("n4", "t0", "c"), _cat("cat2", ("ab", "c"), "abc"), _clamp("n6", "abc", "out")],
               {"t0": 300, "a": 300, "b": 300, "ab": 600, "c": 300, "abc": 900, "out": 900}, "out")
    plan = plan_memory(q)
    _assert_no_live_overlap(plan)
    assert plan.concats_in_place == (2, 4)
    assert plan.location("a") == plan.location("ab") == plan.location("abc")


# ------------------------------------------------------------ in-arena I/O

def _aligned(n):
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _assert_in_arena_sound(q, plan, *args, **kwargs):
    """The in-arena plan of ``q``: the input alive from the start to its
    last reader, the output from its producer to the end, no two buffers
    alive together sharing a byte, the caller-buffer arena never larger
    than without in-arena I/O, and the in-arena arena between the most
    bytes alive at one step and the caller-buffer total."""
    io = plan.in_arena
    without = plan_memory(q, *args, **kwargs)
    assert without.in_arena is None
    assert plan.arena_size <= without.arena_size
    root = storage_roots(q, plan.concats_in_place)
    pools = {pair.conv: pair.pool for pair in plan.fused}
    readers = [pools.get(i, i) for i, node in enumerate(q.nodes)
               if any(root[name] == q.input for name in node.inputs)]
    producer = min(i for i, node in enumerate(q.nodes) if root[node.output] == root[q.output])
    assert (io.input.tensor, io.input.first, io.input.last) == (q.input, 0, max(readers))
    assert (io.output.tensor, io.output.first, io.output.last) == \
        (root[q.output], producer, len(q.nodes) - 1)
    assert (io.input.size, io.output.size) == (q.tensor(q.input).size, q.tensor(q.output).size)
    everything = plan.in_arena_buffers()
    assert everything[:-2] == tuple(replace(b, offset=b.offset + io.base) for b in plan.buffers)
    for a in everything:
        assert a.offset % ALIGNMENT == 0 and a.offset + a.size <= io.arena_size
        for b in everything:
            alive_together = a.first <= b.last and b.first <= a.last
            apart = a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
            assert a is b or not alive_together or apart, (a, b)
    live = max(sum(_aligned(b.size) for b in everything if b.first <= step <= b.last)
               for step in range(len(q.nodes)))
    assert live <= io.arena_size <= without.arena_size + _aligned(io.input.size) + \
        _aligned(io.output.size)
    assert plan.in_arena_saves == (io.arena_size < plan.arena_size + io.input.size +
                                   io.output.size)


def test_in_arena_io_is_planned_only_when_asked():
    q = _chain([784, 11520, 2880, 3200, 800, 500, 10])
    assert plan_memory(q).in_arena is None
    plan = plan_memory(q, io_in_arena=True)
    _assert_in_arena_sound(q, plan, io_in_arena=False)
    # LeNet-300-like: the input beside the first hidden layer, the output
    # beside the last, inside the peak of the middle.
    assert plan.buffers == plan_memory(q).buffers and plan.in_arena.base == 0
    assert plan.in_arena.arena_size == plan.arena_size == 11520 + 2880
    assert plan.in_arena_saves


@pytest.mark.parametrize("hidden", [3, 4, 5])
def test_an_autoencoder_needs_its_widest_adjacent_pair(hidden):
    """MLPerf Tiny's anomaly-detection autoencoder shape: 640 -> 128 x n
    -> 8 -> 128 x n -> 640. With its input and output in the arena it needs
    max(in + h1, ..., h_last + out) = 768 bytes, not arena + 640 + 640: the
    first hidden layer and the last share their slot with the input and
    the output, whatever the parity of the chain between them."""
    sizes = [640] + [128] * hidden + [8] + [128] * hidden + [640]
    q = _chain(sizes)
    plan = plan_memory(q, io_in_arena=True)
    _assert_in_arena_sound(q, plan)
    pairs = [a + b for a, b in zip(sizes, sizes[1:])]
    assert plan.in_arena.arena_size == max(pairs) == 768
    assert plan.arena_size <= plan_memory(q).arena_size <= 264
    assert plan.in_arena_saves


def test_input_and_output_may_share_bytes_when_never_alive_together():
    q = _chain([640, 128, 640])
    io = plan_memory(q, io_in_arena=True).in_arena
    assert io.input.last < io.output.first
    assert io.input.offset == io.output.offset == 128  # above the hidden layer at 0
    assert io.arena_size == 768


def test_one_layout_for_both_entry_points_has_a_price():
    """640 -> 128 -> 128 -> 640: alone, an in-arena plan would fit in 768
    bytes (the first hidden layer above the input, the second below the
    output: 640 bytes apart). Both entry points share one layout of the
    hidden layers, whose caller-buffer arena stays 256 bytes, so they sit
    side by side and the output goes above the second: 896."""
    q = _chain([640, 128, 128, 640])
    plan = plan_memory(q, io_in_arena=True)
    _assert_in_arena_sound(q, plan)
    assert plan.arena_size == 256 and plan.in_arena.arena_size == 896


def test_in_arena_io_through_views():
    """The input read through a reshape stays alive until that reader; an
    output reached through a reshape is its producer's buffer."""
    q = _chain([16, 16, 40, 40, 8], reshape_at=(1, 3))
    plan = plan_memory(q, io_in_arena=True)
    _assert_in_arena_sound(q, plan)
    assert plan.in_arena.input.last == 1
    q = _chain([16, 40, 40], reshape_at=(2,))
    plan = plan_memory(q, io_in_arena=True)
    _assert_in_arena_sound(q, plan)
    assert plan.buffers == () and plan.in_arena.output.tensor == "t1"
    assert plan.in_arena.arena_size == 16 + 40  # alive together at node 0


def test_a_single_layer_keeps_input_and_output_apart():
    q = _chain([100, 60])
    plan = plan_memory(q, io_in_arena=True)
    _assert_in_arena_sound(q, plan)
    assert plan.arena_size == 0 and plan.in_arena.arena_size == 100 + 60


@settings(max_examples=80, derandomize=True, deadline=None)
@given(st.lists(st.integers(1, 5000), min_size=2, max_size=12))
def test_random_chains_in_arena_never_share_live_bytes(sizes):
    q = _chain(sizes)
    _assert_in_arena_sound(q, plan_memory(q, io_in_arena=True))


@settings(max_examples=100, derandomize=True, deadline=None)
@given(q=conv_pool_chains(), rows=st.integers(1, 4), scratch=st.integers(0, 300))
def test_fused_pairs_in_arena_never_share_live_bytes(q, rows, scratch):
    """Bands and scratch: the input read by a fused convolution stays alive
    until its pooling; an output written by a fused pooling is alive from
    the pair's start."""
    convs = [n.name for n in q.nodes if isinstance(n.op, QConv2D)]
    scratch = {name: scratch for name in convs}
    pairs = candidate_pairs(q, {name: rows for name in convs})
    plan = plan_memory(q, scratch, pairs, io_in_arena=True)
    _assert_in_arena_sound(q, plan, scratch, pairs)
    _assert_fused_pairs_planned(q, plan)
    _assert_no_live_overlap(plan)


def test_concats_in_place_with_in_arena_io():
    q = _graph([_clamp("squeeze", "t0", "s"), _clamp("e1x1", "s", "e1"),
                _clamp("e3x3", "s", "e3"), _cat("cat", ("e1", "e3"), "j"),
                _clamp("next", "j", "out")],
               {"t0": 100, "s": 100, "e1": 400, "e3": 400, "j": 800, "out": 800}, "out")
    plan = plan_memory(q, io_in_arena=True)
    _assert_in_arena_sound(q, plan)
    assert plan.concats_in_place == (3,)
    # The graph output is a concat whose first input is written in place:
    # the output is alive from that input's producer.
    q = _graph([_clamp("n1", "t0", "a"), _clamp("n2", "t0", "b"), _cat("cat", ("a", "b"), "out")],
               {"t0": 300, "a": 300, "b": 300, "out": 600}, "out")
    plan = plan_memory(q, io_in_arena=True)
    _assert_in_arena_sound(q, plan)
    if plan.concats_in_place:
        assert plan.in_arena.output.first == 0
