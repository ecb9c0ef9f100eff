"""validate_qgraph: a real quantized graph passes; each kind of damage is
refused with a message naming the node or tensor and the rule."""

from dataclasses import replace

import numpy as np
import pytest
from qgraph_support import tiny_qgraph
import torch

from edgegen.errors import UserError
from edgegen.ir import QGraph, QNode, QReshape, QTensor, QuantParams, Rounding, frozen_array
from edgegen.quantize import artifact
from edgegen.quantize.validate import MAX_TENSOR_BYTES, validate_qgraph

CONV, MAXPOOL, AVGPOOL, CLAMP, RESHAPE, FC = range(6)


@pytest.fixture(scope="module")
def qgraph() -> QGraph:
    """One node of every op: conv+ReLU, max pool, avg pool, clamp, flatten, linear."""
    return tiny_qgraph()


def op(q: QGraph, index: int, **changes) -> QGraph:
    nodes = list(q.nodes)
    nodes[index] = replace(nodes[index], op=replace(nodes[index].op, **changes))
    return replace(q, nodes=tuple(nodes))


def requant(q: QGraph, index: int, **changes) -> QGraph:
    return op(q, index, requant=replace(q.nodes[index].op.requant, **changes))


def node(q: QGraph, index: int, **changes) -> QGraph:
    nodes = list(q.nodes)
    nodes[index] = replace(nodes[index], **changes)
    return replace(q, nodes=tuple(nodes))


def tensor(q: QGraph, name: str, **changes) -> QGraph:
    return replace(q, tensors=tuple(replace(t, **changes) if t.name == name else t for t in q.tensors))


def refused(q: QGraph, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        validate_qgraph(q)


def test_a_real_graph_passes(qgraph):
    assert [type(n.op).__name__ for n in qgraph.nodes] == [
        "QConv2D", "QMaxPool", "QAvgPool", "QClamp", "QReshape", "QFullyConnected"]
    validate_qgraph(qgraph)


def test_zoo_graphs_pass(fashion):
    from edgegen.data.datasets import synthetic_dataset
    from edgegen.jobs.quantize import QuantizeOptions, quantize_model
    from edgegen.zoo.models import SYNTHETIC_INPUTS, ZOO

    for name, factory in ZOO.items():
        torch.manual_seed(0)
        data = (synthetic_dataset(SYNTHETIC_INPUTS[name], train=20, test=1)
                if name in SYNTHETIC_INPUTS else fashion)
        validate_qgraph(quantize_model(factory().eval(), name, data, QuantizeOptions(calib_samples=20)))


@pytest.mark.parametrize("name, pattern", [
    ("", "graph name must be a non-empty string"),
    ("a\nb", "printable"),
    ("---", "no letter or digit"),
])
def test_graph_name(qgraph, name, pattern):
    refused(replace(qgraph, name=name), pattern)


def test_graph_fields(qgraph):
    refused(replace(qgraph, rounding="double"), "rounding must be one of")
    refused(replace(qgraph, metadata=[]), "metadata must be a dict")
    refused(replace(qgraph, input="nope"), "graph input 'nope' is not one of its tensors")
    refused(replace(qgraph, output="nope"), "graph output 'nope' is not one of its tensors")


@pytest.mark.parametrize("shape, pattern", [
    ((6, 6), "shape must be"), ((6, 0, 1), "shape must be"), ((6, -6, 1), "shape must be"),
    ((6, 6.0, 1), "shape must be"), ((6, True, 1), "shape must be"), ([6, 6, 1], "shape must be"),
    ((MAX_TENSOR_BYTES + 1,), "more than the limit"),
])
def test_tensor_shapes(qgraph, shape, pattern):
    refused(tensor(qgraph, "input_1", shape=shape), f"tensor 'input_1': .*{pattern}")


@pytest.mark.parametrize("params, pattern", [
    (QuantParams(float("nan"), 0), "scale must be a finite number > 0"),
    (QuantParams(0.0, 0), "scale must be a finite number > 0"),
    (QuantParams(-1.0, 0), "scale must be a finite number > 0"),
    (QuantParams(10**400, 0), "scale must be a finite number > 0"),
    (QuantParams(0.1, 128), r"zero_point must be an integer in \[-128, 127\]"),
    (QuantParams(0.1, 1.0), "zero_point must be an integer"),
])
def test_tensor_params(qgraph, params, pattern):
    refused(tensor(qgraph, "_6", qparams=params), pattern)


def test_tensor_names(qgraph):
    twice = replace(qgraph, tensors=qgraph.tensors + (qgraph.tensors[1],))
    refused(twice, "tensor '_0' is declared twice")
    dangling = replace(qgraph, tensors=qgraph.tensors + (QTensor("lost", (3,), QuantParams(1.0, 0)),))
    refused(dangling, "tensor 'lost' is neither the graph input nor written by a node")


def test_node_wiring(qgraph):
    refused(node(qgraph, MAXPOOL, inputs=("nope",)), "input 'nope' is not a tensor of the graph")
    refused(node(qgraph, MAXPOOL, inputs=("_0", "_0")), "exactly 1 input")
    refused(node(qgraph, MAXPOOL, output="_0"), "output '_0' is written a second time")
    refused(node(qgraph, MAXPOOL, output="input_1"), "written a second time .or is the graph input")
    refused(node(qgraph, MAXPOOL, name="0"), "node name is used twice")
    validate_qgraph(node(qgraph, MAXPOOL, name="a*/b"))  # the emitter escapes comment text
    swapped = list(qgraph.nodes)
    swapped[CONV], swapped[MAXPOOL] = swapped[MAXPOOL], swapped[CONV]
    refused(replace(qgraph, nodes=tuple(swapped)), "input '_0' is read before any node writes it")
    refused(replace(qgraph, nodes=()), "nodes must be a tuple of 1 to")


def test_output_that_is_the_input_reshaped():
    params = QuantParams(0.1, 0)
    flatten = QNode("flat", QReshape(), ("x",), "y")
    q = QGraph("r", (flatten,), (QTensor("x", (2, 2, 1), params), QTensor("y", (4,), params)),
               "x", "y", Rounding.DOUBLE)
    refused(q, "the graph output is its input")


@pytest.mark.parametrize("changes, pattern", [
    (dict(weight=frozen_array(np.zeros((2, 3, 3, 1)), np.int16)), "weight must be a int8 array, got int16"),
    (dict(weight=np.zeros((2, 3, 3, 1)).tolist()), "weight must be a int8 array, got list"),
    (dict(weight=frozen_array(np.zeros((2, 3, 3)), np.int8)), "weight must have rank 4"),
    (dict(weight=frozen_array(np.zeros((2, 3, 3, 2)), np.int8)), "takes 2 input channels, input 'input_1'"),
    (dict(weight=frozen_array(np.full((2, 3, 3, 1), -128), np.int8)), r"weight holds -128"),
    (dict(bias=frozen_array(np.zeros(3), np.int32)), r"bias must have shape \(2,\)"),
    (dict(bias=frozen_array(np.zeros(2), np.int64)), "bias must be a int32 array"),
    (dict(weight_scale=frozen_array([1.0, np.nan], np.float64)), "weight_scale must be finite and > 0"),
    (dict(weight_scale=frozen_array([1.0, 0.0], np.float64)), "weight_scale must be finite and > 0"),
    (dict(weight_scale=frozen_array([1.0, 1.0], np.float32)), "weight_scale must be a float64 array"),
    (dict(stride=(0, 1)), r"stride must be 2 integers in \[1,"),
    (dict(stride=(1,)), "stride must be 2 integers"),
    (dict(padding=(1, 1, -1, 1)), "padding .* must be 4 integers in \\[0,"),
    (dict(padding=(3, 1, 1, 1)), "must be smaller than the kernel"),
    (dict(padding=(0, 0, 0, 0)), r"output '_0' has shape \(6, 6, 2\), but the window arithmetic gives \(4, 4, 2\)"),
    (dict(stride=(2, 2)), "window arithmetic gives"),
    (dict(input_zero_point=0), "input_zero_point 0 is not the zero point -128 of input 'input_1'"),
    (dict(input_zero_point=-129), "input_zero_point must be an integer in"),
    (dict(bias=frozen_array([2**31 - 1, 0], np.int32)), "accumulator can overflow"),
])
def test_conv(qgraph, changes, pattern):
    refused(op(qgraph, CONV, **changes), rf"node 0 \('0', QConv2D\): .*{pattern}")


@pytest.mark.parametrize("changes, pattern", [
    (dict(multiplier=frozen_array([2**30, 5], np.int32)), r"multiplier must be 0 or in \[2\^30, 2\^31\)"),
    (dict(multiplier=frozen_array([2**30], np.int32)), r"multiplier must have shape \(2,\)"),
    (dict(shift=frozen_array([31, 0], np.int32)), r"shift must be in \[-31, 30\]"),
    (dict(shift=frozen_array([0, -32], np.int32)), r"shift must be in \[-31, 30\]"),
    (dict(output_zero_point=5), "output_zero_point 5 is not the zero point -128 of output '_0'"),
    (dict(act_min=10, act_max=0), "act_min 10 is above act_max 0"),
    (dict(act_max=128), r"act_max must be an integer in \[-128, 127\]"),
    (dict(rounding=Rounding.SINGLE), "rounding .* differs from the graph's"),
])
def test_requant(qgraph, changes, pattern):
    refused(requant(qgraph, CONV, **changes), pattern)


def test_fully_connected(qgraph):
    w = qgraph.nodes[FC].op.weight
    refused(op(qgraph, FC, weight=frozen_array(np.zeros((3, 9)), np.int8)),
            r"weight has shape \(3, 9\), but input '_5' has 8 features")
    refused(op(qgraph, FC, weight=frozen_array(np.zeros((4, 8)), np.int8)), r"bias must have shape \(4,\)")
    refused(op(qgraph, FC, input_zero_point=3), "input_zero_point 3 is not the zero point")
    refused(node(qgraph, FC, inputs=("_4",)), r"input '_4' must be a flat \(features,\) vector")
    assert w.shape == (3, 8)


@pytest.mark.parametrize("index", [MAXPOOL, AVGPOOL])
def test_pools(qgraph, index):
    where = rf"node {index} \('{index + 1}', Q(Max|Avg)Pool\)"
    refused(op(qgraph, index, kernel=(0, 2)), rf"{where}: kernel must be 2 integers in \[1,")
    refused(op(qgraph, index, stride=(3, 3)), f"{where}: output .* window arithmetic gives")
    refused(op(qgraph, index, padding=(2, 0, 0, 0)), "must be smaller than the kernel")
    refused(op(qgraph, index, kernel=(7, 7)), "does not fit input")
    refused(op(qgraph, index, act_min=1, act_max=0), "act_min 1 is above act_max 0")
    out = qgraph.nodes[index].output
    refused(tensor(qgraph, out, qparams=QuantParams(1.0, 0)), "must have the quantization parameters of input")


def test_an_average_counts_at_most_its_padding(qgraph):
    pool = qgraph.nodes[AVGPOOL].op
    assert pool.padding == (0, 0, 0, 0) and pool.divisor_padding == (0, 0)
    refused(op(qgraph, AVGPOOL, divisor_padding=(1, 0)),
            r"divisor_padding \(1, 0\) counts more than the padding \(0, 0, 0, 0\) on a side")
    refused(op(qgraph, AVGPOOL, divisor_padding=(0, -1)), r"divisor_padding must be 2 integers in \[0,")
    refused(op(qgraph, AVGPOOL, divisor_padding=(0,)), r"divisor_padding must be 2 integers")


def test_channels_are_preserved_by_pooling(qgraph):
    q = tensor(qgraph, "_2", shape=(3, 3, 1))
    refused(q, r"output '_2' has shape \(3, 3, 1\), but the window arithmetic gives \(3, 3, 2\)")


def test_reshape_and_clamp(qgraph):
    refused(tensor(qgraph, "_5", shape=(9,)), "changes the element count")
    refused(op(qgraph, CLAMP, act_min=-200), r"act_min must be an integer in \[-128, 127\]")
    q = tensor(tensor(qgraph, "_4", shape=(8,)), "_5", shape=(8,))
    refused(q, "clamp output shape")


# ------------------------------------------------ through the artifact loader


def test_damage_in_the_file_is_a_user_error_naming_it(qgraph, tmp_path):
    path = tmp_path / "model.qgraph.npz"
    bad_weight = op(qgraph, CONV, weight=frozen_array(np.zeros((2, 5, 5, 1)), np.int8))
    artifact.save_qgraph(bad_weight, path)
    with pytest.raises(UserError, match=rf"{path} is inconsistent \(node 0 .*\): regenerate it"):
        artifact.load_qgraph(path)
    artifact.save_qgraph(tensor(qgraph, "input_1", shape=(6, 6, 3)), path)
    with pytest.raises(UserError, match=f"{path} is inconsistent .*takes 1 input channels"):
        artifact.load_qgraph(path)


@pytest.fixture(scope="module")
def with_add():
    """x -> conv -> conv, and their sum: a QAdd reading two tensors."""
    import torch.nn as nn

    from edgegen.frontend.torch_import import import_model
    from edgegen.quantize.calibrate import CalibrationSpec
    from edgegen.quantize.quantize import quantize

    class Join(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 1)

        def forward(self, x):
            y = self.a(x)
            return y + self.b(y)

    torch.manual_seed(0)
    graph = import_model(Join().eval(), torch.zeros(1, 1, 4, 4), "join")
    return quantize(graph, np.random.default_rng(0).random((8, 4, 4, 1)),
                    CalibrationSpec(input_range=(0.0, 1.0)))


def test_an_add_is_checked(with_add):
    validate_qgraph(with_add)
    index = next(i for i, n in enumerate(with_add.nodes) if n.inputs and len(n.inputs) == 2)
    add = with_add.nodes[index]
    refused(node(with_add, index, inputs=add.inputs[:1]), "exactly 2 input")
    refused(node(with_add, index, op=replace(add.op, input2_zero_point=add.op.input2_zero_point ^ 1)),
            "input zero point")
    refused(node(with_add, index, op=replace(add.op, output_shift=31)), "output_shift")
    refused(node(with_add, index, op=replace(add.op, input1_multiplier=5)), "input1_multiplier")


def test_a_concat_is_checked():
    import torch.nn as nn

    from edgegen.frontend.torch_import import import_model
    from edgegen.quantize.calibrate import CalibrationSpec
    from edgegen.quantize.quantize import quantize

    class Cat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(1, 3, 1)

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x)], 1)

    torch.manual_seed(0)
    q = quantize(import_model(Cat().eval(), torch.zeros(1, 1, 4, 4), "cat"),
                 np.random.default_rng(0).random((8, 4, 4, 1)),
                 CalibrationSpec(input_range=(0.0, 1.0)))
    validate_qgraph(q)
    index = len(q.nodes) - 1
    op = q.nodes[index].op
    refused(node(q, index, op=replace(op, shifts=op.shifts[:1])), "one value per input")
    refused(node(q, index, op=replace(op, zero_points=(op.zero_points[0] ^ 1,) + op.zero_points[1:])),
            "zero point")
    refused(node(q, index, inputs=q.nodes[index].inputs[:1]), "concat of shapes")


def _softmax_graph(final, tmp_path):
    """A classifier ending in ``final``, quantized, validated, and the same
    after a round trip through the artifact."""
    import torch.nn as nn

    from edgegen.frontend.torch_import import import_model
    from edgegen.quantize.calibrate import CalibrationSpec
    from edgegen.quantize.quantize import quantize

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 6), final).eval()
    q = quantize(import_model(model, torch.zeros(1, 1, 4, 4), "probs"),
                 np.random.default_rng(0).random((8, 4, 4, 1)),
                 CalibrationSpec(input_range=(0.0, 1.0)))
    validate_qgraph(q)
    artifact.save_qgraph(q, tmp_path / "probs.qgraph.npz")
    loaded = artifact.load_qgraph(tmp_path / "probs.qgraph.npz")
    assert loaded.nodes[-1] == q.nodes[-1] and loaded.tensor(q.output) == q.tensor(q.output)
    return q, len(q.nodes) - 1, q.nodes[-1].op


def test_a_softmax_is_checked_and_round_trips_the_artifact(tmp_path):
    import torch.nn as nn

    q, index, softmax = _softmax_graph(nn.Softmax(dim=1), tmp_path)
    refused(node(q, index, op=replace(softmax, input_multiplier=5)), "input_multiplier")
    refused(node(q, index, op=replace(softmax, input_left_shift=31)), "input_left_shift")
    refused(node(q, index, op=replace(softmax, diff_min=1)), "diff_min")
    refused(node(q, index, op=replace(softmax, diff_min=-(2**30))), "overflows int32")
    refused(tensor(q, q.output, qparams=QuantParams(1 / 128, -128)), "scale 1/256")


def test_a_log_softmax_is_checked_and_round_trips_the_artifact(tmp_path):
    import torch.nn as nn

    q, index, log_softmax = _softmax_graph(nn.LogSoftmax(dim=1), tmp_path)
    refused(node(q, index, op=replace(log_softmax, reverse_shift=1)), "reverse_shift")
    refused(node(q, index, op=replace(log_softmax, reverse_multiplier=7)), "reverse_multiplier")
    refused(tensor(q, q.output, qparams=QuantParams(1 / 256, -128)), "scale 16/256 and zero point 127")
