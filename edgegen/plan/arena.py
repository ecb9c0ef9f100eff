"""Static activation memory: one arena, offsets assigned by liveness.

The graph input and output live in the caller's buffers; every other tensor
that a kernel writes gets a slice of the arena. A reshape writes nothing:
its output is its input's storage under another shape. Buffers whose
lifetimes (producer .. last consumer, in execution order) do not overlap
may share bytes. A layer's scratch (the decoded filter of a compressed
convolution) is a buffer alive during that layer only. Placement is greedy, largest first, each at the lowest
offset that does not collide with an already placed buffer alive at the
same time (the strategy of TFLite Micro's greedy planner): not optimal in
general, optimal for chains like LeNet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgegen.ir import QGraph, QReshape

ALIGNMENT = 4  # keeps every buffer word-aligned for future SIMD kernels


@dataclass(frozen=True)
class Location:
    """Where a tensor's bytes are: the caller's input or output buffer, or
    the arena at ``offset``."""

    region: str  # "input" | "output" | "arena"
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

    def location(self, tensor: str) -> Location:
        return self.locations[tensor]

    def scratch_location(self, node: str) -> Location | None:
        return self.scratch.get(node)


SCRATCH_PREFIX = "scratch:"  # Buffer.tensor of a layer's scratch


def storage_roots(qgraph: QGraph) -> dict[str, str]:
    """tensor -> the tensor whose bytes it shares (itself unless a reshape)."""
    root = {qgraph.input: qgraph.input}
    for node in qgraph.nodes:
        is_view = isinstance(node.op, QReshape)
        root[node.output] = root[node.inputs[0]] if is_view else node.output
    return root


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def plan_memory(qgraph: QGraph, scratch: dict | None = None) -> MemoryPlan:
    """``scratch``: bytes of scratch each layer (by node name) needs."""
    scratch = {name: size for name, size in (scratch or {}).items() if size > 0}
    root = storage_roots(qgraph)
    output_root = root[qgraph.output]
    if output_root == qgraph.input:
        raise ValueError("the model output is its input reshaped: nothing to compute")

    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for index, node in enumerate(qgraph.nodes):
        for name in node.inputs:
            last[root[name]] = index
        first.setdefault(root[node.output], index)
        last.setdefault(root[node.output], index)

    arena_tensors = [t for t in first if t not in (qgraph.input, output_root)]
    sizes = {t: qgraph.tensor(t).size for t in arena_tensors}
    node_index = {node.name: i for i, node in enumerate(qgraph.nodes)}
    for node, size in scratch.items():
        buffer = SCRATCH_PREFIX + node
        arena_tensors.append(buffer)
        sizes[buffer] = size
        first[buffer] = last[buffer] = node_index[node]
    # Largest first; ties by execution order so the plan is deterministic.
    order = sorted(arena_tensors, key=lambda t: (-sizes[t], first[t], t))
    placed: list[Buffer] = []
    for name in order:
        offset = _lowest_free_offset(placed, sizes[name], first[name], last[name])
        placed.append(Buffer(name, sizes[name], first[name], last[name], offset))

    buffers = tuple(sorted(placed, key=lambda b: (b.first, b.tensor)))
    scratch_at = {b.tensor[len(SCRATCH_PREFIX):]: Location("arena", b.offset)
                  for b in buffers if b.tensor.startswith(SCRATCH_PREFIX)}
    buffers_of_tensors = tuple(b for b in buffers if not b.tensor.startswith(SCRATCH_PREFIX))
    by_root = {b.tensor: Location("arena", b.offset) for b in buffers_of_tensors}
    by_root[qgraph.input] = Location("input")
    by_root[output_root] = Location("output")
    locations = {name: by_root[r] for name, r in root.items()}
    arena_size = max((_align(b.offset + b.size) for b in buffers), default=0)
    return MemoryPlan(buffers, locations, arena_size, scratch_at)


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
