"""Storage of a quantized model, layer by layer, like Deep Compression's tables.

Everything is derived from the int8 weights that ship (the QGraph), not from
the float model: a weight is pruned when its int8 value is 0, and a layer's
codebook is the set of its distinct nonzero int8 values (slot 0 is the
zero/filler slot of ``edgegen.encode``). Each layer is encoded for real with
``edgegen.encode`` and every bit needed to decode it is counted:

* P (pruning): the fraction of weights kept;
* P+Q: fixed-width codebook indices + fixed-width relative column indices
  (fillers included) + row pointers;
* P+Q+H: both streams Huffman-coded, their tables included;
* in every column also the codebook (8 bits an entry), the int32 biases and
  the requantization constants (int32 multiplier + int8 shift per distinct
  channel scale).

The original size is 32-bit floats for every weight and bias, as the paper
counts it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from edgegen.encode import encode_layer, shannon_entropy_bits
from edgegen.encode.relative_index import encode_relative
from edgegen.ir import QConv2D, QFullyConnected, QGraph

FLOAT_BITS = 32
BIAS_BITS = 32
REQUANT_BITS = 32 + 8  # multiplier + shift
GAP_BITS_CANDIDATES = range(1, 9)


@dataclass(frozen=True)
class LayerStorage:
    name: str
    kind: str
    weights: int
    biases: int
    nonzeros: int
    entries_pq: int  # survivors + fillers in the P+Q layout
    codebook_entries: int  # distinct nonzero int8 values
    index_bits: int  # fixed width of a codebook index (zero slot included)
    gap_bits_pq: int
    gap_bits_pqh: int
    fillers: int
    weight_bits_pq: int  # codebook-index stream
    weight_bits_pqh: int
    index_bits_pq: int  # relative-index stream
    index_bits_pqh: int
    row_pointer_bits_pq: int
    row_pointer_bits: int  # of the P+Q+H layout
    overhead_bits: int  # codebook + biases + requantization constants
    float_bits: int  # weights and biases as float32
    dense_int8_bits: int  # int8 weights + the same overhead, no codebook
    entropy_weight_bits: float  # Shannon limit of the codebook-index stream
    entropy_index_bits: float  # ... of the relative-index stream (at gap_bits_pqh)

    @property
    def density(self) -> float:
        return self.nonzeros / self.weights if self.weights else 0.0

    @property
    def total_bits_p(self) -> int:
        """Pruning alone: the sparse layout with float32 values and float32 biases."""
        return (FLOAT_BITS * (self.entries_pq + self.biases) + self.index_bits_pq
                + self.row_pointer_bits_pq)

    @property
    def total_bits_pq(self) -> int:
        return self.weight_bits_pq + self.index_bits_pq + self.row_pointer_bits_pq + self.overhead_bits

    @property
    def total_bits_pqh(self) -> int:
        return self.weight_bits_pqh + self.index_bits_pqh + self.row_pointer_bits + self.overhead_bits

    def per_weight(self, bits: int) -> float:
        return bits / self.nonzeros if self.nonzeros else float("nan")

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(density=self.density, total_bits_pq=self.total_bits_pq,
                 total_bits_pqh=self.total_bits_pqh,
                 rate_pq=self.float_bits / self.total_bits_pq,
                 rate_pqh=self.float_bits / self.total_bits_pqh)
        return d


def _codebook_matrix(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(mask, indices, codebook, index_bits) of an int8 weight tensor, as a
    matrix of output channels x flattened inputs (the deployed order)."""
    q = weight.reshape(weight.shape[0], -1).astype(np.int16)
    mask = q != 0
    codebook = np.unique(q[mask])
    indices = np.zeros(q.shape, dtype=np.int64)
    indices[mask] = np.searchsorted(codebook, q[mask]) + 1  # slot 0: zero / filler
    index_bits = max(1, math.ceil(math.log2(len(codebook) + 1)))
    return mask, indices, codebook, index_bits


def layer_storage(name: str, op) -> LayerStorage:
    mask, indices, codebook, index_bits = _codebook_matrix(op.weight)
    by_gap = [encode_layer(mask, indices, index_bits, gap_bits=g).sizes for g in GAP_BITS_CANDIDATES]
    best_pq = min(by_gap, key=lambda s: (s.total_bits_pq, s.gap_bits))
    best_pqh = min(by_gap, key=lambda s: (s.total_bits_pqh, s.gap_bits))
    streams = encode_relative(mask, indices, best_pqh.gap_bits)
    channels = op.weight.shape[0]
    distinct_scales = len(np.unique(op.weight_scale))
    overhead = 8 * len(codebook) + BIAS_BITS * channels + REQUANT_BITS * distinct_scales
    dense = 8 * op.weight.size + BIAS_BITS * channels + REQUANT_BITS * channels
    return LayerStorage(
        name=name,
        kind="conv" if isinstance(op, QConv2D) else "fc",
        weights=int(op.weight.size),
        biases=int(op.bias.size),
        nonzeros=int(mask.sum()),
        entries_pq=best_pq.entries,
        codebook_entries=int(len(codebook)),
        index_bits=index_bits,
        gap_bits_pq=best_pq.gap_bits,
        gap_bits_pqh=best_pqh.gap_bits,
        fillers=best_pqh.fillers,
        weight_bits_pq=best_pq.weight_bits_pq,
        weight_bits_pqh=best_pqh.weight_bits_pqh,
        index_bits_pq=best_pq.index_bits_pq,
        index_bits_pqh=best_pqh.index_bits_pqh,
        row_pointer_bits_pq=best_pq.row_pointer_bits,
        row_pointer_bits=best_pqh.row_pointer_bits,
        overhead_bits=overhead,
        float_bits=FLOAT_BITS * (op.weight.size + op.bias.size),
        dense_int8_bits=dense,
        entropy_weight_bits=shannon_entropy_bits(streams.indices),
        entropy_index_bits=shannon_entropy_bits(streams.gaps),
    )


@dataclass(frozen=True)
class StorageTable:
    layers: tuple[LayerStorage, ...]

    def total(self, attr: str) -> float:
        return sum(getattr(layer, attr) for layer in self.layers)

    @property
    def float_bytes(self) -> float:
        return self.total("float_bits") / 8

    @property
    def bytes_p(self) -> float:
        return self.total("total_bits_p") / 8

    @property
    def bytes_pq(self) -> float:
        return self.total("total_bits_pq") / 8

    @property
    def bytes_pqh(self) -> float:
        return self.total("total_bits_pqh") / 8

    @property
    def bytes_dense_int8(self) -> float:
        return self.total("dense_int8_bits") / 8

    @property
    def entropy_bytes(self) -> float:
        """Shannon limit of the two coded streams, plus everything not coded."""
        coded = self.total("entropy_weight_bits") + self.total("entropy_index_bits")
        rest = self.total("row_pointer_bits") + self.total("overhead_bits")
        return (coded + rest) / 8

    @property
    def huffman_stream_bytes(self) -> float:
        return (self.total("weight_bits_pqh") + self.total("index_bits_pqh")) / 8

    @property
    def entropy_stream_bytes(self) -> float:
        return (self.total("entropy_weight_bits") + self.total("entropy_index_bits")) / 8

    def as_dict(self) -> dict:
        return {
            "layers": [layer.as_dict() for layer in self.layers],
            "float_bytes": self.float_bytes,
            "dense_int8_bytes": self.bytes_dense_int8,
            "p_bytes": self.bytes_p,
            "pq_bytes": self.bytes_pq,
            "pqh_bytes": self.bytes_pqh,
            "entropy_bytes": self.entropy_bytes,
            "huffman_stream_bytes": self.huffman_stream_bytes,
            "entropy_stream_bytes": self.entropy_stream_bytes,
            "weights": self.total("weights"),
            "nonzeros": self.total("nonzeros"),
            "rate_pq": self.float_bytes / self.bytes_pq,
            "rate_pqh": self.float_bytes / self.bytes_pqh,
        }


def storage_table(qgraph: QGraph) -> StorageTable:
    layers = tuple(
        layer_storage(node.name, node.op)
        for node in qgraph.nodes
        if isinstance(node.op, (QConv2D, QFullyConnected))
    )
    return StorageTable(layers)


def _bits(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.1f}"


def markdown_table(table: StorageTable) -> str:
    """The paper's Table 2/3 layout, one row a layer, then the total."""
    lines = [
        "| layer | #weights | weights% (P) | weight bits (P+Q) | weight bits (P+Q+H) | "
        "index bits (P+Q) | index bits (P+Q+H) | compress rate (P+Q) | compress rate (P+Q+H) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in table.layers:
        lines.append(
            f"| {s.name} | {s.weights:,} | {100 * s.density:.1f} % | "
            f"{_bits(s.per_weight(s.weight_bits_pq))} | {_bits(s.per_weight(s.weight_bits_pqh))} | "
            f"{_bits(s.per_weight(s.index_bits_pq))} | {_bits(s.per_weight(s.index_bits_pqh))} | "
            f"{100 * s.total_bits_pq / s.float_bits:.2f} % | {100 * s.total_bits_pqh / s.float_bits:.2f} % |"
        )
    n = table.total("nonzeros")
    w = table.total("weights")
    lines.append(
        f"| **total** | {w:,} | {100 * n / w:.1f} % | "
        f"{_bits(table.total('weight_bits_pq') / n if n else math.nan)} | "
        f"{_bits(table.total('weight_bits_pqh') / n if n else math.nan)} | "
        f"{_bits(table.total('index_bits_pq') / n if n else math.nan)} | "
        f"{_bits(table.total('index_bits_pqh') / n if n else math.nan)} | "
        f"{table.float_bytes / table.bytes_pq:.1f}x | {table.float_bytes / table.bytes_pqh:.1f}x |"
    )
    lines += [
        "",
        f"Sizes: float32 {table.float_bytes / 1024:.1f} KB; dense int8 {table.bytes_dense_int8 / 1024:.1f} KB; "
        f"P+Q {table.bytes_pq / 1024:.2f} KB; P+Q+H {table.bytes_pqh / 1024:.2f} KB "
        f"(codebooks, row pointers, fillers, Huffman tables, biases and requantization constants "
        f"included). Huffman-coded streams {table.huffman_stream_bytes:,.0f} B against a Shannon "
        f"limit of {table.entropy_stream_bytes:,.0f} B "
        f"({100 * (table.huffman_stream_bytes / table.entropy_stream_bytes - 1):.1f} % above)."
        if table.entropy_stream_bytes else "",
    ]
    return "\n".join(lines)
