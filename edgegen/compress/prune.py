"""Magnitude pruning (Han et al. 2015; Deep Compression §2).

Three layers of functions, each usable alone:

* ``magnitude_mask``: which weights of one tensor survive a ``PruneSpec``;
* ``apply_mask`` / ``remove_masks``: enforce a mask on a module while it
  trains — the forward pass sees ``where(mask, w, 0)``, so pruned weights are
  exactly 0 and receive exactly zero gradient whatever the optimizer does
  (momentum, weight decay, Adam) — then bake it into plain weights;
* ``iterative_prune``: prune → retrain rounds that reach each layer's target
  sparsity, with the caller's own training loop.

Masks are boolean tensors in the weight's (torch) shape, True = survives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize
from tqdm import tqdm

from edgegen.compress.spec import WEIGHT_LAYERS, PruneSpec

TrainFn = Callable[[nn.Module, int], None]
"""The user's training loop: ``train_fn(model, epochs)`` trains in place.

It must build its optimizer from ``model.parameters()`` on every call:
compression replaces weight tensors between calls.
"""


# --- which weights survive --------------------------------------------------


def quality_threshold(weight: torch.Tensor, quality: float) -> float:
    """``quality`` × the standard deviation of all of the layer's weights
    (torch's default, unbiased), computed in float64."""
    values = weight.detach().to(torch.float64).flatten()
    std = values.std().item() if values.numel() > 1 else 0.0
    return quality * std


def pruned_count(numel: int, sparsity: float) -> int:
    """How many of ``numel`` weights a target ``sparsity`` prunes: round half up."""
    return min(numel, math.floor(sparsity * numel + 0.5))


def magnitude_mask(
    weight: torch.Tensor, spec: PruneSpec, *, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """The weights of ``weight`` that survive ``spec``, as a bool tensor of its shape.

    Quality: exactly the weights with ``|w| > quality_threshold(weight)``.
    Sparsity: all but the ``pruned_count`` smallest magnitudes; among equal
    magnitudes the one earlier in row-major order is pruned first.
    ``keep``: an earlier mask; weights it prunes stay pruned (so masks of
    iterative pruning are nested), and for a sparsity they count toward it.
    """
    magnitude = weight.detach().abs().to(torch.float64)
    if keep is not None:
        if keep.shape != weight.shape or keep.dtype != torch.bool:
            raise ValueError(f"keep must be a bool tensor of shape {tuple(weight.shape)}")
        # Already-pruned weights rank below every magnitude, so they are chosen first.
        magnitude = torch.where(keep.to(weight.device), magnitude, -1.0)
    if spec.quality is not None:
        return magnitude > quality_threshold(weight, spec.quality)
    assert spec.sparsity is not None
    flat = magnitude.flatten()
    count = pruned_count(flat.numel(), spec.sparsity)
    order = torch.sort(flat, stable=True).indices  # ties keep row-major order
    survives = torch.ones_like(flat, dtype=torch.bool)
    survives[order[:count]] = False
    survives = survives.reshape(weight.shape)
    return survives if keep is None else survives & keep.to(weight.device)


def sparsity_of(mask: torch.Tensor) -> float:
    """Fraction of pruned weights."""
    return 1.0 - mask.count_nonzero().item() / mask.numel() if mask.numel() else 0.0


# --- enforcing masks during training ---------------------------------------


class MaskedWeight(nn.Module):
    """Parametrization ``weight = where(mask, original, 0)``.

    ``where`` (not a multiplication) gives +0.0 at pruned positions and a
    gradient of exactly 0 there, so no optimizer step can revive a pruned
    weight in the forward pass, whatever it does to the stored original.
    """

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return torch.where(self.mask, weight, torch.zeros((), dtype=weight.dtype))


def parametrization_of(module: nn.Module, kind: type) -> nn.Module | None:
    """The parametrization of type ``kind`` on ``module.weight``, or None."""
    if not parametrize.is_parametrized(module, "weight"):
        return None
    for p in module.parametrizations.weight:
        if isinstance(p, kind):
            return p
    return None


def weight_layer(model: nn.Module, name: str) -> nn.Module:
    """The Conv2d or Linear at module path ``name`` of ``model``."""
    module = dict(model.named_modules()).get(name)
    if not isinstance(module, WEIGHT_LAYERS):
        raise ValueError(f"model has no Conv2d or Linear layer named {name!r}")
    return module


def apply_mask(module: nn.Module, mask: torch.Tensor) -> None:
    """Enforce ``mask`` on ``module.weight`` from now on (replacing an earlier mask)."""
    if mask.shape != module.weight.shape or mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor of shape {tuple(module.weight.shape)}, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    mask = mask.to(module.weight.device)
    existing = parametrization_of(module, MaskedWeight)
    if existing is None:
        parametrize.register_parametrization(module, "weight", MaskedWeight(mask))
        existing = parametrization_of(module, MaskedWeight)
    else:
        existing.mask.copy_(mask)
    with torch.no_grad():
        # Zero the stored values too, so that baking or inspecting them agrees.
        original = module.parametrizations.weight.original
        original.masked_fill_(~mask, 0.0)


def mask_of(module: nn.Module) -> torch.Tensor | None:
    """The mask enforced on ``module.weight``, or None."""
    masked = parametrization_of(module, MaskedWeight)
    return None if masked is None else masked.mask.clone()


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """``apply_mask`` on each named layer of ``model``."""
    for name, mask in masks.items():
        apply_mask(weight_layer(model, name), mask)


def masks_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """The masks enforced on ``model``'s layers, by layer name."""
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, WEIGHT_LAYERS):
            mask = mask_of(module)
            if mask is not None:
                found[name] = mask
    return found


def remove_mask(module: nn.Module) -> None:
    """Stop enforcing the mask, leaving a plain weight that is exactly 0 where pruned."""
    if parametrization_of(module, MaskedWeight) is None:
        return
    if len(module.parametrizations.weight) != 1:
        raise ValueError("the weight carries other parametrizations besides its mask")
    parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    module.weight.grad = None  # a gradient of the unmasked weight no longer applies


def remove_masks(model: nn.Module) -> None:
    """``remove_mask`` on every layer of ``model``."""
    for module in model.modules():
        if isinstance(module, WEIGHT_LAYERS):
            remove_mask(module)


# --- pruning schedules ------------------------------------------------------


def final_sparsity(weight: torch.Tensor, spec: PruneSpec) -> float:
    """The fraction of ``weight`` that ``spec`` prunes in one shot."""
    return spec.sparsity if spec.sparsity is not None else sparsity_of(magnitude_mask(weight, spec))


def step_sparsity(target: float, step: int, steps: int) -> float:
    """Sparsity after ``step`` of ``steps`` rounds (1-based).

    The kept fraction shrinks geometrically, ``(1 - target)^(step/steps)``, so
    every round prunes the same share of the survivors (as Han et al.'s
    repeated thresholding does) and the last round lands on ``target``.
    """
    if step >= steps:
        return target
    return 1.0 - (1.0 - target) ** (step / steps)


def prune_layers(model: nn.Module, specs: Mapping[str, PruneSpec]) -> dict[str, torch.Tensor]:
    """One-shot pruning: apply and enforce each layer's mask; return the masks."""
    return iterative_prune(model, specs, train_fn=None, steps=1, epochs_per_step=0, progress=False)


def iterative_prune(
    model: nn.Module,
    specs: Mapping[str, PruneSpec],
    train_fn: TrainFn | None,
    steps: int = 1,
    epochs_per_step: int = 0,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Prune ``model`` in place over ``steps`` prune→retrain rounds; return the masks.

    Each layer's target is its spec's sparsity, or for a quality spec the
    fraction that the threshold prunes on the weights as they are now. Round
    ``t`` raises each layer to ``step_sparsity(target, t, steps)`` (masks are
    nested: a pruned weight never comes back) and then, if
    ``epochs_per_step > 0``, calls ``train_fn(model, epochs_per_step)`` with the
    masks enforced. The masks stay enforced on return: train more if you
    like, then ``remove_masks(model)``.
    """
    if steps < 1 or epochs_per_step < 0:
        raise ValueError(f"need steps >= 1 and epochs_per_step >= 0, got {steps}, {epochs_per_step}")
    if epochs_per_step > 0 and train_fn is None:
        raise ValueError("retraining (epochs_per_step > 0) needs a train_fn")
    modules = {name: weight_layer(model, name) for name in specs}
    targets = {name: final_sparsity(modules[name].weight, spec) for name, spec in specs.items()}
    bar = tqdm(range(1, steps + 1), desc="prune", unit="round", disable=not progress)
    for step in bar:
        for name, module in modules.items():
            fraction = step_sparsity(targets[name], step, steps)
            if steps == 1:
                spec = specs[name]  # one shot: the spec itself, e.g. an exact threshold
            else:
                spec = PruneSpec(sparsity=fraction)
            mask = magnitude_mask(module.weight, spec, keep=mask_of(module))
            apply_mask(module, mask)
        bar.set_postfix(sparsity=_overall_sparsity(modules), refresh=False)
        if epochs_per_step > 0:
            train_fn(model, epochs_per_step)
    bar.close()
    return {name: mask_of(module) for name, module in modules.items()}


def _overall_sparsity(modules: Mapping[str, nn.Module]) -> str:
    pruned = total = 0
    for module in modules.values():
        mask = mask_of(module)
        if mask is not None:
            pruned += mask.numel() - mask.count_nonzero().item()
            total += mask.numel()
    return f"{pruned / max(total, 1):.1%}"
