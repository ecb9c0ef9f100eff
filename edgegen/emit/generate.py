"""``QGraph`` + ``StoragePlan`` + ``MemoryPlan`` -> C sources.

Python prepares every value (requantization constants, shapes, buffer
addresses); the storage plan brings each weight layer's arrays, struct
fields and kernel bias; the Jinja templates in ``templates/`` only lay
them out. Which kernel computes a layer follows from its kind and format
(``KERNELS``). Output is deterministic: the same inputs give byte-identical
files (no dates, no paths, dictionary order fixed by the graph).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegen import __version__
from edgegen.emit.c_format import (
    ROUNDING_VALUE,
    c_array_body,
    c_float32_literal,
    c_float_comment,
    c_int,
    c_prefix,
    comment_text,
    c_type,
    float32_of,
)
from edgegen.ir import (
    QAdd,
    QChannelShuffle,
    QLogSoftmax,
    QSoftmax,
    QConcat,
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
from edgegen.encode.storage import STREAM_FORMAT_VERSION, ArrayRef, StoredWeights
from edgegen.encode.storage_plan import LayerPlan, StoragePlan
from edgegen.paths import RUNTIME_DIR
from edgegen.plan.arena import Location, MemoryPlan
from edgegen.quantize.artifact import content_hash

_ROUNDING_ENUM = {Rounding.DOUBLE: "EG_ROUNDING_DOUBLE", Rounding.SINGLE: "EG_ROUNDING_SINGLE"}

# (layer kind, storage format) -> the runtime_c function that computes it.
KERNELS = {
    ("fully_connected", "dense"): "eg_fully_connected_s8",
    ("fully_connected", "codebook"): "eg_fully_connected_codebook_s8",
    ("fully_connected", "sparse"): "eg_fully_connected_sparse_s8",
    ("fully_connected", "huffman"): "eg_fully_connected_huffman_s8",
    ("conv2d", "dense"): "eg_conv2d_s8",
    ("depthwise_conv2d", "dense"): "eg_depthwise_conv2d_s8",
    ("conv2d", "codebook"): "eg_conv2d_codebook_s8",
    ("conv2d", "sparse"): "eg_conv2d_sparse_s8",
    ("conv2d", "huffman"): "eg_conv2d_huffman_s8",
    # compressed depthwise filters: the grouped compressed kernels
    ("depthwise_conv2d", "codebook"): "eg_conv2d_codebook_s8",
    ("depthwise_conv2d", "sparse"): "eg_conv2d_sparse_s8",
    ("depthwise_conv2d", "huffman"): "eg_conv2d_huffman_s8",
}
# pooling kind -> its runtime_c function
POOL_KERNELS = {"max_pool": "eg_max_pool_s8", "avg_pool": "eg_avg_pool_s8"}
# storage format -> the weights struct its kernels take (dense: a plain array)
WEIGHT_STRUCTS = {"codebook": "eg_codebook_weights", "sparse": "eg_sparse_weights",
                  "huffman": "eg_huffman_weights"}


@dataclass(frozen=True)
class ConstArray:
    """One const array of the weights file."""

    symbol: str
    ctype: str
    length: int
    body: str
    layer: str  # the layer it belongs to, for size reports


@dataclass(frozen=True)
class ConstStruct:
    """One const weights struct of the weights file."""

    symbol: str
    ctype: str
    initializer: str
    layer: str


@dataclass(frozen=True)
class GeneratedSources:
    prefix: str
    files: dict  # file name -> text
    arrays: tuple[ConstArray, ...]
    structs: tuple[ConstStruct, ...] = ()
    # Preprocessor definitions every compilation of these sources and the
    # runtime must use (``NAME=value``): the model's rounding, fixed so that
    # the kernels' output stage has no run-time branch on it.
    defines: tuple[str, ...] = ()

    @property
    def define_flags(self) -> tuple[str, ...]:
        return tuple(f"-D{d}" for d in self.defines)

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
    if location.region in ("arena", "band"):
        return f"arena + {location.offset}" if location.offset else "arena"
    return location.region  # the invoke function's own parameter names


class _Builder:
    def __init__(self, qgraph: QGraph, storage: StoragePlan, plan: MemoryPlan, prefix: str):
        self.q = qgraph
        self.storage = storage.by_index()
        self.plan = plan
        self.prefix = prefix
        self.arrays: list[ConstArray] = []
        self.structs: list[ConstStruct] = []
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

    def initializer(self, field, symbols: dict) -> str:
        """C initializer of a struct field list (see StoredWeights.struct)."""
        if isinstance(field, tuple):
            return "{" + ", ".join(self.initializer(f, symbols) for f in field) + "}"
        if field is None:
            return "NULL"
        if isinstance(field, str):
            return symbols[field]
        if isinstance(field, ArrayRef):
            return f"{symbols[field.name]} + {field.offset}"
        return c_int(int(field))

    def weights(self, layer_symbol: str, stored: StoredWeights, layer: str) -> str:
        """Declare a layer's stored weights; return the kernel's argument."""
        if stored.format == "dense":
            return self.array(layer_symbol, "weights", stored.arrays["weights"], layer)
        symbols = {name: self.array(layer_symbol, name, values, layer)
                   for name, values in stored.arrays.items()}
        symbol = f"{layer_symbol}_weights"
        self.structs.append(ConstStruct(symbol, WEIGHT_STRUCTS[stored.format],
                                        self.initializer(stored.struct, symbols), layer))
        return f"&{symbol}"

    def weight_layer(self, symbol: str, node, storage: LayerPlan) -> dict:
        """What conv and fully connected layers share: kernel, weights, bias."""
        scratch = self.plan.scratch_location(node.name)
        return {
            "function": KERNELS[(storage.kind, storage.format)],
            "format": storage.format,
            "weights": self.weights(symbol, storage.stored, node.name),
            "bias": self.array(symbol, "bias", storage.bias, node.name),
            "scratch": "NULL" if scratch is None else _pointer(scratch),
            "scratch_bytes": storage.scratch_bytes,
            "requant": self.requant(symbol, node.op.requant, node.name),
        }

    def shape(self, tensor: str) -> str:
        symbol = f"{self.prefix}_{self.labels[tensor]}_shape"
        shape = self.q.tensor(tensor).shape
        h, w, c = shape if len(shape) == 3 else (1, 1, shape[0])
        self.shapes.setdefault(symbol, {"symbol": symbol, "h": h, "w": w, "c": c})
        return symbol

    def requant(self, symbol: str, rq, layer: str) -> dict:
        """One multiplier and shift for the whole layer when every channel
        has the same (a per-tensor weight scale, as weight sharing gives)."""
        per_tensor = bool(np.all(rq.multiplier == rq.multiplier[0]) and
                          np.all(rq.shift == rq.shift[0]))
        count = 1 if per_tensor else len(rq.multiplier)
        return {
            "multiplier": self.array(symbol, "multiplier", rq.multiplier[:count], layer),
            "shift": self.array(symbol, "shift", rq.shift[:count], layer),
            "output_offset": c_int(rq.output_zero_point),
            "act_min": c_int(rq.act_min),
            "act_max": c_int(rq.act_max),
            "rounding": _ROUNDING_ENUM[rq.rounding],
            "per_tensor": int(per_tensor),
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
            layer.update(self.weight_layer(symbol, node, self.storage[index]))
            layer.update(
                kernel_h=kh, kernel_w=kw,
                stride_h=op.stride[0], stride_w=op.stride[1], pad_top=top, pad_left=left,
                input_offset=c_int(-op.input_zero_point), groups=op.groups,
                in_dims=self.shape(node.inputs[0]), out_dims=self.shape(node.output),
            )
        elif isinstance(op, QFullyConnected):
            layer.update(self.weight_layer(symbol, node, self.storage[index]))
            layer.update(in_features=op.weight.shape[1], out_features=op.weight.shape[0])
        elif isinstance(op, (QMaxPool, QAvgPool)):
            top, _, left, _ = op.padding
            divisor_h, divisor_w = op.divisor_padding if isinstance(op, QAvgPool) else (0, 0)
            layer.update(
                kernel_h=op.kernel[0], kernel_w=op.kernel[1],
                stride_h=op.stride[0], stride_w=op.stride[1], pad_top=top, pad_left=left,
                act_min=c_int(op.act_min), act_max=c_int(op.act_max),
                divisor_pad_h=divisor_h, divisor_pad_w=divisor_w,
                in_dims=self.shape(node.inputs[0]), out_dims=self.shape(node.output),
            )
        elif isinstance(op, QClamp):
            layer.update(size=self.q.tensor(node.output).size,
                         act_min=c_int(op.act_min), act_max=c_int(op.act_max))
        elif isinstance(op, QConcat):
            shape = self.q.tensor(node.output).shape
            layer.update(
                inputs=[_pointer(self.plan.location(name)) for name in node.inputs],
                pixels=int(np.prod(shape[:-1])),
                parts=[{"channels": self.q.tensor(name).shape[-1], "offset": c_int(-zp),
                        "multiplier": c_int(m), "shift": c_int(s)}
                       for name, zp, m, s in zip(node.inputs, op.zero_points, op.multipliers,
                                                 op.shifts)],
                output_offset=c_int(op.output_zero_point),
                rounding=_ROUNDING_ENUM[self.q.rounding],
            )
        elif isinstance(op, QChannelShuffle):
            h, w, c = self.q.tensor(node.output).shape
            layer.update(pixels=h * w, channels=c, groups=op.groups)
        elif isinstance(op, (QSoftmax, QLogSoftmax)):
            shape = self.q.tensor(node.output).shape
            layer.update(rows=int(np.prod(shape[:-1])), depth=shape[-1],
                         softmax_params=self.softmax_params(op))
        elif isinstance(op, QAdd):
            layer.update(input2=_pointer(self.plan.location(node.inputs[1])),
                         size=self.q.tensor(node.output).size,
                         add_params=self.add_params(op))
        pair = self.plan.fused_pair(index)
        if pair is not None and pair.conv == index:
            layer["fused"] = self.fused(pair)
        elif pair is not None:
            layer["fused_into"] = pair.conv
        return layer

    def softmax_params(self, op) -> str:
        """The initializer of eg_softmax_params or eg_log_softmax_params."""
        if isinstance(op, QSoftmax):
            return ", ".join(c_int(v) for v in (op.input_multiplier, op.input_left_shift,
                                                op.diff_min))
        values = (op.input_multiplier, op.input_left_shift, op.reverse_multiplier,
                  op.reverse_shift, op.diff_min)
        return ", ".join(c_int(v) for v in values) + ", " + _ROUNDING_ENUM[self.q.rounding]

    def add_params(self, op: QAdd) -> str:
        """The initializer of the layer's eg_add_params, field by field."""
        values = (-op.input1_zero_point, op.input1_multiplier, op.input1_shift,
                  -op.input2_zero_point, op.input2_multiplier, op.input2_shift,
                  op.output_zero_point, op.output_multiplier, op.output_shift,
                  op.act_min, op.act_max)
        return ", ".join(c_int(v) for v in values) + ", " + _ROUNDING_ENUM[self.q.rounding]

    def fused(self, pair) -> dict:
        """The loop of a convolution fused with its pooling: bands of
        ``rows`` pooled rows, each sliced by eg_conv_pool_slice."""
        conv, pool = self.q.nodes[pair.conv], self.q.nodes[pair.pool]
        n, rows = pair.pooled_rows, pair.rows_per_band
        count = str(rows) if n % rows == 0 else f"({n} - row < {rows} ? {n} - row : {rows})"
        return {
            "pool_index": pair.pool,
            "pool_kind": op_kind(pool.op),
            "pool_function": POOL_KERNELS[op_kind(pool.op)],
            "pool_symbol": f"{self.prefix}_l{pair.pool}",
            "pool_out_dims": self.shape(pool.output),
            "pool_output": _pointer(self.plan.location(pool.output)),
            "band": _pointer(self.plan.location(conv.output)),
            "band_bytes": pair.band_bytes,
            "band_rows": pair.band_rows,
            "bands": pair.bands,
            "pooled_rows": n,
            "rows": rows,
            "rows_count": count,
        }


def _input_quantization(qparams) -> dict:
    """What ``<prefix>_quantize_input`` divides by (the float32 nearest the
    input scale, as a C literal), and the reals int8 -128 and 127 stand for
    with that scale (exact: a float32 times an integer below 2^9). A scale
    whose float32 is 0 or infinite (below 1e-45 or above 3.4e38) gives the
    literal 0.0f, which eg_quantize_f32_s8 refuses (EG_ERR_ARG), as the
    golden model's quantize_input refuses it (ValueError)."""
    scale32 = float32_of(qparams.scale)
    usable = bool(np.isfinite(scale32) and scale32 > 0)
    scale = float(scale32) if usable else float(qparams.scale)
    return {
        "scale_f32": c_float32_literal(scale32 if usable else 0.0),
        "scale_f32_usable": usable,
        "real_min": c_float_comment(scale * (-128 - qparams.zero_point)),
        "real_max": c_float_comment(scale * (127 - qparams.zero_point)),
    }


def _in_arena(plan: MemoryPlan, input_size: int, output_size: int) -> dict:
    """What ``<prefix>_invoke_in_arena`` and its macros need."""
    io = plan.in_arena
    if io is None:
        raise ValueError("the memory plan has no in-arena I/O: plan it with "
                         "plan_memory(..., io_in_arena=True)")
    return {"arena_size": io.arena_size, "input_offset": io.input_offset,
            "output_offset": io.output_offset, "base": io.base,
            "base_pointer": _pointer(Location("arena", io.base)),
            "separate_size": plan.arena_size + input_size + output_size}


def generate_sources(qgraph: QGraph, storage: StoragePlan, plan: MemoryPlan,
                     name: str | None = None) -> GeneratedSources:
    """``plan`` must have its in-arena I/O planned (``io_in_arena``)."""
    prefix = c_prefix(name or qgraph.name)
    builder = _Builder(qgraph, storage, plan, prefix)
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
        "rounding_value": ROUNDING_VALUE[qgraph.rounding],
        "input": {"shape": inp.shape, "size": inp.size,
                  "scale": c_float_comment(inp.qparams.scale), "zero_point": inp.qparams.zero_point,
                  **_input_quantization(inp.qparams)},
        "output": {"shape": out.shape, "size": out.size,
                   "scale": c_float_comment(out.qparams.scale), "zero_point": out.qparams.zero_point},
        "arena_size": plan.arena_size,
        "in_arena": _in_arena(plan, inp.size, out.size),
        "layers": layers,
        "shapes": list(builder.shapes.values()),
        "arrays": builder.arrays,
        "structs": builder.structs,
        "stream_format_version": STREAM_FORMAT_VERSION,
    }
    env = template_environment()
    files = {
        f"{prefix}.h": env.get_template("model.h.j2").render(context),
        f"{prefix}.c": env.get_template("model.c.j2").render(context),
        f"{prefix}_weights.h": env.get_template("model_weights.h.j2").render(context),
        f"{prefix}_weights.c": env.get_template("model_weights.c.j2").render(context),
    }
    defines = (f"EG_FIXED_ROUNDING={ROUNDING_VALUE[qgraph.rounding]}",)
    return GeneratedSources(prefix, files, tuple(builder.arrays), tuple(builder.structs), defines)
