"""The bytes encode accounts for a stored layer are the bytes the compiled
object holds: every array and weights struct of the layer, by symbol size,
on a 32-bit target (arm-none-eabi) where the struct sizes are those of
storage.STRUCT_BYTES."""

import subprocess

import pytest

from edgegen.encode.storage import FORMATS
from edgegen.encode.storage_plan import FormatRequest
from edgegen.jobs.lower import StorageChoice, lower
from edgegen.report.sizes import const_bytes_per_layer, symbol_sizes
from qgraph_support import compressed_like, tiny_qgraph, zoo_qgraph
from toolchain_support import require_tool


@pytest.fixture(scope="module")
def qgraphs():
    return {"tiny": compressed_like(tiny_qgraph(), density=0.5, values=5),
            "lenet5": compressed_like(zoo_qgraph("lenet5"), density=0.08, values=31)}


@pytest.mark.parametrize("fmt", [*FORMATS, "auto"])
@pytest.mark.parametrize("which", ["tiny", "lenet5"])
def test_symbol_sizes_equal_encode_accounting(qgraphs, which, fmt, tmp_path):
    require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    qgraph = qgraphs[which]
    lowered = lower(qgraph, StorageChoice(FormatRequest(fmt), "size"))
    lowered.sources.write(tmp_path)
    obj = tmp_path / "weights.o"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m0", "-mthumb", "-std=c99", "-Os", "-c",
                    f"-I{tmp_path}", f"-I{tmp_path / 'runtime'}",
                    str(tmp_path / f"{lowered.sources.prefix}_weights.c"), "-o", str(obj)],
                   check=True)
    measured = const_bytes_per_layer(lowered.sources, symbol_sizes(obj, "arm-none-eabi-nm"),
                                     str(obj))
    for layer in lowered.storage.layers:
        node = qgraph.nodes[layer.index]
        rq = node.op.requant
        per_tensor = len(set(zip(rq.multiplier.tolist(), rq.shift.tolist()))) == 1
        requant_bytes = 8 * (1 if per_tensor else len(rq.multiplier))
        expected = layer.stored.flash_bytes + layer.bias.nbytes + requant_bytes
        assert measured[layer.name] == expected, (layer.name, layer.format)
