"""What a stored layer costs: flash bytes (exact) and instructions (modelled).

Bytes are those of the arrays ``storage`` writes plus the weights struct, on
a 32-bit target: exact, and checked against the compiled object's symbols
by the tests. Instructions are a linear model of each kernel's work (stored
entries, positions, nonzero taps times output pixels, outputs), with
coefficients measured under emulation on a Cortex-M4F at -O2 and kept in
``kernel_costs.json`` (``python bench/kernels.py --calibrate`` measures
them again). The model ranks formats; the figures that reports quote are
measured, never these.

A depthwise convolution stored dense runs its own kernel, priced apart
(``depthwise_conv2d``); stored compressed, it runs the compressed conv2d
kernels (which take groups) and is priced as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgegen.encode.storage import StoredWeights
from edgegen.plan.fusion import DEFAULT_ROWS_PER_BAND, ROWS_PER_BAND, fusable

COSTS_FILE = Path(__file__).with_name("kernel_costs.json")


@dataclass(frozen=True)
class LayerWork:
    """The shape of a layer's work, whatever its format."""

    kind: str  # "fully_connected" | "conv2d" | "depthwise_conv2d"
    rows: int  # output channels
    columns: int  # inputs per output channel (a group's, for grouped convolutions)
    pixels: int  # output pixels (1 for fully connected)
    # A convolution that may run fused with the pooling after it: its
    # pooled output rows (the kernel runs once per band of them); else 0.
    pooled_rows: int = 0

    def calls(self, fmt: str) -> int:
        """Kernel calls per inference: one, or one per band when fused."""
        if not self.pooled_rows:
            return 1
        return -(-self.pooled_rows // ROWS_PER_BAND.get(fmt, DEFAULT_ROWS_PER_BAND))

    @property
    def outputs(self) -> int:
        return self.rows * self.pixels


def layer_work_of(qgraph, index: int) -> LayerWork:
    """The work of the weight layer at node ``index`` of a QGraph."""
    node = qgraph.nodes[index]
    rows = node.op.weight.shape[0]
    columns = int(node.op.weight.size // rows)
    shape = qgraph.tensor(node.output).shape
    if len(node.op.weight.shape) == 4:
        pooled = qgraph.tensor(qgraph.nodes[index + 1].output).shape[0] if fusable(qgraph, index) else 0
        kind = "depthwise_conv2d" if node.op.depthwise else "conv2d"
        return LayerWork(kind, rows, columns, int(shape[0] * shape[1]), int(pooled))
    return LayerWork("fully_connected", rows, columns, 1)


def load_costs(path: Path = COSTS_FILE) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def work_units(stored: StoredWeights, work: LayerWork) -> dict[str, float]:
    """The layer's work, counted in the units the coefficients price: one
    number per coefficient name of ``kernel_costs.json``."""
    units = {"per_output": float(work.outputs)}
    params = stored.params
    if work.kind == "fully_connected":
        if stored.format in ("dense", "codebook"):
            units["per_position"] = float(stored.entries)
        elif params.get("pair_bits"):
            units["per_entry_paired"] = float(stored.entries)
            units["per_pair_miss"] = float(params["pair_misses"])
        else:
            units["per_entry"] = float(stored.entries)
    elif stored.format == "dense":
        units["per_mac"] = float(work.rows * work.columns * work.pixels)
    else:
        units["per_tap"] = float(params["nonzeros"] * work.pixels)
        # a compressed convolution decodes every filter on each call
        units["per_decoded"] = float(stored.entries * work.calls(stored.format))
    if params.get("long_codes"):
        units["per_long_code"] = float(params["long_codes"])
    return units


def priced_kind(work: LayerWork, fmt: str) -> str:
    """The kernel family whose prices apply: a compressed depthwise layer
    runs the compressed conv2d kernels."""
    if work.kind == "depthwise_conv2d" and fmt != "dense":
        return "conv2d"
    return work.kind


def instructions(stored: StoredWeights, work: LayerWork, costs: dict) -> int:
    """Modelled instructions of one inference of the layer."""
    prices = costs[priced_kind(work, stored.format)][stored.format]
    units = work_units(stored, work)
    return int(round(sum(prices.get(name, 0.0) * amount for name, amount in units.items())))
