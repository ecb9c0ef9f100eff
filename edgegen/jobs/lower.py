"""Lowering: a QGraph and the user's storage choices -> a storage plan, a
memory plan and C sources. Every job that writes C (deploy, generate,
build, the benchmarks) lowers through here, so that the formats chosen,
the scratch they need and the sources are always planned together."""

from __future__ import annotations

from dataclasses import dataclass

from edgegen.emit.generate import GeneratedSources, generate_sources
from edgegen.encode.storage_plan import FormatRequest, StoragePlan, plan_storage
from edgegen.ir import QGraph
from edgegen.plan.arena import MemoryPlan, plan_memory


@dataclass(frozen=True)
class StorageChoice:
    """``--format`` and ``--optimize`` as the jobs take them."""

    request: FormatRequest = FormatRequest()
    optimize: str = "balanced"


@dataclass(frozen=True)
class Lowered:
    storage: StoragePlan
    memory: MemoryPlan
    sources: GeneratedSources


def lower(qgraph: QGraph, choice: StorageChoice = StorageChoice(),
          name: str | None = None) -> Lowered:
    storage = plan_storage(qgraph, choice.request, choice.optimize)
    scratch = {layer.name: layer.scratch_bytes for layer in storage.layers}
    memory = plan_memory(qgraph, scratch)
    return Lowered(storage, memory, generate_sources(qgraph, storage, memory, name))
