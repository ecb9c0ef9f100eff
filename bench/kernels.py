"""Benchmark: the compressed LeNets computed on their compressed weights.

For LeNet-300-100 and LeNet-5 compressed with the headline configurations
of ``bench/deep_compression.py`` (see ``headline_models.py``), on each
emulated board and at each optimisation level: every storage format forced
on all layers (each with its fastest variant, ``--optimize speed``) and the
cost model's own choice under each ``--optimize`` goal. Per row:

* ``instructions``: executed per inference under QEMU (TCG plugin, worst of
  the vectors), in total and per layer;
* ``flash_bytes``: the whole footprint firmware (code + weights + tables +
  start-up), measured from the linked ELF;
* ``ram_bytes``: data + bss (arena with the conv scratch, input, output) +
  the stack estimate of the footprint image;
* ``fits``: within the board's flash and RAM (a row that does not fit is
  measured but not run);
* ``bit_exact``: every output byte of the harness equal to the golden
  model's, on test-set images and random int8 inputs, and the self-test
  image passing.

    python bench/kernels.py --json bench/results/kernels.json
    python bench/kernels.py --boards qemu-mps2-an386 --opts O2 --calibrate

``--calibrate`` fits the cost model's coefficients to the per-layer counts
of the forced-format rows on the Cortex-M4F at -O2 and rewrites
``edgegen/encode/kernel_costs.json``. Not a test: it compresses (once,
cached) and builds about a hundred firmware images.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from headline_models import HEADLINE, headline_qgraph  # noqa: E402

from edgegen.data.datasets import load_dataset  # noqa: E402
from edgegen.encode.cost_model import (  # noqa: E402
    COSTS_FILE, layer_work_of, load_costs, priced_kind, work_units)
from edgegen.encode.storage import FORMATS  # noqa: E402
from edgegen.encode.storage_plan import OPTIMIZE, FormatRequest  # noqa: E402
from edgegen.firmware.boards import load_board  # noqa: E402
from edgegen.firmware.vectors import verification_vectors  # noqa: E402
from edgegen.jobs.board_verify import verify_firmware  # noqa: E402
from edgegen.jobs.firmware_build import build_firmware, measure_footprint  # noqa: E402
from edgegen.jobs.lower import StorageChoice, lower  # noqa: E402
from edgegen.jobs.quantize import int8_inputs  # noqa: E402

BOARDS = ("qemu-mps2-an386", "qemu-virt-rv32", "qemu-microbit")
OPTS = ("O2", "Os")
SELFTEST_IMAGES = 2


def variants() -> dict[str, StorageChoice]:
    """Row name -> storage choice: each format forced (fastest variant),
    then the cost model's choice under each goal."""
    rows = {fmt: StorageChoice(FormatRequest(fmt), "speed") for fmt in FORMATS}
    rows.update({f"auto-{goal}": StorageChoice(FormatRequest(), goal) for goal in OPTIMIZE})
    return rows


def run_row(qgraph, board, opt: str, choice: StorageChoice, vectors, selftest, workdir: Path) -> dict:
    flag = f"-{opt}"
    footprint = measure_footprint(qgraph, board, opt=flag, storage=choice)
    lowered = lower(qgraph, choice)
    row = {
        "flash_bytes": footprint.footprint.flash_bytes,
        "ram_bytes": footprint.footprint.ram_bytes,
        "arena_bytes": lowered.memory.arena_size,
        "fits": footprint.fits,
        "formats": lowered.storage.formats(),
        "instructions": None,
        "per_layer": None,
        "bit_exact": None,
    }
    if not footprint.fits:
        row["problems"] = list(footprint.problems)
        return row
    build = build_firmware(qgraph, board, workdir / "firmware", vectors=selftest, opt=flag,
                           force=True, storage=choice,
                           vectors_provenance=f"the first {SELFTEST_IMAGES} test-set images")
    result = verify_firmware(build, qgraph, vectors, workdir / "run")
    row.update(instructions=result.instructions.total,
               per_layer=dict(result.instructions.per_layer),
               bit_exact=result.bit_exact)
    return row


def bench(models, boards, opts, dataset, test_vectors: int, random_vectors: int, log) -> dict:
    results: dict = {}
    for name in models:
        qgraph = headline_qgraph(name, dataset, log=log)
        selftest = int8_inputs(qgraph, dataset, dataset.test_inputs[:SELFTEST_IMAGES])
        vectors = verification_vectors(
            qgraph, int8_inputs(qgraph, dataset, dataset.test_inputs[:test_vectors]),
            random_vectors, 0)
        for board_name in boards:
            board = load_board(board_name)
            for opt in opts:
                for label, choice in variants().items():
                    started = time.perf_counter()
                    with tempfile.TemporaryDirectory(prefix="edgegen-bench-") as work:
                        row = run_row(qgraph, board, opt, choice, vectors, selftest, Path(work))
                    row["seconds"] = round(time.perf_counter() - started, 2)
                    results.setdefault(name, {}).setdefault(board_name, {}).setdefault(opt, {})[label] = row
                    log(f"{name} {board_name} -{opt} {label}: " + _brief(row))
    return results


def _brief(row: dict) -> str:
    instr = "not run" if row["instructions"] is None else f"{row['instructions']:,} instructions"
    exact = "" if row["bit_exact"] is None else (" bit-exact" if row["bit_exact"] else " MISMATCH")
    return (f"{instr}, flash {row['flash_bytes']:,} B, RAM {row['ram_bytes']:,} B"
            f"{'' if row['fits'] else ' (does not fit)'}{exact}")


def print_tables(results: dict) -> None:
    for name, by_board in results.items():
        for board, by_opt in by_board.items():
            for opt, rows in by_opt.items():
                print(f"\n### {name} on {board}, -{opt}\n")
                print("| weights | layers | instructions | flash B | RAM B | fits | bit-exact |")
                print("|---|---|--:|--:|--:|---|---|")
                for label, r in rows.items():
                    layers = ", ".join(f"{k} {v}" for k, v in r["formats"].items())
                    instr = "—" if r["instructions"] is None else f"{r['instructions']:,}"
                    exact = "—" if r["bit_exact"] is None else ("yes" if r["bit_exact"] else "**NO**")
                    print(f"| {label} | {layers} | {instr} | {r['flash_bytes']:,} | "
                          f"{r['ram_bytes']:,} | {'yes' if r['fits'] else 'no'} | {exact} |")


def calibrate(results: dict, models, dataset, log) -> dict:
    """Least-squares coefficients per (layer kind, format) from the per-layer
    counts of every row run on the M4F at -O2 (forced formats and the cost
    model's choices: the more variants, the better the fit). Coefficients
    with fewer distinct layers than unknowns keep their values."""
    costs = load_costs()
    samples: dict = {}
    for name in models:
        qgraph = headline_qgraph(name, dataset, log=log)
        for label, choice in variants().items():
            row = results[name].get("qemu-mps2-an386", {}).get("O2", {}).get(label)
            if not row or row["per_layer"] is None:
                continue
            for layer in lower(qgraph, choice).storage.layers:
                work = layer_work_of(qgraph, layer.index)
                key = (name, layer.name, repr(sorted(layer.stored.params.items())))
                samples.setdefault((priced_kind(work, layer.format), layer.format), {})[key] = (
                    work_units(layer.stored, work), row["per_layer"][layer.name])
    # The compressed conv kernels share their pixel loop: one fit for the
    # per-tap and per-output prices, a decode price per format.
    pooled = {}
    for fmt in ("codebook", "sparse", "huffman"):
        for key, (units, count) in samples.pop(("conv2d", fmt), {}).items():
            renamed = {(f"{n}/{fmt}" if n in ("per_decoded", "per_long_code") else n): v
                       for n, v in units.items()}
            pooled[key + (fmt,)] = (renamed, count)
    if pooled:
        samples[("conv2d", "compressed")] = pooled
    for (kind, fmt), points in sorted(samples.items()):
        points = list(points.values())
        names = sorted({n for units, _ in points for n in units})
        if len(points) < len(names):
            log(f"{kind}/{fmt}: {len(points)} layers for {len(names)} coefficients; kept")
            continue
        a = np.array([[units.get(n, 0.0) for n in names] for units, _ in points])
        b = np.array([count for _, count in points], dtype=np.float64)
        coef, *_ = np.linalg.lstsq(a, b, rcond=None)
        fitted = {n: round(max(float(c), 0.0), 3) for n, c in zip(names, coef)}
        for target in ((fmt,) if fmt != "compressed" else ("codebook", "sparse", "huffman")):
            costs[kind][target].update({n.split("/")[0]: v for n, v in fitted.items()
                                        if "/" not in n or n.endswith("/" + target)})
        log(f"calibrated {kind}/{fmt}: {fitted} from {len(points)} layers")
    costs["measured"] = True
    return costs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--models", nargs="+", default=list(HEADLINE), choices=sorted(HEADLINE))
    p.add_argument("--boards", nargs="+", default=list(BOARDS))
    p.add_argument("--opts", nargs="+", default=list(OPTS), choices=OPTS)
    p.add_argument("--test-vectors", type=int, default=20, help="test-set images per row")
    p.add_argument("--random-vectors", type=int, default=4, help="random int8 inputs per row")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--calibrate", action="store_true",
                   help=f"refit the cost model's coefficients and rewrite {COSTS_FILE.name}")
    args = p.parse_args(argv)
    started = time.perf_counter()
    dataset = load_dataset(args.data_dir)
    log = lambda line: print(line, flush=True)  # noqa: E731
    results = bench(args.models, args.boards, args.opts, dataset, args.test_vectors,
                    args.random_vectors, log)
    print_tables(results)
    total = time.perf_counter() - started
    print(f"\nwhole benchmark: {total:.0f} s")
    if args.calibrate:
        costs = calibrate(results, args.models, dataset, log)
        COSTS_FILE.write_text(json.dumps(costs, indent=2) + "\n")
        print(f"wrote {COSTS_FILE}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {**results, "_meta": {"seconds": round(total, 1), "dataset": dataset.name,
                                        "vectors": args.test_vectors + args.random_vectors,
                                        "forced_formats_optimize": "speed"}}
        args.json.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.json}")
    mismatches = [1 for by_board in results.values() for by_opt in by_board.values()
                  for rows in by_opt.values() for r in rows.values() if r["bit_exact"] is False]
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
