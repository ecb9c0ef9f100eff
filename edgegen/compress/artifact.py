"""The compress stage's artifact: one versioned file that ``edgegen generate``
and ``edgegen deploy`` read in place of a checkpoint.

An ``.npz`` (read with ``allow_pickle=False``) holding

* ``header``: UTF-8 JSON — format name and version, where the model comes
  from (a zoo name or ``module:factory``), the compression spec, the
  accuracy after each stage, per compressed layer its name, kind, weight
  shape, bits and int8 grid scale, and, after filter pruning, the output
  channels each shrunk layer kept and the input shape they were traced with,
  and the (convolution, BatchNorm) pairs folded before weight sharing;
* ``state/<key>``: the model's state_dict after compression;
* ``layer/<i>/mask``, ``/indices``, ``/codebook_q``: each compressed layer's
  pruning mask, codebook indices (torch layout) and int8 codebook.

Loading checks more than the format: every header field has its type and
range, every array its dtype and shape, the state tensors are finite
float32 (int64 for BatchNorm's ``num_batches_tracked``), and every
compressed weight must equal ``scale * codebook_q[indices]`` where the mask
keeps it and 0 elsewhere, so a file whose arrays were damaged or mixed up is
refused, not deployed.

The artifact is data: ``source`` is checked as text only (a zoo name, or a
``module:factory`` string of the syntax ``edgegen.zoo.user_model`` reads);
loading never imports or runs anything it names. Which model code to build
is the caller's decision (the CLI's); ``shaped_model`` then shrinks that
model to the filter-pruned architecture by re-applying the kept channels
and gives the folded convolutions their bias and Identity (data, never
code) before the state_dict is loaded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgegen.compress.filter_prune import KeptFilters, apply_kept_filters
from edgegen.compress.fold_batchnorm import Fold, apply_folds
from edgegen.compress.pipeline import CompressedModel
from edgegen.errors import UserError, brief
from edgegen.npz_file import read_npz, write_npz
from edgegen.quantize.quantize import WeightGrid
from edgegen.zoo.models import ZOO
from edgegen.zoo.user_model import parse_spec

FORMAT = "edgegen.compressed"
VERSION = 3  # 2: the filters kept by filter pruning; 3: BatchNorm folded before sharing
SUFFIX = ".npz"
KINDS = {"conv": 4, "fc": 2}  # kind -> rank of its torch weight (OIHW, (out, in))
MAX_BITS = 8
_REMEDY = "run `edgegen compress` again"
_LAYER_FIELDS = ("name", "kind", "weight_shape", "bits", "scale")
_LAYER_ARRAYS = ("mask", "indices", "codebook_q")
_INTEGER_BUFFERS = ("num_batches_tracked",)  # torch keeps these int64
_MAX_SPEC = 1000
_MAX_SCALE = float(np.finfo(np.float32).max) / 127  # weights are float32 scale * q, |q| <= 127
_MAX_INPUT_ELEMENTS = 1 << 24  # the example input of filter pruning, rebuilt as zeros on load


@dataclass(frozen=True)
class StoredLayer:
    """One compressed layer as the artifact keeps it (torch layout)."""

    name: str
    kind: str  # "conv" | "fc"
    weight_shape: tuple[int, ...]
    bits: int
    scale: float
    mask: np.ndarray  # bool
    indices: np.ndarray  # int, 0 where pruned
    codebook_q: np.ndarray  # int8, 2^bits entries, codebook_q[0] == 0


@dataclass(frozen=True)
class CompressedArtifact:
    source: dict  # {"zoo": name} or {"factory": "module:function"}
    state_dict: dict  # name -> torch.Tensor
    layers: tuple[StoredLayer, ...]
    metadata: dict  # spec, stage accuracies, dataset, ...
    filters: KeptFilters | None = None  # the output channels filter pruning kept
    folds: tuple[Fold, ...] = ()  # (conv, BatchNorm) pairs folded before weight sharing

    def weight_grids(self) -> dict[str, WeightGrid]:
        """What quantize needs of each shared layer: its scale and codebook."""
        return {layer.name: WeightGrid(layer.scale, layer.codebook_q) for layer in self.layers}

    def shaped_model(self, model: nn.Module) -> nn.Module:
        """``model`` (built from the original model code) in the architecture
        of the compressed weights: shrunk by the kept filters, if any, and
        its folded BatchNorms gone, ready for ``load_state_dict(self.state_dict)``."""
        shaped = model if self.filters is None else apply_kept_filters(model, self.filters)
        return apply_folds(shaped, self.folds)


def artifact_of(compressed: CompressedModel, source: dict, extra: dict) -> CompressedArtifact:
    """The artifact of a ``pipeline.compress`` result: its state_dict, its
    layers with a codebook, the spec and stage accuracies plus ``extra``
    in the metadata; ``source`` says which model code it loads into."""
    layers = tuple(
        StoredLayer(layer.name, layer.kind, layer.weight_shape, layer.bits, float(layer.scale),
                    layer.mask, layer.indices, layer.codebook_q)
        for layer in compressed.layers if layer.codebook_q is not None
    )
    metadata = {"spec": json.loads(compressed.spec.to_json()),
                "stage_accuracy": compressed.stage_accuracy,
                "stage_seconds": compressed.stage_seconds, **extra}
    return CompressedArtifact(source, dict(compressed.model.state_dict()), layers, metadata,
                              compressed.filters, compressed.folds)


def save_compressed(path: Path, artifact: CompressedArtifact) -> None:
    """Write atomically (temporary file in the same folder, then rename)."""
    arrays = {f"state/{k}": v.detach().cpu().numpy() for k, v in artifact.state_dict.items()}
    layers = []
    for i, layer in enumerate(artifact.layers):
        arrays[f"layer/{i}/mask"] = layer.mask.astype(np.bool_)
        arrays[f"layer/{i}/indices"] = layer.indices.astype(np.int32)
        arrays[f"layer/{i}/codebook_q"] = layer.codebook_q.astype(np.int8)
        layers.append({"name": layer.name, "kind": layer.kind, "weight_shape": list(layer.weight_shape),
                       "bits": layer.bits, "scale": layer.scale})
    filters = None if artifact.filters is None else {
        "input_shape": list(artifact.filters.input_shape),
        "layers": [{"name": name, "kept": list(kept)} for name, kept in artifact.filters.layers]}
    header = {"format": FORMAT, "version": VERSION, "source": artifact.source,
              "state_keys": list(artifact.state_dict), "layers": layers,
              "metadata": artifact.metadata, "filters": filters,
              "folds": [list(fold) for fold in artifact.folds]}
    write_npz(path, header, arrays)


def is_compressed_artifact(text: str) -> bool:
    """Whether a MODEL argument names a compressed file rather than a model."""
    return text.endswith(SUFFIX)


class _Invalid(ValueError):
    """A field of the artifact that is missing, mistyped or out of range."""


def load_compressed(path: Path) -> CompressedArtifact:
    """The artifact at ``path``, every field validated; UserError otherwise.

    Nothing the file names is imported: ``source`` comes back as plain data."""
    path = Path(path)
    header, arrays = read_npz(path, fmt=FORMAT, version=VERSION, what="compressed model",
                              remedy=_REMEDY)
    try:
        artifact = _from_arrays(header, arrays)
    except _Invalid as exc:
        raise UserError(f"{path} is a corrupt compressed model: {exc}; {_REMEDY}") from None
    except (KeyError, TypeError, ValueError, IndexError) as exc:  # a check this module lacks
        raise UserError(f"{path} is inconsistent ({type(exc).__name__}: {exc}): it is corrupt; "
                        f"{_REMEDY}") from None
    _check_weights(path, artifact)
    return artifact


def _from_arrays(header: dict, arrays: dict) -> CompressedArtifact:
    source = _check_source(header.get("source"))
    keys = _string_list(header.get("state_keys"), "state_keys")
    descs = header.get("layers")
    if not isinstance(descs, list):
        raise _Invalid(f"'layers' must be a list, got {_kind(descs)}")
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise _Invalid(f"'metadata' must be an object, got {_kind(metadata)}")
    _check_array_names(arrays, keys, len(descs))
    state = {key: _state_tensor(key, arrays[f"state/{key}"]) for key in keys}
    layers = tuple(_layer(i, desc, arrays, state) for i, desc in enumerate(descs))
    names = [layer.name for layer in layers]
    repeated = [name for i, name in enumerate(names) if name in names[:i]]
    if repeated:
        raise _Invalid(f"layer names repeat: {brief(repeated[0])} is described twice")
    return CompressedArtifact(source, state, layers, metadata, _filters(header.get("filters"), state),
                              _folds(header.get("folds"), state))


def _kind(value) -> str:
    return f"{type(value).__name__} {brief(value)}"




def _string_list(value, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _Invalid(f"'{field}' must be a list of non-empty strings, got {_kind(value)}")
    if len(set(value)) != len(value):
        raise _Invalid(f"'{field}' names a key twice")
    return value


# ------------------------------------------------------------------ source


def _check_source(source) -> dict:
    """{"zoo": name} or {"factory": "module:attr"}, checked as text only."""
    if not isinstance(source, dict) or len(source) != 1 or not ({"zoo", "factory"} & set(source)):
        raise _Invalid(f"'source' must be {{\"zoo\": NAME}} or {{\"factory\": \"MODULE:FACTORY\"}}, "
                       f"got {_kind(source)}")
    if "zoo" in source:
        if not isinstance(source["zoo"], str) or source["zoo"] not in ZOO:
            raise _Invalid(f"'source' names zoo model {brief(source['zoo'])}, which is not one of "
                           f"{', '.join(sorted(ZOO))}")
    elif not _is_factory_spec(source["factory"]):
        raise _Invalid(f"'source' factory {brief(source['factory'])} is not MODULE:FACTORY (a dotted "
                       "module path or a .py file, then a dotted Python name)")
    return dict(source)


def _is_factory_spec(spec) -> bool:
    """What user_model.parse_spec accepts (syntax only: nothing is
    imported), minus control characters (a spec is shown in messages)."""
    if not isinstance(spec, str) or len(spec) > _MAX_SPEC or not spec.isprintable():
        return False
    try:
        parse_spec(spec)
    except UserError:
        return False
    return True


# ------------------------------------------------------------------ filters


def _filters(value, state: dict) -> KeptFilters | None:
    """None, or {"input_shape": [...], "layers": [{"name", "kept"}, ...]}:
    each layer's kept channels ascending and as many as its stored weight's."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"input_shape", "layers"}:
        raise _Invalid(f"'filters' must be null or an object with input_shape and layers, got {_kind(value)}")
    shape = value["input_shape"]
    if (not isinstance(shape, list) or not 2 <= len(shape) <= 5
            or not all(_is_int(d) and d > 0 for d in shape)
            or math.prod(shape) > _MAX_INPUT_ELEMENTS):
        raise _Invalid(f"'filters.input_shape' must be 2 to 5 positive integers of at most "
                       f"{_MAX_INPUT_ELEMENTS} elements, got {_kind(shape)}")
    layers = value["layers"]
    if not isinstance(layers, list):
        raise _Invalid(f"'filters.layers' must be a list, got {_kind(layers)}")
    kept = []
    for i, entry in enumerate(layers):
        where = f"filters.layers[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"name", "kept"}:
            raise _Invalid(f"{where} must be an object with name and kept, got {_kind(entry)}")
        name, indices = entry["name"], entry["kept"]
        weight = state.get(f"{name}.weight") if isinstance(name, str) else None
        if weight is None or weight.dim() == 0:
            raise _Invalid(f"{where}: 'name' must name a layer whose weight is in state_keys")
        if (not isinstance(indices, list) or not all(_is_int(k) and k >= 0 for k in indices)
                or indices != sorted(set(indices)) or len(indices) != weight.shape[0]):
            raise _Invalid(f"{where} ({brief(name)}): 'kept' must list its {weight.shape[0]} kept "
                           f"channels, ascending, got {_kind(indices)}")
        kept.append((name, tuple(indices)))
    if len({name for name, _ in kept}) != len(kept):
        raise _Invalid("'filters.layers' names a layer twice")
    return KeptFilters(tuple(shape), tuple(kept))


def _folds(value, state: dict) -> tuple[Fold, ...]:
    """[[conv, batchnorm], ...]: each conv's weight and bias stored, each
    BatchNorm's state gone (it is an Identity now), no module named twice."""
    if not isinstance(value, list):
        raise _Invalid(f"'folds' must be a list, got {_kind(value)}")
    folds = []
    for i, pair in enumerate(value):
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(name, str) and name for name in pair)):
            raise _Invalid(f"folds[{i}] must be [CONV, BATCHNORM] module names, got {_kind(pair)}")
        conv, norm = pair
        if f"{conv}.weight" not in state or f"{conv}.bias" not in state:
            raise _Invalid(f"folds[{i}]: convolution {brief(conv)} needs its weight and bias in state_keys")
        if any(key.startswith(f"{norm}.") for key in state):
            raise _Invalid(f"folds[{i}]: BatchNorm {brief(norm)} is folded but its state is stored")
        folds.append((conv, norm))
    names = [name for pair in folds for name in pair]
    if len(set(names)) != len(names):
        raise _Invalid("'folds' names a module twice")
    return tuple(folds)


# ------------------------------------------------------------------ arrays


def _check_array_names(arrays: dict, keys: list[str], n_layers: int) -> None:
    expected = {f"state/{k}" for k in keys}
    expected |= {f"layer/{i}/{a}" for i in range(n_layers) for a in _LAYER_ARRAYS}
    missing = sorted(expected - set(arrays))
    extra = sorted(set(arrays) - expected)
    if missing:
        raise _Invalid(f"arrays missing: {brief(missing[:5])}")
    if extra:
        raise _Invalid(f"arrays the header does not describe: {brief(extra[:5])}")


def _state_tensor(key: str, array: np.ndarray) -> torch.Tensor:
    """A state tensor as a torch model holds it: float32 (int64 buffers),
    finite. Another dtype would be silently converted by load_state_dict."""
    if key.rsplit(".", 1)[-1] in _INTEGER_BUFFERS:
        if array.dtype != np.int64 or array.shape != () or int(array) < 0:
            raise _Invalid(f"state {brief(key)} must be a non-negative int64 scalar, "
                           f"got {array.dtype} of shape {array.shape}")
        return torch.from_numpy(array)
    if array.dtype != np.float32:
        raise _Invalid(f"state {brief(key)} is {array.dtype}; edgegen stores float32 weights "
                       "(a float16/float64/complex/integer tensor would be converted silently)")
    if not np.isfinite(array).all():
        raise _Invalid(f"state {brief(key)} holds NaN or infinite values")
    return torch.from_numpy(array)


# ------------------------------------------------------------------ layers


def _layer(i: int, desc, arrays: dict, state: dict) -> StoredLayer:
    if not isinstance(desc, dict) or set(desc) != set(_LAYER_FIELDS):
        raise _Invalid(f"layers[{i}] must be an object with exactly the fields "
                       f"{', '.join(_LAYER_FIELDS)}, got {_kind(desc)}")
    name, kind, bits = desc["name"], desc["kind"], desc["bits"]
    where = f"layers[{i}] ({brief(name)})"
    if not isinstance(name, str) or f"{name}.weight" not in state:
        raise _Invalid(f"{where}: 'name' must name a layer whose weight is in state_keys")
    if not isinstance(kind, str) or kind not in KINDS:
        raise _Invalid(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {_kind(kind)}")
    if not _is_int(bits) or not 1 <= bits <= MAX_BITS:
        raise _Invalid(f"{where}: 'bits' must be an integer in 1..{MAX_BITS}, got {_kind(bits)}")
    scale = _scale(where, desc["scale"])
    shape = _weight_shape(where, desc["weight_shape"], KINDS[kind], state[f"{name}.weight"])
    mask = arrays[f"layer/{i}/mask"]
    indices = arrays[f"layer/{i}/indices"]
    codebook_q = arrays[f"layer/{i}/codebook_q"]
    _check_mask(where, mask, shape)
    _check_codebook(where, codebook_q, bits)
    _check_indices(where, indices, shape, mask, len(codebook_q))
    return StoredLayer(name, kind, shape, bits, scale, mask, indices, codebook_q)


def _is_int(value) -> bool:
    # bool is an int in Python: true/false in JSON is never a count.
    return isinstance(value, Integral) and not isinstance(value, bool)


def _scale(where: str, value) -> float:
    if not isinstance(value, Real) or isinstance(value, bool):
        raise _Invalid(f"{where}: 'scale' must be a number, got {_kind(value)}")
    scale = float(value)
    if not math.isfinite(scale) or scale <= 0:
        raise _Invalid(f"{where}: 'scale' must be finite and > 0, got {scale}")
    if scale > _MAX_SCALE:
        raise _Invalid(f"{where}: 'scale' {scale} is too large: scale * 127 must fit float32")
    return scale


def _weight_shape(where: str, value, rank: int, weight: torch.Tensor) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) != rank or not all(_is_int(d) and d > 0 for d in value):
        raise _Invalid(f"{where}: 'weight_shape' must be {rank} positive integers, got {_kind(value)}")
    shape = tuple(value)
    if tuple(weight.shape) != shape:
        raise _Invalid(f"{where}: 'weight_shape' is {shape} but its weight in the state has "
                       f"shape {tuple(weight.shape)}")
    return shape


def _check_mask(where: str, mask: np.ndarray, shape: tuple[int, ...]) -> None:
    if mask.dtype != np.bool_ or mask.shape != shape:
        raise _Invalid(f"{where}: mask must be bool of shape {shape}, got {mask.dtype} {mask.shape}")


def _check_codebook(where: str, codebook_q: np.ndarray, bits: int) -> None:
    if codebook_q.dtype != np.int8 or codebook_q.shape != (1 << bits,):
        raise _Invalid(f"{where}: codebook must be int8 with 2^{bits} entries, got "
                       f"{codebook_q.dtype} {codebook_q.shape}")
    if codebook_q[0] != 0 or codebook_q.min() < -127:
        raise _Invalid(f"{where}: codebook must have slot 0 = 0 and values in [-127, 127]")


def _check_indices(where: str, indices: np.ndarray, shape, mask: np.ndarray, entries: int) -> None:
    if indices.dtype.kind not in "iu" or indices.shape != shape:
        raise _Invalid(f"{where}: indices must be integers of shape {shape}, got "
                       f"{indices.dtype} {indices.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= entries):
        raise _Invalid(f"{where}: a codebook index is outside 0..{entries - 1}")
    if np.any(indices[~mask] != 0):
        raise _Invalid(f"{where}: a pruned position has a codebook index other than 0")


def _check_weights(path: Path, artifact: CompressedArtifact) -> None:
    for layer in artifact.layers:
        weight = artifact.state_dict[f"{layer.name}.weight"].numpy().astype(np.float64)
        expected = layer.scale * layer.codebook_q[layer.indices].astype(np.float64) * layer.mask
        # Written so that a NaN difference fails too.
        if not (np.abs(weight - expected) <= 1e-4 * layer.scale).all():
            raise UserError(
                f"{path} is corrupt: the weights of {layer.name} do not match its codebook and "
                f"indices; {_REMEDY}"
            )
