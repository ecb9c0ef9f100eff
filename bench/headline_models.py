"""The compressed LeNets at the headline configurations of
``bench/deep_compression.py``, as QGraphs, cached.

Compressing takes minutes (LeNet-5: about three), so each QGraph is saved
under ``$EDGEGEN_CACHE/bench/`` with the configuration in its name and
loaded (and validated) from there on later runs. Delete the folder to
compress again.

    python bench/headline_models.py            # warm the cache
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deep_compression import CONFIGS, SCHEDULE  # noqa: E402

from edgegen.compress.pipeline import compress  # noqa: E402
from edgegen.compress.spec import ShareSpec, default_spec  # noqa: E402
from edgegen.data.datasets import load_dataset  # noqa: E402
from edgegen.ir import QGraph  # noqa: E402
from edgegen.jobs.compress import RetrainRecipe, dataset_eval_fn, dataset_train_fn, measure  # noqa: E402
from edgegen.quantize.artifact import load_qgraph, save_qgraph  # noqa: E402
from edgegen.zoo.checkpoints import cache_dir, trained_zoo_model  # noqa: E402

HEADLINE = {"lenet300": "further", "lenet5": "furthest"}


def _config(name: str, label: str):
    for config in CONFIGS[name]:
        if config[0] == label:
            return config
    raise KeyError(f"{name} has no configuration {label!r}")


def headline_qgraph(name: str, dataset, log=print) -> QGraph:
    """The headline compressed ``name`` as an int8 QGraph (codebooks attached)."""
    label = HEADLINE[name]
    path = cache_dir() / "bench" / f"{name}-{label}-{dataset.name}.qgraph.npz"
    if path.is_file():
        return load_qgraph(path)
    _, sparsity, conv_bits, fc_bits, layer_bits = _config(name, label)
    torch.manual_seed(0)
    model, _ = trained_zoo_model(name, dataset, progress=False)
    spec = default_spec(model, sparsity=sparsity, conv_bits=conv_bits, fc_bits=fc_bits, **SCHEDULE)
    spec = replace(spec, layers=tuple(
        (n, replace(l, share=ShareSpec(bits=layer_bits[n], init=l.share.init)))
        if n in layer_bits else (n, l) for n, l in spec.layers))
    log(f"compressing {name} ({label}); cached afterwards in {path}")
    compressed = compress(model, spec, train_fn=dataset_train_fn(dataset, RetrainRecipe(), 0, progress=False),
                          eval_fn=dataset_eval_fn(dataset), progress=False, log=log)
    qgraph, _, accuracy = measure(compressed, name, dataset)
    qgraph = replace(qgraph, metadata={**qgraph.metadata, "int8_accuracy": accuracy,
                                       "config": label})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_qgraph(qgraph, path)
    return qgraph


if __name__ == "__main__":
    data = load_dataset(None)
    for model_name in HEADLINE:
        q = headline_qgraph(model_name, data)
        print(model_name, q.metadata.get("int8_accuracy"))
