"""Trained quantization by weight sharing (Deep Compression §3).

Per layer, in order:

1. ``kmeans_1d`` clusters the surviving weights (pruned ones take no part)
   into ``2^bits - 1`` centroids, deterministically for a seed;
2. ``share_weights`` turns each layer's weight into a function of its
   codebook, ``weight = where(mask, codebook[indices], 0)``. The codebook has
   ``2^bits`` slots: slot 0 is reserved, holds 0.0 and is used by no
   surviving weight (edgegen.encode's filler slot, ``DEFAULT_FILLER_INDEX``);
   slots ``1..2^bits-1`` hold the centroids. ``indices`` has the weight's
   shape, 0 at pruned positions;
3. ``finetune_centroids`` trains the model with the caller's loop. Autograd
   through the gather sums the gradients of all weights of a cluster into
   its centroid — exactly the paper's update rule — while pruned weights and
   slot 0 get zero gradient;
4. ``snap_codebooks`` moves every centroid onto the int8 grid of one
   per-layer scale ``s = max|centroid| / 127``: ``q = round(c / s)`` in
   [-127, 127], ``c := s * q`` in float32, so the float model's weights are
   exactly ``s * q[indices]`` and a symmetric int8 quantizer given ``s``
   reproduces ``q``;
5. ``remove_sharing`` bakes the codebooks into plain weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from edgegen.compress.prune import (
    MaskedWeight,
    TrainFn,
    mask_of,
    parametrization_of,
    remove_mask,
    weight_layer,
)
from edgegen.compress.spec import WEIGHT_LAYERS, KMeansInit, ShareSpec

FILLER_SLOT = 0  # edgegen.encode.DEFAULT_FILLER_INDEX: holds 0, used by no survivor
INT8_WEIGHT_MAX = 127  # symmetric int8 weights, as edgegen.quantize (WEIGHT_QMAX)
KMEANS_MAX_ITERATIONS = 300


# --- k-means in one dimension -----------------------------------------------


def initial_centroids(values: np.ndarray, clusters: int, init: KMeansInit, seed: int) -> np.ndarray:
    """Starting centroids, sorted ascending, for ``values`` (float64, non-empty)."""
    if init is KMeansInit.LINEAR:
        return np.linspace(values.min(), values.max(), clusters)
    if init is KMeansInit.DENSITY:
        # Equal steps along the empirical CDF, read back as weight values.
        return np.quantile(values, np.linspace(0.0, 1.0, clusters))
    if init is KMeansInit.RANDOM:
        rng = np.random.default_rng(seed)
        chosen = rng.choice(values, size=clusters, replace=values.size < clusters)
        return np.sort(chosen)
    raise ValueError(f"unknown k-means initialisation {init!r}")


def _nearest(values: np.ndarray, sorted_centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid; a value halfway between two goes to the lower."""
    midpoints = (sorted_centroids[:-1] + sorted_centroids[1:]) / 2.0
    return np.searchsorted(midpoints, values, side="left")


def kmeans_1d(
    values: np.ndarray,
    clusters: int,
    *,
    init: KMeansInit = KMeansInit.LINEAR,
    seed: int = 0,
    max_iterations: int = KMEANS_MAX_ITERATIONS,
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means of scalar ``values``: ``(centroids, labels)``.

    ``centroids`` float64, sorted ascending (``clusters`` of them);
    ``labels[i]`` is the centroid of ``values[i]``. In one dimension each
    cluster is an interval, so assignment is a binary search among the
    midpoints and the result depends on nothing but the inputs and ``seed``.
    A centroid that loses all its values stays where it is (an unused slot).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("k-means needs at least one value")
    if clusters < 1:
        raise ValueError(f"k-means needs at least one cluster, got {clusters}")
    centroids = initial_centroids(values, clusters, init, seed)
    labels = _nearest(values, centroids)
    for _ in range(max_iterations):
        sums = np.bincount(labels, weights=values, minlength=clusters)
        counts = np.bincount(labels, minlength=clusters)
        moved = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        # Means of consecutive intervals stay ordered; sorting guards the ties.
        centroids = np.sort(moved)
        new_labels = _nearest(values, centroids)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return centroids, labels


# --- codebook-parametrized weights -------------------------------------------


@dataclass(frozen=True, eq=False)
class SharedLayer:
    """One layer's shared weights: ``weight = where(mask, codebook[indices], 0)``."""

    codebook: torch.Tensor  # float32 [2^bits]; codebook[0] == 0 (the filler slot)
    indices: torch.Tensor  # int64, the weight's shape; 0 exactly where pruned
    mask: torch.Tensor  # bool, the weight's shape; True = survives
    bits: int

    def weight(self) -> torch.Tensor:
        return torch.where(self.mask, self.codebook[self.indices], torch.zeros((), dtype=torch.float32))


def cluster_layer(weight: torch.Tensor, mask: torch.Tensor, spec: ShareSpec, *, seed: int = 0) -> SharedLayer:
    """k-means over the surviving weights of one layer (pure: ``weight`` is untouched)."""
    if mask.shape != weight.shape or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor of shape {tuple(weight.shape)}")
    mask = mask.detach().cpu()
    codebook = torch.zeros(1 << spec.bits, dtype=torch.float32)
    indices = torch.zeros(weight.shape, dtype=torch.int64)
    survivors = weight.detach().cpu().to(torch.float64)[mask].numpy()
    if survivors.size:
        centroids, labels = kmeans_1d(survivors, spec.clusters, init=spec.init, seed=seed)
        codebook[1:] = torch.from_numpy(centroids).to(torch.float32)
        indices[mask] = torch.from_numpy(labels).to(torch.int64) + 1  # slot 0 is the filler's
    return SharedLayer(codebook=codebook, indices=indices, mask=mask.clone(), bits=spec.bits)


class CodebookWeight(nn.Module):
    """Parametrization ``weight = where(mask, codebook[indices], 0)`` over a codebook.

    The parameter torch stores (``parametrizations.weight.original``) is the
    codebook, ``2^bits`` floats. The gather's backward adds every weight's
    gradient into its centroid (the paper's rule); ``where`` gives pruned
    positions, the only users of slot 0, a zero gradient.
    """

    def __init__(self, indices: torch.Tensor, mask: torch.Tensor, bits: int) -> None:
        super().__init__()
        self.bits = bits
        self.register_buffer("indices", indices.clone())
        self.register_buffer("mask", mask.clone())

    def forward(self, codebook: torch.Tensor) -> torch.Tensor:
        # index_select, not codebook[indices]: its backward (index_add) is ~10x
        # faster on the CPU than advanced indexing's accumulate, same sums.
        gathered = codebook.index_select(0, self.indices.flatten()).view(self.indices.shape)
        return torch.where(self.mask, gathered, torch.zeros((), dtype=codebook.dtype))

    @torch.no_grad()
    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        """The codebook closest to ``weight``: each slot the mean of its weights.

        Summed in float64, so weights already equal to a float32 centroid give
        back that centroid exactly. Slot 0 and unused slots are 0.
        """
        slots = 1 << self.bits
        survivors = self.mask.flatten()
        chosen = self.indices.flatten()[survivors]
        values = weight.detach().flatten()[survivors].to(torch.float64)
        sums = torch.zeros(slots, dtype=torch.float64, device=weight.device).index_add_(0, chosen, values)
        counts = torch.bincount(chosen, minlength=slots)
        codebook = torch.where(counts > 0, sums / counts.clamp(min=1), 0.0)
        codebook[FILLER_SLOT] = 0.0
        return codebook.to(weight.dtype)


def attach_codebook(module: nn.Module, shared: SharedLayer) -> None:
    """Make ``module.weight`` a function of ``shared.codebook`` (a trainable parameter)."""
    if shared.indices.shape != module.weight.shape:
        raise ValueError(
            f"indices of shape {tuple(shared.indices.shape)} do not fit a weight of "
            f"shape {tuple(module.weight.shape)}"
        )
    if parametrize.is_parametrized(module, "weight"):
        raise ValueError("remove the layer's mask or codebook before attaching a new codebook")
    device = module.weight.device
    parametrize.register_parametrization(
        module,
        "weight",
        CodebookWeight(shared.indices.to(device), shared.mask.to(device), shared.bits),
    )
    codebook = module.parametrizations.weight.original
    with torch.no_grad():
        codebook.copy_(shared.codebook)
    codebook.grad = None  # torch may reuse the weight's tensor: a stale gradient has the wrong shape


def share_weights(
    model: nn.Module,
    specs: Mapping[str, ShareSpec],
    *,
    masks: Mapping[str, torch.Tensor] | None = None,
    seed: int = 0,
) -> dict[str, SharedLayer]:
    """Cluster and attach a codebook to each named layer of ``model`` (in place).

    A layer's survivors are given by ``masks[name]``, else by the mask
    enforced on it (``edgegen.compress.prune``), else all its weights.
    An enforced mask is replaced by the codebook, which carries it on.
    Returns each layer's state right after clustering.
    """
    shared = {}
    for name, spec in specs.items():
        module = weight_layer(model, name)
        mask = masks[name] if masks is not None and name in masks else mask_of(module)
        if mask is None:
            mask = torch.ones(module.weight.shape, dtype=torch.bool)
        remove_mask(module)
        shared[name] = cluster_layer(module.weight, mask, spec, seed=seed)
        attach_codebook(module, shared[name])
    return shared


def codebook_parameter(module: nn.Module) -> nn.Parameter:
    """The trainable codebook behind ``module.weight``."""
    if parametrization_of(module, CodebookWeight) is None:
        raise ValueError(f"{type(module).__name__} has no codebook attached (call share_weights)")
    return module.parametrizations.weight.original


def codebook_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every attached codebook of ``model``: for an optimizer parameter group.

    A centroid's gradient sums over its whole cluster (thousands of weights
    in a large layer), so with SGD it usually needs a far smaller learning
    rate than the other parameters.
    """
    return [
        codebook_parameter(module)
        for module in model.modules()
        if isinstance(module, WEIGHT_LAYERS) and parametrization_of(module, CodebookWeight) is not None
    ]


def shared_layers(model: nn.Module) -> dict[str, SharedLayer]:
    """The current state of every codebook-shared layer of ``model``, by name."""
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, WEIGHT_LAYERS):
            sharing = parametrization_of(module, CodebookWeight)
            if sharing is not None:
                found[name] = SharedLayer(
                    codebook=codebook_parameter(module).detach().cpu().clone(),
                    indices=sharing.indices.cpu().clone(),
                    mask=sharing.mask.cpu().clone(),
                    bits=sharing.bits,
                )
    return found


def finetune_centroids(model: nn.Module, train_fn: TrainFn, epochs: int) -> None:
    """Train the codebooks (and every other parameter) with ``train_fn``.

    Pruned weights stay 0 and slot 0 gets no gradient; a layer that is pruned
    but not shared keeps its enforced mask. A centroid's gradient is the sum
    over its cluster, so plain SGD at the pruning-retrain rate diverges:
    ``train_fn`` should use a far smaller rate or Adam for this stage
    (``shared_layers(model)`` is non-empty exactly then;
    ``codebook_parameters(model)`` gives the codebooks for a parameter group).
    """
    if epochs > 0:
        train_fn(model, epochs)


# --- the int8 grid -----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SnappedCodebook:
    """A codebook on the int8 grid: centroid ``k`` is ``scale * q[k]``."""

    scale: float  # a float32 value, > 0
    q: np.ndarray  # int8 [2^bits], in [-127, 127]; q[0] == 0

    def values(self) -> torch.Tensor:
        """The float32 centroids ``scale * q``, rounded once, as the model uses them."""
        return torch.tensor(self.scale, dtype=torch.float32) * torch.from_numpy(self.q.astype(np.float32))


def _round_half_away(x: np.ndarray) -> np.ndarray:
    # C's round(), as edgegen.quantize rounds weights (numpy's round is half-to-even).
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def snap_codebook(codebook: torch.Tensor, used: torch.Tensor) -> SnappedCodebook:
    """The int8 grid point of every used centroid; unused slots and slot 0 get q = 0.

    ``s = max|used centroid| / 127``, rounded to float32 so that Python, torch
    and C agree on its value. A used centroid never snaps to 0 (it goes to
    ±1 instead): surviving weights stay nonzero, so ``weight != 0`` still
    tells survivors from pruned weights.
    """
    centroids = codebook.detach().cpu().to(torch.float64).numpy()
    used = used.detach().cpu().numpy().astype(bool)
    used[FILLER_SLOT] = False
    largest = float(np.abs(centroids[used]).max(initial=0.0))
    scale = float(np.float32(largest / INT8_WEIGHT_MAX)) if largest > 0 else 1.0
    magnitude = np.clip(_round_half_away(np.abs(centroids) / scale), 1, INT8_WEIGHT_MAX)
    q = np.where(used, np.sign(centroids) * magnitude, 0.0)
    return SnappedCodebook(scale=scale, q=q.astype(np.int8))


def used_slots(shared: SharedLayer) -> torch.Tensor:
    """bool [2^bits]: which codebook slots some surviving weight uses."""
    return torch.bincount(shared.indices[shared.mask], minlength=1 << shared.bits) > 0


def snap_codebooks(model: nn.Module) -> dict[str, SnappedCodebook]:
    """Move every attached codebook of ``model`` onto its int8 grid (in place)."""
    snapped = {}
    for name, shared in shared_layers(model).items():
        snapped[name] = snap_codebook(shared.codebook, used_slots(shared))
        parameter = codebook_parameter(weight_layer(model, name))
        with torch.no_grad():
            parameter.copy_(snapped[name].values().to(parameter.device))
    return snapped


def remove_sharing(model: nn.Module) -> None:
    """Bake every codebook (and any remaining mask) into a plain weight."""
    for module in model.modules():
        if isinstance(module, WEIGHT_LAYERS) and parametrize.is_parametrized(module, "weight"):
            kinds = [type(p) for p in module.parametrizations.weight]
            if kinds not in ([CodebookWeight], [MaskedWeight]):
                raise ValueError(f"unexpected parametrizations on a weight: {kinds}")
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            module.weight.grad = None  # the codebook's gradient, of the codebook's shape
