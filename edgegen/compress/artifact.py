"""The compress stage's artifact: one versioned file that ``edgegen generate``
and ``edgegen deploy`` read in place of a checkpoint.

An ``.npz`` (read with ``allow_pickle=False``) holding

* ``header``: UTF-8 JSON — format name and version, where the model comes
  from (a zoo name or ``module:factory``), the compression spec, the
  accuracy after each stage, and per compressed layer its name, kind, weight
  shape, bits and int8 grid scale;
* ``state/<key>``: the model's state_dict after compression;
* ``layer/<i>/mask``, ``/indices``, ``/codebook_q``: each compressed layer's
  pruning mask, codebook indices (torch layout) and int8 codebook.

Loading checks more than the format: every compressed weight must equal
``scale * codebook_q[indices]`` where the mask keeps it and 0 elsewhere, so
a file whose arrays were damaged or mixed up is refused, not deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgegen.errors import UserError
from edgegen.npz_file import read_npz, write_npz

FORMAT = "edgegen.compressed"
VERSION = 1
SUFFIX = ".npz"


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

    def weight_scales(self) -> dict[str, float]:
        return {layer.name: layer.scale for layer in self.layers}


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
    header = {"format": FORMAT, "version": VERSION, "source": artifact.source,
              "state_keys": list(artifact.state_dict), "layers": layers,
              "metadata": artifact.metadata}
    write_npz(path, header, arrays)


def is_compressed_artifact(text: str) -> bool:
    """Whether a MODEL argument names a compressed file rather than a model."""
    return text.endswith(SUFFIX)


def load_compressed(path: Path) -> CompressedArtifact:
    path = Path(path)
    header, arrays = read_npz(path, fmt=FORMAT, version=VERSION, what="compressed model",
                              remedy="run `edgegen compress` again")
    try:
        artifact = _from_arrays(header, arrays)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise UserError(f"{path} is inconsistent ({type(exc).__name__}: {exc}): it is corrupt; "
                        "run `edgegen compress` again") from None
    _check_weights(path, artifact)
    return artifact


def _from_arrays(header: dict, arrays: dict) -> CompressedArtifact:
    state = {k: torch.from_numpy(np.array(arrays[f"state/{k}"])) for k in header["state_keys"]}
    layers = []
    for i, desc in enumerate(header["layers"]):
        layer = StoredLayer(
            name=str(desc["name"]), kind=str(desc["kind"]),
            weight_shape=tuple(int(d) for d in desc["weight_shape"]),
            bits=int(desc["bits"]), scale=float(desc["scale"]),
            mask=arrays[f"layer/{i}/mask"], indices=arrays[f"layer/{i}/indices"],
            codebook_q=arrays[f"layer/{i}/codebook_q"],
        )
        if layer.mask.shape != layer.weight_shape or layer.indices.shape != layer.weight_shape:
            raise ValueError(f"layer {layer.name}: mask or indices do not have shape {layer.weight_shape}")
        if len(layer.codebook_q) != 1 << layer.bits or layer.codebook_q[0] != 0:
            raise ValueError(f"layer {layer.name}: codebook is not 2^{layer.bits} entries with slot 0 = 0")
        if layer.indices.min(initial=0) < 0 or layer.indices.max(initial=0) >= len(layer.codebook_q):
            raise ValueError(f"layer {layer.name}: codebook index out of range")
        layers.append(layer)
    source = header["source"]
    if not isinstance(source, dict) or not ({"zoo", "factory"} & set(source)):
        raise ValueError("the model source is missing")
    return CompressedArtifact(source, state, tuple(layers), header.get("metadata", {}))


def _check_weights(path: Path, artifact: CompressedArtifact) -> None:
    for layer in artifact.layers:
        key = f"{layer.name}.weight"
        if key not in artifact.state_dict:
            raise UserError(f"{path} is corrupt: no weight {key} for compressed layer {layer.name}")
        weight = artifact.state_dict[key].numpy().astype(np.float64)
        expected = layer.scale * layer.codebook_q[layer.indices].astype(np.float64) * layer.mask
        if weight.shape != expected.shape or np.abs(weight - expected).max(initial=0) > 1e-4 * layer.scale:
            raise UserError(
                f"{path} is corrupt: the weights of {layer.name} do not match its codebook and "
                "indices; run `edgegen compress` again"
            )
