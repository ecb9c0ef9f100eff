"""bench/mlperf_tiny.py: the anchors, the JSON it writes, its tables."""

import json

import pytest
from bench_support import bench_module

from edgegen.firmware.boards import load_board
from toolchain_support import require_tool


@pytest.fixture(scope="module")
def mlperf():
    with bench_module("mlperf_tiny") as module:
        yield module


def test_the_anchors_are_emulation_md_s_numbers(mlperf):
    anchors = json.loads(mlperf.ANCHORS_FILE.read_text())["networks"]
    assert set(anchors) == {"kws_dscnn", "ic_resnet8", "vww_mobilenet", "ad_autoencoder"}
    assert [anchors[n]["instructions_O2"] for n in anchors] == [7_578_345, 29_769_701,
                                                                23_766_223, 579_479]
    for entry in anchors.values():
        assert entry["ram_bytes"] == entry["arena_bytes"] + entry["scratch_bytes"] + entry["stack_bytes"]


def test_one_network_end_to_end(mlperf, tmp_path, capsys):
    board = load_board(mlperf.M4F)
    require_tool(board.tool("gcc"), board.toolchain_package)
    require_tool(board.qemu.binary, board.qemu.package)
    out = tmp_path / "r.json"
    status = mlperf.main(["--nets", "ad_autoencoder", "--boards", mlperf.M4F, "--opt", "O2",
                          "--test-vectors", "2", "--random-vectors", "2", "--host-vectors", "4",
                          "--json", str(out)])
    assert status == 0
    results = json.loads(out.read_text())
    for variant in ("int8", "compressed"):
        entry = results["ad_autoencoder"][variant][mlperf.M4F]["O2"]
        assert entry["bit_exact"] is True and entry["host_bit_exact"] is True
        assert entry["ram_bytes"] == entry["arena_bytes"] + entry["io_bytes"] + entry["stack_bytes"]
        assert entry["instructions"] > 264_192  # at least one instruction per MAC
        assert len(entry["layers"]) == 10
    int8, packed = (results["ad_autoencoder"][v][mlperf.M4F]["O2"] for v in ("int8", "compressed"))
    assert packed["flash_bytes"] < int8["flash_bytes"]
    table = capsys.readouterr().out
    assert "| ad_autoencoder |" in table and "579,479" in table
