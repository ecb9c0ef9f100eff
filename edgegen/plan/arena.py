"""Static activation memory: one arena, offsets assigned by liveness.

The graph input and output live in the caller's buffers; every other tensor
that a kernel writes gets a slice of the arena. A reshape writes nothing:
its output is its input's storage under another shape. Buffers whose
lifetimes (producer .. last consumer, in execution order) do not overlap
may share bytes. A layer's scratch (the decoded filter of a compressed
convolution, the im2col windows of a dense one) is a buffer alive during
that layer only.

A convolution fused with the pooling after it (edgegen.plan.fusion) runs
with the pooling as one step: its output tensor gets no buffer at all; a
band buffer (a few of its rows) and the convolution's scratch are alive
from the convolution to the pooling, and the convolution's input stays
alive until the pooling, which writes its output while the convolution
still reads. The fused output's location is the band's (region "band").

A concatenation writes its first input in place where that makes the
arena smaller: that input then lives at the start of the concatenation's
output buffer (its producer writes there), and the concat kernel, running
backwards, spreads its pixels out to their places in the joined tensor
(runtime_c/concat.c). The input needs no buffer of its own, at the price
of the whole output's bytes from the input's birth on; it is done only for
an input that nothing else reads and that is not a view of another tensor,
and only when the arena comes out smaller (each candidate in execution
order, keeping the choices made before, in passes until none helps).

Placement is greedy, largest first, each at the lowest
offset that does not collide with an already placed buffer alive at the
same time (the strategy of TFLite Micro's greedy planner): not optimal in
general, optimal for chains like LeNet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgegen.ir import QConcat, QGraph, QReshape

ALIGNMENT = 4  # keeps every buffer word-aligned for future SIMD kernels


@dataclass(frozen=True)
class FusedPair:
    """A convolution (node ``conv``) fused with the pooling after it, as
    edgegen.plan.fusion decides and this planner places it."""

    conv: int  # node index of the convolution
    pool: int  # node index of the pooling: conv + 1
    pooled_rows: int  # rows of the pooling's output
    rows_per_band: int  # pooled rows computed per band (the last band may have fewer)
    band_rows: int  # most convolution output rows in one band
    band_bytes: int  # band_rows x the convolution output's width x channels

    @property
    def bands(self) -> int:
        return -(-self.pooled_rows // self.rows_per_band)


@dataclass(frozen=True)
class Location:
    """Where a tensor's bytes are: the caller's input or output buffer, or
    the arena at ``offset`` (region "band": a fused convolution's output,
    a band of its rows at a time at that arena offset)."""

    region: str  # "input" | "output" | "arena" | "band"
    offset: int = 0


@dataclass(frozen=True)
class Buffer:
    tensor: str
    size: int
    first: int  # index of the producing node
    last: int  # index of the last node that reads it
    offset: int


@dataclass(frozen=True)
class MemoryPlan:
    buffers: tuple[Buffer, ...]
    locations: dict  # tensor name -> Location (reshape outputs included)
    arena_size: int
    scratch: dict = field(default_factory=dict)  # node name -> Location of its scratch
    fused: tuple[FusedPair, ...] = ()  # the fused pairs planned, by execution order
    concats_in_place: tuple[int, ...] = ()  # concat nodes whose first input is in place

    def location(self, tensor: str) -> Location:
        return self.locations[tensor]

    def scratch_location(self, node: str) -> Location | None:
        return self.scratch.get(node)

    def fused_pair(self, index: int) -> FusedPair | None:
        """The fused pair that node ``index`` (its convolution or its
        pooling) belongs to, if any."""
        for pair in self.fused:
            if index in (pair.conv, pair.pool):
                return pair
        return None


SCRATCH_PREFIX = "scratch:"  # Buffer.tensor of a layer's scratch
BAND_PREFIX = "band:"  # Buffer.tensor of a fused convolution's band (+ its node name)


def storage_roots(qgraph: QGraph, concats_in_place=()) -> dict[str, str]:
    """tensor -> the tensor whose bytes it shares: itself, unless a reshape
    (its input's) or the first input of a concat in ``concats_in_place``
    (node indices; the concat output's)."""
    root = {qgraph.input: qgraph.input}
    for node in qgraph.nodes:
        is_view = isinstance(node.op, QReshape)
        root[node.output] = root[node.inputs[0]] if is_view else node.output
    joined = {qgraph.nodes[i].inputs[0]: qgraph.nodes[i].output for i in concats_in_place}
    for name in root:
        while root[name] in joined:  # a chain: a joined output may itself be joined later
            root[name] = root[joined[root[name]]]
    return root


def in_place_concat_candidates(qgraph: QGraph) -> tuple[int, ...]:
    """Concat nodes whose first input may live in their output buffer: an
    input computed into a buffer of its own (not the model input, not a
    view) that only this concat reads, once."""
    readers: dict[str, int] = {}
    for node in qgraph.nodes:
        for name in node.inputs:
            readers[name] = readers.get(name, 0) + 1
    root = storage_roots(qgraph)
    return tuple(i for i, node in enumerate(qgraph.nodes)
                 if isinstance(node.op, QConcat) and node.inputs[0] != qgraph.input
                 and root[node.inputs[0]] == node.inputs[0] and readers[node.inputs[0]] == 1)


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def plan_memory(qgraph: QGraph, scratch: dict | None = None,
                fused: tuple[FusedPair, ...] = (), concat_in_place: bool = True) -> MemoryPlan:
    """``scratch``: bytes of scratch each layer (by node name) needs;
    ``fused``: the fused pairs (edgegen.plan.fusion.plan_fusion);
    ``concat_in_place``: whether concatenations may write their first input
    in place (where the arena comes out smaller)."""
    plan = _plan(qgraph, scratch, fused, ())
    if not concat_in_place:
        return plan
    # Passes until nothing changes: a join may pay only once a later one is
    # made (chained concats), so a candidate refused once is tried again.
    remaining = list(in_place_concat_candidates(qgraph))
    improved = True
    while improved:
        improved = False
        for index in list(remaining):
            chosen = tuple(sorted(plan.concats_in_place + (index,)))
            trial = _plan(qgraph, scratch, fused, chosen)
            if trial.arena_size < plan.arena_size:
                plan, improved = trial, True
                remaining.remove(index)
    return plan


def _plan(qgraph: QGraph, scratch: dict | None, fused: tuple[FusedPair, ...],
          concats_in_place: tuple[int, ...]) -> MemoryPlan:
    scratch = {name: size for name, size in (scratch or {}).items() if size > 0}
    root = storage_roots(qgraph, concats_in_place)
    output_root = root[qgraph.output]
    if output_root == qgraph.input:
        raise ValueError("the model output is its input reshaped: nothing to compute")
    nodes = qgraph.nodes
    for pair in fused:
        if pair.pool != pair.conv + 1 or nodes[pair.pool].inputs != (nodes[pair.conv].output,) \
                or root[nodes[pair.conv].output] == output_root:
            raise ValueError(f"nodes {pair.conv} and {pair.pool} are not a fusable pair")
    step_end = {pair.conv: pair.pool for pair in fused}  # a fused pair is one step
    not_stored = {nodes[pair.conv].output for pair in fused}

    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for name in node.inputs:
            last[root[name]] = step_end.get(index, index)
        first.setdefault(root[node.output], index)
        last.setdefault(root[node.output], index)

    arena_tensors = [t for t in first if t not in (qgraph.input, output_root, *not_stored)]
    sizes = {t: qgraph.tensor(t).size for t in arena_tensors}
    node_index = {node.name: i for i, node in enumerate(nodes)}
    for node, size in scratch.items():
        buffer = SCRATCH_PREFIX + node
        arena_tensors.append(buffer)
        sizes[buffer] = size
        first[buffer] = node_index[node]
        last[buffer] = step_end.get(node_index[node], node_index[node])
    for pair in fused:
        buffer = BAND_PREFIX + nodes[pair.conv].name
        arena_tensors.append(buffer)
        sizes[buffer] = pair.band_bytes
        first[buffer], last[buffer] = pair.conv, pair.pool
    # Largest first; ties by execution order so the plan is deterministic.
    order = sorted(arena_tensors, key=lambda t: (-sizes[t], first[t], t))
    placed: list[Buffer] = []
    for name in order:
        offset = _lowest_free_offset(placed, sizes[name], first[name], last[name])
        placed.append(Buffer(name, sizes[name], first[name], last[name], offset))

    buffers = tuple(sorted(placed, key=lambda b: (b.first, b.tensor)))
    scratch_at = {b.tensor[len(SCRATCH_PREFIX):]: Location("arena", b.offset)
                  for b in buffers if b.tensor.startswith(SCRATCH_PREFIX)}
    by_root = {b.tensor: Location("arena", b.offset) for b in buffers
               if not b.tensor.startswith((SCRATCH_PREFIX, BAND_PREFIX))}
    by_root.update({nodes[int(b.first)].output: Location("band", b.offset) for b in buffers
                    if b.tensor.startswith(BAND_PREFIX)})
    by_root[qgraph.input] = Location("input")
    by_root[output_root] = Location("output")
    locations = {name: by_root[r] for name, r in root.items()}
    arena_size = max((_align(b.offset + b.size) for b in buffers), default=0)
    return MemoryPlan(buffers, locations, arena_size, scratch_at, tuple(fused),
                      tuple(concats_in_place))


def _lowest_free_offset(placed: list[Buffer], size: int, first: int, last: int) -> int:
    overlapping = sorted(
        (b for b in placed if b.first <= last and first <= b.last), key=lambda b: b.offset
    )
    offset = 0
    for b in overlapping:
        if offset + size <= b.offset:
            break
        offset = max(offset, _align(b.offset + b.size))
    return offset
