import gzip
import struct

import numpy as np
import pytest
import torch
from toolchain_support import require_dataset

from edgegen.data import datasets
from edgegen.data.datasets import load_dataset
from edgegen.errors import UserError

CANONICAL = {
    "train_inputs": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_inputs": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()


def make_arrays(n_train=6, n_test=4):
    rng = np.random.default_rng(1)
    return {
        "train_inputs": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_inputs": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_dataset(directory, arrays, names=CANONICAL, gz=False):
    directory.mkdir(parents=True, exist_ok=True)
    for role, name in names.items():
        data = idx_bytes(arrays[role])
        if gz:
            (directory / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)


@pytest.mark.parametrize("gz", [False, True])
def test_load_canonical(tmp_path, gz):
    arrays = make_arrays()
    write_dataset(tmp_path / "My Data", arrays, gz=gz)
    ds = load_dataset(tmp_path / "My Data")
    assert ds.name == "my-data"
    assert ds.path == tmp_path / "My Data"
    assert ds.sample_shape == (1, 28, 28) and ds.pixels and ds.has_labels
    for role, array in arrays.items():
        np.testing.assert_array_equal(getattr(ds, role), array)
        assert not getattr(ds, role).flags.writeable
    assert "train=6" in repr(ds)


def test_kaggle_dot_variant_and_raw_folder_name(tmp_path):
    names = {role: name.replace("-idx", ".idx") for role, name in CANONICAL.items()}
    assert names["train_inputs"] == "train-images.idx3-ubyte"
    directory = tmp_path / "FashionMNIST" / "raw"
    write_dataset(directory, make_arrays(), names=names)
    ds = load_dataset(directory)
    assert ds.name == "fashionmnist"
    assert len(ds.test_labels) == 4


def test_mixed_gzip_and_raw(tmp_path):
    arrays = make_arrays()
    write_dataset(tmp_path, {k: arrays[k] for k in ("train_inputs", "train_labels")},
                  names={k: CANONICAL[k] for k in ("train_inputs", "train_labels")}, gz=True)
    write_dataset(tmp_path, {k: arrays[k] for k in ("test_inputs", "test_labels")},
                  names={k: CANONICAL[k] for k in ("test_inputs", "test_labels")})
    np.testing.assert_array_equal(load_dataset(tmp_path).train_labels, arrays["train_labels"])


def test_missing_file_in_user_dir(tmp_path):
    write_dataset(tmp_path, make_arrays())
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match=r"is missing t10k-labels-idx1-ubyte\[\.gz\]: an IDX data") as info:
        load_dataset(tmp_path)
    assert "train-images" not in str(info.value).split(":")[0]


def test_missing_user_dir(tmp_path):
    with pytest.raises(UserError, match="data .*nope does not exist: pass --data PATH"):
        load_dataset(tmp_path / "nope")


def test_missing_default_data(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "DEFAULT_DATA_DIR", tmp_path / "absent")
    with pytest.raises(UserError) as info:
        load_dataset()
    assert str(info.value) == (
        f"Fashion-MNIST not found in {tmp_path / 'absent'}: install it with "
        "`apt-get install dataset-fashion-mnist`, or pass --data PATH (an IDX folder, .npz or .npy)"
    )


def test_count_mismatch(tmp_path):
    arrays = make_arrays()
    arrays["train_labels"] = arrays["train_labels"][:5]
    write_dataset(tmp_path, arrays)
    with pytest.raises(UserError, match="has 6 images but .* has 5 labels"):
        load_dataset(tmp_path)


def test_idx_images_of_another_size_load(tmp_path):
    arrays = make_arrays()
    arrays["train_inputs"] = np.zeros((6, 32, 20), np.uint8)
    arrays["test_inputs"] = np.zeros((4, 32, 20), np.uint8)
    write_dataset(tmp_path, arrays)
    assert load_dataset(tmp_path).sample_shape == (1, 32, 20)


def test_idx_splits_of_different_shapes(tmp_path):
    arrays = make_arrays()
    arrays["test_inputs"] = np.zeros((4, 32, 32), np.uint8)
    write_dataset(tmp_path, arrays)
    with pytest.raises(UserError, match=r"inputs of different shapes .*\(6, 28, 28\).*\(4, 32, 32\)"):
        load_dataset(tmp_path)


def test_labels_need_not_be_ten_classes(tmp_path):
    arrays = make_arrays()
    arrays["train_labels"][2] = 11
    write_dataset(tmp_path, arrays)
    assert load_dataset(tmp_path).train_labels[2] == 11


def test_pixels_are_pixel_over_255():
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    ds = datasets.Dataset("p", None, images, images)
    x = ds.tensor(images)
    assert x.dtype == torch.float32 and x.shape == (1, 1, 16, 16)
    expected = torch.tensor([p / 255 for p in range(256)], dtype=torch.float64).to(torch.float32)
    assert torch.equal(x.flatten(), expected)
    assert ds.input_range == (0.0, 1.0)


def test_default_fashion_mnist():
    require_dataset()
    ds = load_dataset()
    assert ds.name == "fashion-mnist"
    assert ds.train_inputs.shape == (60000, 28, 28) and ds.test_inputs.shape == (10000, 28, 28)
    assert np.bincount(ds.test_labels).tolist() == [1000] * 10
