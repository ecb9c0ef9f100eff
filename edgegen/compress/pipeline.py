"""``compress(model, spec)``: filter prune → fine-tune → prune → fold the
BatchNorms of shared convolutions → share → fine-tune centroids → snap to int8.

One pure call (the caller's model is copied, never modified) that runs the
method of every spec type in ``METHODS`` — the registry from spec type to
implementation — over the layers that ask for it, evaluates after each stage
and returns a ``CompressedModel``: plain float weights that are exactly the
pruned, shared, int8-snapped values, plus per layer the mask, codebook
indices, int8 codebook and scale that edgegen.quantize and edgegen.encode
consume. Filter pruning (``spec.filters``) comes first: it swaps in a
smaller dense model, which every later stage then works on (the layers
keep their names), and what it kept travels in ``CompressedModel.filters``.
A BatchNorm after a shared convolution is folded into it before sharing, so
the codebook holds the weights that ship (``CompressedModel.folds``).
Callers with their own loop can run the same steps themselves:
``prune_filters``, ``iterative_prune``, ``fold_batchnorms``, ``share_weights``,
``finetune_centroids``, ``snap_codebooks``, ``remove_sharing``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from edgegen.compress.filter_prune import KeptFilters, prune_filters
from edgegen.compress.fold_batchnorm import Fold, conv_batchnorm_pairs, fold_batchnorms
from edgegen.compress.prune import TrainFn, iterative_prune, mask_of, masks_of, weight_layer
from edgegen.compress.sensitivity import EvalFn
from edgegen.compress.share import (
    SnappedCodebook,
    finetune_centroids,
    remove_sharing,
    share_weights,
    shared_layers,
    snap_codebooks,
)
from edgegen.compress.spec import CompressSpec, FilterPruneSpec, PruneSpec, ShareSpec, layer_kind


@dataclass(frozen=True, eq=False)
class LayerCompression:
    """One compressed layer, arrays in torch layout (conv OIHW, fc (out, in)).

    For a layer without weight sharing ``indices``, ``codebook_q``, ``scale``
    and ``bits`` are None (edgegen.quantize then quantizes it densely).
    """

    name: str
    kind: str  # "conv" | "fc"
    weight_shape: tuple[int, ...]
    mask: np.ndarray  # bool, True = survives
    indices: np.ndarray | None  # int64 into codebook_q; 0 exactly where pruned
    codebook_q: np.ndarray | None  # int8 [2^bits], in [-127, 127], codebook_q[0] == 0
    scale: float | None  # per-tensor weight scale: weight == scale * codebook_q[indices]
    bits: int | None

    @property
    def sparsity(self) -> float:
        return 1.0 - np.count_nonzero(self.mask) / self.mask.size

    def shared_weight(self) -> np.ndarray:
        """float32 ``scale * codebook_q[indices]``, as the compressed model holds it."""
        if self.codebook_q is None:
            raise ValueError(f"layer {self.name!r} is not weight-shared")
        centroids = np.float32(self.scale) * self.codebook_q.astype(np.float32)
        return centroids[self.indices]


@dataclass(frozen=True, eq=False)
class CompressedModel:
    """The result of ``compress``."""

    model: nn.Module  # plain weights, exactly the pruned and shared values; eval mode
    layers: tuple[LayerCompression, ...]
    stage_accuracy: dict[str, float | None]  # eval_fn after each stage, "baseline" first;
    # None where eval_fn could not measure it (unlabelled data)
    spec: CompressSpec
    stage_seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage
    filters: KeptFilters | None = None  # what filter pruning kept, None without it
    folds: tuple[Fold, ...] = ()  # (conv, BatchNorm) pairs folded before weight sharing

    def layer(self, name: str) -> LayerCompression:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no compressed layer named {name!r}")

    def summary(self) -> str:
        """Markdown: accuracy and time per stage, then sparsity and bits per layer."""
        baseline = self.stage_accuracy.get("baseline")
        lines = ["| stage | accuracy | change | seconds |", "|---|---:|---:|---:|"]
        for stage, accuracy in self.stage_accuracy.items():
            measured = accuracy is not None and baseline is not None
            change = f"{100 * (accuracy - baseline):+.2f} pts" if measured else ""
            shown = "n/a" if accuracy is None else f"{accuracy:.4f}"
            lines.append(f"| {stage} | {shown} | {change} | {self.stage_seconds.get(stage, 0.0):.1f} |")
        lines += ["", "| layer | kind | weights | pruned | bits | scale |", "|---|---|---:|---:|---:|---:|"]
        for layer in self.layers:
            bits = "" if layer.bits is None else str(layer.bits)
            scale = "" if layer.scale is None else f"{layer.scale:.6g}"
            lines.append(
                f"| {layer.name} | {layer.kind} | {layer.mask.size} | {layer.sparsity:.1%} | {bits} | {scale} |"
            )
        if self.filters is not None:
            kept = ", ".join(f"{name} {len(indices)}" for name, indices in self.filters.layers)
            lines += ["", f"Filters (output channels) left after filter pruning: {kept or 'all'}."]
        if self.folds:
            folded = ", ".join(f"{norm} into {conv}" for conv, norm in self.folds)
            lines += ["", f"BatchNorm folded before weight sharing: {folded}."]
        return "\n".join(lines) + "\n"


@dataclass
class _Run:
    """The working state of one ``compress`` call."""

    model: nn.Module
    spec: CompressSpec
    train_fn: TrainFn
    eval_fn: EvalFn
    progress: bool
    log: Callable[[str], None]
    example_input: torch.Tensor | None = None
    filters: KeptFilters | None = None
    folds: tuple[Fold, ...] = ()
    accuracy: dict[str, float | None] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    snapped: dict[str, SnappedCodebook] = field(default_factory=dict)

    def finish_stage(self, stage: str, started: float) -> None:
        """Record time and accuracy of a stage and log one summary line."""
        self.seconds[stage] = time.perf_counter() - started
        measured = self.eval_fn(self.model)
        self.accuracy[stage] = None if measured is None else float(measured)
        baseline = self.accuracy.get("baseline")
        change = ""
        if baseline is not None and measured is not None and stage != "baseline":
            change = f" ({100 * (measured - baseline):+.2f} pts)"
        pruned = ", ".join(f"{name} {value:.1%}" for name, value in _layer_sparsity(self.model, self.spec).items())
        shown = "n/a (no labels)" if measured is None else f"{measured:.4f}"
        self.log(
            f"[compress] {stage:<9} accuracy {shown}{change}  "
            f"{self.seconds[stage]:.1f} s  pruned: {pruned}"
        )


def _layer_sparsity(model: nn.Module, spec: CompressSpec) -> dict[str, float]:
    masks = {**masks_of(model), **{n: s.mask for n, s in shared_layers(model).items()}}
    return {
        name: 1.0 - masks[name].count_nonzero().item() / masks[name].numel() if name in masks else 0.0
        for name, _ in spec.layers
    }


# --- the registry: spec type → stage ----------------------------------------


def _run_filter_pruning(spec: FilterPruneSpec, run: _Run) -> None:
    if run.example_input is None:
        raise ValueError("filter pruning needs compress(..., example_input=...) to trace the model's channels")
    started = time.perf_counter()
    pruned = prune_filters(run.model, run.example_input, ratios=spec.ratio_dict(), params=spec.params)
    run.model, run.filters = pruned.model, pruned.kept
    lost = ", ".join(f"{group.name} -{count}/{group.units + 1}" for group, count in pruned.groups if count)
    run.log(f"[compress] filters removed: {lost or 'none'}")
    run.finish_stage("filters", started)
    if spec.finetune_epochs > 0:
        started = time.perf_counter()
        run.train_fn(run.model, spec.finetune_epochs)
        run.finish_stage("filter-ft", started)


def _run_pruning(specs: Mapping[str, PruneSpec], run: _Run) -> None:
    started = time.perf_counter()
    iterative_prune(
        run.model,
        specs,
        run.train_fn,
        steps=run.spec.prune_steps,
        epochs_per_step=run.spec.retrain_epochs,
        progress=run.progress,
    )
    run.finish_stage("prune", started)


def _run_sharing(specs: Mapping[str, ShareSpec], run: _Run) -> None:
    started = time.perf_counter()
    # A BatchNorm folded after sharing would scale the filters off their
    # codebook: fold it first, and share the weights that will ship.
    run.folds = tuple(fold for fold in conv_batchnorm_pairs(run.model) if fold[0] in specs)
    if run.folds:
        fold_batchnorms(run.model, run.folds)
        run.log("[compress] BatchNorm folded before sharing: "
                + ", ".join(f"{norm} into {conv}" for conv, norm in run.folds))
    share_weights(run.model, specs, seed=run.spec.seed)
    run.finish_stage("share", started)
    if run.spec.finetune_epochs > 0:
        started = time.perf_counter()
        finetune_centroids(run.model, run.train_fn, run.spec.finetune_epochs)
        run.finish_stage("finetune", started)
    started = time.perf_counter()
    run.snapped = snap_codebooks(run.model)
    run.finish_stage("snap", started)


StageFn = Callable[[Mapping[str, Any], _Run], None]

METHODS: dict[type, StageFn] = {
    PruneSpec: _run_pruning,
    ShareSpec: _run_sharing,
}
"""Spec type → the stage applying it; ``compress`` runs them in this order."""


def compress(
    model: nn.Module,
    spec: CompressSpec,
    *,
    train_fn: TrainFn,
    eval_fn: EvalFn,
    progress: bool = True,
    log: Callable[[str], None] = print,
    example_input: torch.Tensor | None = None,
) -> CompressedModel:
    """Compress a copy of ``model`` as ``spec`` says; ``model`` is left as it was.

    ``train_fn(model, epochs)`` retrains in place (it must build its optimizer
    from ``model.parameters()`` on each call); ``eval_fn(model)`` returns the
    accuracy logged after each stage. ``log`` receives one line per stage.
    ``example_input``: one input batch, needed by filter pruning to trace
    which channels depend on which.
    """
    spec.check_model(model)
    run = _Run(copy.deepcopy(model), spec, train_fn, eval_fn, progress, log, example_input)
    started = time.perf_counter()
    run.finish_stage("baseline", started)
    if spec.filters is not None:
        _run_filter_pruning(spec.filters, run)
    for spec_type, stage in METHODS.items():
        per_layer = {
            name: method
            for name, layer in spec.layers
            for method in layer.methods()
            if type(method) is spec_type
        }
        if per_layer:
            stage(per_layer, run)
    layers = _collect_layers(run)
    remove_sharing(run.model)
    return CompressedModel(
        model=run.model.eval(),
        layers=layers,
        stage_accuracy=dict(run.accuracy),
        spec=spec,
        stage_seconds=dict(run.seconds),
        filters=run.filters,
        folds=run.folds,
    )


def _collect_layers(run: _Run) -> tuple[LayerCompression, ...]:
    """Read masks, indices and codebooks off the model before they are baked."""
    shared = shared_layers(run.model)
    layers = []
    for name, _ in run.spec.layers:
        module = weight_layer(run.model, name)
        shape = tuple(module.weight.shape)
        if name in shared:
            snapped = run.snapped[name]
            layers.append(
                LayerCompression(
                    name=name,
                    kind=layer_kind(module),
                    weight_shape=shape,
                    mask=shared[name].mask.numpy().copy(),
                    indices=shared[name].indices.numpy().astype(np.int64),
                    codebook_q=snapped.q.copy(),
                    scale=snapped.scale,
                    bits=shared[name].bits,
                )
            )
        else:
            mask = mask_of(module)
            if mask is None:
                mask = torch.ones(shape, dtype=torch.bool)
            layers.append(
                LayerCompression(
                    name=name,
                    kind=layer_kind(module),
                    weight_shape=shape,
                    mask=mask.cpu().numpy().copy(),
                    indices=None,
                    codebook_q=None,
                    scale=None,
                    bits=None,
                )
            )
    return tuple(layers)
