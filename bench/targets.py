"""Benchmark: the zoo's dense int8 models on every board.

For each model and board: flash and RAM measured from the linked image; on
emulated boards also the executed instructions per inference (QEMU plugin,
worst case over the vectors) and byte-exact verification against the golden
model on test-set images and random int8 inputs.

    .venv/bin/python bench/targets.py --json out/targets.json
    .venv/bin/python bench/targets.py --random-weights --test-vectors 50 --random-vectors 10

JSON: {"<model>": {"<board>": {"flash_bytes", "ram_bytes", "instructions",
"bit_exact", "vectors", ...}}}; real boards have "instructions" and
"bit_exact" null and "vectors" 0 (built and size-checked only).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from edgegen.data.datasets import image_to_int8, load_dataset
from edgegen.errors import UserError
from edgegen.firmware.boards import known_boards, load_board
from edgegen.firmware.vectors import verification_vectors
from edgegen.jobs.board_verify import verify_firmware
from edgegen.jobs.firmware_build import build_firmware, measure_footprint
from edgegen.jobs.quantize import QuantizeOptions, quantize_model
from edgegen.zoo.checkpoints import trained_zoo_model
from edgegen.zoo.models import ZOO

MODELS = ("lenet300", "lenet5")
SELFTEST_IMAGES = 4


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=sorted(ZOO))
    p.add_argument("--boards", nargs="+", default=None, help="default: every board in boards/")
    p.add_argument("--test-vectors", type=int, default=1000, help="test-set images per emulated board")
    p.add_argument("--random-vectors", type=int, default=100, help="random int8 inputs per emulated board")
    p.add_argument("--random-weights", action="store_true",
                   help="random weights (seed 0) instead of the cached trained checkpoints "
                        "(trained first when missing)")
    p.add_argument("--opt", default="-Os", help="optimisation level of the firmware (default -Os)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the firmware folders here")
    return p.parse_args(argv)


def load_model(name: str, dataset, random_weights: bool):
    if random_weights:
        torch.manual_seed(0)
        return ZOO[name]().eval(), "random (seed 0)"
    model, meta = trained_zoo_model(name, dataset)
    return model, f"trained ({meta.get('test_accuracy', float('nan')):.4f} float test accuracy)"


def bench_board(qgraph, board, dataset, vectors, workdir: Path, opt: str) -> dict:
    """One table row: build (and verify when emulated)."""
    start = time.perf_counter()
    selftest = image_to_int8(dataset.test_images[:SELFTEST_IMAGES])
    folder = workdir / f"{qgraph.name}-{board.name}"
    try:
        build = build_firmware(qgraph, board, folder, vectors=selftest, opt=opt, force=True,
                               vectors_provenance=f"the first {SELFTEST_IMAGES} test-set images")
    except UserError as error:
        if "does not fit" not in str(error):
            raise
        report = measure_footprint(qgraph, board, opt=opt)
        return row(report.footprint.flash_bytes, report.footprint.ram_bytes, False, opt, start,
                   note="; ".join(report.problems))
    if not board.emulated:
        return row(build.flash_bytes, build.ram_bytes, True, opt, start)
    result = verify_firmware(build, qgraph, vectors, workdir / f"run-{qgraph.name}-{board.name}")
    counts = result.instructions
    return row(build.flash_bytes, build.ram_bytes, True, opt, start, instructions=counts.total,
               instructions_min=counts.minimum, per_layer=dict(counts.per_layer),
               bit_exact=result.bit_exact, vectors=result.vectors, selftest=result.selftest,
               mismatch=None if result.comparison.bit_exact else result.comparison.line(board.name))


def row(flash: int, ram: int, fits: bool, opt: str, start: float, *, instructions=None, instructions_min=None,
        per_layer=None, bit_exact=None, vectors=0, note=None, selftest=None, mismatch=None) -> dict:
    entry = {
        "flash_bytes": flash, "ram_bytes": ram, "instructions": instructions, "bit_exact": bit_exact,
        "vectors": vectors, "fits": fits, "opt": opt, "seconds": round(time.perf_counter() - start, 2),
    }
    extras = {"instructions_min": instructions_min, "instructions_per_layer": per_layer,
              "selftest": selftest, "mismatch": mismatch, "note": note}
    entry.update({key: value for key, value in extras.items() if value is not None})
    return entry


def table(results: dict, boards) -> str:
    head = ("model", "board", "flash B", "RAM B", "fits", "instructions/inference", "bit-exact", "vectors",
            "s")
    align = ("---", "---", "---:", "---:", "---", "---:", "---", "---:", "---:")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for model, per_board in results.items():
        for board in boards:
            if board.name not in per_board:
                continue
            e = per_board[board.name]
            instructions = "-" if e["instructions"] is None else f"{e['instructions']:,}"
            exact = "-" if e["bit_exact"] is None else ("yes" if e["bit_exact"] else "NO")
            lines.append(f"| {model} | {board.name} | {e['flash_bytes']:,} | {e['ram_bytes']:,} | "
                         f"{'yes' if e['fits'] else 'no'} | {instructions} | {exact} | {e['vectors']} | "
                         f"{e['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    # Emulated boards first: they carry the instruction counts.
    boards = sorted((load_board(name) for name in (args.boards or known_boards())),
                    key=lambda board: (not board.emulated, board.name))
    dataset = load_dataset()
    results: dict = {}
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgegen-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            model, weights = load_model(name, dataset, args.random_weights)
            qgraph = quantize_model(model, name, dataset, QuantizeOptions())
            images = dataset.test_images[: args.test_vectors]
            vectors = verification_vectors(qgraph, images, args.random_vectors)
            print(f"{name}: {weights} weights, {len(qgraph.nodes)} layers, {len(vectors)} vectors "
                  f"({args.test_vectors} test images + {args.random_vectors} random)", flush=True)
            results[name] = {}
            for board in boards:
                entry = bench_board(qgraph, board, dataset, vectors, workdir, args.opt)
                entry["weights"] = weights
                results[name][board.name] = entry
                print(f"  {board.name}: flash {entry['flash_bytes']:,} B, RAM {entry['ram_bytes']:,} B, "
                      f"instructions {entry['instructions']}, bit-exact {entry['bit_exact']}, "
                      f"{entry['seconds']:.1f} s", flush=True)
    print()
    print(table(results, boards))
    print(f"\nwall time {time.perf_counter() - wall:.0f} s; instructions: executed per inference under "
          f"QEMU (TCG plugin), worst case over the vectors, {args.opt}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    failed = [f"{m}/{b}" for m, per in results.items() for b, e in per.items() if e["bit_exact"] is False]
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
