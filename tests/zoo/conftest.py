import numpy as np
import pytest

from edgegen.data.datasets import Dataset


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Never touch the user's real checkpoint cache from a test."""
    monkeypatch.setenv("EDGEGEN_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def tiny_dataset(tmp_path) -> Dataset:
    """A learnable toy problem: the class is the row of a bright 2-pixel-high bar."""
    rng = np.random.default_rng(0)

    def make(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            row = 2 + 2 * int(label)
            images[i, row : row + 2, 4:24] = 250
        return images, labels

    train_images, train_labels = make(400)
    test_images, test_labels = make(100)
    return Dataset("tiny", tmp_path, train_images, test_images, train_labels.astype(np.int64),
                   test_labels.astype(np.int64))
