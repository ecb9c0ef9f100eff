"""Which convolutions run fused with the pooling that follows them.

A fused pair runs as a loop over bands of pooled rows (runtime_c/conv_pool.c):
for each band, the convolution computes only the rows of its output that
the band's pooling windows cover, into a band buffer, and the pooling
writes the band's pooled rows. The convolution's whole output never
exists: the arena holds one band of it, during the pair only.

A convolution and a pooling (max or average) are fused when

- the pooling is the next node and reads the convolution's output;
- nothing else reads that output, and it is not the model's output;
- the pooling windows do not overlap in rows (stride_h >= kernel_h), so
  that no convolution row would be computed twice;
- fusing makes the activation arena smaller (plan_fusion).

The golden model never fuses: fused C must equal the unfused sequence
byte for byte, which tests/plan and tests/emit check.
"""

from __future__ import annotations

from edgegen.ir import QAvgPool, QConv2D, QGraph, QMaxPool
from edgegen.plan.arena import FusedPair, plan_memory

# Pooled rows per band, by the convolution's storage format. One row keeps
# the band smallest, and costs a dense convolution nothing measurable
# (LeNet-5 on the Cortex-M4F at -O2: +0.3 % instructions). A compressed
# convolution decodes every filter once per call: that costs about 8
# (sparse) to 14 (huffman) output pixels' worth of work per call, so its
# bands hold two pooled rows (sparse LeNet-5 +21 % instructions with one
# row, +8 % with two, +1.4 % with four at 1.7 KB more RAM; README).
ROWS_PER_BAND = {"dense": 1, "codebook": 2, "sparse": 2, "huffman": 2}
DEFAULT_ROWS_PER_BAND = 1


def row_span(first: int, last: int, kernel: int, stride: int, pad: int,
             length: int) -> tuple[int, int]:
    """Input rows [begin, end) that output rows [first, last) of a window
    sliding along an axis of ``length`` rows read (padding excluded): the
    slicing of eg_conv_pool_slice."""
    return max(0, first * stride - pad), min(length, (last - 1) * stride - pad + kernel)


def band_rows(pool: QMaxPool | QAvgPool, conv_out_h: int, pooled_rows: int,
              rows_per_band: int) -> list[tuple[int, int]]:
    """The convolution output rows [begin, end) of each band."""
    return [row_span(r, min(r + rows_per_band, pooled_rows), pool.kernel[0], pool.stride[0],
                     pool.padding[0], conv_out_h)
            for r in range(0, pooled_rows, rows_per_band)]


def _consumers(qgraph: QGraph) -> dict[str, int]:
    count: dict[str, int] = {}
    for node in qgraph.nodes:
        for name in node.inputs:
            count[name] = count.get(name, 0) + 1
    return count


def fusable(qgraph: QGraph, index: int) -> bool:
    """Whether node ``index`` is a convolution that may run fused with the
    pooling after it (the structural rules of the module docstring)."""
    nodes = qgraph.nodes
    if index + 1 >= len(nodes) or not isinstance(nodes[index].op, QConv2D):
        return False
    conv, pool = nodes[index], nodes[index + 1]
    if not isinstance(pool.op, (QMaxPool, QAvgPool)) or pool.inputs != (conv.output,):
        return False
    if conv.output == qgraph.output or _consumers(qgraph).get(conv.output, 0) != 1:
        return False
    return pool.op.stride[0] >= pool.op.kernel[0]


def rows_per_band(formats: dict[str, str]) -> dict[str, int]:
    """Pooled rows per band of each convolution, from its storage format
    (layer name -> format, as StoragePlan.formats gives)."""
    return {name: ROWS_PER_BAND.get(fmt, DEFAULT_ROWS_PER_BAND) for name, fmt in formats.items()}


def candidate_pairs(qgraph: QGraph, rows_per_band: dict[str, int] | None = None
                    ) -> tuple[FusedPair, ...]:
    """Every pair that may run fused (``fusable``). ``rows_per_band``: pooled
    rows per band by convolution name (default DEFAULT_ROWS_PER_BAND; at
    most the pooled rows: a single band is the whole convolution output)."""
    rows_per_band = rows_per_band or {}
    pairs = []
    for index, node in enumerate(qgraph.nodes):
        if not fusable(qgraph, index):
            continue
        conv_out = qgraph.tensor(node.output).shape
        pooled = qgraph.tensor(qgraph.nodes[index + 1].output).shape[0]
        rows = max(1, min(int(rows_per_band.get(node.name, DEFAULT_ROWS_PER_BAND)), pooled))
        most = max(end - begin for begin, end in
                   band_rows(qgraph.nodes[index + 1].op, conv_out[0], pooled, rows))
        pairs.append(FusedPair(index, index + 1, pooled, rows, most,
                               most * conv_out[1] * conv_out[2]))
    return tuple(pairs)


def plan_fusion(qgraph: QGraph, formats: dict[str, str] | None = None,
                scratch: dict[str, int] | None = None) -> tuple[FusedPair, ...]:
    """The pairs that run fused: the candidates whose fusion makes the arena
    smaller. A fused pair keeps the convolution's input alive until the
    pooling and costs some instructions (a compressed convolution decodes
    its filters once per band), so a pair whose fusion does not lower the
    peak (a single band, a pooling output as large as its input, or a peak
    elsewhere in the model) runs unfused. Starting from every candidate
    fused, each in execution order is unfused when the arena is no larger
    without it; none is fused unless that beats no fusion. ``formats`` (layer -> storage format) sets the rows per
    band, ``scratch`` (layer -> bytes) is planned as plan_memory plans it."""
    kept = list(candidate_pairs(qgraph, rows_per_band(formats or {})))

    def arena(pairs) -> int:
        return plan_memory(qgraph, scratch, tuple(pairs)).arena_size

    best = arena(kept)
    for pair in list(kept):
        without = [p for p in kept if p is not pair]
        size = arena(without)
        if size <= best:
            kept, best = without, size
    return tuple(kept) if kept and best < arena(()) else ()
