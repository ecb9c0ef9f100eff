"""--opt and --kernels of `edgegen build` and `edgegen deploy --board`."""

import re

import pytest

from edgegen.cli import main
from toolchain_support import require_tool


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("command", [["build"], ["deploy"]])
@pytest.mark.parametrize("board", ["qemu-mps2-an385", "qemu-virt-rv32", "stm32l031"])
def test_dsp_kernels_on_a_portable_board_are_refused(capsys, tmp_path, lenet300_ckpt, command,
                                                     board):
    out = tmp_path / "out"
    status = main([*command, "lenet300", "--checkpoint", str(lenet300_ckpt), "--board", board,
                   "--kernels", "dsp", "--out", str(out)])
    line = one_error_line(capsys)
    assert status == 2
    assert line.startswith(f"edgegen: error: --kernels dsp: {board} (")
    assert "has no Arm DSP extension" in line and "--kernels portable" in line
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("flags", [["--opt", "O2"], ["--kernels", "portable"]])
def test_deploy_firmware_options_need_a_board(capsys, tmp_path, lenet300_ckpt, flags):
    status = main(["deploy", "lenet300", "--checkpoint", str(lenet300_ckpt), *flags, "--out",
                   str(tmp_path / "out")])
    line = one_error_line(capsys)
    assert status == 2 and f"{flags[0]} choose" in line and "--board" in line


@pytest.mark.parametrize("flags", [["--opt", "O1"], ["--opt", "-O2"], ["--opt", "os"],
                                   ["--kernels", "simd"]])
def test_bad_values_are_usage_errors(capsys, tmp_path, flags):
    with pytest.raises(SystemExit) as exit_:
        main(["build", "lenet300", "--board", "qemu-mps2-an386", *flags, "--out", str(tmp_path / "o")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert flags[0] in err and ("invalid choice" in err or "expected one argument" in err), err


def test_help_names_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--opt {O2,Os,O3}" in text and "default: the board's opt field, Os" in text
    assert "--kernels {dsp,portable}" in text and "default: the board's kernels field" in text


def build_for_nucleo(out, checkpoint, data, *options) -> int:
    """`edgegen build` of LeNet-300 for a Cortex-M4F board, with options."""
    require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    require_tool("make", "make")
    return main(["build", "lenet300", "--checkpoint", str(checkpoint), "--board",
                 "nucleo-f411re", *options, "--out", str(out), "--data-dir", str(data),
                 "--calib-samples", "20"])


def test_build_records_the_options_in_the_makefile_and_cmake(capsys, tmp_path, lenet300_ckpt,
                                                             tiny_data):
    """A DSP board built portable at -O3: what the folder's build files say."""
    out = tmp_path / "fw"
    status = build_for_nucleo(out, lenet300_ckpt, tiny_data, "--opt", "O3",
                              "--kernels", "portable")
    text = capsys.readouterr().out
    assert status == 0, text
    assert "lenet300 for nucleo-f411re (-O3, portable kernels): flash" in text
    makefile = (out / "Makefile").read_text()
    assert re.search(r"^OPT \?= -O3$", makefile, re.MULTILINE)
    assert re.search(r"^KERNELS \?=$", makefile, re.MULTILINE)
    assert re.search(r"^MODEL_DEFINES := -DEG_FIXED_ROUNDING=\d$", makefile, re.MULTILINE)
    cmake = (out / "CMakeLists.txt").read_text()
    assert 'set(EG_OPT "-O3" CACHE STRING' in cmake
    assert re.search(r'^option\(EG_KERNELS_DSP ".*"\s+OFF\)$', cmake, re.MULTILINE)
    assert "(-O3, portable kernels)" in (out / "README.md").read_text()


def test_build_defaults_to_the_board_fields(capsys, tmp_path, lenet300_ckpt, tiny_data):
    out = tmp_path / "fw"
    status = build_for_nucleo(out, lenet300_ckpt, tiny_data)
    assert status == 0
    assert "(-O2, dsp kernels)" in capsys.readouterr().out
    makefile = (out / "Makefile").read_text()
    assert re.search(r"^OPT \?= -O2$", makefile, re.MULTILINE)
    assert re.search(r"^KERNELS \?= -DEG_KERNELS_DSP=1$", makefile, re.MULTILINE)


def test_deploy_passes_the_options_to_the_emulated_board(capsys, tmp_path, lenet300_ckpt,
                                                        tiny_data):
    require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    require_tool("qemu-system-arm", "qemu-system-arm")
    out = tmp_path / "out"
    status = main(["deploy", "lenet300", "--checkpoint", str(lenet300_ckpt),
                   "--board", "qemu-mps2-an505", "--opt", "O2", "--kernels", "portable",
                   "--out", str(out),
                   "--data-dir", str(tiny_data), "--calib-samples", "20", "--test-samples", "5",
                   "--random-samples", "2"])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "executed instructions per inference (-O2, portable kernels, worst of 7 vectors)" in text
    folder = out / "firmware-qemu-mps2-an505"
    assert re.search(r"^OPT \?= -O2$", (folder / "Makefile").read_text(), re.MULTILINE)
