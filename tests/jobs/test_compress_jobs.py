"""compress -> artifact -> deploy, end to end on a small model, and the
artifact's defences against damaged files."""

import json

import numpy as np
import pytest
import torch

from edgegen.cli import main
from edgegen.compress.artifact import load_compressed
from edgegen.jobs.compress import RetrainRecipe, run_compress
from edgegen.compress.spec import default_spec
from edgegen.errors import UserError
from edgegen.quantize.artifact import load_qgraph
from edgegen.zoo import models


@pytest.fixture(scope="module")
def compressed_dir(fashion, tmp_path_factory):
    torch.manual_seed(0)
    model = models.lenet300()
    spec = default_spec(model, sparsity={"fc1": 0.9, "fc2": 0.8, "fc3": 0.5}, fc_bits=4,
                        prune_steps=1, retrain_epochs=1, finetune_epochs=1)
    out = tmp_path_factory.mktemp("c") / "lenet300c"
    outcome = run_compress(model, "lenet300", {"zoo": "lenet300"}, fashion, spec, out,
                           recipe=RetrainRecipe(lr=0.05), progress=False, log=lambda *_: None)
    return out, outcome


def test_compress_writes_artifact_report_and_plots(compressed_dir):
    out, outcome = compressed_dir
    assert (out / "compressed.npz").is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["int8_accuracy"] == outcome.int8_accuracy > 0.5  # one epoch from scratch
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["fc1.png", "fc2.png", "fc3.png"]
    assert "compress rate (P+Q+H)" in (out / "report.md").read_text()
    layers = {layer["name"]: layer for layer in report["storage"]["layers"]}
    assert layers["fc1"]["nonzeros"] == round(0.1 * 235200)
    # at most 2^4 - 1 shared nonzero values per layer, all on the int8 grid
    for node in outcome.qgraph.nodes[1:]:
        assert len(np.unique(node.op.weight[node.op.weight != 0])) <= 15
    assert report["storage"]["rate_pqh"] > report["storage"]["rate_pq"] > 1


def test_compressed_artifact_deploys_bit_exact(compressed_dir, tmp_path, capsys):
    out, outcome = compressed_dir
    status = main(["deploy", str(out / "compressed.npz"), "--out", str(tmp_path / "d"),
                   "--test-samples", "200", "--random-samples", "50"])
    captured = capsys.readouterr()
    text = captured.out
    assert status == 0, text + captured.err
    assert "bit-exact on 250 vectors" in text
    shipped = load_qgraph(tmp_path / "d" / "model.qgraph.npz")
    for a, b in zip(shipped.nodes, outcome.qgraph.nodes):  # same int8 weights as measured
        if hasattr(a.op, "weight"):
            np.testing.assert_array_equal(a.op.weight, b.op.weight)


def test_damaged_artifacts_are_refused(compressed_dir, tmp_path, capsys):
    out, _ = compressed_dir
    good = (out / "compressed.npz").read_bytes()
    truncated = tmp_path / "t.npz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_compressed(truncated)

    with np.load(out / "compressed.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes())
    arrays["layer/0/codebook_q"] = arrays["layer/0/codebook_q"][::-1].copy()
    swapped = tmp_path / "s.npz"
    np.savez(swapped, **arrays)
    with pytest.raises(UserError, match="corrupt"):
        load_compressed(swapped)

    header["version"] = 7
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    future = tmp_path / "v.npz"
    np.savez(future, **arrays)
    status = main(["deploy", str(future), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert status == 2 and "format version 7" in err and not (tmp_path / "x").exists()


def test_compress_cli_rejects_unknown_layers(capsys, tmp_path):
    ckpt = tmp_path / "l300.pt"
    torch.save(models.lenet300().state_dict(), ckpt)
    status = main(["compress", "lenet300", "--checkpoint", str(ckpt), "--prune", "fc9=0.5",
                   "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2 and "fc9" in err and "fc1, fc2, fc3" in err
