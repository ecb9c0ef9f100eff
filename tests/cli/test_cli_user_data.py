"""The CLI on users' own data: .npz and .npy files, non-image inputs, no labels."""

import json
import textwrap

import numpy as np
import pytest
import torch

from edgegen.cli import main
from edgegen.quantize.artifact import load_qgraph

USER_MODELS = textwrap.dedent("""
    import torch
    import torch.nn as nn

    def features_net():
        return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4))

    def sensor_net():
        # 2-channel 12x10 sensor frames, channels last in the data
        return nn.Sequential(nn.Conv2d(2, 6, (3, 2), padding=(1, 0)), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))

    def tiny_autoencoder():
        return nn.Sequential(nn.Linear(20, 6), nn.ReLU(), nn.Linear(6, 20))

    def reconstruction(model, inputs, labels):
        return ((model(inputs) - inputs) ** 2).mean()

    def not_a_loss(model, inputs, labels):
        return model(inputs)
""")

FAST = ["--calib-samples", "50", "--test-samples", "20", "--random-samples", "5"]


@pytest.fixture()
def user_dir(user_module):
    return user_module("datamodels", USER_MODELS)


def _checkpoint(folder, name, model):
    torch.manual_seed(0)
    path = folder / f"{name}.pt"
    torch.save(model.state_dict(), path)
    return path


def _features(folder, labelled=True):
    rng = np.random.default_rng(0)
    x_train = rng.normal(0.0, 2.0, (200, 20)).astype(np.float32)
    x_test = rng.normal(0.0, 2.0, (60, 20)).astype(np.float32)
    arrays = {"x_train": x_train, "x_test": x_test}
    if labelled:
        arrays |= {"y_train": rng.integers(0, 4, 200), "y_test": rng.integers(0, 4, 60)}
    np.savez(folder / "features.npz", **arrays)
    return folder / "features.npz"


def _run(capsys, argv):
    status = main(argv)
    return status, capsys.readouterr()


def test_deploy_feature_vectors_from_npz(capsys, user_dir):
    import datamodels

    ckpt = _checkpoint(user_dir, "features", datamodels.features_net())
    status, out = _run(capsys, ["deploy", "datamodels:features_net", "--checkpoint", str(ckpt),
                                "--data", str(_features(user_dir)), "--out", "out", *FAST])
    assert status == 0, out.err
    report = json.loads((user_dir / "out" / "report.json").read_text())
    assert report["dataset"]["layout"] == "features" and report["dataset"]["sample_shape"] == [20]
    assert report["verification"]["bit_exact"]
    assert report["accuracy"]["int8_golden"] is not None
    qgraph = load_qgraph(user_dir / "out" / "model.qgraph.npz")
    assert qgraph.tensor(qgraph.input).shape == (20,)
    # calibrated, not the [0, 1] of pixels: inputs are normal with sigma 2
    assert qgraph.tensor(qgraph.input).qparams.scale > 4.0 / 255
    assert "features_net_quantize_input" in (user_dir / "out" / "features_net.h").read_text()


def test_unlabelled_npy_is_verified_without_accuracy(capsys, user_dir):
    import datamodels

    ckpt = _checkpoint(user_dir, "features", datamodels.features_net())
    np.save(user_dir / "inputs.npy", np.random.default_rng(1).standard_normal((40, 20)))
    status, out = _run(capsys, ["deploy", "datamodels:features_net", "--checkpoint", str(ckpt),
                                "--data", "inputs.npy", "--out", "out", *FAST])
    assert status == 0, out.err
    assert "Accuracy not measured: the data has no labels" in out.out
    report = json.loads((user_dir / "out" / "report.json").read_text())
    assert report["accuracy"]["int8_golden"] is None and report["verification"]["bit_exact"]


def test_nhwc_sensor_frames_and_reverify(capsys, user_dir):
    import datamodels

    ckpt = _checkpoint(user_dir, "sensor", datamodels.sensor_net())
    rng = np.random.default_rng(2)
    np.savez(user_dir / "frames.npz", x_train=rng.standard_normal((80, 12, 10, 2)),
             x_test=rng.standard_normal((30, 12, 10, 2)), y_train=rng.integers(0, 3, 80),
             y_test=rng.integers(0, 3, 30))
    status, out = _run(capsys, ["deploy", "datamodels:sensor_net", "--checkpoint", str(ckpt),
                                "--data-dir", "frames.npz", "--out", "out", *FAST])
    assert status == 0, out.err
    report = json.loads((user_dir / "out" / "report.json").read_text())
    assert report["dataset"]["layout"] == "nhwc" and report["dataset"]["sample_shape"] == [2, 12, 10]
    status, out = _run(capsys, ["verify", "out", "--random-samples", "10"])
    assert status == 0, out.err
    assert "30 test inputs + 10 random vectors" in out.out


def test_input_range_option(capsys, user_dir):
    import datamodels

    ckpt = _checkpoint(user_dir, "features", datamodels.features_net())
    status, out = _run(capsys, ["generate", "datamodels:features_net", "--checkpoint", str(ckpt),
                                "--data", str(_features(user_dir)), "--out", "out",
                                "--input-range=-1,1", "--calib-samples", "20"])
    assert status == 0, out.err
    header = (user_dir / "out" / "features_net.h").read_text()
    assert "FEATURES_NET_INPUT_ZERO_POINT" in header
    status, out = _run(capsys, ["generate", "datamodels:features_net", "--checkpoint", str(ckpt),
                                "--data", str(_features(user_dir)), "--out", "out2",
                                "--input-range", "1,2"])
    assert status == 2 and "must include 0" in out.err


def test_compress_unlabelled_data_with_a_train_step(capsys, user_dir):
    import datamodels

    ckpt = _checkpoint(user_dir, "ae", datamodels.tiny_autoencoder())
    data = _features(user_dir, labelled=False)
    base = ["compress", "datamodels:tiny_autoencoder", "--checkpoint", str(ckpt), "--data",
            str(data), "--prune", "0.5", "--prune-steps", "1", "--retrain-epochs", "1",
            "--finetune-epochs", "1", "--bits", "fc=4"]
    status, out = _run(capsys, base + ["--out", "c0"])
    assert status == 2 and "has no labels" in out.err and "--train-step" in out.err
    status, out = _run(capsys, base + ["--out", "c1", "--train-step", "datamodels:not_a_loss"])
    assert status == 2 and "must return the loss as a scalar tensor" in out.err
    status, out = _run(capsys, base + ["--out", "c2", "--train-step", "datamodels:reconstruction"])
    assert status == 0, out.err
    assert "Accuracy not measured: the data set has no labels" in (user_dir / "c2" / "report.md").read_text()
    status, out = _run(capsys, ["deploy", "c2/compressed.npz", "--factory",
                                "datamodels:tiny_autoencoder", "--data", str(data), "--out", "d",
                                *FAST])
    assert status == 0, out.err


def test_mlperf_tiny_zoo_models_run_on_synthetic_inputs(capsys, tmp_path):
    status, out = _run(capsys, ["deploy", "ad_autoencoder", "--out", str(tmp_path / "ad"), *FAST])
    assert status == 0, out.err
    assert "synthetic inputs (random normal, no labels); the model's weights are random" in out.out
    report = json.loads((tmp_path / "ad" / "report.json").read_text())
    assert report["dataset"]["synthetic_seed"] == 0 and report["dataset"]["sample_shape"] == [640]
    assert report["source"]["weights"] == "random (seed 0)"
    status, out = _run(capsys, ["verify", str(tmp_path / "ad"), "--random-samples", "4"])
    assert status == 0, out.err  # the synthetic inputs are made again from the report
    status, out = _run(capsys, ["train", "kws_dscnn"])
    assert status == 2 and "pass --data PATH" in out.err
    compress = ["compress", "ad_autoencoder", "--prune", "0.5", "--bits", "fc=4",
                "--prune-steps", "1"]
    status, out = _run(capsys, compress + ["--out", str(tmp_path / "c1")])
    assert status == 2 and "synthetic" in out.err and "--retrain-epochs 0" in out.err
    status, out = _run(capsys, compress + ["--out", str(tmp_path / "c2"), "--retrain-epochs", "0",
                                           "--finetune-epochs", "0"])
    assert status == 0, out.err
