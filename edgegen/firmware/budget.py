"""Does the model fit the board? Measured sizes against the board's limits.

Flash = text + rodata + data and RAM = data + bss + stack estimate, all
measured on the footprint image (the model, its buffers and a minimal
main). The images hold the input and output inside the arena
(``<prefix>_invoke_in_arena``) when that needs less RAM than separate
buffers beside it (``StaticBuffers``). When a limit is exceeded the error
lists the biggest consumers of that resource, per layer, each with what
would shrink it.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgegen.encode.cost_model import load_costs
from edgegen.encode.storage_plan import AUTO, LayerPlan, plan_layer
from edgegen.errors import UserError
from edgegen.ir import QConv2D, QFullyConnected, QGraph
from edgegen.plan.arena import BAND_PREFIX, SCRATCH_PREFIX, MemoryPlan
from edgegen.report.sizes import const_bytes_per_layer
from edgegen.firmware.boards import Board
from edgegen.firmware.cross import ImageSize
from edgegen.firmware.stack import StackEstimate

SHOWN_CONSUMERS = 5
# For the "what would shrink it" estimates: a 4-bit codebook, and Deep
# Compression's order of pruning for LeNet's big layers (about 90 %) with
# one byte per kept weight (4-bit codebook index + 4-bit relative index).
CODEBOOK_BITS = 4
PRUNED_KEEP = 0.10


@dataclass(frozen=True)
class StaticBuffers:
    """The model's static buffers in edgegen's images: an arena, plus the
    input and output buffers unless they are inside the arena."""

    io_in_arena: bool  # the images call <prefix>_invoke_in_arena
    arena_bytes: int  # the arena the images declare (IO_ARENA_SIZE when io_in_arena)
    io_bytes: int  # separate input and output buffers (0 when io_in_arena)

    @staticmethod
    def of(qgraph: QGraph, plan: MemoryPlan) -> "StaticBuffers":
        """The input and output inside the arena when that needs less RAM
        (the plan's in-arena arena below its arena + input + output)."""
        if plan.in_arena_saves:
            return StaticBuffers(True, plan.in_arena.arena_size, 0)
        io_bytes = qgraph.tensor(qgraph.input).size + qgraph.tensor(qgraph.output).size
        return StaticBuffers(False, max(1, plan.arena_size), io_bytes)


@dataclass(frozen=True)
class Footprint:
    """The model's footprint on one board, from the footprint image."""

    flash_bytes: int
    ram_bytes: int
    text: int
    rodata: int
    data: int
    bss: int
    stack: StackEstimate
    arena_bytes: int  # part of bss; holds the input and output when io_in_arena
    io_bytes: int  # the separate input and output buffers, part of bss (0 when io_in_arena)
    io_in_arena: bool = False  # the image calls <prefix>_invoke_in_arena

    @staticmethod
    def of(size: ImageSize, buffers: StaticBuffers) -> "Footprint":
        t = size.totals
        return Footprint(size.flash_bytes, size.ram_bytes, t.text, t.rodata, t.data, t.bss,
                         size.stack, buffers.arena_bytes, buffers.io_bytes, buffers.io_in_arena)


@dataclass(frozen=True)
class Consumer:
    resource: str  # "flash" or "RAM"
    what: str
    bytes: int
    remedy: str
    layer: str | None = None


def _layer_kind(node) -> str:
    op = node.op
    if isinstance(op, QConv2D):
        o, kh, kw, i = op.weight.shape
        return f"conv {kh}x{kw}, {i}->{o} channels"
    if isinstance(op, QFullyConnected):
        return f"fully connected {op.weight.shape[1]}->{op.weight.shape[0]}"
    return type(op).__name__


def _weights_remedy(qgraph: QGraph, layer: LayerPlan | None, exact: bool) -> str:
    """What would shrink a layer's weights. With ``exact``, every format is
    encoded to find the smallest (only worth it when the model is over
    budget), so that advice to change format quotes real bytes."""
    if layer is None:
        return "a smaller model"
    node = qgraph.nodes[layer.index]
    fewer = "fewer filters (filter pruning)" if isinstance(node.op, QConv2D) else "fewer output units"
    remedies = []
    if exact:
        smallest = plan_layer(qgraph, layer.index, AUTO, "size", load_costs()).stored
        if smallest.flash_bytes < layer.stored.flash_bytes:
            remedies.append(
                f"store it {smallest.format} for size: {smallest.flash_bytes:,} B of weights "
                f"instead of {layer.stored.flash_bytes:,} B as {layer.format} "
                f"(`--format {node.name}={smallest.format} --optimize size`; `--optimize size` "
                "alone lets the cost model store every layer for size)")
    if node.op.codebook is not None:
        remedies.append("prune more of it or share fewer values with `edgegen compress`")
    else:
        weights = node.op.weight.size
        remedies.append(
            f"prune and share its {weights:,} weights with `edgegen compress` (a {CODEBOOK_BITS}-bit "
            f"codebook stores them in about {weights * CODEBOOK_BITS // 8:,} B; pruning "
            f"{1 - PRUNED_KEEP:.0%} with sparse storage in about {int(weights * PRUNED_KEEP):,} B)")
    return "; or ".join(remedies) + f"; or {fewer}, or a smaller model"


def flash_consumers(qgraph: QGraph, lowered, symbol_sizes: dict, footprint: Footprint,
                    exact_remedies: bool = False) -> list[Consumer]:
    """Per-layer constants (sizes of the linked arrays and weights structs),
    code, and the rest."""
    per_layer = const_bytes_per_layer(lowered.sources, symbol_sizes, "the footprint image")
    stored = {layer.name: layer for layer in lowered.storage.layers}
    consumers = []
    for node in qgraph.nodes:
        if per_layer.get(node.name):
            layer = stored.get(node.name)
            how = f", {layer.format}" if layer is not None else ""
            consumers.append(Consumer(
                "flash", f"{node.name}: weights, bias and requantization ({_layer_kind(node)}{how})",
                per_layer[node.name], _weights_remedy(qgraph, layer, exact_remedies), node.name))
    consumers.append(Consumer(
        "flash", "code: kernels, call sequence and start-up", footprint.text,
        "already -Os with unused functions removed; code grows with the number of distinct "
        "layer kinds, not with layer sizes"))
    rest = footprint.flash_bytes - footprint.text - sum(per_layer.values())
    if rest > 0:
        consumers.append(Consumer("flash", "other constants: layer parameters, vector table, data",
                                  rest, "small and fixed per layer"))
    return sorted(consumers, key=lambda c: -c.bytes)


def _tensor_text(qgraph: QGraph, tensor: str) -> str:
    return "x".join(str(d) for d in qgraph.tensor(tensor).shape)


def _channel_source(qgraph: QGraph, node) -> str | None:
    """The nearest layer at or before ``node`` whose weights set its
    channel count (a pooling output has its convolution's channels)."""
    producer = {n.output: n for n in qgraph.nodes}
    while node is not None:
        if isinstance(node.op, (QConv2D, QFullyConnected)):
            return node.name
        node = producer.get(node.inputs[0])
    return None


def _activation_remedy(qgraph: QGraph, node) -> str:
    source = _channel_source(qgraph, node)
    fewer = (f"fewer output channels in {source} (filter pruning with `edgegen compress`), "
             if source else "")
    return f"{fewer}pooling or a stride earlier, or a smaller model"


def _scratch_consumer(layer: str, fmt: str, size: int, pointwise: bool) -> "Consumer":
    """A convolution's scratch: the dense kernel's two gathered windows
    (im2col; for a 1x1 filter, two input pixels widened to 16 bits), or a
    compressed kernel's decoded filter."""
    if fmt == "dense":
        what = ("two input pixels widened to 16 bits" if pointwise else
                "the input windows of two output pixels (im2col)")
        return Consumer("RAM", f"{layer} scratch: {what}, in the arena during that layer only",
                        size, f"a smaller kernel or fewer input channels in {layer}", layer)
    return Consumer("RAM", f"{layer} scratch: one decoded filter, in the arena during that "
                           "layer only", size,
                    f"fewer nonzero weights in {layer}'s largest filter", layer)


def ram_consumers(qgraph: QGraph, plan: MemoryPlan, footprint: Footprint,
                  formats: dict[str, str]) -> list[Consumer]:
    """The arena's buffers by producing layer, the I/O buffers, the stack.
    ``formats``: each weight layer's storage format."""
    producer = {node.output: node for node in qgraph.nodes}
    consumers = []
    for buffer in plan.buffers:
        if buffer.tensor.startswith(SCRATCH_PREFIX):
            layer = buffer.tensor[len(SCRATCH_PREFIX):]
            weight = next(n.op.weight for n in qgraph.nodes if n.name == layer)
            consumers.append(_scratch_consumer(layer, formats.get(layer, "dense"), buffer.size,
                                               weight.ndim == 4 and weight.shape[1:3] == (1, 1)))
            continue
        if buffer.tensor.startswith(BAND_PREFIX):
            conv, pair = qgraph.nodes[buffer.first], plan.fused_pair(buffer.first)
            consumers.append(Consumer(
                "RAM", f"{conv.name} output, {pair.band_rows} rows of its "
                       f"{_tensor_text(qgraph, conv.output)} at a time (fused with "
                       f"{qgraph.nodes[pair.pool].name}), in the arena during that pair only",
                buffer.size, _activation_remedy(qgraph, conv), conv.name))
            continue
        node = producer[buffer.tensor]
        joined = [qgraph.nodes[i].inputs[0] for i in plan.concats_in_place
                  if qgraph.nodes[i].output == buffer.tensor]
        in_place = (f", written in place at its start by {producer[joined[0]].name}"
                    if joined else "")
        consumers.append(Consumer(
            "RAM", f"{node.name} output {_tensor_text(qgraph, buffer.tensor)} int8 in the "
                   f"{footprint.arena_bytes:,} B arena (live from layer {buffer.first} to "
                   f"{buffer.last}{in_place})",
            buffer.size, _activation_remedy(qgraph, node), node.name))
    consumers += _io_consumers(qgraph, plan, footprint)
    chain = " -> ".join(footprint.stack.path)
    consumers.append(Consumer("RAM", f"stack (estimate; deepest chain {chain})", footprint.stack.bytes,
                              "fixed by the kernels; does not grow with the model"))
    rest = footprint.data + footprint.bss - footprint.arena_bytes - footprint.io_bytes
    if rest > 0:
        consumers.append(Consumer("RAM", "other static data", rest, "start-up and board support"))
    return sorted(consumers, key=lambda c: -c.bytes)


def _io_consumers(qgraph: QGraph, plan: MemoryPlan, footprint: Footprint) -> list[Consumer]:
    """The input and output: two buffers of their own, or two buffers of
    the arena alive at the start and at the end."""
    remedy = "a smaller input (resolution, channels)"
    inp, out = _tensor_text(qgraph, qgraph.input), _tensor_text(qgraph, qgraph.output)
    if not footprint.io_in_arena:
        return [Consumer("RAM", f"input {inp} and output {out} buffers", footprint.io_bytes,
                         remedy)]
    io, last = plan.in_arena, len(qgraph.nodes) - 1
    where = f"int8 in the {footprint.arena_bytes:,} B arena"
    return [Consumer("RAM", f"input {inp} {where} (live until layer {io.input.last}, its bytes "
                            "then serve other tensors)", io.input.size, remedy),
            Consumer("RAM", f"output {out} {where} (live from layer {io.output.first} to "
                            f"{last}, the end)", io.output.size,
                     "fewer outputs, or a smaller last layer")]


def _over(resource: str, needed: int, limit: int) -> str | None:
    if needed <= limit:
        return None
    return f"{resource} {needed:,} B of {limit:,} B (over by {needed - limit:,} B)"


def budget_problems(board: Board, footprint: Footprint) -> list[str]:
    """One line per exceeded limit (empty: the model fits)."""
    problems = [_over("flash", footprint.flash_bytes, board.flash_bytes),
                 _over("RAM", footprint.ram_bytes, board.ram_bytes)]
    return [p for p in problems if p is not None]


@dataclass(frozen=True)
class FootprintReport:
    """The footprint image measured, and what does not fit the board."""

    prefix: str
    footprint: Footprint
    flash_consumers: tuple[Consumer, ...]  # biggest first
    ram_consumers: tuple[Consumer, ...]
    problems: tuple[str, ...]  # one line per exceeded limit

    @property
    def fits(self) -> bool:
        return not self.problems


def footprint_report(qgraph: QGraph, lowered, size: ImageSize, board: Board) -> FootprintReport:
    """The model's footprint from its measured footprint image ``size``,
    its consumers per layer, and the limits of ``board`` it exceeds.
    ``lowered``: the model's storage plan, memory plan and sources."""
    plan = lowered.memory
    footprint = Footprint.of(size, StaticBuffers.of(qgraph, plan))
    problems = tuple(budget_problems(board, footprint))
    over_flash = footprint.flash_bytes > board.flash_bytes
    return FootprintReport(
        prefix=lowered.sources.prefix, footprint=footprint,
        flash_consumers=tuple(flash_consumers(qgraph, lowered, size.symbols, footprint,
                                              exact_remedies=over_flash)),
        ram_consumers=tuple(ram_consumers(qgraph, plan, footprint, lowered.storage.formats())),
        problems=problems,
    )


def check_budget(board: Board, model: str, footprint: Footprint, flash: list[Consumer],
                 ram: list[Consumer], opt: str) -> None:
    """UserError naming what does not fit, its biggest consumers and remedies."""
    problems = budget_problems(board, footprint)
    if not problems:
        return
    lines = [f"{model} does not fit {board.name}: {'; '.join(problems)} "
             f"(measured from the linked image, {opt})."]
    if footprint.flash_bytes > board.flash_bytes:
        lines += _consumer_lines("flash", flash)
    if footprint.ram_bytes > board.ram_bytes:
        lines += _consumer_lines("RAM", ram)
    raise UserError("\n".join(lines))


def _consumer_lines(resource: str, consumers: list[Consumer]) -> list[str]:
    lines = [f"Biggest {resource} consumers:"]
    for c in consumers[:SHOWN_CONSUMERS]:
        lines.append(f"  {c.bytes:>9,} B  {c.what}")
        lines.append(f"               -> {c.remedy}")
    return lines
