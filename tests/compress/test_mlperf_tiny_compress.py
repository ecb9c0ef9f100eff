"""Compression of the MLPerf Tiny networks: magnitude pruning, weight sharing
and filter pruning, and every storage format of the compressed runtime,
bit-exact on the host."""

import pytest
import torch
from mlperf_support import compressed_qgraph

from edgegen.compress.spec import FilterPruneSpec
from edgegen.jobs.deploy import VerifyOptions, emit, verify_on_host
from edgegen.jobs.lower import StorageChoice
from edgegen.verify.host_model import HostModel, ModelSizes
from edgegen.zoo.mlperf_tiny import MLPERF_TINY

FORMATS = ("codebook", "sparse", "huffman", "auto")


@pytest.fixture(scope="module", params=sorted(MLPERF_TINY))
def shared(request):
    return (request.param,) + compressed_qgraph(request.param)[1:]


def host_exact(qgraph, data, folder, storage: StorageChoice) -> tuple[bool, dict]:
    lowered = emit(qgraph, folder, storage)
    host = HostModel(folder, ModelSizes.of(qgraph, lowered.memory), folder / "build")
    result = verify_on_host(qgraph, host, data, VerifyOptions(test_samples=8, random_samples=8))
    return result.comparison.bit_exact, lowered.storage.formats()


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_storage_format_is_bit_exact(shared, fmt, tmp_path):
    name, qgraph, data = shared
    exact, formats = host_exact(qgraph, data, tmp_path, StorageChoice.from_options(fmt, "balanced"))
    assert exact, f"{name} with --format {fmt}"
    if fmt != "auto":
        # every weight layer the format can hold is stored in it
        assert fmt in set(formats.values()), formats


@pytest.mark.parametrize("name", sorted(MLPERF_TINY))
def test_filter_pruning_then_deep_compression(name, tmp_path):
    result, qgraph, data = compressed_qgraph(name, FilterPruneSpec(params=0.3, finetune_epochs=0))
    assert result.filters is not None
    kept = sum(len(indices) for _, indices in result.filters.layers)
    original = sum(m.out_channels if isinstance(m, torch.nn.Conv2d) else m.out_features
                   for m in MLPERF_TINY[name]().modules()
                   if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert 0 < kept < original
    exact, _ = host_exact(qgraph, data, tmp_path, StorageChoice.from_options("auto", "size"))
    assert exact
