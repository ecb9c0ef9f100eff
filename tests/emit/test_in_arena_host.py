"""<prefix>_invoke_in_arena on the host (cffi): the input read from the
arena at <PREFIX>_INPUT_OFFSET, the output left at <PREFIX>_OUTPUT_OFFSET,
byte for byte the golden model's and <prefix>_invoke's, on every kind of
model (chains, residual adds, concatenations joined in place, channel
shuffles, depthwise convolutions, fused conv + pool bands, compressed
formats with scratch in the arena); and what the header declares."""

import re

import numpy as np
import pytest
from torch import nn

from compact_models import FireNet, ResidualNet, ShuffleUnit, WideFireNet, separable_net
from edgegen.encode.storage_plan import FormatRequest
from edgegen.host.compiler import cdef_from_header, load_library
from edgegen.jobs.lower import StorageChoice, lower
from edgegen.quantize.validate import validate_qgraph
from edgegen.reference.golden import run_golden
from edgegen.verify.host_model import IN_ARENA, INVOKE, HostModel, ModelSizes
from qgraph_support import compressed_like, conv_pool_qgraph, module_qgraph, tiny_qgraph, \
    vectors_for, zoo_qgraph


def autoencoder():
    """The shape of MLPerf Tiny's anomaly-detection autoencoder, scaled to
    a 28x28 input: 784 -> 64 x 3 -> 8 -> 64 x 3 -> 784, fully connected."""
    widths = [784, 64, 64, 64, 8, 64, 64, 64, 784]
    layers = [nn.Flatten()]
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def fused_stages():
    """Two conv + pool stages that run fused (bands in the arena), the last
    pooling the model's output."""
    stage = {"kernel": (3, 3), "stride": (1, 1), "padding": (1, 1, 1, 1), "pool": "max",
             "pool_kernel": (2, 2), "pool_stride": (2, 2), "pool_padding": (0, 0, 0, 0),
             "relu": True}
    q = conv_pool_qgraph(np.random.default_rng(3), height=20, width=12, in_channels=2,
                         stages=[{**stage, "channels": 6}, {**stage, "channels": 4,
                                                            "pool": "avg"}], head="none")
    validate_qgraph(q)
    return q


MODELS = {
    "tiny": tiny_qgraph,
    "lenet300": lambda: zoo_qgraph("lenet300"),
    "lenet5": lambda: zoo_qgraph("lenet5"),
    "autoencoder": lambda: module_qgraph(autoencoder, "autoencoder"),
    "residual": lambda: module_qgraph(ResidualNet, "residual"),
    "fire": lambda: module_qgraph(FireNet, "fire"),
    "wide_fire": lambda: module_qgraph(WideFireNet, "wide_fire"),
    "shuffle": lambda: module_qgraph(ShuffleUnit, "shuffle"),
    "separable": lambda: module_qgraph(separable_net, "separable"),
    "fused": fused_stages,
}


def build(qgraph, choice, folder):
    low = lower(qgraph, choice)
    low.sources.write(folder / "src")
    return low, HostModel(folder / "src", ModelSizes.of(qgraph, low.memory), folder / "build")


@pytest.mark.parametrize("which", sorted(MODELS))
def test_in_arena_equals_golden_and_invoke(which, tmp_path):
    qgraph = MODELS[which]()
    low, model = build(qgraph, StorageChoice(FormatRequest("dense"), "speed"), tmp_path)
    assert model.entry_points == (INVOKE, IN_ARENA)
    x = vectors_for(qgraph, 8)
    expected = run_golden(qgraph, x).reshape(len(x), -1)
    np.testing.assert_array_equal(model.run(x, (IN_ARENA,)), expected)
    np.testing.assert_array_equal(model.run(x), expected)  # both, checked equal to each other
    io = low.memory.in_arena
    assert io.arena_size <= low.memory.arena_size + io.input.size + io.output.size + 8
    if which == "fused":
        assert low.memory.fused and low.memory.in_arena.output.first == low.memory.fused[-1].pool
    if which == "wide_fire":
        assert low.memory.concats_in_place


@pytest.mark.parametrize("fmt", ["codebook", "sparse", "huffman"])
@pytest.mark.parametrize("which", ["lenet5", "separable", "fused"])
def test_in_arena_with_compressed_weights_and_scratch(which, fmt, tmp_path):
    qgraph = compressed_like(MODELS[which](), density=0.3, values=15)
    validate_qgraph(qgraph)
    low, model = build(qgraph, StorageChoice(FormatRequest(fmt), "size"), tmp_path)
    x = vectors_for(qgraph, 6, seed=2)
    expected = run_golden(qgraph, x).reshape(len(x), -1)
    np.testing.assert_array_equal(model.run(x, (IN_ARENA,)), expected)
    np.testing.assert_array_equal(model.run(x, (INVOKE,)), expected)


def test_the_autoencoder_shape_needs_its_widest_adjacent_pair(tmp_path):
    """Input and output in the arena: max(784 + 64, 64 + 784) bytes, the
    hidden layers in their bytes while they are dead."""
    qgraph = MODELS["autoencoder"]()
    low = lower(qgraph)
    io = low.memory.in_arena
    assert io.arena_size == 784 + 64
    assert low.memory.in_arena_saves
    assert low.memory.arena_size + 784 + 784 > io.arena_size


def test_the_header_declares_the_in_arena_api(tmp_path):
    qgraph = tiny_qgraph()
    low, model = build(qgraph, StorageChoice(), tmp_path)
    io = low.memory.in_arena
    header = tmp_path / "src" / "tiny.h"
    text = header.read_text()

    def macro(name):
        return int(re.search(rf"^#define {name} (\d+)$", text, re.M).group(1))

    assert (macro("TINY_IO_ARENA_SIZE"), macro("TINY_INPUT_OFFSET"),
            macro("TINY_OUTPUT_OFFSET")) == (io.arena_size, io.input_offset, io.output_offset)
    assert macro("TINY_ARENA_SIZE") == low.memory.arena_size
    assert "tiny_invoke_in_arena(arena) != 0" in text  # the usage comment
    # Through the header's own cdef block: both entry points, NULL refused.
    ffi, lib = load_library(model.library_path, cdef_from_header(header))
    assert lib.tiny_invoke_in_arena(ffi.NULL) == 1  # EG_ERR_ARG
    arena = ffi.new("int8_t[]", io.arena_size)
    x = vectors_for(qgraph, 1, seed=5)
    ffi.memmove(arena + io.input_offset, x.tobytes(), x.size)
    assert lib.tiny_invoke_in_arena(arena) == 0
    got = np.frombuffer(ffi.buffer(arena + io.output_offset, io.output.size), np.int8)
    np.testing.assert_array_equal(got, run_golden(qgraph, x).reshape(-1))
