"""The per-layer table of a deployed model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from edgegen.encode.storage_plan import StoragePlan
from edgegen.ir import QConv2D, QFullyConnected, QGraph, op_kind
from edgegen.plan.arena import MemoryPlan


@dataclass(frozen=True)
class LayerRow:
    index: int
    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int  # weights + biases
    const_bytes: int  # measured: weights, biases, multipliers, shifts
    output_bytes: int
    # "arena@<offset>", "output", "view", or for a convolution fused with its
    # pooling "band@<offset> (<r> of <h> rows)": only a band of its rows exists
    output_location: str
    format: str = ""  # storage format of the weights ("" for layers without)
    scratch_bytes: int = 0  # RAM the kernel needs during the layer (in the arena)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["output_shape"] = list(self.output_shape)
        return d


def layer_rows(qgraph: QGraph, plan: MemoryPlan, const_bytes: dict[str, int],
               storage: StoragePlan | None = None) -> list[LayerRow]:
    stored = {} if storage is None else storage.by_index()
    rows = []
    for i, node in enumerate(qgraph.nodes):
        op = node.op
        params = op.weight.size + op.bias.size if isinstance(op, (QConv2D, QFullyConnected)) else 0
        kind = op_kind(op)
        loc = plan.location(node.output)
        out = qgraph.tensor(node.output)
        where = "view" if kind == "reshape" else (
            f"arena@{loc.offset}" if loc.region == "arena" else loc.region)
        if loc.region == "band":
            where = f"band@{loc.offset} ({plan.fused_pair(i).band_rows} of {out.shape[0]} rows)"
        layer = stored.get(i)
        rows.append(LayerRow(i, node.name, kind, out.shape, int(params),
                             const_bytes.get(node.name, 0), out.size, where,
                             layer.format if layer else "", layer.scratch_bytes if layer else 0))
    return rows
