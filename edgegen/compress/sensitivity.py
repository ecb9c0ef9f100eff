"""Per-layer pruning sensitivity (Han et al. 2015, Figure 5).

``scan_sensitivity`` prunes one layer at a time to each sparsity of a grid,
without retraining, and records the accuracy the caller's ``eval_fn``
reports; every other layer keeps its weights. The scan tells which layers
tolerate heavy pruning: ``sparsities_for_budget`` turns it into per-layer
target sparsities for ``default_spec(model, sparsity=...)``.

``scan_filter_sensitivity`` does the same for filter pruning (Li et al.
2017, Figure 2(b)): each group of layers alone loses a fraction of its
filters, smallest L1 norm first, without fine-tuning; the same
``sparsities_for_budget`` turns it into ratios for ``FilterPruneSpec``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from edgegen.compress.filter_prune import FilterPruner
from edgegen.compress.prune import magnitude_mask, weight_layer
from edgegen.compress.share import remove_sharing
from edgegen.compress.spec import PruneSpec, weight_layers

# Top-1 accuracy of a model, or None where it cannot be measured (no labels).
EvalFn = Callable[[nn.Module], "float | None"]
"""The user's evaluation: ``eval_fn(model)`` → accuracy (any unit, e.g. a fraction)."""

DEFAULT_SPARSITIES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
DEFAULT_FILTER_RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

# What the fractions of a scan are, by its ``axis``: table column, plot axis, title.
_AXES = {
    "sparsity": ("sparsity", "parameters pruned away (%)", "Pruning sensitivity"),
    "filters": ("filters removed", "filters removed (%)", "Filter pruning sensitivity"),
}


@dataclass(frozen=True)
class SensitivityRow:
    layer: str
    sparsity: float
    accuracy: float


@dataclass(frozen=True)
class SensitivityScan:
    """Accuracy of the model with one layer pruned, per layer and sparsity
    (``axis`` "sparsity": weights; "filters": whole filters of the layer's group)."""

    baseline: float  # accuracy of the unpruned model
    sparsities: tuple[float, ...]
    layers: tuple[str, ...]
    accuracy: tuple[tuple[float, ...], ...]  # [layer][sparsity]
    axis: str = "sparsity"

    def __post_init__(self) -> None:
        if self.axis not in _AXES:
            raise ValueError(f"SensitivityScan.axis must be one of {', '.join(_AXES)}, got {self.axis!r}")

    @property
    def title(self) -> str:
        return _AXES[self.axis][2]

    def rows(self) -> list[SensitivityRow]:
        """The table as one row per (layer, sparsity), layers in model order."""
        return [
            SensitivityRow(layer, sparsity, accuracy)
            for layer, accuracies in zip(self.layers, self.accuracy)
            for sparsity, accuracy in zip(self.sparsities, accuracies)
        ]

    def as_dict(self) -> dict[str, dict[float, float]]:
        """``{layer: {sparsity: accuracy}}``."""
        return {
            layer: dict(zip(self.sparsities, accuracies))
            for layer, accuracies in zip(self.layers, self.accuracy)
        }

    def to_markdown(self) -> str:
        """A table: one row per sparsity, one accuracy column per layer."""
        header = f"| {_AXES[self.axis][0]} | " + " | ".join(self.layers) + " |"
        rule = "|---:|" + "---:|" * len(self.layers)
        lines = [f"Baseline accuracy: {self.baseline:.4f}", "", header, rule]
        for column, sparsity in enumerate(self.sparsities):
            cells = " | ".join(f"{self.accuracy[row][column]:.4f}" for row in range(len(self.layers)))
            lines.append(f"| {sparsity:.0%} | {cells} |")
        return "\n".join(lines) + "\n"


def scan_sensitivity(
    model: nn.Module,
    eval_fn: EvalFn,
    *,
    layers: Sequence[str] | None = None,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    progress: bool = True,
) -> SensitivityScan:
    """Prune each of ``layers`` (default: every Conv2d and Linear) alone to each
    of ``sparsities`` by magnitude and evaluate; ``model`` itself is untouched."""
    if not sparsities:
        raise ValueError("give at least one sparsity to scan")
    for sparsity in sparsities:
        PruneSpec(sparsity=sparsity)  # validates the value
    probe = copy.deepcopy(model)
    remove_sharing(probe)  # scan the weights as they are, masks or codebooks baked in
    names = tuple(layers) if layers is not None else tuple(name for name, _ in weight_layers(probe))
    baseline = eval_fn(probe)
    table = []
    bar = tqdm(total=len(names) * len(sparsities), desc="sensitivity", unit="eval", disable=not progress)
    for name in names:
        module = weight_layer(probe, name)
        original = module.weight.detach().clone()
        accuracies = []
        for sparsity in sparsities:
            mask = magnitude_mask(original, PruneSpec(sparsity=sparsity))
            with torch.no_grad():
                module.weight.copy_(torch.where(mask, original, 0.0))
            accuracies.append(float(eval_fn(probe)))
            bar.update()
        with torch.no_grad():
            module.weight.copy_(original)
        table.append(tuple(accuracies))
    bar.close()
    return SensitivityScan(
        baseline=float(baseline), sparsities=tuple(float(s) for s in sparsities), layers=names, accuracy=tuple(table)
    )


def scan_filter_sensitivity(
    model: nn.Module,
    eval_fn: EvalFn,
    example_input: torch.Tensor,
    *,
    layers: Sequence[str] | None = None,
    ratios: Sequence[float] = DEFAULT_FILTER_RATIOS,
    progress: bool = True,
) -> SensitivityScan:
    """Filter-prune each of ``layers`` (default: every prunable group, named by
    its first ranked layer) alone to each of ``ratios``, without fine-tuning,
    and evaluate; ``model`` itself is untouched."""
    if not ratios:
        raise ValueError("give at least one filter ratio to scan")
    for ratio in ratios:
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"filter ratios must be in [0, 1), got {ratio!r}")
    probe = copy.deepcopy(model)
    remove_sharing(probe)
    pruner = FilterPruner(probe, example_input)
    names = tuple(layers) if layers is not None else tuple(group.name for group in pruner.groups)
    baseline = eval_fn(probe)
    table = []
    bar = tqdm(total=len(names) * len(ratios), desc="filter sensitivity", unit="eval", disable=not progress)
    for name in names:
        accuracies = []
        for ratio in ratios:
            pruned = pruner.prune(ratios={name: ratio}).model
            accuracies.append(float(eval_fn(pruned)))
            bar.update()
        table.append(tuple(accuracies))
    bar.close()
    return SensitivityScan(baseline=float(baseline), sparsities=tuple(float(r) for r in ratios),
                           layers=names, accuracy=tuple(table), axis="filters")


def sparsities_for_budget(scan: SensitivityScan, max_drop: float) -> dict[str, float]:
    """Per layer, the largest scanned sparsity whose accuracy — and that of
    every lower sparsity — stays within ``max_drop`` of the baseline.

    ``max_drop`` is in ``eval_fn``'s unit (0.005 = half a point for a
    fraction). Each layer is judged alone: pruning all layers at once drops
    more, which the retraining of iterative pruning is there to win back.
    """
    if max_drop < 0:
        raise ValueError(f"max_drop must be >= 0, got {max_drop}")
    chosen = {}
    order = sorted(range(len(scan.sparsities)), key=lambda i: scan.sparsities[i])
    for layer, accuracies in zip(scan.layers, scan.accuracy):
        best = 0.0
        for i in order:
            if scan.baseline - accuracies[i] > max_drop:
                break
            best = scan.sparsities[i]
        chosen[layer] = best
    return chosen


def plot_sensitivity(scan: SensitivityScan, path: Path | str, *, title: str | None = None) -> Path:
    """Accuracy vs sparsity, one line per layer, as a PNG at ``path``."""
    # The Agg canvas directly: no pyplot, no global backend switched under the caller.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    percent = [100 * s for s in scan.sparsities]
    for layer, accuracies in zip(scan.layers, scan.accuracy):
        axes.plot(percent, accuracies, marker="o", markersize=3, label=layer)
    axes.axhline(scan.baseline, color="grey", linestyle=":", linewidth=1, label="baseline")
    axes.set_xlabel(_AXES[scan.axis][1])
    axes.set_ylabel("accuracy")
    axes.set_title(title or scan.title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    return path


def write_sensitivity_report(scan: SensitivityScan, directory: Path | str, *, stem: str = "sensitivity") -> tuple[Path, Path]:
    """Write ``<stem>.md`` (the table) and ``<stem>.png`` (the plot) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    markdown = directory / f"{stem}.md"
    markdown.write_text(f"# {scan.title}\n\n" + scan.to_markdown() + f"\n![plot]({stem}.png)\n")
    return markdown, plot_sensitivity(scan, directory / f"{stem}.png")
