from hypothesis import given, settings, strategies as st

from edgegen.ir import QGraph, QNode, QClamp, QReshape, QTensor, QuantParams, Rounding
from edgegen.plan.arena import ALIGNMENT, plan_memory

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
