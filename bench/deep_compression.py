"""Deep Compression (Han et al., ICLR 2016) reproduced on Fashion-MNIST.

For LeNet-300-100 and LeNet-5: prune (iteratively, with retraining), share
weights (k-means, centroid fine-tuning, int8 grid), Huffman-code; accuracy
is the int8 golden model's on the whole test set (what the C computes, bit
for bit), sizes are the encoded bits of the int8 weights that ship with
every bit needed to decode them. Each model runs the paper's configuration,
then more aggressive ones; the headline is the best ratio whose accuracy is
within 0.5 points of the float model.

    python bench/deep_compression.py --json out/deep_compression.json
    python bench/deep_compression.py --data-dir ~/mnist      # original MNIST

Not a test: it trains, and takes minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from edgegen.jobs.compress import (
    RetrainRecipe,
    dataset_eval_fn,
    dataset_train_fn,
    measure,
)
from edgegen.compress.pipeline import compress
from edgegen.compress.spec import PAPER_SPARSITY, default_spec
from edgegen.data.datasets import load_dataset
from edgegen.report.compression import markdown_table
from edgegen.zoo.checkpoints import trained_zoo_model

MAX_DROP = 0.005  # accuracy budget: half a point of the float model's
PAPER_TARGET = {"lenet300": 40.0, "lenet5": 39.0}

# (label, sparsity per layer, conv bits, fc bits, per-layer bits)
CONFIGS = {
    "lenet300": [
        ("paper", PAPER_SPARSITY["lenet300"], 8, 5, {}),
        ("further", {"fc1": 0.94, "fc2": 0.92, "fc3": 0.75}, 8, 5, {}),
        ("furthest", {"fc1": 0.95, "fc2": 0.93, "fc3": 0.80}, 8, 5, {"fc1": 4}),
    ],
    "lenet5": [
        ("paper", PAPER_SPARSITY["lenet5"], 8, 5, {}),
        ("further", {"conv1": 0.40, "conv2": 0.90, "fc1": 0.95, "fc2": 0.85}, 6, 5, {}),
        ("furthest", {"conv1": 0.45, "conv2": 0.92, "fc1": 0.965, "fc2": 0.88}, 6, 5, {}),
    ],
}
SCHEDULE = {"prune_steps": 3, "retrain_epochs": 4, "finetune_epochs": 2}


def run_config(model, name, dataset, label, sparsity, conv_bits, fc_bits, layer_bits, log):
    from dataclasses import replace

    from edgegen.compress.spec import ShareSpec

    spec = default_spec(model, sparsity=sparsity, conv_bits=conv_bits, fc_bits=fc_bits, **SCHEDULE)
    spec = replace(spec, layers=tuple(
        (n, replace(l, share=ShareSpec(bits=layer_bits[n], init=l.share.init)))
        if n in layer_bits else (n, l) for n, l in spec.layers))
    started = time.perf_counter()
    compressed = compress(model, spec, train_fn=dataset_train_fn(dataset, RetrainRecipe(), 0, progress=False),
                          eval_fn=dataset_eval_fn(dataset), progress=False, log=log)
    qgraph, storage, acc8 = measure(compressed, name, dataset)
    seconds = time.perf_counter() - started
    s = storage
    return {
        "config": label,
        "sparsity": sparsity,
        "bits": {"conv": conv_bits, "fc": fc_bits, **layer_bits},
        "schedule": SCHEDULE,
        "compressed_acc": acc8,
        "float_compressed_acc": compressed.stage_accuracy["snap"],
        "float_bytes": s.float_bytes,
        "p_bytes": s.bytes_p,
        "pq_bytes": s.bytes_pq,
        "compressed_bytes": s.bytes_pqh,
        "ratio": s.float_bytes / s.bytes_pqh,
        "ratio_pq": s.float_bytes / s.bytes_pq,
        "ratio_p": s.float_bytes / s.bytes_p,
        "entropy_bytes": s.entropy_bytes,
        "huffman_stream_bytes": s.huffman_stream_bytes,
        "entropy_stream_bytes": s.entropy_stream_bytes,
        "seconds": seconds,
        "layers_table": markdown_table(s),
        "layers": s.as_dict()["layers"],
    }


def bench_model(name, dataset, log):
    model, meta = trained_zoo_model(name, dataset, progress=False)
    float_acc = dataset_eval_fn(dataset)(model)
    runs = []
    for label, sparsity, conv_bits, fc_bits, layer_bits in CONFIGS[name]:
        log(f"== {name} / {label}")
        runs.append(run_config(model, name, dataset, label, sparsity, conv_bits, fc_bits,
                               layer_bits, log))
    within = [r for r in runs if r["compressed_acc"] >= float_acc - MAX_DROP]
    best = max(within, key=lambda r: r["ratio"]) if within else runs[0]
    headline = {k: v for k, v in best.items() if k not in ("layers_table",)}
    return {**headline, "float_acc": float_acc, "model": name, "paper_target_ratio": PAPER_TARGET[name],
            "meets_accuracy": best in within, "runs": runs,
            "seconds": sum(r["seconds"] for r in runs)}


def print_results(results: dict) -> None:
    print("\n| model | config | float acc | int8 acc | drop | float32 KB | P KB | P+Q KB | P+Q+H KB "
          "| ratio P | ratio P+Q | ratio P+Q+H | Huffman vs entropy | s |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for name, res in results.items():
        for r in res["runs"]:
            drop = 100 * (res["float_acc"] - r["compressed_acc"])
            over = 100 * (r["huffman_stream_bytes"] / r["entropy_stream_bytes"] - 1)
            star = " **(headline)**" if r["config"] == res["config"] else ""
            print(f"| {name} | {r['config']}{star} | {100 * res['float_acc']:.2f} % | "
                  f"{100 * r['compressed_acc']:.2f} % | {drop:.2f} | {r['float_bytes'] / 1024:.1f} | "
                  f"{r['p_bytes'] / 1024:.1f} | {r['pq_bytes'] / 1024:.2f} | "
                  f"{r['compressed_bytes'] / 1024:.2f} | {r['ratio_p']:.1f}x | {r['ratio_pq']:.1f}x | "
                  f"{r['ratio']:.1f}x | +{over:.1f} % | {r['seconds']:.0f} |")
    for name, res in results.items():
        for r in res["runs"]:
            print(f"\n### {name} / {r['config']}: per layer\n\n{r['layers_table']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--models", default="lenet300,lenet5")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    started = time.perf_counter()
    dataset = load_dataset(args.data_dir)
    results = {}
    for name in args.models.split(","):
        results[name] = bench_model(name, dataset, log=lambda line: print(line, flush=True))
    total = time.perf_counter() - started
    print_results(results)
    print(f"\nwhole benchmark: {total:.0f} s on {torch.get_num_threads()} threads, dataset {dataset.name}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {name: {k: v for k, v in res.items()} for name, res in results.items()}
        for res in payload.values():
            res["runs"] = [{k: v for k, v in r.items() if k != "layers_table"} for r in res["runs"]]
        payload["_meta"] = {"seconds": total, "dataset": dataset.name, "max_drop": MAX_DROP}
        args.json.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
