"""bench/layers.py: the one-layer models match CMSIS-NN's shapes, the anchors
are the table's numbers, the rows, table and JSON it assembles (no QEMU)."""

import json
from types import SimpleNamespace

import pytest
from bench_support import BENCH, bench_module

from edgegen.errors import UserError
from edgegen.firmware.boards import load_board
from edgegen.ir import QAdd, QAvgPool, QConv2D, QFullyConnected, QMaxPool

BOARDS = ("qemu-mps2-an386", "qemu-mps2-an385")

# (input NHWC or (F,), output, IR op, groups) of each shape edgegen measures.
EXPECTED = {
    "depthwise_s1": ((16, 16, 32), (16, 16, 32), QConv2D, 32),
    "depthwise_s2": ((16, 16, 32), (8, 8, 32), QConv2D, 32),
    "pointwise": ((16, 16, 32), (16, 16, 64), QConv2D, 1),
    "conv3x3": ((16, 16, 16), (16, 16, 32), QConv2D, 1),
    "grouped_conv3x3": ((16, 16, 32), (16, 16, 32), QConv2D, 4),
    "add": ((16, 16, 32), (16, 16, 32), QAdd, None),
    "global_avgpool": ((8, 8, 64), (1, 1, 64), QAvgPool, None),
    "maxpool": ((16, 16, 32), (8, 8, 32), QMaxPool, None),
    "fully_connected": ((256,), (64,), QFullyConnected, None),
}


@pytest.fixture(scope="module")
def layers():
    with bench_module("layers") as module:
        yield module


@pytest.fixture(scope="module")
def anchors(layers):
    return layers.load_anchors()


def test_the_anchors_are_the_table_s_numbers(layers, anchors):
    assert anchors["source"].startswith("../shared/emulation.md")
    assert anchors["opt"] == "O2"
    assert set(anchors["boards"]) == set(BOARDS)
    assert list(anchors["layers"]) == list(layers.SHAPES)  # the table's order, every row
    rows = anchors["layers"]
    assert rows["depthwise_s1"]["instructions"] == {"qemu-mps2-an386": 586_759, "qemu-mps2-an385": 710_630}
    assert rows["conv3x3"]["instructions"]["qemu-mps2-an385"] == 3_617_544
    assert rows["fully_connected"]["instructions"]["qemu-mps2-an386"] == 34_031
    # The table's M4 instructions per MAC (per element) follow from the counts.
    per_unit = {"depthwise_s1": 7.96, "depthwise_s2": 7.98, "pointwise": 2.65, "conv3x3": 2.14,
                "grouped_conv3x3": 3.49, "add": 78.7, "global_avgpool": 6.45, "maxpool": 9.50,
                "fully_connected": 2.08}
    for key, row in rows.items():
        assert (row["macs"] is None) != (row["elements"] is None), key
        units = row["macs"] or row["elements"]
        digits = 1 if key == "add" else 2
        assert round(row["instructions"]["qemu-mps2-an386"] / units, digits) == per_unit[key], key
        assert set(row["instructions"]) == set(BOARDS)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_model_is_the_anchor_s_shape_and_work(layers, anchors, key):
    qgraph = layers.quantize_layer(key, calib_samples=8)
    in_shape, out_shape, op, groups = EXPECTED[key]
    measured = layers.SHAPES[key].measured
    if key == "add":  # the input plus a depthwise 1x1 of it: two quantizations
        assert [node.name for node in qgraph.nodes] == ["layer.branch", measured]
        assert qgraph.nodes[1].inputs == (qgraph.input, qgraph.nodes[0].output)
        scales = {qgraph.tensor(name).qparams.scale for name in qgraph.nodes[1].inputs}
        assert len(scales) == 2
    else:
        assert [node.name for node in qgraph.nodes] == [layers.LAYER]  # one layer, nothing added
    node = qgraph.nodes[-1]
    assert isinstance(node.op, op)
    if groups is not None:
        assert node.op.groups == groups
    assert qgraph.tensor(qgraph.input).shape == in_shape
    assert qgraph.tensor(qgraph.output).shape == out_shape
    row = anchors["layers"][key]
    assert layers.work_units(qgraph, measured) == (row["macs"], row["elements"])


def test_the_weights_and_calibration_are_seeded(layers):
    first, _ = layers.build_model("pointwise")
    second, _ = layers.build_model("pointwise")
    assert (first.layer.weight == second.layer.weight).all()
    a = layers.calibration_samples((1, 32, 16, 16), 3)
    assert a.shape == (3, 16, 16, 32)  # NHWC
    assert (a == layers.calibration_samples((1, 32, 16, 16), 3)).all()
    assert layers.calibration_samples((1, 256), 2).shape == (2, 256)


@pytest.fixture
def not_yet(layers, monkeypatch):
    """Two rows as a shape edgegen cannot compute yet is listed."""
    for key in ("grouped_conv3x3", "add"):
        monkeypatch.setitem(layers.SHAPES, key, layers.Shape(None, None, "not in this test"))


def test_unsupported_shapes_are_not_built(layers, not_yet):
    with pytest.raises(ValueError, match="not compute it yet"):
        layers.build_model("add")


def fake_result(count: int, total: int, bit_exact: bool = True, kernels: str = "dsp"):
    """What board_entry reads of a BoardVerifyResult."""
    return SimpleNamespace(
        instructions=SimpleNamespace(per_layer=(("layer", count),), total=total, opt="-O2"),
        bit_exact=bit_exact, kernels=kernels, vectors=4, flash_bytes=20_000, ram_bytes=900)


def fake_results(layers, anchors) -> dict:
    """run()'s result for a fully connected row and the two unsupported ones."""
    results = {}
    for key in ("fully_connected", "grouped_conv3x3", "add", "maxpool"):
        row = results[key] = layers.shape_row(key, anchors)
        counts = anchors["layers"][key]["instructions"]
        for board in BOARDS:
            if not layers.SHAPES[key].supported:
                row["boards"][board] = layers.not_yet_entry(counts[board])
                continue
            measured = {"fully_connected": 32_768, "maxpool": 40_960}[key]
            row["boards"][board] = layers.board_entry(
                fake_result(measured, measured + 7, bit_exact=key != "maxpool"),
                row["macs"] or row["elements"], counts[board], 1.234)
    return results


def test_board_entry_sets_the_layer_beside_cmsis_nn(layers, anchors, not_yet):
    results = fake_results(layers, anchors)
    entry = results["fully_connected"]["boards"]["qemu-mps2-an386"]
    assert entry["instructions"] == 32_768 and entry["per_unit"] == 2.0
    assert entry["cmsis_nn"] == 34_031 and entry["cmsis_nn_per_unit"] == 2.077
    assert entry["ratio"] == round(32_768 / 34_031, 3) and entry["bit_exact"] is True
    assert entry["inference_instructions"] == 32_775 and entry["other_layers"] == {}
    assert entry["seconds"] == 1.23
    assert results["add"]["supported"] is False
    assert results["add"]["boards"]["qemu-mps2-an385"]["instructions"] is None
    assert results["add"]["boards"]["qemu-mps2-an385"]["cmsis_nn"] == 688_216
    json.dumps(results)  # what --json writes
    named = SimpleNamespace(instructions=SimpleNamespace(per_layer=(("layer.branch", 9), ("add", 640)),
                                                         total=660, opt="-O2"),
                            bit_exact=True, kernels="dsp", vectors=4, flash_bytes=1, ram_bytes=1)
    add = layers.board_entry(named, 8192, 645_036, 1.0, measured="add")
    assert add["instructions"] == 640 and add["other_layers"] == {"layer.branch": 9}


def test_comparison_table(layers, anchors, not_yet):
    results = fake_results(layers, anchors)
    lines = layers.comparison_table(results, anchors, "qemu-mps2-an386", "O2").splitlines()
    assert lines[0] == ("| layer | MACs (elements) | edgegen -O2 | instr/MAC | CMSIS-NN M4 DSP -O2 "
                        "| instr/MAC | ratio | bit-exact |")
    assert lines[2] == "| fully connected 256 -> 64 | 16,384 | 32,768 | 2.00 | 34,031 | 2.08 | 0.96 | yes |"
    assert lines[3] == ("| grouped conv 3x3, 16x16x32 -> 32, 4 groups, pad 1 | 589,824 | not yet | - "
                        "| 2,058,881 | 3.49 | - | not yet |")
    assert lines[4] == ("| add, two 16x16x32 | (8,192) | not yet | - | 645,036 | 78.74 / el. | - "
                        "| not yet |")
    assert lines[5] == ("| max pool 2x2 stride 2, 16x16x32 | (8,192) | 40,960 | 5.00 / el. | 77,785 "
                        "| 9.50 / el. | 0.53 | NO |")
    m3 = layers.comparison_table(results, anchors, "qemu-mps2-an385", "O2").splitlines()
    assert "CMSIS-NN M3 -O2" in m3[0] and "| 57,821 | 3.53 | 0.57 | yes |" in m3[2]


def test_options_and_boards(layers):
    args = layers.parse_args([])
    assert args.boards == list(BOARDS) and args.opt == "O2" and args.json is None
    assert args.shapes == list(layers.SHAPES)
    assert layers.parse_args(["--opt", "Os", "--boards", "qemu-mps2-an386"]).opt == "Os"
    with pytest.raises(SystemExit):
        layers.parse_args(["--opt", "-O2"])
    assert [b.name for b in layers.load_boards(["qemu-mps2-an386", "qemu-mps2-an386"])] == [
        "qemu-mps2-an386"]
    with pytest.raises(UserError, match="nucleo-f411re: not emulated"):
        layers.load_boards(["qemu-mps2-an385", "nucleo-f411re"])
    assert load_board("qemu-mps2-an386").kernels == "dsp"  # the M4 DSP column's counterpart


def test_the_committed_results_have_the_json_shape(layers):
    path = BENCH / "results" / "layers.json"
    assert path.is_file(), "bench/results/layers.json is committed with the benchmark"
    payload = json.loads(path.read_text())
    assert set(payload) == {"_meta", "layers"}
    assert list(payload["layers"]) == list(layers.SHAPES)
    for key, row in payload["layers"].items():
        assert row["supported"] is layers.SHAPES[key].supported
        for board, entry in row["boards"].items():
            assert entry["cmsis_nn"] is not None
            if row["supported"]:
                assert entry["bit_exact"] is True, (key, board)
                assert entry["instructions"] > 0 and entry["ratio"] > 0
            else:
                assert entry["instructions"] is None
