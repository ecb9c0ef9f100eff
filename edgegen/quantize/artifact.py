"""Save and load a ``QGraph``: the quantize stage's artifact.

One ``.npz`` file (numpy's zip of arrays, read with ``allow_pickle=False``):
``header`` holds UTF-8 JSON with the format name, version, graph structure
and scalar parameters; every array is stored under ``<node index>/<field>``.
Loading checks the format name and version, decodes the header checking
every field's JSON type, then validates the whole graph
(``edgegen.quantize.validate``): any inconsistency is a UserError that
names the file, so a truncated, damaged or foreign file never reaches the
golden model, the planner or the emitter.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, is_dataclass
from pathlib import Path

import numpy as np

from edgegen.errors import UserError, brief
from edgegen.npz_file import read_npz, write_npz
from edgegen.quantize.validate import validate_qgraph
from edgegen.ir import (
    QAdd,
    QChannelShuffle,
    QConcat,
    QAvgPool,
    QClamp,
    QConv2D,
    QFullyConnected,
    QGraph,
    QMaxPool,
    QNode,
    QReshape,
    QLogSoftmax,
    QSoftmax,
    QTensor,
    QuantParams,
    Requant,
    Rounding,
    frozen_array,
)

FORMAT = "edgegen.qgraph"
VERSION = 2  # 2: weight layers carry their codebook
_OPS = {cls.__name__: cls for cls in (QConv2D, QFullyConnected, QMaxPool, QAvgPool, QReshape, QClamp,
                                       QAdd, QChannelShuffle, QConcat, QSoftmax,
                                       QLogSoftmax)}
_ARRAY_FIELDS = frozenset({"weight", "bias", "weight_scale", "multiplier", "shift", "codebook"})
_OPTIONAL_FIELDS = frozenset({"codebook"})  # may be null
# absent from files written before the field existed
_DEFAULTED_FIELDS = {"groups": 1, "divisor_padding": (0, 0)}
_REMEDY = "regenerate it with `edgegen deploy`"


def _encode(value, prefix: str, arrays: dict):
    """A JSON-able description of ``value``; arrays go to ``arrays``."""
    if isinstance(value, np.ndarray):
        arrays[prefix] = value
        return {"array": prefix}
    if isinstance(value, Rounding):
        return value.value
    if is_dataclass(value):
        return {f.name: _encode(getattr(value, f.name), f"{prefix}/{f.name}", arrays) for f in fields(value)}
    if isinstance(value, tuple):
        return list(value)
    return value


def to_dict(qgraph: QGraph) -> tuple[dict, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    nodes = []
    for i, node in enumerate(qgraph.nodes):
        nodes.append(
            {
                "name": node.name,
                "op": type(node.op).__name__,
                "attrs": _encode(node.op, str(i), arrays),
                "inputs": list(node.inputs),
                "output": node.output,
            }
        )
    header = {
        "format": FORMAT,
        "version": VERSION,
        "name": qgraph.name,
        "input": qgraph.input,
        "output": qgraph.output,
        "rounding": qgraph.rounding.value,
        "tensors": [
            {"name": t.name, "shape": list(t.shape), "scale": t.qparams.scale,
             "zero_point": t.qparams.zero_point}
            for t in qgraph.tensors
        ],
        "nodes": nodes,
        "metadata": qgraph.metadata,
    }
    return header, arrays


def content_hash(qgraph: QGraph) -> str:
    """sha256 over everything that determines the generated C."""
    header, arrays = to_dict(qgraph)
    header = {k: v for k, v in header.items() if k != "metadata"}
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for key in sorted(arrays):
        h.update(key.encode())
        h.update(str(arrays[key].dtype).encode())
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


def save_qgraph(qgraph: QGraph, path: Path) -> None:
    header, arrays = to_dict(qgraph)
    write_npz(path, header, arrays)


def load_qgraph(path: Path) -> QGraph:
    header, arrays = read_npz(path, fmt=FORMAT, version=VERSION, what="quantized model",
                              remedy=_REMEDY)
    # ValueError carries the checks' own messages; the others would mean a check is missing.
    try:
        qgraph = _from_dict(header, arrays)
        validate_qgraph(qgraph)
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        detail = str(exc) if type(exc) is ValueError else f"{type(exc).__name__}: {exc}"
        raise UserError(f"{path} is inconsistent ({detail}): {_REMEDY}") from None
    return qgraph




def _field(table: dict, key: str, kind, where: str):
    """``table[key]``, which must be of JSON type ``kind``."""
    if key not in table:
        raise ValueError(f"{where}: field {key!r} is missing")
    value = table[key]
    # bool is an int in Python: JSON true/false is never a number here.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise ValueError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _as_tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _decode(cls, desc, arrays: dict, where: str):
    """An op (or Requant) from its header description; field values are
    only converted here (lists to tuples, array names to arrays): their
    ranges are validate_qgraph's business."""
    if not isinstance(desc, dict):
        raise ValueError(f"{where}: attributes must be an object")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(desc) - names)
    if unknown:
        raise ValueError(f"{where}: unknown attribute {brief(unknown[0])} for {cls.__name__}")
    kwargs = {}
    for name in sorted(names):
        if name in _OPTIONAL_FIELDS and desc.get(name, 0) is None:
            kwargs[name] = None
            continue
        if name in _DEFAULTED_FIELDS and name not in desc:
            kwargs[name] = _DEFAULTED_FIELDS[name]
            continue
        value = _field(desc, name, (dict, list, int, float, str), where)
        if name in _ARRAY_FIELDS:
            kwargs[name] = _array(value, arrays, f"{where}: {name}")
        elif name == "requant":
            kwargs[name] = _decode(Requant, value, arrays, f"{where}: requant")
        elif name == "rounding":
            kwargs[name] = _rounding(value, where)
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        elif isinstance(value, dict):
            raise ValueError(f"{where}: {name} must be a number or a list, got an object")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _array(ref, arrays: dict, where: str) -> np.ndarray:
    if not isinstance(ref, dict) or set(ref) != {"array"} or not isinstance(ref["array"], str):
        raise ValueError(f"{where} must name an array ({{\"array\": NAME}})")
    if ref["array"] not in arrays:
        raise ValueError(f"{where}: array {brief(ref['array'])} is missing from the file")
    arr = arrays[ref["array"]]
    return frozen_array(arr, arr.dtype)


def _rounding(value, where: str) -> Rounding:
    modes = [r.value for r in Rounding]
    if value not in modes:
        raise ValueError(f"{where}: rounding must be one of {modes}, got {brief(value)}")
    return Rounding(value)


def _node(index: int, desc, arrays: dict) -> QNode:
    where = f"node {index}"
    if not isinstance(desc, dict):
        raise ValueError(f"{where} must be an object")
    op_name = _field(desc, "op", str, where)
    if op_name not in _OPS:
        raise ValueError(f"{where}: unknown operator {brief(op_name)} (known: {', '.join(_OPS)})")
    op = _decode(_OPS[op_name], _field(desc, "attrs", dict, where), arrays, f"{where} ({op_name})")
    inputs = tuple(_field(desc, "inputs", list, where))
    return QNode(_field(desc, "name", str, where), op, inputs, _field(desc, "output", str, where))


def _tensor(index: int, desc) -> QTensor:
    where = f"tensor {index}"
    if not isinstance(desc, dict):
        raise ValueError(f"{where} must be an object")
    scale = _field(desc, "scale", (int, float), where)
    if isinstance(scale, int) and abs(scale) > 2**53:  # float() of a huge JSON integer overflows
        raise ValueError(f"{where}: scale {brief(scale)} is not a sane quantization scale")
    params = QuantParams(float(scale), _field(desc, "zero_point", int, where))
    return QTensor(_field(desc, "name", str, where), tuple(_field(desc, "shape", list, where)), params)


def _from_dict(header: dict, arrays: dict) -> QGraph:
    where = "header"
    nodes = tuple(_node(i, n, arrays) for i, n in enumerate(_field(header, "nodes", list, where)))
    tensors = tuple(_tensor(i, t) for i, t in enumerate(_field(header, "tensors", list, where)))
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError(f"{where}: metadata must be an object, got {type(metadata).__name__}")
    return QGraph(
        _field(header, "name", str, where), nodes, tensors,
        _field(header, "input", str, where), _field(header, "output", str, where),
        _rounding(_field(header, "rounding", str, where), where), metadata,
    )
