"""Data sets in .npz and .npy files, their layouts, and synthetic data."""

import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from edgegen.data.datasets import Layout, fit_layout, load_dataset, synthetic_dataset
from edgegen.errors import UserError


def conv_net(in_channels: int) -> nn.Module:
    """A model that takes any spatial size with ``in_channels`` channels."""
    return nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 3))


def save_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_npz_nhwc_is_found_from_the_model_and_transposed(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.standard_normal((10, 32, 20, 3)).astype(np.float32)
    x_test = rng.standard_normal((4, 32, 20, 3)).astype(np.float32)
    path = save_npz(tmp_path / "cifar-like.npz", x_train=x_train, x_test=x_test,
                    y_train=np.arange(10) % 3, y_test=np.array([0, 1, 2, 0]))
    ds = load_dataset(path)
    assert ds.layout is None and ds.name == "cifar-like" and ds.has_labels
    ds = fit_layout(ds, conv_net(3))
    assert ds.layout is Layout.NHWC and ds.sample_shape == (3, 32, 20)
    batch = ds.floats(ds.test_inputs[:2])
    assert batch.shape == (2, 3, 32, 20) and batch.flags.c_contiguous
    assert batch[1, 2, 5, 7] == x_test[1, 5, 7, 2]
    assert not ds.pixels and ds.input_range is None


def test_npz_nchw_is_found_from_the_model(tmp_path):
    x = np.zeros((5, 1, 49, 10), np.float32)
    ds = fit_layout(load_dataset(save_npz(tmp_path / "k.npz", x_train=x, x_test=x)), conv_net(1))
    assert ds.layout is Layout.NCHW and ds.sample_shape == (1, 49, 10)
    assert not ds.has_labels and ds.train_labels is None


def test_ambiguous_layout_is_refused_and_layout_option_decides(tmp_path):
    x = np.zeros((5, 3, 8, 3), np.float32)
    path = save_npz(tmp_path / "a.npz", x_train=x, x_test=x)
    with pytest.raises(UserError, match=r"both as NCHW and as NHWC: pass --layout nchw or --layout nhwc"):
        fit_layout(load_dataset(path), conv_net(3))
    ds = fit_layout(load_dataset(path, Layout.NHWC), conv_net(3))
    assert ds.sample_shape == (3, 3, 8)


def test_model_that_takes_neither_layout(tmp_path):
    x = np.zeros((5, 2, 8, 2), np.float32)
    path = save_npz(tmp_path / "a.npz", x_train=x, x_test=x)
    with pytest.raises(UserError, match="neither as NCHW .* nor as NHWC"):
        fit_layout(load_dataset(path), conv_net(3))


def test_given_layout_the_model_rejects(tmp_path):
    x = np.zeros((5, 8, 8, 3), np.float32)
    path = save_npz(tmp_path / "a.npz", x_train=x, x_test=x)
    with pytest.raises(UserError, match=r"does not take the inputs of .* \(NCHW tensors of shape \(8, 8, 3\)\)"):
        fit_layout(load_dataset(path, Layout.NCHW), conv_net(3))


def test_layout_option_for_other_dimensions(tmp_path):
    x = np.zeros((5, 640), np.float32)
    with pytest.raises(UserError, match="--layout nhwc does not fit 2-dimensional inputs"):
        load_dataset(save_npz(tmp_path / "a.npz", x_train=x, x_test=x), Layout.NHWC)


def test_feature_vectors(tmp_path):
    x = np.arange(5 * 640, dtype=np.float64).reshape(5, 640)
    ds = load_dataset(save_npz(tmp_path / "ad.npz", x_train=x, x_test=x[:2]))
    ds = fit_layout(ds, nn.Linear(640, 8))
    assert ds.layout is Layout.FEATURES and ds.sample_shape == (640,)
    assert ds.floats(ds.test_inputs).dtype == np.float32


def test_grayscale_images_in_npz_are_pixels(tmp_path):
    x = np.full((3, 28, 28), 255, np.uint8)
    ds = load_dataset(save_npz(tmp_path / "g.npz", x_train=x, x_test=x))
    assert ds.layout is Layout.NHW and ds.pixels and ds.input_range == (0.0, 1.0)
    assert ds.floats(x[:1]).shape == (1, 1, 28, 28) and ds.floats(x[:1]).max() == 1.0


def test_calibration_split(tmp_path):
    x = np.zeros((5, 4), np.float32)
    calib = np.ones((2, 4), np.float32)
    ds = load_dataset(save_npz(tmp_path / "c.npz", x_train=x, x_test=x, x_calib=calib))
    np.testing.assert_array_equal(ds.calibration_inputs, calib)
    assert load_dataset(save_npz(tmp_path / "d.npz", x_train=x, x_test=x)).calibration_inputs is not calib


def test_plain_npy_serves_calibration_and_verification(tmp_path):
    x = np.random.default_rng(0).standard_normal((7, 49, 10, 1)).astype(np.float32)
    np.save(tmp_path / "features.npy", x)
    ds = fit_layout(load_dataset(tmp_path / "features.npy"), conv_net(1))
    assert ds.layout is Layout.NHWC and ds.sample_shape == (1, 49, 10)
    assert len(ds.train_inputs) == len(ds.test_inputs) == 7 and not ds.has_labels


@pytest.mark.parametrize("labels, expected", [
    (np.array([[0], [2], [1]], np.uint8), [0, 2, 1]),  # Keras' CIFAR-10: (N, 1)
    (np.eye(3, dtype=np.float32)[[2, 0, 1]], [2, 0, 1]),  # one-hot
    (np.array([1.0, 0.0, 2.0]), [1, 0, 2]),  # integral floats
])
def test_label_forms(tmp_path, labels, expected):
    x = np.zeros((3, 4), np.float32)
    ds = load_dataset(save_npz(tmp_path / "l.npz", x_train=x, x_test=x, y_train=labels,
                               y_test=labels))
    assert ds.train_labels.dtype == np.int64 and ds.train_labels.tolist() == expected


@pytest.mark.parametrize("labels, message", [
    (np.array([0, -1, 1]), "has label -1: class indices start at 0"),
    (np.array([0.5, 1, 2]), "non-integer labels"),
    (np.array([[1, 1], [0, 1], [1, 0]]), "must be one-hot rows"),
    (np.zeros((3, 2, 2)), r"has shape \(3, 2, 2\)"),
    (np.array([0, 1]), "x_train has 3 samples but y_train has 2 labels"),
])
def test_bad_labels(tmp_path, labels, message):
    x = np.zeros((3, 4), np.float32)
    path = save_npz(tmp_path / "l.npz", x_train=x, x_test=x, y_train=labels, y_test=np.zeros(3))
    with pytest.raises(UserError, match=message):
        load_dataset(path)


@pytest.mark.parametrize("arrays, message", [
    ({"x_train": np.zeros((3, 4))}, "has no x_test"),
    ({"x_train": np.zeros((3, 4)), "x_test": np.zeros((3, 4)), "images": np.zeros(3)},
     "arrays edgegen does not know: images"),
    ({"x_train": np.zeros((3, 4)), "x_test": np.zeros((3, 4)), "y_train": np.zeros(3)},
     "has y_train but no y_test"),
    ({"x_train": np.zeros((3, 4)), "x_test": np.zeros((3, 5))}, "inputs of different shapes"),
    ({"x_train": np.zeros((3, 4)), "x_test": np.zeros((0, 4))}, r"x_test\] is empty"),
    ({"x_train": np.zeros((3, 4)), "x_test": np.array([[0, np.nan, 0, np.inf]])},
     "holds 2 NaN or infinite values"),
    ({"x_train": np.zeros((3, 2, 2, 2, 2)), "x_test": np.zeros((3, 2, 2, 2, 2))},
     r"has shape \(3, 2, 2, 2, 2\): inputs are"),
    ({"x_train": np.zeros(3), "x_test": np.zeros(3)}, r"has shape \(3,\): inputs are"),
    ({"x_train": np.zeros((3, 4), np.complex64), "x_test": np.zeros((3, 4))}, "inputs must be numbers"),
    ({"x_train": np.zeros((3, 4), np.uint8), "x_test": np.zeros((3, 4), np.float32)},
     "some inputs are uint8 pixels"),
])
def test_bad_npz(tmp_path, arrays, message):
    with pytest.raises(UserError, match=message):
        load_dataset(save_npz(tmp_path / "bad.npz", **arrays))


def test_pickled_objects_are_refused_without_running_them(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="not a readable NumPy data set .*not plain numbers"):
        load_dataset(path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "not_zip"])
def test_damaged_files(tmp_path, damage):
    path = save_npz(tmp_path / "d.npz", x_train=np.zeros((30, 40)), x_test=np.zeros((3, 40)))
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"PK\x03\x04" + bytes(200))
    else:
        path.write_bytes(b"hello, not numpy")
    with pytest.raises(UserError, match="d.npz is not a readable NumPy data set"):
        load_dataset(path)


def test_npy_header_larger_than_its_data(tmp_path):
    path = tmp_path / "lie.npy"
    np.save(path, np.zeros((4, 4), np.float32))
    data = path.read_bytes()
    path.write_bytes(data.replace(b"(4, 4)", b"(9, 4)"))
    with pytest.raises(UserError, match=r"declares shape \(9, 4\)"):
        load_dataset(path)


def test_zip_entry_that_is_not_an_array(tmp_path):
    path = tmp_path / "z.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.txt", "1 2 3")
    with pytest.raises(UserError, match="is not a .npy array"):
        load_dataset(path)


def test_unknown_file_kind_and_missing_path(tmp_path):
    (tmp_path / "data.csv").write_text("1,2\n")
    with pytest.raises(UserError, match="neither a folder of IDX files nor an .npz or .npy"):
        load_dataset(tmp_path / "data.csv")
    with pytest.raises(UserError, match="does not exist: pass --data PATH"):
        load_dataset(tmp_path / "absent.npz")


def test_synthetic_data_is_deterministic_and_unlabelled():
    a, b = synthetic_dataset((3, 8, 6), seed=4), synthetic_dataset((3, 8, 6), seed=4)
    np.testing.assert_array_equal(a.train_inputs, b.train_inputs)
    assert a.sample_shape == (3, 8, 6) and a.layout is Layout.NCHW and a.synthetic
    assert not a.has_labels and a.input_range is None
    assert synthetic_dataset((640,)).layout is Layout.FEATURES
    assert "synthetic" in a.describe() and "no labels" in a.describe()
    assert fit_layout(a, conv_net(3)) is a
    assert torch.is_tensor(a.tensor(a.test_inputs[:1]))
