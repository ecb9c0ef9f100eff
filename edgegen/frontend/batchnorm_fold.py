"""The BatchNorm fold, defined once: what a Conv2d followed by a BatchNorm2d
computes in eval mode, as one convolution (and a Linear followed by a
BatchNorm1d, as one Linear: the same per-output-channel arithmetic).

The importer folds into the IR; the compress stage folds in the PyTorch
model before weight sharing (edgegen.compress.fold_batchnorm). Both call
this, so a model folded by compress imports to the weights the importer
would have folded itself.
"""

from __future__ import annotations

import numpy as np
from torch import nn


def folded_conv(weight: np.ndarray, bias: np.ndarray | None,
                norm: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """(weight, bias) in float64 of the convolution or linear layer with
    ``weight`` (output channels first) and ``bias`` (None: zeros) followed
    by ``norm``, whose running statistics the caller has checked exist."""
    gamma = _float64(norm.weight) if norm.weight is not None else 1.0
    beta = _float64(norm.bias) if norm.bias is not None else 0.0
    mean, var = _float64(norm.running_mean), _float64(norm.running_var)
    factor = gamma / np.sqrt(var + norm.eps)
    shape = (-1,) + (1,) * (weight.ndim - 1)
    before = bias.astype(np.float64) if bias is not None else 0.0
    return weight.astype(np.float64) * factor.reshape(shape), (before - mean) * factor + beta


def _float64(tensor) -> np.ndarray:
    return tensor.detach().numpy().astype(np.float64)
