"""Every storage format, forced on every layer, computes the golden model's
outputs byte for byte in the generated C on the host (cffi)."""

import numpy as np
import pytest

from edgegen.encode.storage import FORMATS
from edgegen.encode.storage_plan import FormatRequest
from edgegen.ir import Rounding
from edgegen.jobs.lower import StorageChoice, lower
from edgegen.plan.arena import plan_memory
from edgegen.quantize.validate import validate_qgraph
from edgegen.reference.golden import run_golden
from edgegen.verify.host_model import HostModel, ModelSizes
from qgraph_support import compressed_like, tiny_qgraph, zoo_qgraph

_CACHE: dict = {}


def qgraph_of(which: str):
    if which not in _CACHE:
        if which == "tiny":
            q = compressed_like(tiny_qgraph(), density=0.5, values=5)
        else:
            q = compressed_like(zoo_qgraph(which), density=0.08, values=31)
        validate_qgraph(q)
        _CACHE[which] = q
    return _CACHE[which]


def run_host(qgraph, choice, tmp_path, vectors):
    low = lower(qgraph, choice)
    folder = tmp_path / "src"
    low.sources.write(folder)
    sizes = ModelSizes(low.sources.prefix, qgraph.tensor(qgraph.input).size,
                       qgraph.tensor(qgraph.output).size, low.memory.arena_size)
    model = HostModel(folder, sizes, tmp_path / "build")
    return low, model.run(vectors)


def vectors_for(qgraph, count=6, seed=0):
    shape = qgraph.tensor(qgraph.input).shape
    return np.random.default_rng(seed).integers(-128, 128, size=(count,) + shape).astype(np.int8)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("which", ["tiny", "lenet300", "lenet5"])
def test_every_format_on_every_layer_is_bit_exact(which, fmt, tmp_path):
    qgraph = qgraph_of(which)
    x = vectors_for(qgraph)
    low, got = run_host(qgraph, StorageChoice(FormatRequest(fmt), "size"), tmp_path, x)
    assert set(low.storage.formats().values()) == {fmt}
    np.testing.assert_array_equal(got, run_golden(qgraph, x).reshape(len(x), -1))


@pytest.mark.parametrize("optimize", ["size", "speed", "balanced"])
def test_cost_model_choices_are_bit_exact(optimize, tmp_path):
    qgraph = qgraph_of("lenet5")
    x = vectors_for(qgraph, seed=1)
    low, got = run_host(qgraph, StorageChoice(FormatRequest(), optimize), tmp_path, x)
    np.testing.assert_array_equal(got, run_golden(qgraph, x).reshape(len(x), -1))


def test_single_rounding_with_mixed_formats(tmp_path):
    from dataclasses import replace

    qgraph = qgraph_of("tiny")
    nodes = tuple(
        replace(n, op=replace(n.op, requant=replace(n.op.requant, rounding=Rounding.SINGLE)))
        if hasattr(n.op, "requant") else n for n in qgraph.nodes)
    qgraph = replace(qgraph, nodes=nodes, rounding=Rounding.SINGLE)
    x = vectors_for(qgraph, count=20)
    names = [n.name for n in qgraph.nodes if hasattr(n.op, "codebook")]
    request = FormatRequest("huffman", {names[0]: "sparse"})
    low, got = run_host(qgraph, StorageChoice(request, "speed"), tmp_path, x)
    assert low.storage.formats() == {names[0]: "sparse", names[1]: "huffman"}
    np.testing.assert_array_equal(got, run_golden(qgraph, x).reshape(len(x), -1))


def test_scratch_lives_in_the_arena_only_during_its_layer():
    """LeNet-5's conv scratch fits beside the live activations: the arena
    of the compressed model is no larger than the dense one's."""
    qgraph = qgraph_of("lenet5")
    low = lower(qgraph, StorageChoice(FormatRequest("sparse"), "size"))
    assert low.memory.scratch and low.memory.arena_size == plan_memory(qgraph).arena_size
