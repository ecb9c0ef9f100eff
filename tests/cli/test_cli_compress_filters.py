"""`edgegen compress --filters`: filter pruning from the command line, the
artifact rebuilt by `edgegen deploy`, and the options' refusals."""

import json

import pytest

from edgegen.cli import main


def _compress(tiny_data, ckpt, out, *options):
    return main(["compress", "lenet5", "--checkpoint", str(ckpt), "--data-dir", str(tiny_data),
                 "--prune", "none", "--retrain-epochs", "0", "--finetune-epochs", "0",
                 "--filter-finetune-epochs", "1", "--out", str(out), *options])


def test_filter_pruned_compression_deploys_from_its_artifact(capsys, tiny_data, lenet5_ckpt, tmp_path):
    out = tmp_path / "c"
    status = _compress(tiny_data, lenet5_ckpt, out, "--filters", "conv1=0.5,conv2=0.4",
                       "--filter-sensitivity")
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads((out / "report.json").read_text())
    assert {"baseline", "filters", "filter-ft", "share"} <= set(report["stage_accuracy"])
    assert "left after filter pruning: conv1 10, conv2 30" in (out / "report.md").read_text()
    assert "| filters removed | conv1 | conv2 | fc1 |" in (out / "filter_sensitivity.md").read_text()
    assert (out / "filter_sensitivity.png").is_file()
    status = main(["deploy", str(out / "compressed.npz"), "--data-dir", str(tiny_data),
                   "--out", str(tmp_path / "d"), "--test-samples", "50", "--random-samples", "20"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "bit-exact on 70 vectors" in captured.out


@pytest.mark.parametrize("options, message", [
    (["--filters", "fc2=0.5"], "cannot remove filters of layer 'fc2': its output channels feed "
                               "the model's output"),
    (["--filters", "conv9=0.5"], "names layer 'conv9', which the model lacks"),
    (["--filters", "conv1=half"], "--filters: 'half' is not a number"),
    (["--filters", "conv1=1.5"], "bad compression settings: FilterPruneSpec.ratios['conv1'] must be "
                                 "in [0, 1)"),
    (["--filters", "conv1=0.5", "--filter-params", "0.3"], "not both"),
    (["--filter-params", "0.9999"], "can remove at most"),
])
def test_bad_filter_options_are_refused(options, message, capsys, tiny_data, lenet5_ckpt, tmp_path):
    status = _compress(tiny_data, lenet5_ckpt, tmp_path / "out", *options)
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("edgegen: error: ") and "Traceback" not in err
    assert message in err, err
    assert not any(p.name.startswith(("out", ".out")) for p in tmp_path.iterdir())
