"""``QGraph`` + ``MemoryPlan`` -> C sources.

Python prepares every value (folded biases, requantization constants,
shapes, buffer addresses); the Jinja templates in ``templates/`` only lay
them out. Output is deterministic: the same QGraph gives byte-identical
files (no dates, no paths, dictionary order fixed by the graph).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegen import __version__
from edgegen.emit.c_format import (
    c_array_body,
    c_float_comment,
    c_int,
    c_prefix,
    comment_text,
    c_type,
)
from edgegen.ir import (
    QAvgPool,
    QClamp,
    QConv2D,
    QFullyConnected,
    QGraph,
    QMaxPool,
    Rounding,
    op_kind,
)
from edgegen.emit.templates import template_environment
from edgegen.paths import RUNTIME_DIR
from edgegen.plan.arena import Location, MemoryPlan
from edgegen.quantize.artifact import content_hash
from edgegen.reference.kernels import fold_fc_bias

_ROUNDING_ENUM = {Rounding.DOUBLE: "EG_ROUNDING_DOUBLE", Rounding.SINGLE: "EG_ROUNDING_SINGLE"}


@dataclass(frozen=True)
class ConstArray:
    """One const array of the weights file."""

    symbol: str
    ctype: str
    length: int
    body: str
    layer: str  # the layer it belongs to, for size reports


@dataclass(frozen=True)
class GeneratedSources:
    prefix: str
    files: dict  # file name -> text
    arrays: tuple[ConstArray, ...]

    def write(self, directory: Path, with_runtime: bool = True) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (directory / name).write_text(text)
        if with_runtime:
            copy_runtime(directory / "runtime")


def copy_runtime(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for src in sorted(RUNTIME_DIR.iterdir()):
        if src.suffix in (".c", ".h"):
            shutil.copyfile(src, directory / src.name)


def _pointer(location: Location) -> str:
    if location.region == "arena":
        return f"arena + {location.offset}" if location.offset else "arena"
    return location.region  # the invoke function's own parameter names


class _Builder:
    def __init__(self, qgraph: QGraph, plan: MemoryPlan, prefix: str):
        self.q = qgraph
        self.plan = plan
        self.prefix = prefix
        self.arrays: list[ConstArray] = []
        self.shapes: dict[str, dict] = {}
        # C names for tensors: "input", then "l<i>_out" after the layer making it.
        self.labels = {qgraph.input: "input"}
        self.labels.update({n.output: f"l{i}_out" for i, n in enumerate(qgraph.nodes)})

    def array(self, layer_symbol: str, field: str, values: np.ndarray, layer: str) -> str:
        symbol = f"{layer_symbol}_{field}"
        values = np.asarray(values)
        self.arrays.append(ConstArray(symbol, c_type(values), int(values.size),
                                      c_array_body(values), layer))
        return symbol

    def shape(self, tensor: str) -> str:
        symbol = f"{self.prefix}_{self.labels[tensor]}_shape"
        shape = self.q.tensor(tensor).shape
        h, w, c = shape if len(shape) == 3 else (1, 1, shape[0])
        self.shapes.setdefault(symbol, {"symbol": symbol, "h": h, "w": w, "c": c})
        return symbol

    def requant(self, symbol: str, rq, layer: str) -> dict:
        return {
            "multiplier": self.array(symbol, "multiplier", rq.multiplier, layer),
            "shift": self.array(symbol, "shift", rq.shift, layer),
            "output_offset": c_int(rq.output_zero_point),
            "act_min": c_int(rq.act_min),
            "act_max": c_int(rq.act_max),
            "rounding": _ROUNDING_ENUM[rq.rounding],
        }

    def layer(self, index: int, node) -> dict:
        op = node.op
        kind = op_kind(op)
        symbol = f"{self.prefix}_l{index}"
        layer = {
            "index": index,
            "name": comment_text(node.name),
            "kind": kind,
            "symbol": symbol,
            "input": _pointer(self.plan.location(node.inputs[0])),
            "output": _pointer(self.plan.location(node.output)),
            "in_shape": self.q.tensor(node.inputs[0]).shape,
            "out_shape": self.q.tensor(node.output).shape,
        }
        if isinstance(op, QConv2D):
            o, kh, kw, _ = op.weight.shape
            top, _, left, _ = op.padding
            layer.update(
                weights=self.array(symbol, "weights", op.weight, node.name),
                bias=self.array(symbol, "bias", op.bias, node.name),
                kernel_h=kh, kernel_w=kw,
                stride_h=op.stride[0], stride_w=op.stride[1], pad_top=top, pad_left=left,
                input_offset=c_int(-op.input_zero_point),
                requant=self.requant(symbol, op.requant, node.name),
                in_dims=self.shape(node.inputs[0]), out_dims=self.shape(node.output),
            )
        elif isinstance(op, QFullyConnected):
            folded = fold_fc_bias(op.weight, op.bias, op.input_zero_point)
            layer.update(
                weights=self.array(symbol, "weights", op.weight, node.name),
                bias=self.array(symbol, "bias", folded, node.name),
                in_features=op.weight.shape[1], out_features=op.weight.shape[0],
                requant=self.requant(symbol, op.requant, node.name),
            )
        elif isinstance(op, (QMaxPool, QAvgPool)):
            top, _, left, _ = op.padding
            layer.update(
                kernel_h=op.kernel[0], kernel_w=op.kernel[1],
                stride_h=op.stride[0], stride_w=op.stride[1], pad_top=top, pad_left=left,
                act_min=c_int(op.act_min), act_max=c_int(op.act_max),
                in_dims=self.shape(node.inputs[0]), out_dims=self.shape(node.output),
            )
        elif isinstance(op, QClamp):
            layer.update(size=self.q.tensor(node.output).size,
                         act_min=c_int(op.act_min), act_max=c_int(op.act_max))
        return layer


def generate_sources(qgraph: QGraph, plan: MemoryPlan, name: str | None = None) -> GeneratedSources:
    prefix = c_prefix(name or qgraph.name)
    builder = _Builder(qgraph, plan, prefix)
    layers = [builder.layer(i, node) for i, node in enumerate(qgraph.nodes)]
    inp = qgraph.tensor(qgraph.input)
    out = qgraph.tensor(qgraph.output)
    context = {
        "prefix": prefix,
        "PREFIX": prefix.upper(),
        "version": __version__,
        "model_hash": content_hash(qgraph),
        "source_name": comment_text(qgraph.name),
        "rounding": _ROUNDING_ENUM[qgraph.rounding],
        "input": {"shape": inp.shape, "size": inp.size,
                  "scale": c_float_comment(inp.qparams.scale), "zero_point": inp.qparams.zero_point},
        "output": {"shape": out.shape, "size": out.size,
                   "scale": c_float_comment(out.qparams.scale), "zero_point": out.qparams.zero_point},
        "arena_size": plan.arena_size,
        "layers": layers,
        "shapes": list(builder.shapes.values()),
        "arrays": builder.arrays,
    }
    env = template_environment()
    files = {
        f"{prefix}.h": env.get_template("model.h.j2").render(context),
        f"{prefix}.c": env.get_template("model.c.j2").render(context),
        f"{prefix}_weights.h": env.get_template("model_weights.h.j2").render(context),
        f"{prefix}_weights.c": env.get_template("model_weights.c.j2").render(context),
    }
    return GeneratedSources(prefix, files, tuple(builder.arrays))
