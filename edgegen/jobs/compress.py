"""The compress job: ``edgegen compress`` as one call — compress, measure
what ships, write it down.

The compress stage proper is ``compress.pipeline.compress``; this job wires it to
a dataset (the retraining loop and the evaluation), then measures the result
the only way that counts — the int8 golden model's accuracy on the test set
and the bits of the Deep Compression encodings of its int8 weights — and
writes the folder: the artifact, the report, the weight-distribution plots.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgegen.compress.artifact import artifact_of, save_compressed
from edgegen.compress.filter_prune import apply_kept_filters
from edgegen.compress.pipeline import CompressedModel, compress
from edgegen.compress.sensitivity import (
    scan_filter_sensitivity,
    scan_sensitivity,
    write_sensitivity_report,
)
from edgegen.compress.share import shared_layers
from edgegen.compress.spec import CompressSpec
from edgegen.data.datasets import Dataset
from edgegen.errors import UserError
from edgegen.ir import QGraph
from edgegen.jobs.quantize import QuantizeOptions, int8_inputs, model_input_shape, quantize_model
from edgegen.output_folder import atomic_folder
from edgegen.quantize.quantize import WeightGrid
from edgegen.reference.golden import run_golden
from edgegen.report.compression import StorageTable, markdown_table, storage_table
from edgegen.report.weight_plots import plot_weight_distributions
from edgegen.verify.compare import top1
from edgegen.zoo.train import Optimizer, Schedule, TrainStep, evaluate, train

ARTIFACT_NAME = "compressed.npz"


@dataclass(frozen=True)
class RetrainRecipe:
    """How pruned and shared models are retrained (the user's loop replaces it
    through the Python API).

    Pruning rounds retrain with SGD at about half the zoo's from-scratch rate:
    on Fashion-MNIST that is what kept LeNet-300-100 within half a point at the
    paper's sparsities. Centroid fine-tuning uses Adam at a small rate: a
    centroid's gradient sums over its whole cluster, and SGD at the retraining
    rate blew the model up (-36 points) in those experiments."""

    lr: float = 0.04
    optimizer: Optimizer = Optimizer.SGD
    schedule: Schedule = Schedule.COSINE
    batch_size: int = 128
    weight_decay: float = 0.0
    finetune_lr: float = 1e-4
    finetune_optimizer: Optimizer = Optimizer.ADAM


@dataclass
class CompressOutcome:
    compressed: CompressedModel
    qgraph: QGraph
    storage: StorageTable
    float_accuracy: float | None  # None: unlabelled data
    int8_accuracy: float | None
    seconds: float


def dataset_train_fn(dataset: Dataset, recipe: RetrainRecipe, seed: int, progress: bool = True,
                     step: TrainStep | None = None):
    """``train_fn(model, epochs)`` for ``compress``: retraining while pruning,
    fine-tuning once the model carries codebooks; ``step`` gives the loss
    (default: cross-entropy on the labels)."""
    def train_fn(model: nn.Module, epochs: int) -> None:
        finetuning = bool(shared_layers(model))
        train(model, dataset, epochs=epochs,
              lr=recipe.finetune_lr if finetuning else recipe.lr,
              optimizer=recipe.finetune_optimizer if finetuning else recipe.optimizer,
              schedule=recipe.schedule, batch_size=recipe.batch_size,
              weight_decay=recipe.weight_decay, seed=seed, progress=progress, step=step)
    return train_fn


def dataset_eval_fn(dataset: Dataset, limit: int | None = None):
    return lambda model: evaluate(model, dataset, limit=limit)


def int8_accuracy(qgraph: QGraph, dataset: Dataset) -> float | None:
    """Top-1 of the int8 golden model on the whole test set: what ships
    (``None`` for unlabelled data)."""
    if dataset.test_labels is None:
        return None
    return top1(run_golden(qgraph, int8_inputs(qgraph, dataset, dataset.test_inputs)),
                dataset.test_labels)


def measure(compressed: CompressedModel, name: str, dataset: Dataset,
            options: QuantizeOptions = QuantizeOptions()) -> tuple[QGraph, StorageTable, float]:
    grids = {layer.name: WeightGrid(layer.scale, layer.codebook_q)
             for layer in compressed.layers if layer.codebook_q is not None}
    qgraph = quantize_model(compressed.model, name, dataset, options, grids)
    return qgraph, storage_table(qgraph), int8_accuracy(qgraph, dataset)


def run_compress(model: nn.Module, name: str, source: dict, dataset: Dataset, spec: CompressSpec,
                 out: Path, *, recipe: RetrainRecipe = RetrainRecipe(), force: bool = False,
                 sensitivity: bool = False, filter_sensitivity: bool = False,
                 progress: bool = True, inputs: tuple[Path, ...] = (),
                 quantize_options: QuantizeOptions = QuantizeOptions(),
                 step: TrainStep | None = None, log=print) -> CompressOutcome:
    """Compress into the folder ``out``; with ``sensitivity``, first scan how
    each layer alone tolerates pruning (sensitivity.md and .png), with
    ``filter_sensitivity`` how it tolerates losing filters
    (filter_sensitivity.md and .png). ``out`` may not hold ``inputs``;
    ``force`` replaces only a folder edgegen wrote. ``quantize_options``:
    how the compressed model is measured in int8; ``step``: the training loss
    (default: cross-entropy on the labels)."""
    if (sensitivity or filter_sensitivity) and not dataset.has_labels:
        raise UserError(f"a sensitivity scan measures accuracy, and data set {dataset.name} has "
                        "no labels: give y_train and y_test, or leave out --sensitivity and "
                        "--filter-sensitivity")
    started = time.perf_counter()
    example_input = torch.zeros(model_input_shape(dataset))
    with atomic_folder(out, force, inputs) as folder:
        if sensitivity:
            scan = scan_sensitivity(model, dataset_eval_fn(dataset), progress=progress)
            write_sensitivity_report(scan, folder)
            log(f"sensitivity scan written to {out / 'sensitivity.md'}")
        if filter_sensitivity:
            scan = scan_filter_sensitivity(model, dataset_eval_fn(dataset), example_input,
                                           progress=progress)
            write_sensitivity_report(scan, folder, stem="filter_sensitivity")
            log(f"filter sensitivity scan written to {out / 'filter_sensitivity.md'}")
        train_fn = dataset_train_fn(dataset, recipe, spec.seed, progress, step)
        compressed = compress(model, spec, train_fn=train_fn, eval_fn=dataset_eval_fn(dataset),
                              progress=progress, log=log, example_input=example_input)
        qgraph, storage, acc8 = measure(compressed, name, dataset, quantize_options)
        outcome = CompressOutcome(compressed, qgraph, storage,
                                  compressed.stage_accuracy["baseline"], acc8,
                                  time.perf_counter() - started)
        save_compressed(folder / ARTIFACT_NAME, artifact_of(
            compressed, source, {"dataset": dataset.name, "int8_accuracy": acc8}))
        # "before pruning" is the original weights of the filters that filter pruning kept
        before = model if compressed.filters is None else apply_kept_filters(model, compressed.filters)
        plots = plot_weight_distributions(before, compressed, folder / "plots")
        write_compress_report(folder, name, outcome, plots)
    return outcome


def write_compress_report(folder: Path, name: str, outcome: CompressOutcome, plots: list[Path]) -> None:
    s = outcome.storage
    if outcome.float_accuracy is None or outcome.int8_accuracy is None:
        accuracy = "Accuracy not measured: the data set has no labels."
    else:
        accuracy = (
            f"Accuracy on the whole test set: float model before compression "
            f"{100 * outcome.float_accuracy:.2f} %, compressed int8 golden model "
            f"{100 * outcome.int8_accuracy:.2f} % "
            f"({100 * (outcome.int8_accuracy - outcome.float_accuracy):+.2f} points).")
    lines = [
        f"# {name}: Deep Compression",
        "",
        f"{accuracy} Compression took {outcome.seconds:.0f} s.",
        "",
        "## Stages",
        "",
        outcome.compressed.summary(),
        "## Storage (bits measured by encoding the int8 weights that ship)",
        "",
        markdown_table(s),
        "",
        "## Weight distributions",
        "",
        *[f"![{p.stem}](plots/{p.name})" for p in plots],
        "",
    ]
    (folder / "report.md").write_text("\n".join(lines))
    report = {
        "model": name,
        "float_accuracy": outcome.float_accuracy,
        "int8_accuracy": outcome.int8_accuracy,
        "stage_accuracy": outcome.compressed.stage_accuracy,
        "stage_seconds": outcome.compressed.stage_seconds,
        "storage": s.as_dict(),
        "seconds": outcome.seconds,
    }
    (folder / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
