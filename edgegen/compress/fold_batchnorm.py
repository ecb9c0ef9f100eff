"""Fold a BatchNorm into the convolution (or fully connected layer) before
it, in the PyTorch model.

Weight sharing puts a layer's weights on the grid of its codebook. The
importer folds a following BatchNorm by scaling each filter with its own
factor, which would take the weights off that grid again (the quantizer
refuses such a layer). So before clustering, the compress stage folds the
BatchNorm of every shared convolution itself: the convolution takes the
per-channel factor into its weights and bias, the BatchNorm becomes
``nn.Identity``, and clustering, centroid fine-tuning and snapping all work
on the folded weights that will ship.

What was folded is a list of (conv, batchnorm) module names; ``apply_folds``
gives the original model code the same shape (a bias on the convolution, an
Identity for the BatchNorm) so that the compressed state_dict loads into it.
"""

from __future__ import annotations

import torch
import torch.fx
from torch import nn
from torch.nn.utils import parametrize

from edgegen.errors import UserError
from edgegen.frontend.batchnorm_fold import folded_conv

Fold = tuple[str, str]  # (convolution or Linear, BatchNorm) module paths

# BatchNorm type -> the layer type it folds into (the pairs the importer folds).
_FOLDS_INTO = {nn.BatchNorm2d: nn.Conv2d, nn.BatchNorm1d: nn.Linear}


def _outputs(layer: nn.Module) -> int:
    return layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features


def conv_batchnorm_pairs(model: nn.Module) -> tuple[Fold, ...]:
    """Each BatchNorm2d (BatchNorm1d) with running statistics whose only
    input is a Conv2d (Linear) that nothing else reads: the pairs the
    importer would fold, in model order."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # torch.fx raises many types for untraceable code
        raise UserError(
            f"weight sharing folds BatchNorm into the convolutions first, which needs a model "
            f"torch.fx can trace ({type(exc).__name__}: {str(exc).strip().splitlines()[0]}); "
            "make forward() free of data-dependent control flow"
        ) from None
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        norm = modules.get(node.target) if node.op == "call_module" else None
        if type(norm) not in _FOLDS_INTO or norm.running_mean is None:
            continue
        source = node.args[0] if node.args else None
        # isinstance: a pruned layer is a parametrized subclass of its type
        if (isinstance(source, torch.fx.Node) and source.op == "call_module"
                and isinstance(modules.get(source.target), _FOLDS_INTO[type(norm)])
                and len(source.users) == 1):
            pairs.append((str(source.target), str(node.target)))
    return tuple(pairs)


def fold_batchnorms(model: nn.Module, folds: tuple[Fold, ...]) -> None:
    """Fold each pair in place (the importer's arithmetic, ``folded_conv``): the
    convolution computes what convolution + BatchNorm computed, and the
    BatchNorm is replaced by ``nn.Identity``. A pruning mask on the
    convolution stays valid: scaling a filter keeps its zeros."""
    with torch.no_grad():
        for conv_name, norm_name in folds:
            conv, norm = _pair(model, conv_name, norm_name)
            weight = _stored_weight(conv)
            bias = conv.bias.detach().numpy() if conv.bias is not None else None
            folded_weight, folded_bias = folded_conv(weight.detach().numpy(), bias, norm)
            weight.copy_(torch.from_numpy(folded_weight))
            _set_bias(conv, torch.from_numpy(folded_bias).to(weight.dtype))
            model.set_submodule(norm_name, nn.Identity())


def apply_folds(model: nn.Module, folds: tuple[Fold, ...]) -> nn.Module:
    """``model`` reshaped as ``fold_batchnorms`` leaves it (its values are
    not folded: load the folded state_dict into it next). A fold that is
    not one of the model's own conv → BatchNorm pairs is a UserError."""
    if not folds:
        return model
    pairs = set(conv_batchnorm_pairs(model))
    with torch.no_grad():
        for conv_name, norm_name in folds:
            conv, _ = _pair(model, conv_name, norm_name)
            if (conv_name, norm_name) not in pairs:
                raise UserError(f"cannot fold BatchNorm {norm_name!r} into layer {conv_name!r}: "
                                "in this model code the BatchNorm does not directly follow it")
            if conv.bias is None:
                _set_bias(conv, torch.zeros(_outputs(conv), dtype=conv.weight.dtype))
            model.set_submodule(norm_name, nn.Identity())
    return model


def _pair(model: nn.Module, conv_name: str, norm_name: str) -> tuple[nn.Module, nn.Module]:
    modules = dict(model.named_modules())
    conv, norm = modules.get(conv_name), modules.get(norm_name)
    if (type(norm) not in _FOLDS_INTO or not isinstance(conv, _FOLDS_INTO[type(norm)])
            or norm.num_features != _outputs(conv)):
        raise UserError(f"cannot fold BatchNorm {norm_name!r} into layer {conv_name!r}: the model "
                        "has no such Conv2d (Linear) followed by a BatchNorm2d (BatchNorm1d) of "
                        "its channel count")
    return conv, norm


def _stored_weight(conv: nn.Module) -> torch.Tensor:
    """The tensor that holds the weight: under a pruning mask, the
    parametrization's original (the mask multiplies it on every read)."""
    if parametrize.is_parametrized(conv, "weight"):
        return conv.parametrizations.weight.original
    return conv.weight


def _set_bias(conv: nn.Module, bias: torch.Tensor) -> None:
    if conv.bias is None:
        conv.bias = nn.Parameter(bias.clone())
    else:
        conv.bias.copy_(bias)
