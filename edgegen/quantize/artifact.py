"""Save and load a ``QGraph``: the quantize stage's artifact.

One ``.npz`` file (numpy's zip of arrays, read with ``allow_pickle=False``):
``header`` holds UTF-8 JSON with the format name, version, graph structure
and scalar parameters; every array is stored under ``<node index>/<field>``.
Loading checks the format name and version and turns any inconsistency
into a UserError that names the file, so a truncated or foreign file never
reaches the emitter.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, is_dataclass
from pathlib import Path

import numpy as np

from edgegen.errors import UserError
from edgegen.npz_file import read_npz, write_npz
from edgegen.ir import (
    QAvgPool,
    QClamp,
    QConv2D,
    QFullyConnected,
    QGraph,
    QMaxPool,
    QNode,
    QReshape,
    QTensor,
    QuantParams,
    Requant,
    Rounding,
    frozen_array,
)

FORMAT = "edgegen.qgraph"
VERSION = 1
_OPS = {cls.__name__: cls for cls in (QConv2D, QFullyConnected, QMaxPool, QAvgPool, QReshape, QClamp)}


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
                              remedy="regenerate it with `edgegen deploy`")
    try:
        return _from_dict(header, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path} is inconsistent ({type(exc).__name__}: {exc}): regenerate it") from None


def _decode(cls, desc: dict, arrays: dict):
    kwargs = {}
    for f in fields(cls):
        value = desc[f.name]
        if isinstance(value, dict) and "array" in value:
            arr = arrays[value["array"]]
            value = frozen_array(arr, arr.dtype)
        elif f.name == "requant":
            value = _decode(Requant, value, arrays)
        elif f.name == "rounding":
            value = Rounding(value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def _from_dict(header: dict, arrays: dict) -> QGraph:
    nodes = tuple(
        QNode(n["name"], _decode(_OPS[n["op"]], n["attrs"], arrays), tuple(n["inputs"]), n["output"])
        for n in header["nodes"]
    )
    tensors = tuple(
        QTensor(t["name"], tuple(t["shape"]), QuantParams(float(t["scale"]), int(t["zero_point"])))
        for t in header["tensors"]
    )
    return QGraph(
        header["name"], nodes, tensors, header["input"], header["output"],
        Rounding(header["rounding"]), header.get("metadata", {}),
    )
