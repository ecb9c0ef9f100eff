import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgegen.errors import UserError
from edgegen.frontend.torch_import import import_model
from edgegen.quantize import artifact
from edgegen.quantize.calibrate import CalibrationSpec
from edgegen.quantize.quantize import quantize
from edgegen.reference.golden import run_golden


@pytest.fixture(scope="module")
def qgraph():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 5)).eval()
    graph = import_model(model, torch.zeros(1, 1, 8, 8), "tiny")
    x = np.random.default_rng(0).random((20, 8, 8, 1))
    return quantize(graph, x, CalibrationSpec(input_range=(0.0, 1.0)))


def test_round_trip_keeps_everything(qgraph, tmp_path):
    path = tmp_path / "m.npz"
    artifact.save_qgraph(qgraph, path)
    loaded = artifact.load_qgraph(path)
    assert artifact.content_hash(loaded) == artifact.content_hash(qgraph)
    assert loaded.metadata == qgraph.metadata
    x = np.random.default_rng(1).integers(-128, 128, (10, 8, 8, 1)).astype(np.int8)
    np.testing.assert_array_equal(run_golden(loaded, x), run_golden(qgraph, x))
    assert [n.op for n in loaded.nodes][0].weight.flags.writeable is False


class _Branches(nn.Module):
    """A depthwise convolution and a residual add: the groups field and a
    two-input node survive the round trip."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.depthwise = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(torch.flatten(torch.relu(x + self.depthwise(x)), 1))


def test_round_trip_of_a_graph_with_branches(tmp_path):
    torch.manual_seed(0)
    graph = import_model(_Branches().eval(), torch.zeros(1, 1, 8, 8), "branches")
    x_float = np.random.default_rng(0).random((20, 8, 8, 1))
    qgraph = quantize(graph, x_float, CalibrationSpec(input_range=(0.0, 1.0)))
    path = tmp_path / "b.npz"
    artifact.save_qgraph(qgraph, path)
    loaded = artifact.load_qgraph(path)
    assert [type(n.op).__name__ for n in loaded.nodes] == [
        "QConv2D", "QConv2D", "QAdd", "QReshape", "QFullyConnected"]
    assert loaded.nodes[1].op.groups == 4 and loaded.nodes[2].inputs == ("conv", "depthwise")
    x = np.random.default_rng(1).integers(-128, 128, (10, 8, 8, 1)).astype(np.int8)
    np.testing.assert_array_equal(run_golden(loaded, x), run_golden(qgraph, x))


def test_truncated_file(qgraph, tmp_path):
    path = tmp_path / "m.npz"
    artifact.save_qgraph(qgraph, path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(UserError, match="truncated or corrupt"):
        artifact.load_qgraph(path)


def test_not_an_artifact(tmp_path):
    path = tmp_path / "m.npz"
    path.write_text("hello")
    with pytest.raises(UserError, match="truncated or corrupt"):
        artifact.load_qgraph(path)


def _rewrite_header(path, change):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes())
    change(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)


def test_wrong_version(qgraph, tmp_path):
    path = tmp_path / "m.npz"
    artifact.save_qgraph(qgraph, path)
    _rewrite_header(path, lambda h: h.update(version=99))
    with pytest.raises(UserError, match="format version 99"):
        artifact.load_qgraph(path)


def test_wrong_format_and_missing_array(qgraph, tmp_path):
    path = tmp_path / "m.npz"
    artifact.save_qgraph(qgraph, path)
    _rewrite_header(path, lambda h: h.update(format="something.else"))
    with pytest.raises(UserError, match="not an edgegen quantized model"):
        artifact.load_qgraph(path)
    artifact.save_qgraph(qgraph, path)
    _rewrite_header(path, lambda h: h["nodes"][0]["attrs"]["weight"].update(array="nope"))
    with pytest.raises(UserError, match="inconsistent"):
        artifact.load_qgraph(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        artifact.load_qgraph(tmp_path / "none.npz")


def test_an_average_pool_counting_its_padding_round_trips_and_older_files_count_none(tmp_path):
    """divisor_padding is stored; a file written before the field existed
    loads as (0, 0), the in-bounds divisor those files meant."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(3, 2, padding=1), nn.Flatten(),
                          nn.Linear(2 * 3 * 3, 3)).eval()
    qgraph = quantize(import_model(model, torch.zeros(1, 1, 8, 8), "pools"),
                      np.random.default_rng(0).random((20, 8, 8, 1)),
                      CalibrationSpec(input_range=(0.0, 1.0)))
    path = tmp_path / "p.npz"
    artifact.save_qgraph(qgraph, path)
    assert artifact.load_qgraph(path).nodes[1].op.divisor_padding == (1, 1)
    _rewrite_header(path, lambda h: h["nodes"][1]["attrs"].pop("divisor_padding"))
    assert artifact.load_qgraph(path).nodes[1].op.divisor_padding == (0, 0)
