"""Benchmark: the compact networks of the lecture beside the LeNets, after
int8 only, after filter pruning, and after full compression.

For each zoo model (its cached checkpoint, trained by `edgegen train` when
missing): parameters and multiply-accumulates, float and int8 accuracy on
the whole Fashion-MNIST test set, then

- ``int8``: the trained model, dense int8 weights;
- ``pruned``: filter pruning (Li et al.: the smallest-L1 filters of every
  prunable layer, one ratio chosen for a share of the parameters, joined
  channels pruned together) and fine-tuning; dense int8 weights;
- ``compressed``: the same filter pruning, then Deep Compression (magnitude
  pruning with retraining, k-means weight sharing with centroid
  fine-tuning of every layer, BatchNorm folded first) and the storage
  formats `--format auto --optimize size` chooses.

Each variant is built for the Cortex-M4F board (qemu-mps2-an386, -O2, DSP
kernels) and run under QEMU: flash and RAM measured from the linked image
(RAM: arena + scratch + I/O + stack, the board's RAM list), instructions
per inference (worst case over the vectors), and byte-exact verification
against the golden model on test images and random inputs. Accuracies are
the int8 golden model's (what the C computes, bit for bit) on all 10,000
test images.

    .venv/bin/python bench/zoo.py --json bench/results/zoo.json
    .venv/bin/python bench/zoo.py --models lenet5 mobilenet --epochs 1

JSON: {"<model>": {"<variant>": {"params", "macs", "float_acc", "int8_acc",
"pruned_acc", "compressed_acc", "flash_bytes", "ram_bytes", "instructions",
"bit_exact", ...}}} with <variant> "int8", "pruned" or "compressed". In
every row, float_acc and int8_acc are the trained model's, pruned_acc and
compressed_acc the int8 accuracies after filter pruning and after full
compression; params, macs and the measured fields are the variant's.

Not a test: it fine-tunes, and takes minutes per model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from edgegen.compress.pipeline import compress
from edgegen.compress.spec import CompressSpec, FilterPruneSpec, default_spec
from edgegen.data.datasets import load_dataset
from edgegen.errors import UserError
from edgegen.firmware.boards import kernels_for, load_board
from edgegen.firmware.vectors import verification_vectors
from edgegen.jobs.compress import (
    RetrainRecipe,
    dataset_eval_fn,
    dataset_train_fn,
    int8_accuracy,
    measure,
)
from edgegen.jobs.lower import StorageChoice
from edgegen.jobs.quantize import QuantizeOptions, int8_inputs, quantize_model
from edgegen.zoo.checkpoints import trained_zoo_model
from edgegen.zoo.models import ZOO, multiply_accumulates
from edgegen.zoo.train import evaluate

from targets import bench_row  # bench/targets.py: one board build, run and verification

BOARD = "qemu-mps2-an386"
OPT = "O2"
COMPRESSED_OBJECTIVE = "size"  # the cost model's choice of storage formats for the compressed variant
MODELS = ("lenet300", "lenet5", "squeezenet", "mobilenet", "shufflenet", "xception", "resnet")
FIELDS = ("params", "macs", "float_acc", "int8_acc", "pruned_acc", "compressed_acc",
          "flash_bytes", "ram_bytes", "instructions", "bit_exact")


@dataclass(frozen=True)
class Settings:
    """The compression every model gets (the same for all, so that the
    table compares networks, not tuning)."""

    filter_params: float  # share of the parameters filter pruning removes
    sparsity: float  # magnitude pruning of every weight layer after it
    conv_bits: int  # codebook bits of the convolutions
    fc_bits: int  # codebook bits of the fully connected layers
    epochs: int  # fine-tuning epochs after filter pruning, per pruning round, after sharing

    def filters(self) -> FilterPruneSpec:
        return FilterPruneSpec(params=self.filter_params, finetune_epochs=self.epochs)

    def describe(self, variant: str) -> str:
        pruning = f"filter pruning of {self.filter_params:.0%} of the parameters"
        if variant == "pruned":
            return f"{pruning}, {self.epochs} fine-tuning epochs; dense int8"
        return (f"{pruning}, then {self.sparsity:.0%} magnitude pruning (2 rounds) and k-means "
                f"sharing of every layer ({self.conv_bits}-bit conv, {self.fc_bits}-bit fc, "
                f"BatchNorm folded first), {self.epochs} epochs per stage; --format auto "
                f"--optimize {COMPRESSED_OBJECTIVE}")

    def full(self, model: torch.nn.Module) -> CompressSpec:
        """Deep Compression of every weight layer after the filter pruning."""
        spec = default_spec(model, sparsity=self.sparsity, conv_bits=self.conv_bits,
                            fc_bits=self.fc_bits, prune_steps=2,
                            retrain_epochs=self.epochs, finetune_epochs=self.epochs)
        return replace(spec, filters=self.filters())


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    p.add_argument("--models", nargs="+", default=[m for m in MODELS if m in ZOO],
                   choices=sorted(ZOO))
    p.add_argument("--filter-params", type=float, default=0.3,
                   help="share of the parameters filter pruning removes (default 0.3)")
    p.add_argument("--sparsity", type=float, default=0.5,
                   help="magnitude pruning of every weight layer in the full compression "
                        "(default 0.5)")
    p.add_argument("--conv-bits", type=int, default=6,
                   help="codebook bits of the convolutions in the full compression (default 6)")
    p.add_argument("--fc-bits", type=int, default=5,
                   help="codebook bits of the fully connected layers (default 5)")
    p.add_argument("--epochs", type=int, default=2,
                   help="fine-tuning epochs after each compression stage (default 2)")
    p.add_argument("--test-vectors", type=int, default=200, help="test-set images run on the board")
    p.add_argument("--random-vectors", type=int, default=50, help="random int8 inputs run on the board")
    p.add_argument("--workdir", type=Path, default=None, help="keep the builds here")
    return p.parse_args(argv)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def board_row(qgraph, dataset, args, workdir: Path, storage: str, objective: str) -> dict:
    """Build for the M4F board, run under QEMU, verify against golden."""
    board = load_board(BOARD)
    vectors = verification_vectors(qgraph, int8_inputs(qgraph, dataset,
                                                       dataset.test_inputs[: args.test_vectors]),
                                   args.random_vectors)
    return bench_row(qgraph, board, dataset, vectors, workdir, OPT, kernels_for(board, None),
                     StorageChoice.from_options(storage, objective))


def variant_row(model, float_acc: float, int8_acc: float, board: dict) -> dict:
    """One variant: its model's size and accuracies, its firmware's
    measurements (``*_variant``: this variant's; the summary fields are
    added once every variant is measured)."""
    return {"params": count_parameters(model), "macs": multiply_accumulates(model),
            "float_acc_variant": float_acc, "int8_acc_variant": int8_acc,
            "flash_bytes": board["flash_bytes"], "ram_bytes": board["ram_bytes"],
            "instructions": board["instructions"], "bit_exact": board["bit_exact"],
            "formats": board.get("formats"), "seconds": board["seconds"]}


def bench_model(name: str, settings: Settings, dataset, args, workdir: Path) -> dict:
    model, _ = trained_zoo_model(name, dataset, progress=False)
    train_fn = dataset_train_fn(dataset, RetrainRecipe(), seed=0, progress=False)
    eval_fn = dataset_eval_fn(dataset)
    example = torch.zeros(1, 1, 28, 28)

    q_int8 = quantize_model(model, name, dataset, QuantizeOptions())
    rows = {"int8": variant_row(model, evaluate(model, dataset),
                                int8_accuracy(q_int8, dataset),
                                board_row(q_int8, dataset, args, workdir, "dense", "balanced"))}
    log(name, "int8", rows["int8"])
    stages = {"pruned": (CompressSpec((), filters=settings.filters()), "dense", "balanced"),
              "compressed": (settings.full(model), "auto", COMPRESSED_OBJECTIVE)}
    for variant, (spec, storage, objective) in stages.items():
        result = compress(model, spec, train_fn=train_fn, eval_fn=eval_fn, progress=False,
                          log=lambda *_: None, example_input=example)
        qgraph, _, acc = measure(result, name, dataset)
        rows[variant] = variant_row(result.model, evaluate(result.model, dataset), acc,
                                    board_row(qgraph, dataset, args, workdir, storage, objective))
        rows[variant]["compression"] = settings.describe(variant)
        log(name, variant, rows[variant])

    summary = {"float_acc": rows["int8"]["float_acc_variant"],
               "int8_acc": rows["int8"]["int8_acc_variant"],
               "pruned_acc": rows["pruned"]["int8_acc_variant"],
               "compressed_acc": rows["compressed"]["int8_acc_variant"]}
    for row in rows.values():
        row.update(summary)
    return rows


def log(name: str, variant: str, row: dict) -> None:
    print(f"  {name} {variant}: {row['params']:,} params, {row['macs']:,} MACs, int8 "
          f"{row['int8_acc_variant']:.4f}, flash {row['flash_bytes']:,} B, RAM "
          f"{row['ram_bytes']:,} B, {_count(row['instructions'])} instructions, bit-exact "
          f"{row['bit_exact']}", flush=True)


def _count(value) -> str:
    return "-" if value is None else f"{value:,}"


def table(results: dict) -> str:
    lines = ["| model | variant | params | MACs | float acc. | int8 acc. | flash B | RAM B | "
             "instructions (M4F -O2) | bit-exact |",
             "|---|---|--:|--:|--:|--:|--:|--:|--:|:-:|"]
    for name, rows in results.items():
        for variant in ("int8", "pruned", "compressed"):
            r = rows[variant]
            lines.append(f"| {name} | {variant} | {r['params']:,} | {r['macs']:,} | "
                         f"{100 * r['float_acc_variant']:.2f} % | {100 * r['int8_acc_variant']:.2f} % | "
                         f"{r['flash_bytes']:,} | {r['ram_bytes']:,} | {_count(r['instructions'])} | "
                         f"{'yes' if r['bit_exact'] else 'NO'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = Settings(args.filter_params, args.sparsity, args.conv_bits, args.fc_bits, args.epochs)
    dataset = load_dataset()
    torch.manual_seed(0)
    results = {}
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgegen-zoo-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            print(f"{name}:", flush=True)
            results[name] = bench_model(name, settings, dataset, args, workdir)
            if args.json is not None:  # after each model: a long run keeps what it measured
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table(results))
    print(f"\npruned: {settings.describe('pruned')}\ncompressed: {settings.describe('compressed')}"
          f"\naccuracies on the 10,000 test images (int8: the golden model, == C); "
          f"M4F: {BOARD} -{OPT}; wall time {time.perf_counter() - wall:.0f} s")
    failed = [f"{m}/{v}" for m, rows in results.items() for v in ("int8", "pruned", "compressed")
              if rows[v]["bit_exact"] is not True]
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
