import numpy as np
import pytest
import torch
import torch.nn as nn

from edgegen.frontend.torch_import import import_model
from edgegen.ir import Activation, QConv2D, QFullyConnected, QuantParams
from edgegen.quantize.calibrate import CalibrationSpec, RangeMethod, activation_params, observe_ranges
from edgegen.quantize.quantize import WeightGrid, activation_bounds, quantize, symmetric_per_channel


def test_image_range_gives_pixel_minus_128():
    p = activation_params(0.0, 1.0)
    assert p.zero_point == -128 and p.scale == pytest.approx(1 / 255)
    pixels = np.arange(256)
    q = np.floor(pixels / 255 / p.scale + 0.5) + p.zero_point
    np.testing.assert_array_equal(q, pixels - 128)


def test_range_always_contains_zero():
    assert activation_params(2.0, 4.0).zero_point == -128  # [0, 4]
    assert activation_params(-4.0, -2.0).zero_point == 127  # [-4, 0]
    p = activation_params(-1.0, 1.0)
    assert p.zero_point in (0, -1) and p.scale == pytest.approx(2 / 255)
    assert activation_params(0.0, 0.0) == QuantParams(1.0, 0)


def test_symmetric_per_channel_weights():
    w = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [2.0, 1.0, -0.003]])
    q, scale = symmetric_per_channel(w)
    np.testing.assert_array_equal(q[0], [64, -127, 32])  # 63.5 rounds away from zero
    np.testing.assert_array_equal(q[1], [0, 0, 0])
    assert q[2, 0] == 127 and q.min() >= -127
    np.testing.assert_allclose(scale, [1 / 127, 1.0, 2 / 127])


def test_activation_bounds():
    p = QuantParams(6.0 / 255, -128)
    assert activation_bounds(Activation.NONE, p) == (-128, 127)
    assert activation_bounds(Activation.RELU, QuantParams(0.1, -20)) == (-20, 127)
    assert activation_bounds(Activation.RELU6, p) == (-128, 127)
    assert activation_bounds(Activation.RELU6, QuantParams(0.1, 0)) == (0, 60)


def test_percentile_range_ignores_outliers():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 1)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
        model[1].bias.zero_()
    graph = import_model(model, torch.zeros(1, 1, 2, 2))
    x = np.zeros((1000, 2, 2, 1))
    x[:, 0, 0, 0] = np.linspace(0, 1, 1000)
    x[0, 0, 0, 0] = 100.0  # one outlier
    out = graph.output
    minmax = observe_ranges(graph, x, CalibrationSpec())[out]
    pct = observe_ranges(graph, x, CalibrationSpec(RangeMethod.PERCENTILE, 99.0))[out]
    assert minmax[1] == pytest.approx(100.0)
    assert pct[1] < 1.0


def test_quantized_layer_constants():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2)).eval()
    graph = import_model(model, torch.zeros(1, 1, 4, 4))
    q = quantize(graph, np.random.default_rng(0).random((50, 4, 4, 1)),
                 CalibrationSpec(input_range=(0.0, 1.0)))
    conv, fc = q.nodes[0].op, q.nodes[2].op
    assert isinstance(conv, QConv2D) and isinstance(fc, QFullyConnected)
    assert conv.input_zero_point == -128
    assert conv.requant.act_min == q.tensor(q.nodes[0].output).qparams.zero_point  # fused ReLU
    for op, src in ((conv, q.input), (fc, q.nodes[1].output)):
        in_scale = q.tensor(src).qparams.scale
        assert np.abs(op.weight).max() == 127  # per-channel scale uses the full range
        out_scale = next(t.qparams.scale for t in q.tensors if t.name in (q.nodes[0].output, q.output)
                         and (op is conv) == (t.name == q.nodes[0].output))
        real = in_scale * op.weight_scale / out_scale
        approx = op.requant.multiplier * 2.0 ** (op.requant.shift.astype(float) - 31)
        np.testing.assert_allclose(approx, real, rtol=1e-9)


def _fc_model(weight):
    model = nn.Sequential(nn.Flatten(), nn.Linear(weight.shape[1], weight.shape[0])).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.from_numpy(weight))
    return model


def test_codebook_grid_scale_reproduces_int8_codebook_exactly():
    rng = np.random.default_rng(0)
    scale = 0.0123
    codebook = np.array([0, -127, -40, -3, 5, 77, 127])
    q = codebook[rng.integers(0, len(codebook), (6, 16))]
    weight = (scale * q).astype(np.float32)  # what edgegen.compress leaves in the model
    graph = import_model(_fc_model(weight), torch.zeros(1, 1, 4, 4))
    qg = quantize(graph, rng.random((20, 4, 4, 1)), CalibrationSpec(input_range=(0.0, 1.0)),
                  weight_grids={"1": WeightGrid(scale, codebook.astype(np.int8))})
    fc = qg.nodes[1].op
    np.testing.assert_array_equal(fc.weight, q)
    np.testing.assert_array_equal(fc.codebook, [0, -127, -40, -3, 5, 77, 127])
    np.testing.assert_array_equal(fc.weight_scale, np.full(6, scale))
    assert len(set(fc.requant.multiplier.tolist())) == 1  # one scale: one multiplier


def test_off_grid_weights_are_refused():
    from edgegen.errors import UserError

    weight = np.full((2, 4), 0.0123 * 3.3, dtype=np.float32)
    graph = import_model(_fc_model(weight), torch.zeros(1, 1, 2, 2))
    with pytest.raises(UserError, match="not on the int8 grid"):
        quantize(graph, np.zeros((4, 2, 2, 1)), weight_grids={"1": WeightGrid(0.0123, CODEBOOK)})
    with pytest.raises(UserError, match="does not have"):
        quantize(graph, np.zeros((4, 2, 2, 1)), weight_grids={"fc9": WeightGrid(0.1, CODEBOOK)})


CODEBOOK = np.array([0, -3, 3], dtype=np.int8)


def test_weights_outside_their_codebook_are_refused():
    """On the grid, but a value the codebook does not hold: the model was
    changed after compression."""
    from edgegen.errors import UserError

    weight = np.full((2, 4), 0.0123 * 5, dtype=np.float32)
    graph = import_model(_fc_model(weight), torch.zeros(1, 1, 2, 2))
    with pytest.raises(UserError, match="not values of its codebook"):
        quantize(graph, np.zeros((4, 2, 2, 1)), weight_grids={"1": WeightGrid(0.0123, CODEBOOK)})
