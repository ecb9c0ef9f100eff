"""compress -> artifact -> deploy, end to end on a small model, and the
artifact's defences against damaged files."""

import json
import re

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
    # The sparsity of bench/deep_compression.py's LeNet-300-100 headline.
    spec = default_spec(model, sparsity={"fc1": 0.94, "fc2": 0.92, "fc3": 0.75}, fc_bits=4,
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
    assert layers["fc1"]["nonzeros"] == round(0.06 * 235200)
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


def test_compressed_artifact_ships_compressed(compressed_dir, tmp_path, capsys):
    """The C stores the weights in the chosen format and `verify` plans the
    same C again from the folder (model.storage.json)."""
    out, outcome = compressed_dir
    folder = tmp_path / "h"
    status = main(["deploy", str(out / "compressed.npz"), "--out", str(folder), "--format",
                   "huffman,fc3=sparse", "--optimize", "size", "--test-samples", "50",
                   "--random-samples", "10"])
    captured = capsys.readouterr()
    assert status == 0, captured.out + captured.err
    report = json.loads((folder / "report.json").read_text())
    assert {r["name"]: r["format"] for r in report["layers"] if r["format"]} == {
        "fc1": "huffman", "fc2": "huffman", "fc3": "sparse"}
    dense_bytes = sum(n.op.weight.size for n in outcome.qgraph.nodes if hasattr(n.op, "weight"))
    assert report["totals"]["const_bytes"] < dense_bytes / 8
    assert main(["verify", str(folder), "--test-samples", "20", "--random-samples", "5"]) == 0
    (folder / "model.storage.json").write_text('{"format": "zip"}')
    assert main(["verify", str(folder)]) == 2
    assert "not an edgegen storage choice" in capsys.readouterr().err


def _fc1_consumer(report):
    return next(c for c in report.flash_consumers if c.layer == "fc1")


def test_budget_advice_is_true(compressed_dir, fashion, tmp_path, capsys):
    """Over stm32l031's 32 KB with dense weights, build names the format that
    shrinks fc1 and by how much; storing fc1 that way saves exactly that."""
    import re

    from edgegen.encode.storage_plan import FormatRequest
    from edgegen.jobs.firmware_build import measure_footprint
    from edgegen.jobs.lower import StorageChoice
    from toolchain_support import require_tool

    require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    out, outcome = compressed_dir
    status = main(["build", str(out / "compressed.npz"), "--board", "stm32l031", "--out",
                   str(tmp_path / "dense"), "--format", "dense"])
    err = capsys.readouterr().err
    assert status == 2 and "does not fit stm32l031" in err
    advice = re.search(r"store it (\w+) for size: ([\d,]+) B of weights instead of ([\d,]+) B "
                       r"as dense \(`--format fc1=(\w+) --optimize size`", err)
    assert advice, err
    fmt, smaller, larger = advice.group(1), *(int(g.replace(",", "")) for g in advice.group(2, 3))
    before = measure_footprint(outcome.qgraph, "stm32l031",
                               storage=StorageChoice(FormatRequest("dense")))
    after = measure_footprint(outcome.qgraph, "stm32l031",
                              storage=StorageChoice(FormatRequest("dense", {"fc1": fmt}), "size"))
    assert _fc1_consumer(before).bytes - _fc1_consumer(after).bytes == larger - smaller
    assert after.footprint.flash_bytes < before.footprint.flash_bytes - (larger - smaller) // 2


def test_compressed_lenet300_fits_stm32l031(compressed_dir, tmp_path, capsys):
    """The dense model is 8x over the 32 KB part; compressed and stored by
    the cost model (which trades speed for size when the part needs it),
    it fits."""
    from toolchain_support import require_tool

    require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    out, _ = compressed_dir
    status = main(["build", str(out / "compressed.npz"), "--board", "stm32l031", "--out",
                   str(tmp_path / "fw")])
    captured = capsys.readouterr()
    text = captured.out
    assert status == 0, text + captured.err
    assert "weights stored: fc1 huffman" in text
    flash = int(re.search(r"flash ([\d,]+) B of 32,768", text).group(1).replace(",", ""))
    assert flash <= 32768


def test_compressed_lenet300_runs_on_the_cortex_m0(compressed_dir, tmp_path, capsys):
    from edgegen.firmware.boards import load_board
    from toolchain_support import require_tool

    board = load_board("qemu-microbit")
    require_tool(board.tool("gcc"), board.toolchain_package)
    require_tool(board.qemu.binary, board.qemu.package)
    out, _ = compressed_dir
    status = main(["deploy", str(out / "compressed.npz"), "--out", str(tmp_path / "m"),
                   "--board", "qemu-microbit", "--test-samples", "20", "--random-samples", "4"])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "qemu-microbit (QEMU): bit-exact" in text
    # the log names the folder the user gets, not the one being written
    assert f"firmware folder {tmp_path / 'm' / 'firmware-qemu-microbit'}:" in text


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
