"""Lowering: a QGraph and the user's storage choices -> a storage plan, a
memory plan (which conv + pool pairs run fused, edgegen.plan.fusion, and
the arena) and C sources. Every job that writes C (deploy, generate,
build, the benchmarks) lowers through here, so that the formats chosen,
the scratch they need and the sources are always planned together.

A deploy folder records the choice in ``model.storage.json`` so that
``edgegen verify`` can plan the same C again from the folder's QGraph.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgegen.emit.generate import GeneratedSources, generate_sources
from edgegen.encode.storage import FORMATS
from edgegen.encode.storage_plan import (
    AUTO,
    OPTIMIZE,
    FormatRequest,
    StoragePlan,
    plan_storage,
    weight_layers,
)
from edgegen.errors import UserError, brief
from edgegen.ir import QGraph
from edgegen.plan.arena import MemoryPlan, plan_memory
from edgegen.plan.fusion import plan_fusion

STORAGE_FILE = "model.storage.json"
_REMEDY = "regenerate the folder with `edgegen deploy`"


@dataclass(frozen=True)
class StorageChoice:
    """``--format`` and ``--optimize`` as the jobs take them."""

    request: FormatRequest = field(default_factory=FormatRequest)
    optimize: str = "balanced"

    @classmethod
    def from_options(cls, format_text: str, optimize: str) -> "StorageChoice":
        """From the command line's words; UserError for a bad one."""
        try:
            request = FormatRequest.parse(format_text)
        except ValueError as error:
            raise UserError(f"--format {format_text!r}: {error} (e.g. --format auto, "
                            "--format sparse, --format fc1=huffman,conv1=dense)") from None
        if optimize not in OPTIMIZE:
            raise UserError(f"--optimize {optimize!r}: use one of {', '.join(OPTIMIZE)}")
        return cls(request, optimize)

    def to_json(self) -> dict:
        return {"format": self.request.default, "layers": dict(sorted(self.request.layers.items())),
                "optimize": self.optimize}

    @classmethod
    def from_json(cls, data, where: str) -> "StorageChoice":
        """The choice recorded in a folder; UserError for anything malformed."""
        if not isinstance(data, dict) or set(data) != {"format", "layers", "optimize"}:
            raise UserError(f"{where} is not an edgegen storage choice; {_REMEDY}")
        fmt, layers, optimize = data["format"], data["layers"], data["optimize"]
        known = (AUTO, *FORMATS)
        if fmt not in known or optimize not in OPTIMIZE or not isinstance(layers, dict) or any(
                not isinstance(k, str) or v not in known for k, v in layers.items()):
            raise UserError(f"{where} holds a format or goal edgegen does not know "
                            f"({brief(data)}); {_REMEDY}")
        return cls(FormatRequest(fmt, dict(layers)), optimize)


@dataclass(frozen=True)
class Lowered:
    storage: StoragePlan
    memory: MemoryPlan
    sources: GeneratedSources


def check_request(qgraph: QGraph, request: FormatRequest) -> None:
    """A per-layer format must name a weight layer of the model."""
    names = [qgraph.nodes[i].name for i in weight_layers(qgraph)]
    for name in sorted(request.layers):
        if name not in names:
            raise UserError(f"--format names layer {name!r}, which is not a weight layer of "
                            f"{qgraph.name}; its weight layers are: {', '.join(names)}")


def lower(qgraph: QGraph, choice: StorageChoice = StorageChoice(),
          name: str | None = None) -> Lowered:
    check_request(qgraph, choice.request)
    storage = plan_storage(qgraph, choice.request, choice.optimize)
    scratch = {layer.name: layer.scratch_bytes for layer in storage.layers}
    fused = plan_fusion(qgraph, storage.formats(), scratch)
    memory = plan_memory(qgraph, scratch, fused, io_in_arena=True)
    return Lowered(storage, memory, generate_sources(qgraph, storage, memory, name))


def save_choice(choice: StorageChoice, path: Path) -> None:
    Path(path).write_text(json.dumps(choice.to_json(), indent=2, sort_keys=True) + "\n")


def load_choice(path: Path) -> StorageChoice:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing: the folder does not say how its weights are "
                        f"stored; {_REMEDY}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} ({exc}); {_REMEDY}") from None
    return StorageChoice.from_json(data, str(path))
