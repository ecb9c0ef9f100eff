"""A convolution fused with its pooling computes, on the host, exactly the
bytes of the unfused sequence and of the golden model (which never fuses):
random shapes, strides, paddings, odd sizes, max and average pooling,
every storage format of the convolution, bands of one or more pooled rows;
through both entry points (the input and output in the caller's buffers,
and inside the arena)."""

from dataclasses import replace

import numpy as np
import pytest

from edgegen.emit.generate import generate_sources
from edgegen.encode.storage import FORMATS
from edgegen.encode.storage_plan import FormatRequest, plan_storage
from edgegen.jobs.lower import StorageChoice, lower
from edgegen.plan.arena import plan_memory
from edgegen.plan.fusion import candidate_pairs, plan_fusion
from edgegen.quantize.validate import validate_qgraph
from edgegen.reference.golden import run_golden
from edgegen.reference.kernels import output_size
from edgegen.verify.host_model import IN_ARENA, INVOKE, HostModel, ModelSizes
from qgraph_support import compressed_like, conv_pool_qgraph


def _stage(rng, h, w, *, overlapping=False):
    """Random conv + pool geometry on an h x w input, or None if it does
    not fit. Pool windows never overlap in rows unless ``overlapping``."""
    kh, kw = (int(k) for k in rng.integers(1, 5, size=2))
    stride = tuple(int(s) for s in rng.integers(1, 3, size=2))
    padding = (int(rng.integers(0, kh)), int(rng.integers(0, kh)),
               int(rng.integers(0, kw)), int(rng.integers(0, kw)))
    oh, ow = output_size(h, kh, stride[0], *padding[:2]), output_size(w, kw, stride[1], *padding[2:])
    if oh < 1 or ow < 1:
        return None
    pk = (int(rng.integers(2 if overlapping else 1, 4)), int(rng.integers(1, 4)))
    if overlapping:
        ps = (int(rng.integers(1, pk[0])), int(rng.integers(1, 4)))
    else:
        ps = (pk[0] + int(rng.integers(0, 2)), int(rng.integers(1, 4)))
    pp = (int(rng.integers(0, pk[0])), int(rng.integers(0, pk[0])),
          int(rng.integers(0, pk[1])), int(rng.integers(0, pk[1])))
    ph, pw = output_size(oh, pk[0], ps[0], *pp[:2]), output_size(ow, pk[1], ps[1], *pp[2:])
    if ph < 1 or pw < 1:
        return None
    return {"channels": int(rng.choice([1, 2, 3, 5, 7])), "kernel": (kh, kw), "stride": stride,
            "padding": padding, "pool": str(rng.choice(["max", "avg"])), "pool_kernel": pk,
            "pool_stride": ps, "pool_padding": pp, "relu": bool(rng.random() < 0.5)}, (ph, pw)


def random_model(seed: int, *, overlapping=False):
    rng = np.random.default_rng(seed)
    while True:
        h, w = (int(d) for d in rng.integers(3, 17, size=2))
        stages, size = [], (h, w)
        for _ in range(int(rng.integers(1, 3))):
            drawn = _stage(rng, *size, overlapping=overlapping)
            if drawn is None:
                break
            stages.append(drawn[0])
            size = drawn[1]
        if stages:
            break
    head = str(rng.choice(["fc", "none"]))
    q = conv_pool_qgraph(rng, height=h, width=w, in_channels=int(rng.integers(1, 4)),
                         stages=stages, head=head)
    q = compressed_like(q, density=float(rng.uniform(0.2, 0.9)), values=int(rng.integers(2, 20)),
                        seed=seed)
    validate_qgraph(q)
    return q


def build(qgraph, formats, fused, folder):
    """Generate (with the given fused pairs) and build on the host."""
    storage = plan_storage(qgraph, FormatRequest("dense", formats), "size")
    scratch = {layer.name: layer.scratch_bytes for layer in storage.layers}
    plan = plan_memory(qgraph, scratch, fused, io_in_arena=True)
    sources = generate_sources(qgraph, storage, plan)
    sources.write(folder / "src")
    model = HostModel(folder / "src", ModelSizes.of(qgraph, plan), folder / "build", opt="-O1")
    return plan, sources, model


def inputs(qgraph, count=5, seed=0):
    shape = qgraph.tensor(qgraph.input).shape
    x = np.random.default_rng(seed).integers(-128, 128, size=(count,) + shape).astype(np.int8)
    x[0] = -128  # every input at the zero point's far end, once
    return x


@pytest.mark.parametrize("seed", range(16))
def test_fused_equals_unfused_and_golden(seed, tmp_path):
    qgraph = random_model(seed)
    rng = np.random.default_rng(1000 + seed)
    convs = [n.name for n in qgraph.nodes if n.name.startswith("conv")]
    formats = {name: FORMATS[int(rng.integers(len(FORMATS)))] for name in convs}
    rows = {name: int(rng.integers(1, 4)) for name in convs}
    fused = candidate_pairs(qgraph, rows)
    assert len(fused) == len(convs)  # every pair may be fused here
    x = inputs(qgraph, seed=seed)
    expected = run_golden(qgraph, x).reshape(len(x), -1)
    plan, sources, model = build(qgraph, formats, fused, tmp_path / "fused")
    _, _, unfused = build(qgraph, formats, (), tmp_path / "unfused")
    assert "eg_conv_pool_slice" in sources.files[f"{sources.prefix}.c"]
    assert model.entry_points == (INVOKE, IN_ARENA)
    got = model.run(x)  # both entry points, equal
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(model.run(x, (IN_ARENA,)), expected)
    np.testing.assert_array_equal(got, unfused.run(x))
    # What lower() keeps fused never makes the arena larger.
    scratch = {n: s for n, s in ((b.tensor[len("scratch:"):], b.size) for b in plan.buffers
                                 if b.tensor.startswith("scratch:"))}
    kept = plan_fusion(qgraph, formats, scratch)
    assert plan_memory(qgraph, scratch, kept).arena_size <= plan_memory(qgraph, scratch).arena_size


@pytest.mark.parametrize("fmt", FORMATS)
def test_lenet_shaped_pairs_in_every_format(fmt, tmp_path):
    """Two LeNet-like stages (5x5 conv, 2x2/2 pool) through lower(): the
    bands the format gets by default, bit-exact."""
    stage = {"kernel": (5, 5), "stride": (1, 1), "padding": (0, 0, 0, 0), "pool_kernel": (2, 2),
             "pool_stride": (2, 2), "pool_padding": (0, 0, 0, 0), "relu": True}
    q = conv_pool_qgraph(np.random.default_rng(5), height=28, width=28, in_channels=1,
                         stages=[{**stage, "channels": 6, "pool": "max"},
                                 {**stage, "channels": 9, "pool": "avg"}])
    q = compressed_like(q, density=0.3, values=9)
    low = lower(q, StorageChoice(FormatRequest(fmt), "size"))
    assert [(p.conv, p.pool) for p in low.memory.fused] == [(0, 1), (2, 3)]
    low.sources.write(tmp_path / "src")
    model = HostModel(tmp_path / "src", ModelSizes.of(q, low.memory), tmp_path / "build")
    x = inputs(q, 8)
    np.testing.assert_array_equal(model.run(x), run_golden(q, x).reshape(len(x), -1))


@pytest.mark.parametrize("seed", range(4))
def test_overlapping_pool_windows_are_not_fused(seed, tmp_path):
    qgraph = random_model(100 + seed, overlapping=True)
    assert candidate_pairs(qgraph) == ()
    low = lower(qgraph, StorageChoice(FormatRequest("sparse"), "size"))
    assert low.memory.fused == ()
    assert "eg_conv_pool_slice" not in low.sources.files[f"{low.sources.prefix}.c"]
    low.sources.write(tmp_path / "src")
    model = HostModel(tmp_path / "src", ModelSizes.of(qgraph, low.memory), tmp_path / "build")
    x = inputs(qgraph)
    np.testing.assert_array_equal(model.run(x), run_golden(qgraph, x).reshape(len(x), -1))


def test_a_conv_output_read_twice_is_not_fused(tmp_path):
    """The pooling and a clamp both read conv0's output (the clamp's result
    is never used): the output must exist whole, so no fusion."""
    from edgegen.ir import QClamp, QNode, QTensor

    q = random_model(3)
    conv = q.nodes[0]
    extra = QTensor("side", q.tensor(conv.output).shape, q.tensor(conv.output).qparams)
    nodes = q.nodes[:2] + (QNode("side", QClamp(0, 127), (conv.output,), "side"),) + q.nodes[2:]
    q = replace(q, nodes=nodes, tensors=q.tensors + (extra,))
    validate_qgraph(q)
    assert all(pair.conv != 0 for pair in candidate_pairs(q))
    low = lower(q, StorageChoice(FormatRequest("dense"), "size"))
    assert low.memory.location(conv.output).region == "arena"
    low.sources.write(tmp_path / "src")
    model = HostModel(tmp_path / "src", ModelSizes.of(q, low.memory), tmp_path / "build")
    x = inputs(q)
    np.testing.assert_array_equal(model.run(x), run_golden(q, x).reshape(len(x), -1))
