"""The board options of the CLI, end to end on an emulated Cortex-M4."""

import json

from toolchain_support import require_tool
from edgegen.cli import main


def test_deploy_build_and_verify_on_an_emulated_board(lenet300_ckpt, tmp_path, capsys):
    require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    require_tool("qemu-system-arm", "qemu-system-arm")
    out = tmp_path / "out"
    status = main(["deploy", "lenet300", "--checkpoint", str(lenet300_ckpt), "--out", str(out),
                   "--board", "qemu-mps2-an386", "--test-samples", "30", "--random-samples", "10",
                   "--calib-samples", "100"])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "qemu-mps2-an386 (QEMU): bit-exact on 40 vectors" in text
    report = json.loads((out / "report.json").read_text())
    assert report["board"]["bit_exact"] is True and report["board"]["instructions"] > 100_000
    assert (out / "firmware-qemu-mps2-an386" / "Makefile").is_file()

    status = main(["verify", str(out), "--board", "qemu-mps2-an385", "--test-samples", "20",
                   "--random-samples", "5"])
    assert status == 0
    assert "bit-exact on 25 vectors" in capsys.readouterr().out

    status = main(["build", "lenet300", "--checkpoint", str(lenet300_ckpt),
                   "--board", "nucleo-f411re",
                   "--out", str(tmp_path / "fw"), "--calib-samples", "50"])
    assert status == 0
    assert "flash" in capsys.readouterr().out
    assert (tmp_path / "fw" / "CMakeLists.txt").is_file()


def test_unknown_board_is_a_user_error(lenet300_ckpt, tmp_path, capsys):
    status = main(["build", "lenet300", "--checkpoint", str(lenet300_ckpt), "--board", "nosuch",
                   "--out", str(tmp_path / "fw")])
    err = capsys.readouterr().err
    assert status == 2 and "unknown board 'nosuch'" in err and "qemu-mps2-an386" in err
    assert not (tmp_path / "fw").exists()


def test_a_model_over_the_boards_flash_is_refused(lenet300_ckpt, tmp_path, capsys):
    """Dense LeNet-300-100 (267 KB of weights) on the 256 KB micro:bit
    (--format dense: auto may Huffman-code a trained model into it)."""
    require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    for command in (["build"], ["deploy", "--test-samples", "10", "--random-samples", "2"]):
        out = tmp_path / command[0]
        status = main([*command, "lenet300", "--checkpoint", str(lenet300_ckpt),
                       "--board", "qemu-microbit",
                       "--format", "dense", "--out", str(out), "--calib-samples", "50"])
        err = capsys.readouterr().err
        assert status == 2, err
        first = err.splitlines()[0]
        assert first.startswith("edgegen: error: lenet300 does not fit qemu-microbit: flash ")
        assert "of 262,144 B (over by" in first
        assert "fc1: weights, bias and requantization (fully connected 784->300, dense)" in err
        assert "Traceback" not in err and not out.exists()
