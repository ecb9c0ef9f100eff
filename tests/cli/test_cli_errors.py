"""Bad input: one clear line on stderr, exit status 2, nothing half-written."""

import subprocess
import sys
import textwrap

import pytest
import torch

from edgegen.cli import main


USER_MODELS = textwrap.dedent("""
    import torch.nn as nn

    def sigmoid_net():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Sigmoid())

    def wide_input_net():
        return nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 10))

    def plain_net():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
""")


@pytest.fixture()
def user_dir(user_module):
    return user_module("usermodels", USER_MODELS)


def _run(capsys, argv):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.err


def _assert_user_error(status, err, *needles):
    assert status == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[0].startswith("edgegen: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def _no_output(parent, name="out"):
    return not any(p.name.startswith(name) or p.name.startswith(f".{name}") for p in parent.iterdir())


def test_missing_checkpoint(capsys, tiny_data, tmp_path):
    status, err = _run(capsys, ["deploy", "lenet5", "--checkpoint", str(tmp_path / "nope.pt"),
                                "--data-dir", str(tiny_data), "--out", str(tmp_path / "out")])
    _assert_user_error(status, err, "nope.pt", "not found")
    assert _no_output(tmp_path)


def test_checkpoint_of_another_model(capsys, tiny_data, lenet300_ckpt, tmp_path):
    status, err = _run(capsys, ["deploy", "lenet5", "--checkpoint", str(lenet300_ckpt),
                                "--data-dir", str(tiny_data), "--out", str(tmp_path / "out")])
    _assert_user_error(status, err, "lenet300.pt")
    assert _no_output(tmp_path)


def test_input_shape_that_does_not_match(capsys, tiny_data, user_dir):
    ckpt = user_dir / "wide.pt"
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1024, 10)).state_dict(), ckpt)
    status, err = _run(capsys, ["deploy", "usermodels:wide_input_net", "--checkpoint", str(ckpt),
                                "--data-dir", str(tiny_data), "--out", str(user_dir / "out")])
    _assert_user_error(status, err, "does not take the inputs of", "one-channel images of shape "
                       "(1, 28, 28)", "1x784 and 1024x10", "pass --data")
    assert _no_output(user_dir)


def test_nan_weights(capsys, tiny_data, user_dir):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    with torch.no_grad():
        net[1].bias[3] = float("inf")
    torch.save(net.state_dict(), user_dir / "nan.pt")
    status, err = _run(capsys, ["deploy", "usermodels:plain_net", "--checkpoint", "nan.pt",
                                "--data-dir", str(tiny_data), "--out", "out"])
    _assert_user_error(status, err, "1.bias holds NaN or Inf")
    assert _no_output(user_dir)


def test_unsupported_operator(capsys, tiny_data, user_dir):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10), torch.nn.Sigmoid())
    torch.save(net.state_dict(), user_dir / "sig.pt")
    status, err = _run(capsys, ["deploy", "usermodels:sigmoid_net", "--checkpoint", "sig.pt",
                                "--data-dir", str(tiny_data), "--out", "out"])
    _assert_user_error(status, err, "unsupported operator at 2: Sigmoid", "supports:")
    assert _no_output(user_dir)


def test_existing_output_folder_needs_force(capsys, tiny_data, lenet300_ckpt, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    argv = ["deploy", "lenet300", "--checkpoint", str(lenet300_ckpt), "--data-dir", str(tiny_data),
            "--out", str(out), "--test-samples", "20", "--random-samples", "5", "--calib-samples", "50"]
    status, err = _run(capsys, argv)
    _assert_user_error(status, err, "already exists", "--force")
    assert (out / "keep.txt").read_text() == "mine"
    # --force replaces only a folder edgegen wrote: this one is the user's.
    status, err = _run(capsys, argv + ["--force"])
    _assert_user_error(status, err, "not written by edgegen")
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    out.rmdir()
    assert _run(capsys, argv)[0] == 0
    status, _ = _run(capsys, argv + ["--force"])
    assert status == 0 and (out / "report.md").is_file()


def test_missing_compiler(capsys, tiny_data, lenet300_ckpt, tmp_path):
    status, err = _run(capsys, ["deploy", "lenet300", "--checkpoint", str(lenet300_ckpt),
                                "--data-dir", str(tiny_data), "--out", str(tmp_path / "out"),
                                "--cc", "no-such-cc-4711"])
    _assert_user_error(status, err, "no-such-cc-4711", "not found", "--cc")
    assert _no_output(tmp_path)


def test_failing_compiler_shows_its_first_error_lines(capsys, tiny_data, lenet300_ckpt, tmp_path):
    fake = tmp_path / "badcc"
    fake.write_text("#!/bin/sh\necho 'badcc: fatal error: out of licences' >&2\nexit 1\n")
    fake.chmod(0o755)
    status, err = _run(capsys, ["deploy", "lenet300", "--checkpoint", str(lenet300_ckpt),
                                "--data-dir", str(tiny_data), "--out", str(tmp_path / "out"),
                                "--cc", str(fake)])
    _assert_user_error(status, err, "failed", "badcc: fatal error: out of licences")
    assert _no_output(tmp_path)


def test_missing_data_dir(capsys, tmp_path):
    status, err = _run(capsys, ["deploy", "lenet300", "--data-dir", str(tmp_path / "nodata"),
                                "--out", str(tmp_path / "out")])
    _assert_user_error(status, err, "nodata")


def test_unknown_model(capsys, tiny_data, tmp_path):
    status, err = _run(capsys, ["deploy", "alexnet", "--data-dir", str(tiny_data),
                                "--out", str(tmp_path / "out")])
    _assert_user_error(status, err, "unknown model 'alexnet'", "lenet5")


def test_console_script_exit_status_and_no_traceback(tiny_data, tmp_path):
    r = subprocess.run([sys.executable, "-m", "edgegen", "deploy", "lenet5", "--checkpoint",
                        str(tmp_path / "missing.pt"), "--data-dir", str(tiny_data),
                        "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("edgegen: error: ") and "Traceback" not in r.stderr
