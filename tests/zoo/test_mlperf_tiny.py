"""The MLPerf Tiny v1.0 reference networks (edgegen.zoo.mlperf_tiny): the
published arithmetic counts, the layer lists the importer sees, the softmax
only in eval mode, and each network bit-exact from PyTorch to the generated
C on the host."""

import numpy as np
import pytest
import torch
from torch import nn

from edgegen.frontend.torch_import import count_parameters, import_model
from edgegen.ir import Activation, Add, AvgPool, Conv2D, FullyConnected, Reshape, Rounding, Softmax
from edgegen.jobs.lower import StorageChoice
from edgegen.quantize.calibrate import CalibrationSpec
from edgegen.quantize.quantize import quantize
from edgegen.quantize.validate import validate_qgraph
from edgegen.reference.float_model import nchw_to_nhwc, run_float
from edgegen.reference.golden import run_golden
from edgegen.zoo.mlperf_tiny import INPUT_SHAPES, MLPERF_TINY, random_weights
from edgegen.zoo.models import multiply_accumulates
from qgraph_support import run_host, vectors_for

NAMES = tuple(MLPERF_TINY)
CLASSIFIERS = {"kws_dscnn": 12, "ic_resnet8": 10, "vww_mobilenet": 2}
# The counts MLPerf Tiny publishes for its reference networks.
MACS = {"kws_dscnn": 2_656_768, "ic_resnet8": 12_501_632, "vww_mobilenet": 7_489_664,
        "ad_autoencoder": 264_192}
# PyTorch's parameters (the Keras models' trainable ones: BatchNorm's
# running statistics are buffers) and the weights and biases left once the
# importer has folded every BatchNorm.
PARAMETERS = {"kws_dscnn": (23_756, 22_604), "ic_resnet8": (78_186, 77_706),
              "vww_mobilenet": (216_322, 210_850), "ad_autoencoder": (267_928, 265_864)}
CALIBRATION_SAMPLES = 16
VECTORS = {"vww_mobilenet": 6}  # 96x96x3: a few are enough; the others take 16

_GRAPHS: dict = {}


def _model(name: str) -> nn.Module:
    return random_weights(MLPERF_TINY[name](), seed=0)


def _imported(name: str):
    model = _model(name)
    return model, import_model(model, torch.zeros((1,) + INPUT_SHAPES[name]), name)


def _calibration(name: str) -> np.ndarray:
    """Seeded standard normal samples, NCHW."""
    shape = (CALIBRATION_SAMPLES,) + INPUT_SHAPES[name]
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _qgraph(name: str):
    if name not in _GRAPHS:
        _, graph = _imported(name)
        qgraph = quantize(graph, nchw_to_nhwc(_calibration(name)), CalibrationSpec(),
                          Rounding.DOUBLE)
        validate_qgraph(qgraph)
        _GRAPHS[name] = qgraph
    return _GRAPHS[name]


def test_factories_return_fresh_models_with_one_input_shape_each():
    assert set(INPUT_SHAPES) == set(MLPERF_TINY) == set(MACS)
    for factory in MLPERF_TINY.values():
        a, b = factory(), factory()
        assert next(a.parameters()) is not next(b.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_multiply_accumulates_are_the_published_ones(name):
    assert multiply_accumulates(MLPERF_TINY[name](), INPUT_SHAPES[name]) == MACS[name]


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts_before_and_after_batchnorm_folding(name):
    model, graph = _imported(name)
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS[name][0]
    assert count_parameters(graph) == PARAMETERS[name][1]


def test_random_weights_are_seeded_whatever_the_generator_state():
    a = MLPERF_TINY["ic_resnet8"]()
    torch.manual_seed(123)
    b = MLPERF_TINY["ic_resnet8"]()
    random_weights(a, 7), random_weights(b, 7)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert not a.training
    bn = a.stack2.bn1
    assert not torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    assert not torch.equal(bn.weight, torch.ones_like(bn.weight))


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_a_classifier_gives_logits_in_training_and_a_softmax_when_imported(name):
    model = _model(name)
    x = torch.from_numpy(_calibration(name)[:4])
    with torch.no_grad():
        logits = model.train()(x)
        probabilities = model.eval()(x)
    assert logits.shape == probabilities.shape == (4, CLASSIFIERS[name])
    assert not torch.allclose(logits.sum(dim=1), torch.ones(4))
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(4))
    # The importer traces in eval mode, even a model left in training mode.
    graph = import_model(model.train(), torch.zeros((1,) + INPUT_SHAPES[name]), name)
    assert isinstance(graph.nodes[-1].op, Softmax) and not graph.nodes[-1].op.log
    assert isinstance(graph.nodes[-2].op, FullyConnected)
    dropped = import_model(model, torch.zeros((1,) + INPUT_SHAPES[name]), name,
                           drop_final_softmax=True)
    assert isinstance(dropped.nodes[-1].op, FullyConnected)


@pytest.mark.parametrize("name", NAMES)
def test_the_float_graph_computes_what_pytorch_does(name):
    """Every BatchNorm folded (BatchNorm1d into a Linear too), every ReLU
    fused, the dropouts gone: the imported graph is the eval-mode model."""
    model, graph = _imported(name)
    x = _calibration(name)[:4]
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = run_float(graph, nchw_to_nhwc(x)).reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def _kinds(graph) -> list[str]:
    return [type(node.op).__name__ for node in graph.nodes]


def _shapes(graph) -> list[tuple[int, ...]]:
    return [graph.tensor(node.output).shape for node in graph.nodes]


def test_kws_dscnn_is_a_strided_convolution_and_four_separable_blocks():
    _, graph = _imported("kws_dscnn")
    assert _kinds(graph) == ["Conv2D"] * 9 + ["AvgPool", "Reshape", "FullyConnected", "Softmax"]
    assert _shapes(graph)[:9] == [(25, 5, 64)] * 9
    assert [node.op.groups for node in graph.nodes[:9]] == [1] + [64, 1] * 4
    first, pool = graph.nodes[0].op, graph.nodes[9].op
    assert first.weight.shape == (64, 10, 4, 1) and first.stride == (2, 2)
    assert pool.kernel == (24, 5)  # the reference's (49 // 2, 10 // 2)
    assert all(node.op.activation is Activation.RELU for node in graph.nodes[:9])


def test_ic_resnet8_has_three_residual_joins_two_through_a_strided_shortcut():
    _, graph = _imported("ic_resnet8")
    adds = [node for node in graph.nodes if isinstance(node.op, Add)]
    assert [graph.tensor(a.output).shape for a in adds] == [(32, 32, 16), (16, 16, 32), (8, 8, 64)]
    assert all(a.op.activation is Activation.RELU for a in adds)
    shortcuts = [node.op for node in graph.nodes if node.name.endswith("shortcut")]
    assert [(s.weight.shape, s.stride, s.activation) for s in shortcuts] == [
        ((32, 1, 1, 16), (2, 2), Activation.NONE), ((64, 1, 1, 32), (2, 2), Activation.NONE)]
    assert _kinds(graph)[-4:] == ["AvgPool", "Reshape", "FullyConnected", "Softmax"]
    assert sum(isinstance(node.op, Conv2D) for node in graph.nodes) == 9


def test_vww_mobilenet_is_mobilenet_v1_at_a_quarter_width():
    _, graph = _imported("vww_mobilenet")
    convs = [node for node in graph.nodes if isinstance(node.op, Conv2D)]
    assert len(convs) == 27
    pointwise = [graph.tensor(node.output).shape for node in convs[2::2]]
    assert pointwise == [(48, 48, 16), (24, 24, 32), (24, 24, 32), (12, 12, 64), (12, 12, 64),
                         (6, 6, 128)] + [(6, 6, 128)] * 5 + [(3, 3, 256), (3, 3, 256)]
    assert [c.op.groups for c in convs[1::2]] == [8, 16, 32, 32, 64, 64] + [128] * 6 + [256]
    assert isinstance(graph.nodes[27].op, AvgPool) and graph.nodes[27].op.kernel == (3, 3)
    assert graph.nodes[29].op.weight.shape == (2, 256)


def test_ad_autoencoder_is_ten_linear_layers_through_an_8_wide_bottleneck():
    _, graph = _imported("ad_autoencoder")
    assert _kinds(graph) == ["FullyConnected"] * 10
    assert [node.op.weight.shape for node in graph.nodes] == (
        [(128, 640)] + [(128, 128)] * 3 + [(8, 128), (128, 8)] + [(128, 128)] * 3 + [(640, 128)])
    assert [node.op.activation for node in graph.nodes] == [Activation.RELU] * 9 + [Activation.NONE]
    assert not any(isinstance(node.op, Reshape) for node in graph.nodes)


@pytest.mark.parametrize("name", NAMES)
def test_the_c_on_the_host_equals_the_golden_model_byte_for_byte(name, tmp_path):
    qgraph = _qgraph(name)
    x = vectors_for(qgraph, VECTORS.get(name, 16), seed=1)
    _, got = run_host(qgraph, StorageChoice(), tmp_path, x)
    expected = run_golden(qgraph, x).reshape(len(x), -1)
    assert len(np.unique(expected, axis=0)) > 1  # the outputs do depend on the input
    np.testing.assert_array_equal(got, expected)
