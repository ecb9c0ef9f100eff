"""Activation ranges from calibration data, and their int8 parameters.

Ranges are observed on the float graph (``reference.float_model``) over a
batch of training samples: plain min/max, or a symmetric percentile that
ignores rare outliers. Parameters follow TFLite: the range is widened to
contain 0 so that real zero is exactly representable (padding, ReLU).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from edgegen.ir import Graph, QuantParams
from edgegen.reference.float_model import run_float


class RangeMethod(enum.Enum):
    MINMAX = "minmax"
    PERCENTILE = "percentile"


@dataclass(frozen=True)
class CalibrationSpec:
    """How activation ranges are measured.

    ``percentile`` is the upper percentile kept (the lower one is
    100 - percentile) and only used with RangeMethod.PERCENTILE.
    ``input_range`` fixes the input's range instead of measuring it: images
    scaled to [0, 1] give scale 1/255 and zero point -128, so the int8 input
    is exactly pixel - 128.
    """

    method: RangeMethod = RangeMethod.MINMAX
    percentile: float = 99.99
    batch_size: int = 500
    input_range: tuple[float, float] | None = None

    def __post_init__(self):
        if not 50.0 < self.percentile <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], got {self.percentile}")


def observe_ranges(graph: Graph, samples: np.ndarray, spec: CalibrationSpec) -> dict[str, tuple[float, float]]:
    """(min, max) of every tensor over ``samples`` (N,) + input shape, NHWC."""
    lows: dict[str, list[float]] = {}
    highs: dict[str, list[float]] = {}

    def observe(name: str, values: np.ndarray) -> None:
        if spec.method is RangeMethod.PERCENTILE:
            lo, hi = np.percentile(values, [100.0 - spec.percentile, spec.percentile])
        else:
            lo, hi = values.min(), values.max()
        lows.setdefault(name, []).append(float(lo))
        highs.setdefault(name, []).append(float(hi))

    for start in range(0, len(samples), spec.batch_size):
        run_float(graph, samples[start : start + spec.batch_size], observe)
    # Percentiles of batches are combined by their mean, the extremes by
    # min/max: a batch's percentile is an estimate, its extreme a fact.
    combine_lo = np.mean if spec.method is RangeMethod.PERCENTILE else np.min
    combine_hi = np.mean if spec.method is RangeMethod.PERCENTILE else np.max
    ranges = {name: (float(combine_lo(lows[name])), float(combine_hi(highs[name]))) for name in lows}
    if spec.input_range is not None:
        ranges[graph.input] = spec.input_range
    return ranges


def activation_params(low: float, high: float) -> QuantParams:
    """TFLite asymmetric int8 parameters for a real range [low, high]."""
    low = min(low, 0.0)
    high = max(high, 0.0)
    if high == low:  # a tensor that is always zero
        return QuantParams(scale=1.0, zero_point=0)
    scale = (high - low) / 255.0
    zero_point = int(np.clip(np.floor(-128.0 - low / scale + 0.5), -128, 127))
    return QuantParams(scale=float(scale), zero_point=zero_point)
