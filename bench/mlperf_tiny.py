"""Benchmark: the MLPerf Tiny reference networks, dense int8 and compressed,
on the emulated boards, beside CMSIS-NN.

The four networks of MLPerf Tiny v1.0 (``edgegen.zoo.mlperf_tiny``): keyword
spotting (DS-CNN), image classification (ResNet-8), visual wake words
(MobileNetV1 0.25) and anomaly detection (FC autoencoder). Their data sets
are not on this machine, so every network runs with random weights (seed 0,
He-normal, trained-looking BatchNorms) calibrated on synthetic inputs
(random normal, seed 0): how kernel speed and memory are compared in this
field, since neither depends on what the weights are.

For each network and variant (``int8``: dense int8 weights, as CMSIS-NN
stores them; ``compressed``: the configuration ``COMPRESSION`` states), on
qemu-mps2-an386 (Cortex-M4F, DSP kernels) at -O2 and -Os and on
qemu-virt-rv32 and qemu-mps2-an385 (Cortex-M3) at -O2: instructions per
inference under QEMU (TCG plugin, worst case over the vectors), per layer
and in total; the whole firmware's flash; peak RAM as CMSIS-NN's figures
count it: the activations (edgegen's arena, which holds the scratch too,
plus the model's input and output buffers wherever they are not inside the
arena: CMSIS-NN's arena holds them) and the deepest stack of the inference;
bit-exactness on the host (cffi) and on the board, each against the golden
model on synthetic and random int8 vectors.

    .venv/bin/python bench/mlperf_tiny.py --json bench/results/mlperf_tiny.json
    .venv/bin/python bench/mlperf_tiny.py --nets kws_dscnn --variants int8 --boards qemu-mps2-an386

JSON: {net: {variant: {board: {opt: {instructions, flash_bytes, ram_bytes,
bit_exact, host_bit_exact, layers, arena_bytes, io_bytes, stack_bytes, configuration,
...}}}}}; bit_exact is the board's, host_bit_exact the host's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from targets import bench_row, opt_levels  # noqa: E402

from edgegen.compress.pipeline import compress  # noqa: E402
from edgegen.compress.spec import default_spec  # noqa: E402
from edgegen.data.datasets import synthetic_dataset  # noqa: E402
from edgegen.firmware.boards import kernels_for, load_board  # noqa: E402
from edgegen.firmware.qemu import layer_multiply_accumulates  # noqa: E402
from edgegen.firmware.vectors import verification_vectors  # noqa: E402
from edgegen.jobs.compress import measure  # noqa: E402
from edgegen.jobs.deploy import VerifyOptions, emit, verify_on_host  # noqa: E402
from edgegen.jobs.lower import StorageChoice  # noqa: E402
from edgegen.jobs.quantize import QuantizeOptions, int8_inputs, quantize_model  # noqa: E402
from edgegen.verify.host_model import HostModel, ModelSizes  # noqa: E402
from edgegen.zoo.mlperf_tiny import INPUT_SHAPES, MLPERF_TINY, random_weights  # noqa: E402

ANCHORS_FILE = Path(__file__).resolve().with_name("cmsis_nn_mlperf_tiny.json")
M4F = "qemu-mps2-an386"
# board -> optimisation levels measured there
BOARDS = {M4F: ("O2", "Os"), "qemu-virt-rv32": ("O2",), "qemu-mps2-an385": ("O2",)}
VARIANTS = ("int8", "compressed")
CALIBRATION_SAMPLES = 256


# The compressed variant: every conv and fully connected layer pruned by
# magnitude to PRUNE of its weights, its survivors shared through a k-means
# codebook of 2**BITS values (linear initialisation), no retraining (random
# weights have nothing to recover); storage chosen per layer by edgegen's
# cost model (--format auto) with OBJECTIVE.
PRUNE = 0.75
BITS = 4
OBJECTIVE = "balanced"
COMPRESSION = (f"magnitude pruning {PRUNE:.0%} of every layer, {BITS}-bit shared weights "
               f"(k-means, linear init), no retraining, --format auto --optimize {OBJECTIVE}")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    p.add_argument("--nets", nargs="+", default=list(MLPERF_TINY), choices=list(MLPERF_TINY))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--boards", nargs="+", default=list(BOARDS), choices=list(BOARDS))
    p.add_argument("--opt", type=opt_levels, default=None,
                   help="optimisation levels on every board (default: -O2 and -Os on the "
                        "M4F, -O2 elsewhere)")
    p.add_argument("--test-vectors", type=int, default=4, help="synthetic inputs per board")
    p.add_argument("--random-vectors", type=int, default=4, help="random int8 inputs per board")
    p.add_argument("--host-vectors", type=int, default=64,
                   help="synthetic inputs checked on the host (plus as many random ones)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the firmware folders here")
    return p.parse_args(argv)


def variant_qgraphs(name: str, variants) -> dict:
    """{variant: (qgraph, storage choice)} of one network, and its data set."""
    model = random_weights(MLPERF_TINY[name](), seed=0)
    dataset = synthetic_dataset(INPUT_SHAPES[name])
    options = QuantizeOptions(calib_samples=CALIBRATION_SAMPLES)
    found = {}
    if "int8" in variants:
        found["int8"] = (quantize_model(model, name, dataset, options),
                         StorageChoice.from_options("dense", "balanced"))
    if "compressed" in variants:
        spec = default_spec(model, sparsity=PRUNE, conv_bits=BITS, fc_bits=BITS, prune_steps=1,
                            retrain_epochs=0, finetune_epochs=0)
        result = compress(model, spec, train_fn=_no_training, eval_fn=lambda _: None,
                          progress=False, log=lambda _: None,
                          example_input=torch.zeros((1,) + INPUT_SHAPES[name]))
        qgraph, _, _ = measure(result, name, dataset, options)
        found["compressed"] = (qgraph, StorageChoice.from_options("auto", OBJECTIVE))
    return found, dataset


def _no_training(model, epochs):
    raise AssertionError("the compressed variant is not retrained")


def host_check(qgraph, storage, dataset, vectors: int, workdir: Path) -> bool:
    """The generated C on the host (cffi) against the golden model."""
    folder = workdir / f"host-{qgraph.name}-{len(list(workdir.glob('host-*')))}"
    folder.mkdir(parents=True)
    lowered = emit(qgraph, folder, storage)
    host = HostModel(folder, ModelSizes.of(qgraph, lowered.memory), folder / "build")
    result = verify_on_host(qgraph, host, dataset, VerifyOptions(vectors, vectors, seed=1))
    return result.comparison.bit_exact


def run(args, workdir: Path) -> tuple[dict, dict]:
    results: dict = {}
    macs: dict = {}
    for name in args.nets:
        started = time.perf_counter()
        qgraphs, dataset = variant_qgraphs(name, args.variants)
        print(f"{name}: quantized {', '.join(qgraphs)} in {time.perf_counter() - started:.0f} s",
              flush=True)
        for variant, (qgraph, storage) in qgraphs.items():
            macs.setdefault(name, layer_multiply_accumulates(qgraph))
            host_exact = host_check(qgraph, storage, dataset, args.host_vectors, workdir)
            tests = int8_inputs(qgraph, dataset, dataset.test_inputs[: args.test_vectors])
            vectors = verification_vectors(qgraph, tests, args.random_vectors)
            for board_name in args.boards:
                board = load_board(board_name)
                for opt in args.opt or BOARDS[board_name]:
                    entry = bench_row(qgraph, board, dataset, vectors, workdir, opt,
                                      kernels_for(board, None), storage)
                    entry["ram_bytes_total"] = entry["ram_bytes"]
                    entry["ram_bytes"] = (entry["arena_bytes"] + entry["io_bytes"]
                                          + entry["stack_bytes"])
                    entry["host_bit_exact"] = host_exact
                    entry["configuration"] = (COMPRESSION if variant == "compressed"
                                              else "dense int8 weights")
                    entry["weights"] = "random (seed 0); synthetic calibration data (seed 0)"
                    results.setdefault(name, {}).setdefault(variant, {}).setdefault(
                        board_name, {})[opt] = entry
                    print(f"  {variant:<10} {board_name} -{opt}: {_n(entry['instructions'])} "
                          f"instructions, flash {entry['flash_bytes']:,} B, RAM "
                          f"{entry['ram_bytes']:,} B (arena {entry['arena_bytes']:,} + input/output "
                          f"{entry['io_bytes']:,} + stack {entry['stack_bytes']:,}), bit-exact "
                          f"host {host_exact} board "
                          f"{entry['bit_exact']}, {entry['seconds']:.0f} s", flush=True)
    return results, macs


def _n(value) -> str:
    return "-" if value is None else f"{value:,}"


def _ratio(ours, theirs) -> str:
    return "-" if ours is None or theirs is None else f"{ours / theirs:.2f}"


def anchor_table(results: dict, anchors: dict) -> str:
    """Markdown: dense int8 on the M4F against CMSIS-NN, and the compressed flash."""
    lines = ["| network | edgegen -O2 | CMSIS-NN -O2 | ratio | edgegen -Os | CMSIS-NN -Os | "
             "RAM edgegen | RAM CMSIS-NN | flash int8 | flash compressed | compressed/int8 | "
             "bit-exact |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for name, variants in results.items():
        anchor = anchors.get(name, {})
        dense = variants.get("int8", {}).get(M4F, {})
        packed = variants.get("compressed", {}).get(M4F, {})
        o2, os_ = dense.get("O2", {}), dense.get("Os", {})
        flash_int8 = o2.get("flash_bytes")
        flash_packed = packed.get("O2", {}).get("flash_bytes")
        exact = all(e["bit_exact"] and e["host_bit_exact"] for per_board in variants.values()
                    for per_opt in per_board.values() for e in per_opt.values())
        lines.append(
            f"| {name} | {_n(o2.get('instructions'))} | {_n(anchor.get('instructions_O2'))} | "
            f"{_ratio(o2.get('instructions'), anchor.get('instructions_O2'))} | "
            f"{_n(os_.get('instructions'))} | {_n(anchor.get('instructions_Os'))} | "
            f"{_n(o2.get('ram_bytes'))} | {_n(anchor.get('ram_bytes'))} | {_n(flash_int8)} | "
            f"{_n(flash_packed)} | {_ratio(flash_packed, flash_int8)} | "
            f"{'yes' if exact else 'NO'} |")
    return "\n".join(lines)


def full_table(results: dict) -> str:
    """Markdown: every network, variant, board and level."""
    lines = ["| network | variant | board | opt | instructions | flash B | RAM B (arena + I/O + "
             "stack) | bit-exact host / board |", "|---|---|---|---|--:|--:|--:|---|"]
    for name, variants in results.items():
        for variant, per_board in variants.items():
            for board, per_opt in per_board.items():
                for opt, e in per_opt.items():
                    lines.append(
                        f"| {name} | {variant} | {board} | {opt} | {_n(e['instructions'])} | "
                        f"{e['flash_bytes']:,} | {e['ram_bytes']:,} ({e['arena_bytes']:,} + "
                        f"{e['io_bytes']:,} + {e['stack_bytes']:,}) | {e['host_bit_exact']} / "
                        f"{e['bit_exact']} |")
    return "\n".join(lines)


def layer_table(name: str, variants: dict, macs: dict) -> str:
    """Markdown: instructions per layer of the dense int8 network on the M4F at -O2."""
    entry = variants.get("int8", {}).get(M4F, {}).get("O2")
    if not entry or not entry.get("layers"):
        return ""
    lines = [f"### {name}: int8 on {M4F} -O2, per layer", "",
             "| layer | MACs | instructions | per MAC |", "|---|--:|--:|--:|"]
    for layer, count in entry["layers"].items():
        layer_macs = macs.get(layer, 0)
        per = f"{count / layer_macs:.2f}" if layer_macs else "-"
        lines.append(f"| {layer} | {_n(layer_macs)} | {count:,} | {per} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    anchors = json.loads(ANCHORS_FILE.read_text())["networks"]
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgegen-mlperf-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results, macs = run(args, workdir)
    print()
    print(anchor_table(results, anchors))
    print(f"\ncompressed: {COMPRESSION}. CMSIS-NN: ../shared/emulation.md "
          "(bench/cmsis_nn_mlperf_tiny.json). Random weights, synthetic calibration data.\n")
    print(full_table(results))
    for name, variants in results.items():
        table = layer_table(name, variants, macs[name])
        if table:
            print("\n" + table)
    print(f"\nwall time {time.perf_counter() - wall:.0f} s")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    bad = [f"{n}/{v}/{b}/{o}" for n, per_v in results.items() for v, per_b in per_v.items()
           for b, per_o in per_b.items() for o, e in per_o.items()
           if not (e["bit_exact"] and e["host_bit_exact"])]
    if bad:
        print(f"NOT bit-exact: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
