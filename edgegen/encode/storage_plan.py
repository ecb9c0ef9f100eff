"""The encode stage: a QGraph plus the user's format choices -> a storage plan.

For every weight layer (conv, fully connected) the plan holds the chosen
format, its C-ready arrays and struct fields (``storage.StoredWeights``),
the bias the chosen kernel takes, the conv scratch it needs, and every
candidate the cost model weighed. The emitter renders the plan as it is.

Choice: a layer's format is the one the user forced (``--format sparse``,
``--format fc1=huffman``), else every format is a candidate (``auto``);
among the variants left (entry width, gap width, lookup width) the cost
model picks by ``optimize``:

* ``size``: fewest flash bytes;
* ``speed``: fewest (modelled) instructions;
* ``balanced``: the smallest sum of the two, each divided by the best
  candidate's figure, so that a byte saved and an instruction saved weigh
  the same share of the layer's best.

Before a plan is returned every chosen layer is decoded again from its
arrays, the way the C reads them, and compared with the QGraph's weights:
a stream that would compute something else is never written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgegen.encode.cost_model import instructions, layer_work_of, load_costs
from edgegen.encode.relative_index import choose_gap_bits
from edgegen.encode.storage import (
    FORMATS,
    MAX_GAP_SYMBOL_BITS,
    STREAM_FORMAT_VERSION,
    FormatUnavailable,
    StoredWeights,
    WeightMatrix,
    dense_conv_scratch_bytes,
    store_codebook,
    store_dense,
    store_huffman,
    store_sparse,
    weight_matrix,
)
from edgegen.encode.stream_decode import StreamError, verify_stored
from edgegen.ir import QConv2D, QFullyConnected, QGraph, op_kind
from edgegen.reference.numerics import fold_zero_point

OPTIMIZE = ("size", "speed", "balanced")
AUTO = "auto"
LUT_BITS_CANDIDATES = (6, 8, 10)
PAIR_BITS_CANDIDATES = (10, 12)
PAIR_LUT_BITS = 10  # the per-code lookups behind a pair lookup's misses


@dataclass(frozen=True)
class FormatRequest:
    """What the user asked: a format for every layer (or ``auto``) and
    per-layer overrides."""

    default: str = AUTO
    layers: dict = field(default_factory=dict)  # layer name -> format

    @classmethod
    def parse(cls, text: str) -> "FormatRequest":
        """``auto``, a format, or comma-separated items, each a format (the
        default) or ``LAYER=FORMAT``: ``sparse,conv1=dense``."""
        default, layers = AUTO, {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                raise ValueError(f"empty item in format choice {text!r}")
            name, _, fmt = item.rpartition("=")
            _check_format(fmt.strip())
            if name:
                layers[name.strip()] = fmt.strip()
            else:
                default = fmt.strip()
        return cls(default, layers)

    def for_layer(self, name: str) -> str:
        return self.layers.get(name, self.default)


def _check_format(fmt: str) -> None:
    if fmt != AUTO and fmt not in FORMATS:
        raise ValueError(f"unknown storage format {fmt!r}: use one of {AUTO}, {', '.join(FORMATS)}")


@dataclass(frozen=True)
class Candidate:
    format: str
    params: dict
    flash_bytes: int
    instructions: int  # modelled


@dataclass(frozen=True, eq=False)
class LayerPlan:
    """One weight layer as it will be stored and computed."""

    index: int  # position of the node in the graph
    name: str
    kind: str  # the kernel family: "conv2d" | "depthwise_conv2d" | "fully_connected"
    stored: StoredWeights
    bias: np.ndarray  # int32: what the chosen kernel takes
    scratch_bytes: int  # RAM the kernel needs during the layer
    instructions: int  # modelled, for the chosen format
    requested: str  # what the user asked for this layer
    candidates: tuple[Candidate, ...]

    @property
    def format(self) -> str:
        return self.stored.format


@dataclass(frozen=True, eq=False)
class StoragePlan:
    optimize: str
    layers: tuple[LayerPlan, ...]
    version: int = STREAM_FORMAT_VERSION

    def by_index(self) -> dict[int, LayerPlan]:
        return {layer.index: layer for layer in self.layers}

    def formats(self) -> dict[str, str]:
        return {layer.name: layer.format for layer in self.layers}


def _huffman_variants(matrix: WeightMatrix):
    """Gap widths around the best fixed-width one, every position (0), and
    three lookup widths each; sparse entries also with a pair lookup."""
    best = choose_gap_bits(matrix.mask, matrix.index_bits)
    gaps = sorted({0} | {g for g in range(best - 1, best + 3) if 1 <= g <= MAX_GAP_SYMBOL_BITS})
    for gap_bits in gaps:
        for lut_bits in LUT_BITS_CANDIDATES:
            yield lambda g=gap_bits, k=lut_bits: store_huffman(matrix, g, k)
        if gap_bits:
            for pair_bits in PAIR_BITS_CANDIDATES:
                yield lambda g=gap_bits, p=pair_bits: store_huffman(matrix, g, PAIR_LUT_BITS, p)


def _variants(matrix: WeightMatrix, fmt: str, layout: str):
    """Makers of every variant of ``fmt`` for the layer (``layout``: the
    dense kernel's, DENSE_LAYOUTS)."""
    if fmt == "dense":
        yield lambda: store_dense(matrix, layout)
    elif fmt == "codebook":
        yield lambda: store_codebook(matrix)
    elif fmt == "sparse":
        yield lambda: store_sparse(matrix, 8)
        yield lambda: store_sparse(matrix, 16)
    elif fmt == "huffman":
        yield from _huffman_variants(matrix)


def _stored_variants(matrix: WeightMatrix, formats,
                     layout: str = "rows") -> list[StoredWeights]:
    stored = []
    for fmt in formats:
        for make in _variants(matrix, fmt, layout):
            try:
                stored.append(make())
            except FormatUnavailable:
                continue
    return stored


def _pick(scored: list[tuple[StoredWeights, int, int]], optimize: str):
    """(stored, bytes, instructions) with the best score; ties: fewer bytes,
    then the order of FORMATS (deterministic)."""
    least_bytes = min(b for _, b, _ in scored)
    least_instr = max(1, min(i for _, _, i in scored))

    def score(item):
        stored, nbytes, instr = item
        if optimize == "size":
            key = (nbytes, instr)
        elif optimize == "speed":
            key = (instr, nbytes)
        else:
            key = (nbytes / least_bytes + instr / least_instr, nbytes)
        return key + (FORMATS.index(stored.format),)

    return min(scored, key=score)


def plan_layer(qgraph: QGraph, index: int, requested: str, optimize: str,
               costs: dict) -> LayerPlan:
    node = qgraph.nodes[index]
    op = node.op
    kind = kernel_kind(qgraph, index)
    matrix = weight_matrix(op.weight, op.codebook)
    work = layer_work_of(qgraph, index)
    formats = FORMATS if requested == AUTO else (requested,)
    variants = _stored_variants(matrix, formats, DENSE_LAYOUT[kind])
    if not variants:
        raise FormatUnavailable(f"layer {node.name} cannot be stored as {requested}")
    scored = [(s, s.flash_bytes, instructions(s, work, costs)) for s in variants]
    stored, _, instr = _pick(scored, optimize)
    try:
        verify_stored(stored, op.weight, node.name)
    except StreamError as error:
        raise RuntimeError(f"edgegen wrote a stream that does not decode: {error}") from error
    is_conv = isinstance(op, QConv2D)
    return LayerPlan(
        index=index, name=node.name, kind=kind, stored=stored,
        # every kernel multiplies raw inputs: the bias has the zero point folded in
        bias=fold_zero_point(op.weight, op.bias, op.input_zero_point),
        scratch_bytes=_scratch_bytes(stored, op, kind) if is_conv else 0,
        instructions=instr, requested=requested,
        candidates=tuple(Candidate(s.format, dict(s.params), b, i) for s, b, i in scored),
    )


# The dense layout each kernel reads (encode.storage.DENSE_LAYOUTS).
DENSE_LAYOUT = {"conv2d": "rows", "depthwise_conv2d": "columns", "fully_connected": "row_blocks"}


def kernel_kind(qgraph: QGraph, index: int) -> str:
    """Which family of kernels computes weight layer ``index``: conv2d
    (any groups), depthwise_conv2d (groups = input channels: its own dense
    kernel; compressed, the conv2d kernels, which take groups) or
    fully_connected."""
    op = qgraph.nodes[index].op
    if isinstance(op, QConv2D) and op.depthwise:
        return "depthwise_conv2d"
    return op_kind(op)


def _scratch_bytes(stored: StoredWeights, op: QConv2D, kind: str) -> int:
    """RAM the convolution kernel needs during the layer: the dense kernel's
    im2col rows (one group's), or a compressed kernel's decoded filter (the
    dense depthwise kernel needs none)."""
    if stored.format == "dense" and kind == "depthwise_conv2d":
        return 0
    if stored.format == "dense":
        kernel_h, kernel_w, filter_channels = op.weight.shape[1:]  # one group's channels
        return dense_conv_scratch_bytes(kernel_h, kernel_w, filter_channels)
    return stored.scratch_bytes(is_conv=True)


def weight_layers(qgraph: QGraph) -> list[int]:
    return [i for i, n in enumerate(qgraph.nodes) if isinstance(n.op, (QConv2D, QFullyConnected))]


def plan_storage(qgraph: QGraph, request: FormatRequest = FormatRequest(),
                 optimize: str = "balanced", costs: dict | None = None) -> StoragePlan:
    """The storage of every weight layer of ``qgraph`` (ValueError for a
    request that names a layer the graph does not have or an unknown
    format or optimization goal)."""
    if optimize not in OPTIMIZE:
        raise ValueError(f"unknown optimization goal {optimize!r}: use one of {', '.join(OPTIMIZE)}")
    _check_format(request.default)
    indices = weight_layers(qgraph)
    names = [qgraph.nodes[i].name for i in indices]
    unknown = sorted(set(request.layers) - set(names))
    if unknown:
        raise ValueError(f"no weight layer named {unknown[0]!r}; the weight layers are: "
                         f"{', '.join(names)}")
    costs = load_costs() if costs is None else costs
    layers = tuple(plan_layer(qgraph, i, request.for_layer(qgraph.nodes[i].name), optimize, costs)
                   for i in indices)
    return StoragePlan(optimize, layers)
