"""bench/zoo.py: the compression every model gets, and its table. (The
benchmark itself fine-tunes for minutes: it is run by hand, not here.)"""

import pytest
import torch.nn as nn
from bench_support import bench_module

from edgegen.compress.spec import CompressSpec
from edgegen.zoo.models import ZOO


@pytest.fixture(scope="module")
def zoo_bench():
    with bench_module("zoo") as module:
        yield module


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_gets_filter_pruning_then_deep_compression_of_every_layer(zoo_bench, name):
    model = ZOO[name]()
    settings = zoo_bench.Settings(filter_params=0.3, sparsity=0.5, conv_bits=6, fc_bits=5, epochs=1)
    spec = settings.full(model)
    assert isinstance(spec, CompressSpec) and spec.filters.params == 0.3
    layers = {n: type(m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert {n for n, _ in spec.layers} == set(layers)
    for layer_name, layer in spec.layers:
        assert layer.prune.sparsity == 0.5
        assert layer.share.bits == (6 if layers[layer_name] is nn.Conv2d else 5)
    assert "6-bit conv, 5-bit fc, BatchNorm folded first" in settings.describe("compressed")


def test_the_table_has_a_row_per_model_and_variant(zoo_bench):
    row = {"params": 1000, "macs": 2000, "float_acc_variant": 0.9, "int8_acc_variant": 0.89,
           "flash_bytes": 3000, "ram_bytes": 400, "instructions": 5000, "bit_exact": True}
    text = zoo_bench.table({"m": {v: dict(row) for v in ("int8", "pruned", "compressed")}})
    lines = text.splitlines()
    assert len(lines) == 2 + 3
    assert lines[2] == "| m | int8 | 1,000 | 2,000 | 90.00 % | 89.00 % | 3,000 | 400 | 5,000 | yes |"
