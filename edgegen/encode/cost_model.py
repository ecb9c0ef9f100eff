"""What a stored layer costs: flash bytes (exact) and instructions (modelled).

Bytes are those of the arrays ``storage`` writes plus the weights struct, on
a 32-bit target: exact, and checked against the compiled object's symbols
by the tests. Instructions are a linear model of each kernel's work (stored
entries, positions, nonzero taps times output pixels, outputs), with
coefficients measured under emulation on a Cortex-M4F at -O2 and kept in
``kernel_costs.json`` (``python bench/kernels.py --calibrate`` measures
them again). The model ranks formats; the figures that reports quote are
measured, never these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgegen.encode.storage import StoredWeights

COSTS_FILE = Path(__file__).with_name("kernel_costs.json")


@dataclass(frozen=True)
class LayerWork:
    """The shape of a layer's work, whatever its format."""

    kind: str  # "fully_connected" | "conv2d"
    rows: int  # output channels
    columns: int  # inputs per output channel
    pixels: int  # output pixels (1 for fully connected)

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
        return LayerWork("conv2d", rows, columns, int(shape[0] * shape[1]))
    return LayerWork("fully_connected", rows, columns, 1)


def load_costs(path: Path = COSTS_FILE) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def instructions(stored: StoredWeights, work: LayerWork, costs: dict) -> int:
    """Modelled instructions of one inference of the layer."""
    c = costs[work.kind][stored.format]
    total = c["per_output"] * work.outputs
    total += c.get("per_long_code", 0.0) * stored.params.get("long_codes", 0)
    if stored.params.get("pair_bits"):
        # One lookup per entry, the code-by-code path for the misses.
        total += c.get("per_pair_miss", 0.0) * stored.params["pair_misses"]
    if work.kind == "fully_connected":
        unit = "per_position" if stored.format in ("dense", "codebook") else "per_entry"
        if stored.params.get("pair_bits"):
            unit = "per_entry_paired"
        total += c[unit] * stored.entries
    elif stored.format == "dense":
        total += c["per_mac"] * work.rows * work.columns * work.pixels
    else:
        nonzeros = int(stored.params.get("nonzeros", 0))
        total += c["per_tap"] * nonzeros * work.pixels + c["per_decoded"] * stored.entries
    return int(round(total))
