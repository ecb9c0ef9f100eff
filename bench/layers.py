"""Benchmark: edgegen's kernels on CMSIS-NN's standard single-layer shapes.

Each shape of the "CMSIS-NN per layer" table of ../shared/emulation.md that
edgegen supports is built as a one-layer PyTorch model (the add: the input
plus a depthwise 1x1 of it, the add measured; random weights,
seed 0), quantized on random float calibration inputs (seeded; these are not
images, so not the data-set quantize job), built for each emulated board and
run under QEMU on random int8 vectors: every output byte is compared with
the golden model, and the layer's executed instructions per call (the
harness's per-layer count, mean over the vectors) are set beside CMSIS-NN's,
measured the same way at -O2 (``cmsis_nn_layers.json``). A shape edgegen
cannot compute yet would be listed as "not yet".

    .venv/bin/python bench/layers.py --json bench/results/layers.json
    .venv/bin/python bench/layers.py --boards qemu-mps2-an386 --opt Os

Each board builds the kernels its board file names: the DSP kernels on the
Cortex-M4F (qemu-mps2-an386, beside CMSIS-NN's M4 DSP column), the portable
C (with eg_dot.h's Thumb-2 assembly tile) on the Cortex-M3 (qemu-mps2-an385,
beside the M3 column).

JSON: {"_meta": {...}, "layers": {"<shape>": {"layer", "macs", "elements",
"supported", "boards": {"<board>": {"instructions", "per_unit",
"cmsis_nn", "cmsis_nn_per_unit", "ratio", "bit_exact", "kernels", ...}}}}}
with "per_unit" instructions per MAC (per input element for pools and the add);
unsupported shapes have "supported": false and null edgegen fields.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from targets import _number, _ratio  # noqa: E402

from edgegen.errors import UserError  # noqa: E402
from edgegen.firmware.boards import OPT_LEVELS, load_board  # noqa: E402
from edgegen.firmware.qemu import layer_multiply_accumulates  # noqa: E402
from edgegen.firmware.vectors import random_vectors  # noqa: E402
from edgegen.frontend.torch_import import import_model  # noqa: E402
from edgegen.ir import QGraph  # noqa: E402
from edgegen.jobs.board_verify import verify_on_board  # noqa: E402
from edgegen.quantize.calibrate import CalibrationSpec  # noqa: E402
from edgegen.quantize.quantize import quantize  # noqa: E402
from edgegen.quantize.validate import validate_qgraph  # noqa: E402
from edgegen.reference.float_model import nchw_to_nhwc  # noqa: E402

ANCHORS_FILE = Path(__file__).resolve().with_name("cmsis_nn_layers.json")
BOARDS = ("qemu-mps2-an386", "qemu-mps2-an385")
LAYER = "layer"  # the measured layer's name in every one-layer model
SEED = 0
CALIB_SAMPLES = 64
VECTORS = 4


@dataclass(frozen=True)
class Shape:
    """One row of the table: the layer (None: edgegen cannot compute it yet),
    its input, NCHW or (1, F), and the measured node's name in the quantized
    graph (the model's module is named LAYER; a layer written in a module's
    forward, as an add, takes the name the importer gives it)."""

    make: Callable[[], nn.Module] | None
    input_shape: tuple[int, ...] | None
    why_not: str = ""
    measured: str = LAYER

    @property
    def supported(self) -> bool:
        return self.make is not None


class TwoTensorAdd(nn.Module):
    """CMSIS-NN's add of two 16x16x32 tensors in a one-input model: the input
    plus a depthwise 1x1 convolution of it, so that the two addends have
    quantizations of their own (the add rescales both)."""

    def __init__(self):
        super().__init__()
        self.branch = nn.Conv2d(32, 32, 1, groups=32)

    def forward(self, x):
        return x + self.branch(x)


# In the order of the CMSIS-NN table; keys are those of cmsis_nn_layers.json.
SHAPES: dict[str, Shape] = {
    "depthwise_s1": Shape(lambda: nn.Conv2d(32, 32, 3, stride=1, padding=1, groups=32), (1, 32, 16, 16)),
    "depthwise_s2": Shape(lambda: nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32), (1, 32, 16, 16)),
    "pointwise": Shape(lambda: nn.Conv2d(32, 64, 1), (1, 32, 16, 16)),
    "conv3x3": Shape(lambda: nn.Conv2d(16, 32, 3, padding=1), (1, 16, 16, 16)),
    "grouped_conv3x3": Shape(lambda: nn.Conv2d(32, 32, 3, padding=1, groups=4), (1, 32, 16, 16)),
    "add": Shape(TwoTensorAdd, (1, 32, 16, 16), measured="add"),
    "global_avgpool": Shape(lambda: nn.AdaptiveAvgPool2d(1), (1, 64, 8, 8)),
    "maxpool": Shape(lambda: nn.MaxPool2d(2, stride=2), (1, 32, 16, 16)),
    "fully_connected": Shape(lambda: nn.Linear(256, 64), (1, 256)),
}


def load_anchors(path: Path = ANCHORS_FILE) -> dict:
    """CMSIS-NN's per-layer table: {"boards": {board: {"core", "column"}},
    "layers": {shape: {"layer", "function", "macs", "elements",
    "instructions": {board: count}}}, ...}."""
    return json.loads(path.read_text())


def build_model(key: str) -> tuple[nn.Module, torch.Tensor]:
    """The one-layer model of shape ``key`` (random weights, seed 0) and its
    example input."""
    shape = SHAPES[key]
    if not shape.supported:
        raise ValueError(f"{key}: edgegen cannot compute it yet ({shape.why_not})")
    torch.manual_seed(SEED)
    model = nn.Sequential(OrderedDict([(LAYER, shape.make())])).eval()
    return model, torch.zeros(shape.input_shape)


def calibration_samples(input_shape: tuple[int, ...], count: int = CALIB_SAMPLES,
                        seed: int = SEED) -> np.ndarray:
    """Random float inputs (standard normal, seeded), NHWC as the float graph takes them."""
    samples = np.random.default_rng(seed).standard_normal((count,) + tuple(input_shape[1:]))
    samples = samples.astype(np.float32)
    return nchw_to_nhwc(samples) if samples.ndim == 4 else samples


def quantize_layer(key: str, calib_samples: int = CALIB_SAMPLES) -> QGraph:
    """Import and quantize the one-layer model of ``key`` on random calibration inputs."""
    model, example = build_model(key)
    graph = import_model(model, example, key)
    qgraph = quantize(graph, calibration_samples(tuple(example.shape), calib_samples),
                      CalibrationSpec())
    qgraph.metadata.update({"calibration": f"{calib_samples} standard normal inputs, seed {SEED}"})
    validate_qgraph(qgraph)
    return qgraph


def work_units(qgraph: QGraph, measured: str = LAYER) -> tuple[int | None, int | None]:
    """(MACs, elements) of the measured layer, as the CMSIS-NN table counts
    them: nominal MACs for convolutions and fully connected layers (padded
    taps included), input elements for pools and the add (MACs None)."""
    macs = layer_multiply_accumulates(qgraph)[measured]
    if macs:
        return macs, None
    node = next(node for node in qgraph.nodes if node.name == measured)
    return None, qgraph.tensor(node.inputs[0]).size


def board_entry(result, units: int | None, anchor: int | None, seconds: float,
                measured: str = LAYER) -> dict:
    """One (shape, board) result from a BoardVerifyResult: the measured
    layer's instructions per call, per MAC / element, beside CMSIS-NN's."""
    per_layer = dict(result.instructions.per_layer)
    count = per_layer[measured]
    return {
        "instructions": count,
        "per_unit": round(count / units, 3) if units else None,
        "cmsis_nn": anchor,
        "cmsis_nn_per_unit": round(anchor / units, 3) if units and anchor else None,
        "ratio": round(count / anchor, 3) if anchor else None,
        "bit_exact": result.bit_exact,
        "kernels": result.kernels,
        "opt": result.instructions.opt,
        "vectors": result.vectors,
        "inference_instructions": result.instructions.total,  # worst vector, call included
        "other_layers": {name: n for name, n in per_layer.items() if name != measured},
        "flash_bytes": result.flash_bytes,
        "ram_bytes": result.ram_bytes,
        "seconds": round(seconds, 2),
    }


def not_yet_entry(anchor: int | None) -> dict:
    return {"instructions": None, "per_unit": None, "cmsis_nn": anchor, "cmsis_nn_per_unit": None,
            "ratio": None, "bit_exact": None, "kernels": None}


def shape_row(key: str, anchors: dict) -> dict:
    """A shape's row before any board: its description and work units (from
    the anchors for shapes edgegen cannot build)."""
    info = anchors["layers"][key]
    return {"layer": info["layer"], "cmsis_nn_function": info["function"],
            "macs": info["macs"], "elements": info["elements"],
            "supported": SHAPES[key].supported, "boards": {}}


def run(keys, boards, opt: str, vectors_count: int, anchors: dict, workdir: Path, log) -> dict:
    """{shape: row} for ``keys`` on ``boards`` at ``opt`` (O2, Os, O3)."""
    results = {}
    for key in keys:
        row = results[key] = shape_row(key, anchors)
        counts = anchors["layers"][key]["instructions"]
        if not SHAPES[key].supported:
            row["boards"] = {board.name: not_yet_entry(counts.get(board.name)) for board in boards}
            row["note"] = SHAPES[key].why_not
            log(f"{key}: not yet ({SHAPES[key].why_not})")
            continue
        qgraph = quantize_layer(key)
        macs, elements = work_units(qgraph, SHAPES[key].measured)
        if (macs, elements) != (row["macs"], row["elements"]):
            raise RuntimeError(f"{key}: the model has {macs} MACs / {elements} elements, the "
                               f"CMSIS-NN table {row['macs']} / {row['elements']}")
        vectors = random_vectors(qgraph, vectors_count, SEED)
        for board in boards:
            started = time.perf_counter()
            result = verify_on_board(qgraph, board, vectors, workdir / key, opt=f"-{opt}")
            entry = board_entry(result, macs or elements, counts.get(board.name),
                                time.perf_counter() - started, SHAPES[key].measured)
            row["boards"][board.name] = entry
            log(f"{key} on {board.name} -{opt} ({entry['kernels']}): {entry['instructions']:,} "
                f"instructions, bit-exact {entry['bit_exact']}, {entry['seconds']:.1f} s")
    return results


def _per_unit(count, row: dict, per: str) -> str:
    """Instructions per MAC (per element for pools), from the unrounded count."""
    return "-" if count is None else f"{count / (row['macs'] or row['elements']):.2f}{per}"


def _exact(entry: dict, supported: bool) -> str:
    if not supported:
        return "not yet"
    return "-" if entry["bit_exact"] is None else "yes" if entry["bit_exact"] else "NO"


def comparison_table(results: dict, anchors: dict, board: str, opt: str) -> str:
    """Markdown: per shape, edgegen's instructions per call on ``board`` at
    ``opt`` and per MAC (or per element), CMSIS-NN's at -O2, their ratio and
    bit-exactness."""
    info = anchors["boards"].get(board)
    cmsis = f"CMSIS-NN {info['column']} -O2" if info else "CMSIS-NN -O2"
    head = ["layer", "MACs (elements)", f"edgegen -{opt}", "instr/MAC", cmsis, "instr/MAC",
            "ratio", "bit-exact"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "--:|" * 6 + "---|"]
    for row in results.values():
        entry = row["boards"].get(board)
        if entry is None:
            continue
        units = _number(row["macs"]) if row["macs"] else f"({_number(row['elements'])})"
        per = "" if row["macs"] else " / el."
        edgegen = _number(entry["instructions"]) if row["supported"] else "not yet"
        cells = [row["layer"], units, edgegen, _per_unit(entry["instructions"], row, per),
                 _number(entry["cmsis_nn"]), _per_unit(entry["cmsis_nn"], row, per),
                 _ratio(entry["instructions"], entry["cmsis_nn"]), _exact(entry, row["supported"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def source_state() -> dict:
    """The checkout measured: HEAD and whether the sources the firmware is
    generated from (edgegen/, runtime_c/, templates/) had uncommitted changes."""
    root = Path(__file__).resolve().parents[1]

    def git(*args) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "edgegen", "runtime_c", "templates")
    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted_source_changes": None if changed is None else bool(changed)}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    p.add_argument("--boards", nargs="+", default=list(BOARDS),
                   help=f"emulated boards (default: {' '.join(BOARDS)})")
    p.add_argument("--opt", choices=OPT_LEVELS, default="O2", help="optimisation level (default O2)")
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES),
                   help="the table's rows to run (default: all)")
    p.add_argument("--vectors", type=int, default=VECTORS, help="random int8 inputs per board")
    p.add_argument("--workdir", type=Path, default=None, help="keep the firmware folders here")
    return p.parse_args(argv)


def load_boards(names) -> list:
    """The boards, checked to be emulated before any work."""
    boards = [load_board(name) for name in dict.fromkeys(names)]
    real = [board.name for board in boards if not board.emulated]
    if real:
        raise UserError(f"{', '.join(real)}: not emulated, no instructions to count; give "
                        "QEMU boards (qemu-*) with --boards")
    return boards


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.vectors < 1:
        raise UserError("--vectors must be at least 1")
    boards = load_boards(args.boards)
    anchors = load_anchors()
    state = source_state()  # before the run: what the firmware is generated from
    wall = time.perf_counter()
    log = lambda line: print(line, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="edgegen-bench-layers-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = run(args.shapes, boards, args.opt, args.vectors, anchors, workdir, log)
    seconds = time.perf_counter() - wall
    for board in boards:
        info = anchors["boards"].get(board.name)
        beside = f"CMSIS-NN's {info['column']} column ({info['core']})" if info else "no CMSIS-NN column"
        print(f"\n### {board.name} ({board.cpu}, {board.kernels} kernels) -{args.opt}, beside {beside}\n")
        print(comparison_table(results, anchors, board.name, args.opt))
    print(f"\nedgegen: the layer's executed instructions per call under QEMU (TCG plugin), mean of "
          f"{args.vectors} random int8 vectors; ratio: edgegen / CMSIS-NN (source: "
          f"{anchors['source']}, bench/cmsis_nn_layers.json); pools and the add per input element. "
          f"Wall time {seconds:.0f} s.")
    if args.json is not None:
        payload = {"_meta": {"opt": args.opt, "vectors": args.vectors, "seed": SEED,
                             "calibration": f"{CALIB_SAMPLES} standard normal float inputs, seed {SEED}",
                             "boards": {b.name: {"cpu": b.cpu, "kernels": b.kernels} for b in boards},
                             "cmsis_nn": anchors["source"], "seconds": round(seconds, 1),
                             **state},
                   "layers": results}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    failed = [f"{key}/{board}" for key, row in results.items()
              for board, entry in row["boards"].items() if entry["bit_exact"] is False]
    if failed:
        print(f"NOT bit-exact: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
