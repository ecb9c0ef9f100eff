"""Benchmark: the zoo's dense int8 models on every board, beside CMSIS-NN.

For each model, board and optimisation level: flash and RAM measured from
the linked image; on emulated boards also the executed instructions per
inference (QEMU plugin, worst case over the vectors), in total and per layer
(the harness's marker after each layer: the counts `edgegen deploy --board`
reports), and byte-exact verification against the golden model on test-set
images and random int8 inputs. Each board builds the kernels its board file
names (``kernels = "dsp"`` or ``"portable"``) unless ``--kernels`` says
otherwise. Weights are dense int8 unless ``--format`` says otherwise: the
anchors are dense int8 (a dense LeNet does not fit the micro:bit). The
table sets the counts beside CMSIS-NN's, measured under the same QEMU
counting at -O2 (``cmsis_nn_anchors.json``, from ../shared/emulation.md).

    .venv/bin/python bench/targets.py --json bench/results/targets.json
    .venv/bin/python bench/targets.py --boards qemu-mps2-an386 --opt O2 --test-vectors 50

JSON: {"<model>": {"<board>": {"<opt>": {"instructions", "flash_bytes",
"ram_bytes", "bit_exact", "layers": {"<layer>": instructions}, "kernels",
"formats", "fits", "vectors", "seconds", ...}}}} with <opt> "O2", "Os" or
"O3". Real boards are built and size-checked only: "instructions",
"bit_exact" and "layers" are null and "vectors" 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from edgegen.data.datasets import load_dataset
from edgegen.errors import UserError
from edgegen.firmware.boards import KERNEL_PATHS, OPT_LEVELS, kernels_for, known_boards, load_board
from edgegen.firmware.qemu import layer_multiply_accumulates
from edgegen.firmware.vectors import verification_vectors
from edgegen.jobs.board_verify import verify_firmware
from edgegen.jobs.firmware_build import build_firmware, measure_footprint
from edgegen.jobs.lower import StorageChoice
from edgegen.jobs.quantize import QuantizeOptions, int8_inputs, quantize_model
from edgegen.zoo.checkpoints import trained_zoo_model
from edgegen.zoo.models import ZOO

MODELS = ("lenet300", "lenet5")
DEFAULT_OPTS = "O2,Os"
SELFTEST_IMAGES = 4
ANCHORS_FILE = Path(__file__).resolve().with_name("cmsis_nn_anchors.json")


def opt_levels(text: str) -> tuple[str, ...]:
    """--opt: comma-separated levels (O2,Os), each once, in the order given."""
    levels = tuple(dict.fromkeys(level.strip() for level in text.split(",")))
    bad = [level for level in levels if level not in OPT_LEVELS]
    if bad or not levels:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give levels among {', '.join(OPT_LEVELS)} separated by commas (e.g. O2,Os)")
    return levels


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=sorted(ZOO))
    p.add_argument("--boards", nargs="+", default=None, help="default: every board in boards/")
    p.add_argument("--opt", type=opt_levels, default=opt_levels(DEFAULT_OPTS),
                   help=f"optimisation levels, comma-separated (default {DEFAULT_OPTS})")
    p.add_argument("--kernels", choices=KERNEL_PATHS, default=None,
                   help="the runtime's kernels on every board (default: each board's kernels "
                        "field; dsp only for boards whose field is dsp)")
    p.add_argument("--format", default="dense",
                   help="how weights are stored, as edgegen's --format (default dense, as the "
                        "CMSIS-NN anchors)")
    p.add_argument("--test-vectors", type=int, default=1000, help="test-set images per emulated board")
    p.add_argument("--random-vectors", type=int, default=100, help="random int8 inputs per emulated board")
    p.add_argument("--random-weights", action="store_true",
                   help="random weights (seed 0) instead of the cached trained checkpoints "
                        "(trained first when missing)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the firmware folders here")
    return p.parse_args(argv)


def load_model(name: str, dataset, random_weights: bool):
    if random_weights:
        torch.manual_seed(0)
        return ZOO[name]().eval(), "random (seed 0)"
    model, meta = trained_zoo_model(name, dataset)
    return model, f"trained ({meta.get('test_accuracy', float('nan')):.4f} float test accuracy)"


def load_anchors(path: Path = ANCHORS_FILE) -> dict:
    """CMSIS-NN's instructions per inference: {board: {"core", model: count}}."""
    return json.loads(path.read_text())["boards"]


def bench_row(qgraph, board, dataset, vectors, workdir: Path, opt: str, kernels: str,
              storage: StorageChoice) -> dict:
    """One (model, board, level): build, and verify and count when emulated."""
    start = time.perf_counter()
    flag = f"-{opt}"
    selftest = int8_inputs(qgraph, dataset, dataset.test_inputs[:SELFTEST_IMAGES])
    folder = workdir / f"{qgraph.name}-{board.name}-{opt}"
    try:
        build = build_firmware(qgraph, board, folder, vectors=selftest, opt=flag, kernels=kernels,
                               force=True, storage=storage,
                               vectors_provenance=f"the first {SELFTEST_IMAGES} test-set images")
    except UserError as error:
        if "does not fit" not in str(error):
            raise
        report = measure_footprint(qgraph, board, opt=flag, kernels=kernels, storage=storage)
        return row(report.footprint.flash_bytes, report.footprint.ram_bytes, kernels, start,
                   fits=False, note="; ".join(report.problems))
    formats = dict(build.formats)
    memory = {"arena_bytes": build.footprint.arena_bytes, "io_bytes": build.footprint.io_bytes,
              "stack_bytes": build.footprint.stack.bytes}
    if not board.emulated:
        return row(build.flash_bytes, build.ram_bytes, kernels, start, formats=formats, **memory)
    result = verify_firmware(build, qgraph, vectors, workdir / f"run-{qgraph.name}-{board.name}-{opt}")
    counts = result.instructions
    return row(build.flash_bytes, build.ram_bytes, kernels, start, formats=formats, **memory,
               instructions=counts.total,
               layers=dict(counts.per_layer), bit_exact=result.bit_exact, vectors=result.vectors,
               instructions_min=counts.minimum, selftest=result.selftest,
               mismatch=None if result.comparison.bit_exact else result.comparison.line(board.name))


def row(flash: int, ram: int, kernels: str, start: float, *, fits: bool = True, instructions=None,
        layers=None, bit_exact=None, vectors: int = 0, **extras) -> dict:
    """A result row: the fields every row has, then the optional ones given."""
    entry = {
        "instructions": instructions, "flash_bytes": flash, "ram_bytes": ram, "bit_exact": bit_exact,
        "layers": layers, "kernels": kernels, "fits": fits, "vectors": vectors,
        "seconds": round(time.perf_counter() - start, 2),
    }
    entry.update({key: value for key, value in extras.items() if value is not None})
    return entry


def _number(value) -> str:
    return "-" if value is None else f"{value:,}"


def _ratio(count, anchor) -> str:
    return "-" if count is None or anchor is None else f"{count / anchor:.2f}"


def _exact(entry: dict) -> str:
    if entry["bit_exact"] is None:
        return "-" if entry["fits"] else "does not fit"
    return "yes" if entry["bit_exact"] else "NO"


def comparison_table(results: dict, anchors: dict, opts: tuple[str, ...]) -> str:
    """Markdown: per (model, board), edgegen's instructions at each level,
    CMSIS-NN's at -O2 and their ratio, flash, RAM and bit-exactness."""
    head = (["model", "board (core)", "kernels"] + [f"instr -{o}" for o in opts]
            + ["CMSIS-NN -O2"] + [f"ratio -{o}" for o in opts]
            + ["flash B " + " / ".join(f"-{o}" for o in opts),
               "RAM B " + " / ".join(f"-{o}" for o in opts), "bit-exact"])
    align = ["---"] * 3 + ["--:"] * (2 * len(opts) + 3) + ["---"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for model, per_board in results.items():
        for board, per_opt in per_board.items():
            anchor = anchors.get(board, {})
            entries = [per_opt[o] for o in opts if o in per_opt]
            counts = [per_opt[o]["instructions"] if o in per_opt else None for o in opts]
            cells = ([model, f"{board} ({anchor['core']})" if anchor else board,
                      entries[0]["kernels"]]
                     + [_number(c) for c in counts] + [_number(anchor.get(model))]
                     + [_ratio(c, anchor.get(model)) for c in counts]
                     + [" / ".join(_number(e["flash_bytes"]) for e in entries),
                        " / ".join(_number(e["ram_bytes"]) for e in entries),
                        " / ".join(_exact(e) for e in entries)])
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def layer_table(model: str, per_board: dict, macs: dict[str, int], opts: tuple[str, ...]) -> str:
    """Markdown: instructions per multiply-accumulate of each layer, per
    emulated board and level (layers without MACs: their instructions)."""
    columns = [(board, o) for board, per_opt in per_board.items() for o in opts
               if o in per_opt and per_opt[o]["layers"]]
    if not columns:
        return ""
    head = ["layer", "MACs"] + [f"{board} -{o}" for board, o in columns]
    lines = [f"### {model}: instructions per MAC, per layer", "",
             "| " + " | ".join(head) + " |", "|---|" + "--:|" * (len(head) - 1)]
    for layer, layer_macs in macs.items():
        cells = [layer, _number(layer_macs)]
        for board, o in columns:
            count = per_board[board][o]["layers"].get(layer)
            cells.append("-" if count is None else
                         f"{count / layer_macs:.2f}" if layer_macs else f"({count:,})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def board_kernels(boards, requested: str | None) -> dict[str, str]:
    """Board name -> kernel path; --kernels dsp on a board without the DSP
    extension stops here, before any build."""
    return {board.name: kernels_for(board, requested) for board in boards}


def run(args, boards, kernels: dict[str, str], storage: StorageChoice, dataset,
        workdir: Path) -> tuple[dict, dict]:
    """Results ({model: {board: {opt: row}}}) and each model's MACs per layer."""
    results: dict = {}
    macs: dict = {}
    for name in args.models:
        model, weights = load_model(name, dataset, args.random_weights)
        qgraph = quantize_model(model, name, dataset, QuantizeOptions())
        macs[name] = layer_multiply_accumulates(qgraph)
        vectors = verification_vectors(qgraph, int8_inputs(qgraph, dataset,
                                                           dataset.test_inputs[: args.test_vectors]),
                                       args.random_vectors)
        print(f"{name}: {weights} weights, {len(qgraph.nodes)} layers, {len(vectors)} vectors "
              f"({args.test_vectors} test images + {args.random_vectors} random)", flush=True)
        results[name] = {}
        for board in boards:
            for opt in args.opt:
                entry = bench_row(qgraph, board, dataset, vectors, workdir, opt, kernels[board.name],
                                  storage)
                entry["weights"] = weights
                results[name].setdefault(board.name, {})[opt] = entry
                print(f"  {board.name} -{opt} ({entry['kernels']}): flash {entry['flash_bytes']:,} B, "
                      f"RAM {entry['ram_bytes']:,} B, instructions {_number(entry['instructions'])}, "
                      f"bit-exact {entry['bit_exact']}, {entry['seconds']:.1f} s", flush=True)
    return results, macs


def main(argv=None) -> int:
    args = parse_args(argv)
    # Emulated boards first: they carry the instruction counts.
    boards = sorted((load_board(name) for name in (args.boards or known_boards())),
                    key=lambda board: (not board.emulated, board.name))
    kernels = board_kernels(boards, args.kernels)
    storage = StorageChoice.from_options(args.format, "balanced")
    dataset = load_dataset()
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgegen-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results, macs = run(args, boards, kernels, storage, dataset, workdir)
    print()
    print(comparison_table(results, load_anchors(), args.opt))
    print("\nratio: edgegen's instructions at that level / CMSIS-NN's at -O2 (source: "
          "../shared/emulation.md, bench/cmsis_nn_anchors.json)")
    for name, per_board in results.items():
        table = layer_table(name, per_board, macs[name], args.opt)
        if table:
            print("\n" + table)
    print(f"\nwall time {time.perf_counter() - wall:.0f} s; instructions: executed per inference under "
          "QEMU (TCG plugin), worst case over the vectors")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    failed = [f"{m}/{b}/{o}" for m, per in results.items() for b, by_opt in per.items()
              for o, e in by_opt.items() if e["bit_exact"] is False]
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
