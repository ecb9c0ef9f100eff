"""bench/targets.py: the JSON it writes, the table beside CMSIS-NN, its options."""

import argparse
import json

import pytest
from bench_support import bench_module

from edgegen.errors import UserError
from edgegen.firmware.boards import load_board
from toolchain_support import require_dataset, require_tool

ROW_KEYS = {"instructions", "flash_bytes", "ram_bytes", "bit_exact", "layers", "kernels"}


@pytest.fixture(scope="module")
def targets():
    with bench_module("targets") as module:
        yield module


def test_opt_levels_are_parsed_in_order(targets):
    assert targets.opt_levels("O2,Os") == ("O2", "Os")
    assert targets.opt_levels("Os, O3,Os") == ("Os", "O3")
    for bad in ("O1", "-O2", "O2,,Os", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            targets.opt_levels(bad)
    assert targets.parse_args([]).opt == ("O2", "Os")


def test_the_anchors_are_the_issue_s_numbers(targets):
    anchors = targets.load_anchors()
    assert anchors["qemu-mps2-an386"] == {"core": "Cortex-M4F", "lenet300": 520_126, "lenet5": 5_521_178}
    assert anchors["qemu-virt-rv32"]["lenet5"] == 11_956_265
    assert set(anchors) == {"qemu-mps2-an386", "qemu-mps2-an500", "qemu-mps2-an505",
                            "qemu-mps2-an385", "qemu-virt-rv32"}
    assert json.loads(targets.ANCHORS_FILE.read_text())["source"] == "../shared/emulation.md"


def test_dsp_on_a_portable_board_stops_before_any_work(targets):
    boards = [load_board("qemu-mps2-an386"), load_board("qemu-mps2-an385")]
    assert targets.board_kernels(boards, None) == {"qemu-mps2-an386": "dsp",
                                                   "qemu-mps2-an385": "portable"}
    assert set(targets.board_kernels(boards, "portable").values()) == {"portable"}
    with pytest.raises(UserError, match="qemu-mps2-an385 .* has no Arm DSP extension"):
        targets.board_kernels(boards, "dsp")


def row(targets, instructions, flash, layers=None, bit_exact=True):
    return targets.row(flash, 1_000, "dsp", 0.0, instructions=instructions, layers=layers,
                       bit_exact=bit_exact, vectors=3)


def test_comparison_table_sets_each_level_beside_cmsis_nn(targets):
    results = {"lenet300": {
        "qemu-mps2-an386": {"O2": row(targets, 468_113, 272_000, {"fc1": 400_000}),
                            "Os": row(targets, 624_151, 271_000, {"fc1": 500_000})},
        "nucleo-f411re": {"O2": row(targets, None, 272_001, bit_exact=None),
                          "Os": row(targets, None, 271_001, bit_exact=None)},
    }}
    table = targets.comparison_table(results, targets.load_anchors(), ("O2", "Os"))
    lines = table.splitlines()
    assert lines[0].startswith("| model | board (core) | kernels | instr -O2 | instr -Os | CMSIS-NN -O2 |")
    assert lines[2] == ("| lenet300 | qemu-mps2-an386 (Cortex-M4F) | dsp | 468,113 | 624,151 | 520,126 "
                        "| 0.90 | 1.20 | 272,000 / 271,000 | 1,000 / 1,000 | yes / yes |")
    assert lines[3] == ("| lenet300 | nucleo-f411re | dsp | - | - | - | - | - | 272,001 / 271,001 "
                        "| 1,000 / 1,000 | - / - |")
    layers = targets.layer_table("lenet300", results["lenet300"], {"fc1": 200_000}, ("O2", "Os"))
    assert "| fc1 | 200,000 | 2.00 | 2.50 |" in layers.splitlines()


def test_a_tiny_run_writes_the_json_shape(targets, tmp_path, monkeypatch, capsys):
    """LeNet-300-100 (random weights) on one emulated and one real board, 5 vectors."""
    require_dataset()
    m4f = load_board("qemu-mps2-an386")
    require_tool(m4f.tool("gcc"), m4f.toolchain_package)
    require_tool(m4f.qemu.binary, m4f.qemu.package)
    monkeypatch.setenv("EDGEGEN_CACHE", str(tmp_path / "cache"))  # the plugin is built there
    out = tmp_path / "targets.json"
    status = targets.main(["--models", "lenet300", "--boards", "qemu-mps2-an386", "nucleo-f411re",
                           "--test-vectors", "3", "--random-vectors", "2", "--random-weights",
                           "--json", str(out)])
    assert status == 0
    results = json.loads(out.read_text())
    assert set(results) == {"lenet300"}
    assert set(results["lenet300"]) == {"qemu-mps2-an386", "nucleo-f411re"}
    for board, per_opt in results["lenet300"].items():
        assert set(per_opt) == {"O2", "Os"}
        for entry in per_opt.values():
            assert ROW_KEYS <= set(entry) and entry["kernels"] == "dsp"
            assert entry["flash_bytes"] > 260_000 and entry["ram_bytes"] > 0
    for entry in results["lenet300"]["qemu-mps2-an386"].values():
        assert entry["bit_exact"] is True and entry["vectors"] == 5
        assert list(entry["layers"]) == ["flatten", "fc1", "fc2", "fc3"]
        assert 0 < sum(entry["layers"].values()) <= entry["instructions"]
    for entry in results["lenet300"]["nucleo-f411re"].values():
        assert entry["instructions"] is None and entry["bit_exact"] is None and entry["layers"] is None
    text = capsys.readouterr().out
    assert "| lenet300 | qemu-mps2-an386 (Cortex-M4F) | dsp |" in text and "520,126" in text
