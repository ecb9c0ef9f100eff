"""The CLI as a hostile new user meets it: every case of the hardening issue.

Each test asserts the exit status, the message, and the file system
afterwards: nothing of the user's deleted or changed, nothing left behind.
"""

import json
import os
import signal
import stat
import time

import numpy as np
import pytest
import torch

from edgegen.compress.artifact import CompressedArtifact, StoredLayer, save_compressed
from edgegen.output_folder import MANIFEST_NAME, claim_path
from robustness_support import assert_user_error, run_cli, run_process, snapshot

FAST = ["--test-samples", "20", "--random-samples", "5", "--calib-samples", "50"]


def net_args(tiny_data, *extra):
    return ["usermodels:net", "--checkpoint", "net.pt", "--data-dir", tiny_data, *extra]


def deploy_net(capsys, tiny_data, out, *extra):
    outcome = run_cli(capsys, ["deploy", *net_args(tiny_data, "--out", out, *FAST, *extra)])
    assert outcome.status == 0, outcome.err
    return out


def compressed_net(path, source: dict) -> None:
    """A compressed artifact of ``usermodels:net`` recording ``source``."""
    rng = np.random.default_rng(1)
    codebook = np.array([0, *range(-7, 8)], dtype=np.int8)
    indices = rng.integers(0, 16, (16, 784)).astype(np.int32)
    mask = indices != 0
    scale = 0.01
    torch.manual_seed(0)
    nn = torch.nn
    state = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10)).state_dict()
    state["1.weight"] = torch.from_numpy((scale * codebook[indices] * mask).astype(np.float32))
    layer = StoredLayer("1", "fc", (16, 784), 4, scale, mask, indices, codebook)
    save_compressed(path, CompressedArtifact(source, state, (layer,), {}))


# ------------------------------------------------ 1. artifacts are data


@pytest.mark.parametrize("factory", ["evil.py:f", "evil:f", "os:abort", "usermodels:exits"])
@pytest.mark.parametrize("command", ["generate", "deploy"])
def test_code_named_in_an_artifact_is_never_run(capsys, tiny_data, user_dir, factory, command):
    compressed_net(user_dir / "c.npz", {"factory": factory})
    before = snapshot(user_dir)
    outcome = run_cli(capsys, [command, "c.npz", "--data-dir", tiny_data, "--out", "out"])
    assert_user_error(outcome, "edgegen does not import code that a file names", "--factory")
    assert not (user_dir / "EVIL_RAN").exists() and "evil" not in __import__("sys").modules
    assert snapshot(user_dir) == before and not (user_dir / "out").exists()


def test_the_users_factory_loads_a_compressed_artifact(capsys, tiny_data, user_dir):
    compressed_net(user_dir / "c.npz", {"factory": "usermodels:net"})
    outcome = run_cli(capsys, ["deploy", "c.npz", "--factory", "usermodels:net",
                               "--data-dir", tiny_data, "--out", "out", *FAST])
    assert outcome.status == 0, outcome.err
    assert "note:" not in outcome.err and "bit-exact on 25 vectors" in outcome.out


def test_a_factory_other_than_the_recorded_one_is_named(capsys, tiny_data, user_dir):
    compressed_net(user_dir / "c.npz", {"factory": "usermodels:other_net"})
    outcome = run_cli(capsys, ["generate", "c.npz", "--factory", "usermodels:net",
                               "--data-dir", tiny_data, "--out", "out"])
    assert outcome.status == 0, outcome.err
    assert ("c.npz was compressed from your model usermodels:other_net; loading its weights "
            "into usermodels:net") in outcome.err


def test_a_compressed_artifact_with_a_nan_scale(capsys, tiny_data, user_dir):
    compressed_net(user_dir / "c.npz", {"zoo": "lenet300"})
    with np.load(user_dir / "c.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes())
    header["layers"][0]["scale"] = float("nan")
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(user_dir / "nan.npz", **arrays)
    outcome = run_cli(capsys, ["generate", "nan.npz", "--data-dir", tiny_data, "--out", "out"])
    assert_user_error(outcome, "nan.npz")
    assert not (user_dir / "out").exists()


# --------------------------------------- 2. nothing of the user's is lost


def test_out_dot_with_force_keeps_the_users_files(capsys, tiny_data, user_dir):
    before = snapshot(user_dir)
    outcome = run_cli(capsys, ["generate", *net_args(tiny_data, "--out", ".", "--force")])
    assert_user_error(outcome)
    assert snapshot(user_dir) == before


@pytest.mark.parametrize("proj_made_by", ["user", "edgegen"])
def test_force_never_deletes_an_input_checkpoint(capsys, tiny_data, user_dir, proj_made_by):
    proj = user_dir / "proj"
    if proj_made_by == "edgegen":
        deploy_net(capsys, tiny_data, proj)
    else:
        proj.mkdir()
    (proj / "my_trained.pt").write_bytes((user_dir / "net.pt").read_bytes())
    before = snapshot(user_dir)
    outcome = run_cli(capsys, ["generate", "usermodels:net", "--checkpoint", "proj/my_trained.pt",
                               "--data-dir", tiny_data, "--out", "proj", "--force"])
    assert_user_error(outcome, "an input of this run")
    assert snapshot(user_dir) == before


def test_force_replaces_a_folder_that_edgegen_wrote(capsys, tiny_data, user_dir):
    deploy_net(capsys, tiny_data, user_dir / "out")
    deploy_net(capsys, tiny_data, user_dir / "out", "--force", "--name", "second")
    assert (user_dir / "out" / "second.h").is_file() and not (user_dir / "out" / "net.h").exists()


def _wait_for(path, process, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_a_folder_created_while_deploy_runs_is_kept(tiny_data, user_dir, slow_cc):
    run = run_process(["deploy", *net_args(tiny_data, "--out", "X", *FAST, "--cc", slow_cc(2))],
                      user_dir)
    _wait_for(claim_path(user_dir / "X"), run)
    (user_dir / "X").mkdir()
    (user_dir / "X" / "important.txt").write_text("mine")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 2, err
    assert "X appeared while edgegen was running; it was not touched" in err
    assert [p.name for p in (user_dir / "X").iterdir()] == ["important.txt"]
    assert not claim_path(user_dir / "X").exists()


def test_two_runs_on_one_folder(capsys, tiny_data, user_dir, slow_cc):
    first = run_process(["deploy", *net_args(tiny_data, "--out", "X", *FAST, "--cc", slow_cc(2))],
                        user_dir)
    _wait_for(claim_path(user_dir / "X"), first)
    second = run_cli(capsys, ["deploy", *net_args(tiny_data, "--out", "X", *FAST)])
    assert_user_error(second, "another edgegen run is writing")
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert (user_dir / "X" / "report.md").is_file()


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                            (signal.SIGHUP, 129)])
def test_a_signal_leaves_nothing_behind(tiny_data, user_dir, slow_cc, signum, status):
    before = snapshot(user_dir)
    run = run_process(["deploy", *net_args(tiny_data, "--out", "a/b/X", *FAST,
                                           "--cc", slow_cc(60))], user_dir)
    _wait_for(claim_path(user_dir / "a" / "b" / "X"), run)
    run.send_signal(signum)
    _, err = run.communicate(timeout=60)
    assert run.returncode == status, err
    assert "nothing was left behind" in err and "Traceback" not in err
    assert not (user_dir / "a").exists() and snapshot(user_dir) == before


def test_a_failed_run_leaves_no_empty_parents(capsys, tiny_data, user_dir):
    outcome = run_cli(capsys, ["deploy", *net_args(tiny_data, "--out", "a/b/out", *FAST,
                                                   "--cc", "/bin/false")])
    assert_user_error(outcome, "failed")
    assert not (user_dir / "a").exists()


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_files_get_the_users_umask(tiny_data, user_dir, umask, file_mode, dir_mode):
    run = run_process(["generate", *net_args(tiny_data, "--out", "out")], user_dir,
                      preexec_fn=lambda: os.umask(umask))
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    out = user_dir / "out"
    assert stat.S_IMODE(out.stat().st_mode) == dir_mode
    for path in [out / "model.qgraph.npz", out / "net.c", out / MANIFEST_NAME]:
        assert stat.S_IMODE(path.stat().st_mode) == file_mode, path


# ------------------------------- 3. verify does not trust the folder


@pytest.fixture()
def deployed(capsys, tiny_data, user_dir):
    return deploy_net(capsys, tiny_data, user_dir / "d")


def _verify(capsys, folder, *extra):
    return run_cli(capsys, ["verify", folder, "--test-samples", "20", "--random-samples", "5",
                            *extra])


@pytest.mark.parametrize("arena", ["1", "(1)  /* bytes */", "(ARENA)", "", "16 + 1"])
def test_verify_checks_the_header_against_the_model(capsys, deployed, arena):
    header = deployed / "net.h"
    text = header.read_text()
    size = next(line for line in text.splitlines() if line.startswith("#define NET_ARENA_SIZE "))
    size = size.split()[2]
    header.write_text(text.replace(f"NET_ARENA_SIZE {size}", f"NET_ARENA_SIZE {arena}"))
    outcome = _verify(capsys, deployed)
    assert_user_error(outcome, "NET_ARENA_SIZE", f"needs {size}", "regenerate")


def test_verify_accepts_the_same_size_written_otherwise(capsys, deployed):
    header = deployed / "net.h"
    header.write_text(header.read_text().replace("NET_ARENA_SIZE 16", "NET_ARENA_SIZE (16)  /* bytes */"))
    assert _verify(capsys, deployed).status == 0


def test_verify_only_reads_the_folder(capsys, deployed):
    assert _verify(capsys, deployed).status == 0
    before = snapshot(deployed)
    assert _verify(capsys, deployed).status == 0
    assert snapshot(deployed) == before  # verify only reads the folder


def test_verify_of_a_folder_missing_a_source(capsys, deployed):
    (deployed / "net.c").unlink()
    assert_user_error(_verify(capsys, deployed), "net.c is missing")


def test_verify_with_a_damaged_report(capsys, deployed, tiny_data):
    (deployed / "report.json").write_text('{"x": 1}')
    assert_user_error(_verify(capsys, deployed), "report.json does not say which data set", "--data PATH")
    assert _verify(capsys, deployed, "--data-dir", tiny_data).status == 0


def test_c_writing_outside_its_arena_fails_verification(capsys, deployed):
    source = deployed / "net.c"
    text = source.read_text()
    source.write_text(text.replace("    return (int)status;\n}", "    arena[NET_ARENA_SIZE] = 1;\n    return (int)status;\n}"))
    outcome = _verify(capsys, deployed)
    assert outcome.status == 1, outcome.err
    assert "net_invoke wrote past the end of its arena buffer" in outcome.err


@pytest.mark.parametrize("damage", ["array shape", "input shape"])
def test_verify_of_a_damaged_quantized_model(capsys, deployed, damage):
    path = deployed / "model.qgraph.npz"
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes())
    if damage == "array shape":
        key = next(k for k in arrays if k.endswith("/weight"))
        arrays[key] = arrays[key][:, :-1].copy()
    else:
        header["tensors"][0]["shape"] = [27, 28, 1]
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)
    assert_user_error(_verify(capsys, deployed), "model.qgraph.npz")


# ------------------------------------- 4. every failure has its status


def test_out_under_a_read_only_folder(capsys, tiny_data, user_dir):
    parent = user_dir / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    if os.access(parent, os.W_OK):  # root ignores permissions: use a file system that refuses
        parent = "/sys"
    outcome = run_cli(capsys, ["generate", *net_args(tiny_data, "--out", f"{parent}/out")])
    assert_user_error(outcome, "choose another --out")


def test_out_under_a_file(capsys, tiny_data, user_dir):
    outcome = run_cli(capsys, ["generate", *net_args(tiny_data, "--out", "notes.txt/sub/out")])
    assert_user_error(outcome, "notes.txt is a file, not a folder")
    assert (user_dir / "notes.txt").read_text() == "the user's notes"


def test_a_board_file_that_is_not_utf8(capsys, tiny_data, user_dir):
    (user_dir / "b.toml").write_bytes(b'name = "b"\ndescription = "\xff\xfe"\n')
    outcome = run_cli(capsys, ["build", *net_args(tiny_data, "--board", "b.toml", "--out", "fw")])
    assert_user_error(outcome, "b.toml")


def test_a_compress_spec_naming_a_missing_layer(capsys, tiny_data, user_dir):
    spec = {"format": "edgegen.compress-spec", "version": 1, "seed": 0, "prune_steps": 1,
            "retrain_epochs": 1, "finetune_epochs": 1,
            "layers": [{"name": "fc9", "prune": {"sparsity": 0.5}, "share": None}]}
    (user_dir / "spec.json").write_text(json.dumps(spec))
    outcome = run_cli(capsys, ["compress", *net_args(tiny_data, "--spec", "spec.json", "--out", "c")])
    assert_user_error(outcome, "fc9")
    assert not (user_dir / "c").exists()


@pytest.mark.parametrize("model, needle", [
    ("usermodels:flatten_only", "computes nothing"),
    ("usermodels:exits", "sys.exit(3)"),
])
def test_models_that_cannot_be_deployed(capsys, tiny_data, user_dir, model, needle):
    torch.save({}, user_dir / "empty.pt")
    outcome = run_cli(capsys, ["generate", model, "--checkpoint", "empty.pt", "--data-dir",
                               tiny_data, "--out", "out"])
    assert_user_error(outcome, needle)
    assert not (user_dir / "out").exists()


@pytest.mark.parametrize("cc, needle", [("/bin/true", "wrote no"), ("/bin/false", "failed"),
                                        ("no-such-cc", "not found")])
def test_compilers_that_do_not_work(capsys, tiny_data, user_dir, cc, needle):
    outcome = run_cli(capsys, ["deploy", *net_args(tiny_data, "--out", "out", *FAST, "--cc", cc)])
    assert_user_error(outcome, needle, "--cc")
    assert not (user_dir / "out").exists()


def test_an_internal_error_is_status_3_with_a_traceback(capsys, tiny_data, user_dir, monkeypatch):
    import edgegen.jobs.deploy

    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(edgegen.jobs.deploy, "lower", broken)
    outcome = run_cli(capsys, ["generate", *net_args(tiny_data, "--out", "out")])
    assert outcome.status == 3
    assert "Traceback" in outcome.err and "ZeroDivisionError: a bug" in outcome.err
    assert "this is a bug in edgegen; please report it" in outcome.err
    assert not (user_dir / "out").exists()


# --------------------------------------------------- 5. names reach C safely


@pytest.mark.parametrize("name", ['x*/\n#include "/etc/hostname"\n/*', "a*/b", "int", "9lives",
                                  "__reserved", "x" * 41, ""])
def test_names_that_are_not_c_identifiers(capsys, tiny_data, user_dir, name):
    outcome = run_cli(capsys, ["generate", *net_args(tiny_data, "--out", "out", "--name", name)])
    assert_user_error(outcome, "--name", "letters, digits and '_'")
    assert not (user_dir / "out").exists()


def test_a_name_of_the_users_is_kept_as_given(capsys, tiny_data, user_dir):
    deploy_net(capsys, tiny_data, user_dir / "out", "--name", "MyNet")
    header = (user_dir / "out" / "MyNet.h").read_text()
    assert "int MyNet_invoke(" in header and "#define MYNET_ARENA_SIZE" in header


# ------------------------------------------------------------- 6. smaller


def test_a_model_far_beyond_any_mcu_is_refused_early(capsys, tiny_data, user_dir):
    torch.manual_seed(0)
    nn = torch.nn
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(784, 100000)).state_dict(), "huge.pt")
    started = time.monotonic()
    outcome = run_cli(capsys, ["generate", "usermodels:huge", "--checkpoint", "huge.pt",
                               "--data-dir", tiny_data, "--out", "out"])
    assert_user_error(outcome, "78,500,000 parameters", "16,777,216", "--max-model-bytes")
    assert time.monotonic() - started < 60  # refused before its weights are read
    outcome = run_cli(capsys, ["generate", *net_args(tiny_data, "--out", "out",
                                                     "--max-model-bytes", "12700")])
    assert_user_error(outcome, "12,730 parameters, over the limit of 12,700 int8 bytes")
    outcome = run_cli(capsys, ["generate", *net_args(tiny_data, "--out", "out",
                                                     "--max-model-bytes", "13000")])
    assert_user_error(outcome, "13,016 bytes of int8 weights and constants, over the limit of 13,000")


def test_random_bytes_as_a_checkpoint(capsys, tiny_data, user_dir):
    (user_dir / "noise.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    outcome = run_cli(capsys, ["generate", "usermodels:net", "--checkpoint", "noise.pt",
                               "--data-dir", tiny_data, "--out", "out"])
    assert_user_error(outcome, "noise.pt")
    assert "pickled" not in outcome.err


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64, torch.int64, torch.complex64])
def test_checkpoints_of_another_dtype_are_refused(capsys, tiny_data, user_dir, dtype):
    state = torch.load("net.pt")
    torch.save({k: v.to(dtype) for k, v in state.items()}, "typed.pt")
    outcome = run_cli(capsys, ["generate", "usermodels:net", "--checkpoint", "typed.pt",
                               "--data-dir", tiny_data, "--out", "out"])
    assert_user_error(outcome, "typed.pt", str(dtype).replace("torch.", ""))


def test_train_never_overwrites_a_file_it_did_not_write(capsys, tiny_data, user_dir):
    for extra in ([], ["--force"]):
        outcome = run_cli(capsys, ["train", "lenet300", "--epochs", "1", "--data-dir", tiny_data,
                                   "--checkpoint", "notes.txt", *extra])
        assert_user_error(outcome, "notes.txt")
    assert (user_dir / "notes.txt").read_text() == "the user's notes"


def test_module_names_reach_c_comments_escaped(tiny_data, tmp_path):
    """A module path is free text (PyTorch allows '*/' in it): the generated
    C comments stay closed and the model deploys bit-exact."""
    from edgegen.data.datasets import load_dataset
    from edgegen.jobs.deploy import VerifyOptions, deploy
    from edgegen.jobs.quantize import QuantizeOptions

    nn = torch.nn
    model = nn.Sequential()
    model.add_module("flat", nn.Flatten())
    model.add_module("a*/ int evil; /*b", nn.Linear(784, 10))
    result = deploy(model.eval(), "x", load_dataset(tiny_data), tmp_path / "out",
                    quantize_options=QuantizeOptions(calib_samples=20),
                    verify_options=VerifyOptions(10, 5), log=lambda *_: None)
    assert result.comparison.bit_exact
    assert "evil" in (tmp_path / "out" / "x.c").read_text()  # named, inside a closed comment
