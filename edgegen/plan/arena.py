"""Static activation memory: one arena, offsets assigned by liveness.

The graph input and output live in the caller's buffers (``<prefix>_invoke``);
every other tensor that a kernel writes gets a slice of the arena. A reshape writes nothing:
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

In-arena I/O (``io_in_arena``, for ``<prefix>_invoke_in_arena``): the graph
input and output are planned as arena buffers too, the input alive from the
start until its last reader, the output from its producer to the end, so
that their bytes serve other tensors while they are dead (the way CMSIS-NN's
and TFLite Micro's figures count them). Both entry points run the same code
(``<prefix>_invoke_in_arena`` calls ``<prefix>_invoke`` with pointers into
its arena), so the other buffers keep one layout: at their offsets in the
caller-buffer arena, all shifted by ``InArenaIO.base``. First the layout
planned above is kept and the input and output go where it leaves room;
if that misses the lower bound (the most bytes alive at one step), the
buffers are placed again around the input and output pinned at a few
candidate offsets, and that layout is taken when its in-arena arena is
smaller and its caller-buffer arena no larger than before: the
caller-buffer arena never grows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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
class InArenaIO:
    """The graph input and output inside the arena (``<prefix>_invoke_in_arena``):
    one arena of ``arena_size`` bytes holds the input at ``input.offset``,
    the output at ``output.offset`` and every buffer of the plan at its
    offset + ``base``. The input and output may share bytes with each other
    and with other buffers while they are dead."""

    arena_size: int
    base: int  # where the plan's buffers start in this arena
    input: Buffer  # the graph input: alive from node 0 to its last reader
    output: Buffer  # the graph output (its storage root): from its producer to the last node

    @property
    def input_offset(self) -> int:
        return self.input.offset

    @property
    def output_offset(self) -> int:
        return self.output.offset


@dataclass(frozen=True)
class MemoryPlan:
    buffers: tuple[Buffer, ...]
    locations: dict  # tensor name -> Location (reshape outputs included)
    arena_size: int
    scratch: dict = field(default_factory=dict)  # node name -> Location of its scratch
    fused: tuple[FusedPair, ...] = ()  # the fused pairs planned, by execution order
    concats_in_place: tuple[int, ...] = ()  # concat nodes whose first input is in place
    in_arena: InArenaIO | None = None  # planned with io_in_arena, else None

    @property
    def in_arena_saves(self) -> bool:
        """Whether the in-arena entry point needs less RAM than the caller's
        input and output buffers beside the arena."""
        io = self.in_arena
        return io is not None and io.arena_size < self.arena_size + io.input.size + io.output.size

    def in_arena_buffers(self) -> tuple[Buffer, ...]:
        """Every buffer of the in-arena arena at its offset there: the
        plan's, shifted by its base, then the input and the output."""
        io = self.in_arena
        if io is None:
            raise ValueError("the plan has no in-arena I/O (plan_memory(..., io_in_arena=True))")
        return tuple(replace(b, offset=b.offset + io.base) for b in self.buffers) + (io.input,
                                                                                    io.output)

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
                fused: tuple[FusedPair, ...] = (), concat_in_place: bool = True,
                io_in_arena: bool = False) -> MemoryPlan:
    """``scratch``: bytes of scratch each layer (by node name) needs;
    ``fused``: the fused pairs (edgegen.plan.fusion.plan_fusion);
    ``concat_in_place``: whether concatenations may write their first input
    in place (where the arena comes out smaller); ``io_in_arena``: plan the
    input and output inside an arena too (``MemoryPlan.in_arena``)."""
    plan = _plan(qgraph, scratch, fused, ())
    if concat_in_place:
        # Passes until nothing changes: a join may pay only once a later one
        # is made (chained concats), so a candidate refused once is tried again.
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
    return _with_io_in_arena(qgraph, plan, scratch) if io_in_arena else plan


@dataclass(frozen=True)
class _Lifetimes:
    """What placement needs: the arena buffers (storage roots, scratch,
    bands) with their sizes and lifetimes, in placement order (largest
    first; ties by execution order so the plan is deterministic)."""

    root: dict  # tensor -> its storage root
    output_root: str
    order: tuple[str, ...]
    sizes: dict
    first: dict  # root / buffer -> index of the producing node
    last: dict  # root / buffer -> index of the last reader (a fused pair's pooling for its conv)


def _lifetimes(qgraph: QGraph, scratch: dict | None, fused: tuple[FusedPair, ...],
               concats_in_place: tuple[int, ...]) -> _Lifetimes:
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

    first: dict[str, int] = {qgraph.input: 0}
    last: dict[str, int] = {qgraph.input: 0}
    for index, node in enumerate(nodes):
        for name in node.inputs:
            last[root[name]] = step_end.get(index, index)
        first.setdefault(root[node.output], index)
        last.setdefault(root[node.output], index)

    arena_tensors = [t for t in first if t not in (qgraph.input, output_root, *not_stored)]
    sizes = {t: qgraph.tensor(t).size for t in first if t not in not_stored}
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
    order = tuple(sorted(arena_tensors, key=lambda t: (-sizes[t], first[t], t)))
    return _Lifetimes(root, output_root, order, sizes, first, last)


def _plan(qgraph: QGraph, scratch: dict | None, fused: tuple[FusedPair, ...],
          concats_in_place: tuple[int, ...]) -> MemoryPlan:
    life = _lifetimes(qgraph, scratch, fused, concats_in_place)
    placed = _place(life, life.order, [])
    return _assemble(qgraph, life, placed, fused, concats_in_place)


def _place(life: _Lifetimes, order, pinned: list[Buffer]) -> list[Buffer]:
    """The buffers of ``order``, each at the lowest offset free of the
    buffers alive with it placed before (``pinned`` first)."""
    placed = list(pinned)
    for name in order:
        size, first, last = life.sizes[name], life.first[name], life.last[name]
        placed.append(Buffer(name, size, first, last,
                             _lowest_free_offset(placed, size, first, last)))
    return placed[len(pinned):]


def _assemble(qgraph: QGraph, life: _Lifetimes, placed: list[Buffer],
              fused: tuple[FusedPair, ...], concats_in_place: tuple[int, ...]) -> MemoryPlan:
    nodes = qgraph.nodes
    buffers = tuple(sorted(placed, key=lambda b: (b.first, b.tensor)))
    scratch_at = {b.tensor[len(SCRATCH_PREFIX):]: Location("arena", b.offset)
                  for b in buffers if b.tensor.startswith(SCRATCH_PREFIX)}
    by_root = {b.tensor: Location("arena", b.offset) for b in buffers
               if not b.tensor.startswith((SCRATCH_PREFIX, BAND_PREFIX))}
    by_root.update({nodes[int(b.first)].output: Location("band", b.offset) for b in buffers
                    if b.tensor.startswith(BAND_PREFIX)})
    by_root[qgraph.input] = Location("input")
    by_root[life.output_root] = Location("output")
    locations = {name: by_root[r] for name, r in life.root.items()}
    return MemoryPlan(buffers, locations, _extent(buffers), scratch_at, tuple(fused),
                      tuple(concats_in_place))


def _extent(buffers) -> int:
    """The aligned size of an arena holding ``buffers``."""
    return max((_align(b.offset + b.size) for b in buffers), default=0)


def _with_io_in_arena(qgraph: QGraph, plan: MemoryPlan, scratch: dict | None) -> MemoryPlan:
    """``plan`` with its ``in_arena`` filled in (and its buffers placed
    again when that makes the in-arena arena smaller without making the
    caller-buffer arena larger; see the module's docstring)."""
    life = _lifetimes(qgraph, scratch, plan.fused, plan.concats_in_place)
    end = len(qgraph.nodes) - 1
    io = (Buffer(qgraph.input, life.sizes[qgraph.input], 0, life.last[qgraph.input], 0),
          Buffer(life.output_root, life.sizes[life.output_root],
                 life.first[life.output_root], end, 0))
    bound = max(plan.arena_size, _live_bound(list(plan.buffers) + list(io), end))

    kept = _keep_layout(plan, io)
    if kept.arena_size <= bound:
        return replace(plan, in_arena=kept)
    best, buffers = kept, None
    for placed, trial in _placed_again(life, plan, io, kept):
        if trial.arena_size < best.arena_size:
            best, buffers = trial, placed
    if buffers is not None:
        plan = _assemble(qgraph, life, buffers, plan.fused, plan.concats_in_place)
    return replace(plan, in_arena=best)


def _live_bound(buffers: list[Buffer], end: int) -> int:
    """The most aligned bytes alive at one step: no arena holding
    ``buffers`` is smaller."""
    return max((sum(_align(b.size) for b in buffers if b.first <= step <= b.last)
                for step in range(end + 1)), default=0)


def _keep_layout(plan: MemoryPlan, io: tuple[Buffer, Buffer]) -> InArenaIO:
    """The plan's layout kept, shifted by a base, the input and output at
    the lowest offsets it leaves free: the smallest over a few bases (0,
    and those that open room below a buffer for the input, the output or
    both) and both orders of placing them."""
    sizes = {io[0].size, io[1].size, _align(io[0].size) + _align(io[1].size)}
    bases = sorted({0} | {max(0, _align(s) - b.offset) for s in sizes for b in plan.buffers})
    best = None
    for base in bases:
        shifted = [replace(b, offset=b.offset + base) for b in plan.buffers]
        for input_first in (True, False):
            placed = list(shifted)
            for b in io if input_first else io[::-1]:
                placed.append(replace(b, offset=_lowest_free_offset(placed, b.size, b.first,
                                                                     b.last)))
            at = {b.tensor: b for b in placed[-2:]}
            trial = InArenaIO(_extent(placed), base, at[io[0].tensor], at[io[1].tensor])
            if best is None or trial.arena_size < best.arena_size:
                best = trial
    return best


def _placed_again(life: _Lifetimes, plan: MemoryPlan, io: tuple[Buffer, Buffer],
                  kept: InArenaIO):
    """(buffers, InArenaIO) for the plan's buffers placed again around the
    input and output pinned at candidate offsets (0, where the kept layout
    put them, and above the most bytes alive with them), in two orders
    (the planner's, and nearest in time to the input or output first),
    each whose caller-buffer arena is no larger than the plan's."""
    def gap(name: str) -> int:  # steps between a buffer and the input's or output's lifetime
        first, last = life.first[name], life.last[name]
        return min(max(0, first - io[0].last), max(0, io[1].first - last))

    def nearest_first(name: str) -> tuple:
        return (gap(name), -life.sizes[name], life.first[name], name)

    orders = (life.order, tuple(sorted(life.order, key=nearest_first)))
    candidates = []
    for b, where in zip(io, (kept.input.offset, kept.output.offset)):
        alive = sum(_align(o.size) for o in plan.buffers if o.first <= b.last and b.first <= o.last)
        candidates.append(sorted({0, where, alive}))
    for at_input in candidates[0]:
        for at_output in candidates[1]:
            pinned = [replace(io[0], offset=at_input), replace(io[1], offset=at_output)]
            if _collide(*pinned):
                continue
            for order in orders:
                buffers = _place(life, order, pinned)
                if _extent(buffers) <= plan.arena_size:
                    yield buffers, InArenaIO(_extent(buffers + pinned), 0, *pinned)


def _collide(a: Buffer, b: Buffer) -> bool:
    alive_together = a.first <= b.last and b.first <= a.last
    return alive_together and a.offset < b.offset + b.size and b.offset < a.offset + a.size


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
