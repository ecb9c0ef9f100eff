"""Every storage format, forced on every layer, computes the golden model's
outputs byte for byte in the generated C on the host (cffi)."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from compact_models import ShuffleUnit, separable_net
from edgegen.encode.storage import FORMATS
from edgegen.host.compiler import WARNING_FLAGS, compile_executable
from edgegen.encode.storage_plan import FormatRequest
from edgegen.ir import Rounding
from edgegen.jobs.lower import StorageChoice, lower
from edgegen.plan.arena import SCRATCH_PREFIX, plan_memory
from edgegen.quantize.validate import validate_qgraph
from edgegen.reference.golden import run_golden
from qgraph_support import (
    compressed_like, module_qgraph, run_host, tiny_qgraph, vectors_for, zoo_qgraph,
)
from toolchain_support import require_tool

_CACHE: dict = {}
# Networks of grouped (ShuffleNet) and depthwise (MobileNet) convolutions.
COMPACT = {"shuffle": ShuffleUnit, "separable": separable_net}


def qgraph_of(which: str):
    if which not in _CACHE:
        if which == "tiny":
            q = compressed_like(tiny_qgraph(), density=0.5, values=5)
        elif which in COMPACT:
            q = compressed_like(module_qgraph(COMPACT[which], which), density=0.3, values=15)
        else:
            q = compressed_like(zoo_qgraph(which), density=0.08, values=31)
        validate_qgraph(q)
        _CACHE[which] = q
    return _CACHE[which]


# The Arm DSP kernels with the instructions modelled in C (runtime_c/eg_dsp.h).
DSP_EMULATED = ("-DEG_KERNELS_DSP=1", "-DEG_DSP_EMULATE")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("which", ["tiny", "lenet300", "lenet5", "shuffle", "separable"])
@pytest.mark.parametrize("kernels", ["portable", "dsp"])
def test_every_format_on_every_layer_is_bit_exact(which, fmt, kernels, tmp_path):
    """Both kernel variants, built as edgegen builds them (the model's
    rounding fixed at compile time)."""
    qgraph = qgraph_of(which)
    x = vectors_for(qgraph)
    low, got = run_host(qgraph, StorageChoice(FormatRequest(fmt), "size"), tmp_path, x,
                        DSP_EMULATED if kernels == "dsp" else ())
    assert set(low.storage.formats().values()) == {fmt}
    np.testing.assert_array_equal(got, run_golden(qgraph, x).reshape(len(x), -1))


@pytest.mark.parametrize("optimize", ["size", "speed", "balanced"])
@pytest.mark.parametrize("which", ["lenet5", "shuffle"])
def test_cost_model_choices_are_bit_exact(which, optimize, tmp_path):
    qgraph = qgraph_of(which)
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


@pytest.mark.parametrize("fmt", FORMATS)
def test_scratch_lives_in_the_arena_only_during_its_layer(fmt):
    """A conv's scratch is alive during that layer only, or during its
    fused pair (the convolution's loop runs the pooling too)."""
    qgraph = qgraph_of("lenet5")
    low = lower(qgraph, StorageChoice(FormatRequest(fmt), "size"))
    index = {node.name: i for i, node in enumerate(qgraph.nodes)}
    scratch = [b for b in low.memory.buffers if b.tensor.startswith(SCRATCH_PREFIX)]
    assert len(scratch) == 2  # conv1 and conv2
    for b in scratch:
        conv = index[b.tensor[len(SCRATCH_PREFIX):]]
        pair = low.memory.fused_pair(conv)
        assert (b.first, b.last) == (conv, conv if pair is None else pair.pool)
    unscratched = plan_memory(qgraph, fused=low.memory.fused).arena_size
    assert unscratched <= low.memory.arena_size <= unscratched + sum(b.size for b in scratch) + 8


SANITIZER_DRIVER = Path(__file__).parents[1] / "jobs" / "sanitizer_driver.c"


def _write(qgraph, fmt, folder):
    low = lower(qgraph, StorageChoice(FormatRequest(fmt), "speed"))
    low.sources.write(folder)
    return low


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
@pytest.mark.parametrize("fmt", ["codebook", "sparse", "huffman"])
def test_compressed_c_compiles_without_warnings(compiler, fmt, tmp_path):
    require_tool(compiler, compiler)
    low = _write(qgraph_of("tiny"), fmt, tmp_path)
    prefix = low.sources.prefix
    for src in [tmp_path / f"{prefix}.c", tmp_path / f"{prefix}_weights.c"]:
        r = subprocess.run([compiler, *WARNING_FLAGS, "-O2", "-Wshadow", "-Wcast-qual",
                            "-Wstrict-prototypes", "-c", f"-I{tmp_path}",
                            f"-I{tmp_path / 'runtime'}", str(src), "-o", str(tmp_path / "x.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("fmt", ["codebook", "sparse", "huffman"])
@pytest.mark.parametrize("which", ["tiny", "lenet5", "shuffle"])
def test_compressed_c_is_clean_under_asan_and_ubsan(which, fmt, tmp_path):
    """The weights are const globals with ASan redzones, the arena a heap
    block of its exact size: any read past a stream or table aborts."""
    qgraph = qgraph_of(which)
    folder = tmp_path / "gen"
    low = _write(qgraph, fmt, folder)
    prefix = low.sources.prefix
    p = prefix.upper()
    exe = compile_executable(
        [SANITIZER_DRIVER, folder / f"{prefix}.c", folder / f"{prefix}_weights.c",
         *sorted((folder / "runtime").glob("*.c"))],
        [folder, folder / "runtime"], tmp_path / "driver", opt="-O1",
        extra_flags=("-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                     f'-DEG_HEADER="{prefix}.h"', f"-DEG_INVOKE={prefix}_invoke",
                     f"-DEG_INPUT_SIZE={p}_INPUT_SIZE", f"-DEG_OUTPUT_SIZE={p}_OUTPUT_SIZE",
                     f"-DEG_ARENA_SIZE={p}_ARENA_SIZE"))
    shape = qgraph.tensor(qgraph.input).shape
    vectors = np.concatenate([vectors_for(qgraph, 10, seed=7), np.full((1,) + shape, -128, np.int8),
                              np.full((1,) + shape, 127, np.int8)])
    (tmp_path / "in.bin").write_bytes(vectors.tobytes())
    r = subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8).reshape(len(vectors), -1)
    np.testing.assert_array_equal(got, run_golden(qgraph, vectors).reshape(len(vectors), -1))
