"""Per-layer pruning sensitivity scans, their report, and budgets drawn from them."""

import pytest
import torch
from torch import nn

from edgegen.compress.filter_prune import prune_filters
from edgegen.compress.sensitivity import (
    SensitivityScan,
    scan_filter_sensitivity,
    scan_sensitivity,
    sparsities_for_budget,
    write_sensitivity_report,
)


def _mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3))


def _convnet():
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Conv2d(6, 4, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 3))


def _model_and_eval(factory=_mlp, sample_shape=(20,)):
    torch.manual_seed(0)
    model = factory().eval()
    x = torch.randn(200, *sample_shape, generator=torch.Generator().manual_seed(1))
    labels = model(x).argmax(dim=1).detach()  # the unpruned model is right on every sample

    def eval_fn(m):
        with torch.no_grad():
            return (m(x).argmax(dim=1) == labels).float().mean().item()

    return model, eval_fn


def test_scan_table_has_one_row_per_layer_and_sparsity(tmp_path):
    model, eval_fn = _model_and_eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scan = scan_sensitivity(model, eval_fn, sparsities=(0.0, 0.5, 0.9), progress=False)
    assert scan.baseline == 1.0
    assert scan.layers == ("1", "3") and scan.sparsities == (0.0, 0.5, 0.9)
    assert len(scan.rows()) == 6
    assert [len(row) for row in scan.accuracy] == [3, 3]
    assert scan.as_dict()["1"][0.0] == 1.0 and scan.as_dict()["3"][0.0] == 1.0
    assert scan.as_dict()["3"][0.9] < 1.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

    markdown, png = write_sensitivity_report(scan, tmp_path / "report")
    text = markdown.read_text()
    assert "| sparsity | 1 | 3 |" in text and "| 90% |" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_budget_picks_the_largest_sparsity_within_the_drop():
    scan = SensitivityScan(
        baseline=0.90,
        sparsities=(0.0, 0.5, 0.8, 0.9),
        layers=("fc1", "fc2", "fc3"),
        accuracy=(
            (0.90, 0.90, 0.897, 0.80),
            (0.90, 0.85, 0.899, 0.899),  # a dip at 0.5 stops it there, whatever follows
            (0.89, 0.885, 0.80, 0.70),
        ),
    )
    assert sparsities_for_budget(scan, 0.005) == {"fc1": 0.8, "fc2": 0.0, "fc3": 0.0}
    assert sparsities_for_budget(scan, 0.02) == {"fc1": 0.8, "fc2": 0.0, "fc3": 0.5}
    with pytest.raises(ValueError, match="max_drop"):
        sparsities_for_budget(scan, -1)


def test_filter_scan_prunes_each_group_alone_without_fine_tuning(tmp_path):
    model, eval_fn = _model_and_eval(_convnet, (1, 8, 8))
    example = torch.zeros(1, 1, 8, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scan = scan_filter_sensitivity(model, eval_fn, example, ratios=(0.0, 0.5, 0.8), progress=False)
    assert scan.layers == ("0", "2") and scan.axis == "filters"  # the classifier feeds the output
    assert scan.as_dict()["0"][0.0] == scan.as_dict()["2"][0.0] == scan.baseline == 1.0
    for layer in scan.layers:  # each cell is the model with that group alone pruned
        expected = eval_fn(prune_filters(model, example, ratios={layer: 0.8}).model)
        assert scan.as_dict()[layer][0.8] == expected
    assert min(scan.as_dict()["2"].values()) < 1.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    markdown, png = write_sensitivity_report(scan, tmp_path, stem="filter_sensitivity")
    text = markdown.read_text()
    assert text.startswith("# Filter pruning sensitivity") and "| filters removed | 0 | 2 |" in text
    assert png.name == "filter_sensitivity.png" and png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="filter ratios"):
        scan_filter_sensitivity(model, eval_fn, example, ratios=(1.0,), progress=False)
