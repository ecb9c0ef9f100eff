"""The generated <prefix>_quantize_input on the host, through the cffi
declarations of the generated header's cdef block: the golden model's
quantize_input byte for byte, then the whole float-to-output path equal to
the golden model's; and what the header says about the input's mapping."""

import re
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from edgegen.frontend.torch_import import import_model
from edgegen.host.compiler import cdef_from_header, load_library
from edgegen.jobs.lower import lower
from edgegen.quantize.calibrate import CalibrationSpec
from edgegen.quantize.quantize import quantize
from edgegen.reference.golden import quantize_input, run_golden
from edgegen.verify.host_model import HostModel, ModelSizes
from qgraph_support import tiny_qgraph

F32 = np.float32
SENTINEL = 0x5A


def signed_input_qgraph():
    """A small network calibrated on [-0.7, 2.3]: a zero point inside the
    int8 range, not at its edge."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 4)).eval()
    graph = import_model(model, torch.zeros(1, 2, 4, 4), "signed_in")
    x = np.random.default_rng(1).uniform(-0.7, 2.3, size=(10, 4, 4, 2))
    return quantize(graph, x, CalibrationSpec(input_range=(-0.7, 2.3)))


GRAPHS = {"tiny": tiny_qgraph, "signed": signed_input_qgraph}


@pytest.fixture(scope="module", params=sorted(GRAPHS))
def built(request, tmp_path_factory):
    """(qgraph, header text, HostModel, ffi, lib with the header's cdef)."""
    qgraph = GRAPHS[request.param]()
    low = lower(qgraph)
    folder = tmp_path_factory.mktemp(request.param)
    low.sources.write(folder / "src")
    model = HostModel(folder / "src", ModelSizes.of(qgraph, low.memory), folder / "build")
    header = folder / "src" / f"{low.sources.prefix}.h"
    ffi, lib = load_library(model.library_path, cdef_from_header(header))
    return qgraph, low.sources.prefix, header.read_text(), model, ffi, lib


def float_inputs(qgraph, count, seed=0):
    """Reals around and beyond the input's range, with ties of its scale,
    their neighbours and special values mixed in."""
    params = qgraph.tensor(qgraph.input).qparams
    shape = (count,) + qgraph.tensor(qgraph.input).shape
    rng = np.random.default_rng(seed)
    lo = params.scale * (-128 - params.zero_point)
    hi = params.scale * (127 - params.zero_point)
    x = rng.uniform(lo - 0.2, hi + 0.2, size=shape).astype(np.float32)
    flat = x.reshape(-1)
    k = rng.integers(-140, 140, size=flat.size // 2)
    ties = ((k + 0.5) * float(F32(params.scale))).astype(np.float32)
    ties = np.nextafter(ties, rng.choice([-np.inf, 0, np.inf], size=ties.size).astype(np.float32))
    flat[: ties.size] = ties
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, 3e38, -3e38], np.float32)
    flat[-specials.size:] = specials
    return x


def quantize_c(built, x):
    qgraph, prefix, _, _, ffi, lib = built
    fn = getattr(lib, f"{prefix}_quantize_input")
    size = qgraph.tensor(qgraph.input).size
    rows = np.ascontiguousarray(x, dtype=np.float32).reshape(len(x), size)
    out = np.full((len(x), size), SENTINEL, dtype=np.int8)
    for row, q in zip(rows, out):
        assert fn(ffi.from_buffer("float[]", row), ffi.from_buffer("int8_t[]", q)) == 0
    return out.reshape(x.shape)


def test_equals_the_golden_quantize_input(built):
    qgraph = built[0]
    x = float_inputs(qgraph, 40)
    np.testing.assert_array_equal(quantize_c(built, x), quantize_input(qgraph, x))


def test_floats_to_outputs_equal_the_golden_model(built):
    qgraph, *_, model, _, _ = built
    x = float_inputs(qgraph, 30, seed=3)
    q = quantize_c(built, x)
    np.testing.assert_array_equal(model.run(q), run_golden(qgraph, quantize_input(qgraph, x))
                                  .reshape(len(x), -1))


def test_null_pointers_are_refused_before_writing(built):
    qgraph, prefix, _, _, ffi, lib = built
    fn = getattr(lib, f"{prefix}_quantize_input")
    size = qgraph.tensor(qgraph.input).size
    x = np.zeros(size, np.float32)
    out = np.full(size, SENTINEL, np.int8)
    assert fn(ffi.NULL, ffi.from_buffer("int8_t[]", out)) == 1  # EG_ERR_ARG
    assert fn(ffi.from_buffer("float[]", x), ffi.NULL) == 1
    assert (out == SENTINEL).all()


def macro(text, name):
    match = re.search(rf"^#define {name} (.+)$", text, re.MULTILINE)
    assert match, f"{name} is not defined"
    return match.group(1)


def test_header_states_the_mapping(built):
    qgraph, prefix, text, *_ = built
    params = qgraph.tensor(qgraph.input).qparams
    p = prefix.upper()
    literal = macro(text, f"{p}_INPUT_SCALE_F32")
    assert literal.endswith("f") and F32(float(literal[:-1])) == F32(params.scale)
    assert macro(text, f"{p}_INPUT_ZERO_POINT") == f"({params.zero_point})"
    scale = float(F32(params.scale))
    lo, hi = scale * (-128 - params.zero_point), scale * (127 - params.zero_point)
    assert f"covers the reals\n *         [{lo!r}, {hi!r}]" in text
    assert f"round(x[i] / {literal}) + ({params.zero_point})" in text
    assert f"int {prefix}_quantize_input(const float *x, int8_t *input);" in \
        text.split("/* cdef-begin */")[1].split("/* cdef-end */")[0]
    assert "fill in: q = round" not in text
    assert Fraction(lo) == Fraction(scale) * (-128 - params.zero_point)  # exact


def test_generated_sources_are_deterministic():
    qgraph = signed_input_qgraph()
    first, second = lower(qgraph).sources.files, lower(signed_input_qgraph()).sources.files
    assert first == second


@pytest.mark.parametrize("scale", [1e-50, 1e300])
def test_a_scale_without_a_float32_generates_a_refusing_quantizer(tmp_path, scale):
    """Generation still succeeds; the quantizer refuses, as golden does."""
    qgraph = tiny_qgraph()
    tensors = tuple(replace(t, qparams=replace(t.qparams, scale=scale))
                    if t.name == qgraph.input else t for t in qgraph.tensors)
    odd = replace(qgraph, tensors=tensors)
    low = lower(odd)
    text = low.sources.files[f"{low.sources.prefix}.h"]
    assert "#define TINY_INPUT_SCALE_F32 0.0f" in text
    assert "returns EG_ERR_ARG and writes nothing" in text
    with pytest.raises(ValueError, match="scale"):
        quantize_input(odd, np.zeros((1, 6, 6, 1)))
    low.sources.write(tmp_path / "src")
    model = HostModel(tmp_path / "src", ModelSizes.of(odd, low.memory), tmp_path / "build")
    ffi, lib = load_library(model.library_path, cdef_from_header(tmp_path / "src" / "tiny.h"))
    out = np.full(36, SENTINEL, np.int8)
    x = np.zeros(36, np.float32)
    assert lib.tiny_quantize_input(ffi.from_buffer("float[]", x), ffi.from_buffer("int8_t[]", out)) == 1
    assert (out == SENTINEL).all()
