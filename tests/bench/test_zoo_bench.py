"""bench/zoo.py: the compression every model gets, and its table. (The
benchmark itself fine-tunes for minutes: it is run by hand, not here.)"""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch.nn as nn

from edgegen.compress.spec import CompressSpec
from edgegen.zoo.models import ZOO

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def zoo_bench():
    sys.path.insert(0, str(BENCH))  # zoo.py reuses targets.py's board row, as a script does
    try:
        spec = importlib.util.spec_from_file_location("bench_zoo", BENCH / "zoo.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))
        sys.modules.pop("bench_zoo", None)


def test_the_layers_a_batchnorm_follows_are_found_in_any_graph(zoo_bench):
    class Branches(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 4, 3), nn.Conv2d(1, 4, 3)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            return self.bn(self.a(x)) + self.b(x)

    assert zoo_bench.layers_before_batchnorm(Branches()) == {"a"}
    assert zoo_bench.layers_before_batchnorm(ZOO["lenet5"]()) == set()


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_gets_filter_pruning_then_deep_compression(zoo_bench, name):
    model = ZOO[name]()
    settings = zoo_bench.Settings(filter_params=0.3, sparsity=0.5, epochs=1)
    spec = settings.full(model)
    assert isinstance(spec, CompressSpec) and spec.filters.params == 0.3
    normed = zoo_bench.layers_before_batchnorm(model)
    weight_layers = {n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert {n for n, _ in spec.layers} == weight_layers
    for layer_name, layer in spec.layers:
        assert layer.prune.sparsity == 0.5
        assert (layer.share is None) == (layer_name in normed)
    assert any(layer.share is not None for _, layer in spec.layers)  # the classifier at least


def test_the_table_has_a_row_per_model_and_variant(zoo_bench):
    row = {"params": 1000, "macs": 2000, "float_acc_variant": 0.9, "int8_acc_variant": 0.89,
           "flash_bytes": 3000, "ram_bytes": 400, "instructions": 5000, "bit_exact": True}
    text = zoo_bench.table({"m": {v: dict(row) for v in ("int8", "pruned", "compressed")}})
    lines = text.splitlines()
    assert len(lines) == 2 + 3
    assert lines[2] == "| m | int8 | 1,000 | 2,000 | 90.00 % | 89.00 % | 3,000 | 400 | 5,000 | yes |"
