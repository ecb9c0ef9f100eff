"""Find and load an MNIST-format dataset (Fashion-MNIST by default).

The images stay uint8 until the last moment: edgegen quantizes the network
input exactly as ``q = pixel - 128`` with scale 1/255, so a model must be
trained and evaluated on ``pixel / 255`` with no other normalisation
(see ``images_to_tensor``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgegen.data.idx import read_idx
from edgegen.errors import UserError

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DATASET_NAME = "fashion-mnist"
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

# Role -> (stem, IDX kind) of the four files of an MNIST-format dataset.
_FILES: dict[str, tuple[str, str]] = {
    "train_images": ("train-images", "idx3"),
    "train_labels": ("train-labels", "idx1"),
    "test_images": ("t10k-images", "idx3"),
    "test_labels": ("t10k-labels", "idx1"),
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """An MNIST-format dataset held in memory as read-only uint8 arrays.

    ``*_images`` are ``[N, 28, 28]`` uint8 pixels, ``*_labels`` ``[N]`` uint8
    class indices in ``0..9``.
    """

    name: str
    directory: Path
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, directory={str(self.directory)!r}, "
            f"train={len(self.train_labels)}, test={len(self.test_labels)})"
        )


def _candidate_names(stem: str, kind: str) -> list[str]:
    """File names people have for one IDX file, the canonical one first.

    ``train-images-idx3-ubyte`` also appears as ``train-images.idx3-ubyte``
    (Kaggle), with ``_`` separators, and each with or without ``.gz``.
    """
    names = []
    for stem_sep in ("-", ".", "_"):
        for kind_sep in ("-", ".", "_"):
            base = f"{stem}{stem_sep}{kind}{kind_sep}ubyte"
            names += [base, base + ".gz"]
    return names


def _find_file(directory: Path, stem: str, kind: str) -> Path | None:
    for name in _candidate_names(stem, kind):
        candidate = directory / name
        try:
            found = candidate.is_file()
        except OSError as exc:  # is_file() only hides "does not exist"; not EACCES or ENAMETOOLONG
            raise UserError(f"cannot look for {name} in data directory {directory}: "
                            f"{exc.strerror or exc}: pass --data-dir DIR with MNIST-format IDX files") from None
        if found:
            return candidate
    return None


def _dataset_name(directory: Path) -> str:
    """A file-name-safe dataset name: the folder's, or its parent's for ``raw``."""
    if directory.resolve() == DEFAULT_DATA_DIR.resolve():
        return DEFAULT_DATASET_NAME
    folder = directory.resolve()
    if folder.name.lower() in ("raw", "data", "idx", "") and folder.parent.name:
        folder = folder.parent
    name = re.sub(r"[^a-z0-9]+", "-", folder.name.lower()).strip("-")
    return name or "dataset"


def _check_images(path: Path, images: np.ndarray) -> None:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise UserError(
            f"{path} holds {images.dtype} data of shape {images.shape}; expected "
            f"uint8 images of shape [N, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]}]"
        )


def _check_labels(path: Path, labels: np.ndarray) -> None:
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise UserError(
            f"{path} holds {labels.dtype} data of shape {labels.shape}; "
            "expected uint8 labels of shape [N]"
        )
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise UserError(
            f"{path} has label {int(labels.max())}; expected class indices "
            f"0..{NUM_CLASSES - 1}"
        )


def load_dataset(data_dir: Path | str | None = None) -> Dataset:
    """Load the four IDX files of an MNIST-format dataset from ``data_dir``.

    ``None`` means Fashion-MNIST from the Debian package
    ``dataset-fashion-mnist`` (``DEFAULT_DATA_DIR``).
    """
    directory = DEFAULT_DATA_DIR if data_dir is None else Path(data_dir)
    found = {role: _find_file(directory, *spec) for role, spec in _FILES.items()}
    missing = [_FILES[role] for role, path in found.items() if path is None]
    if missing:
        missing_names = ", ".join(f"{stem}-{kind}-ubyte[.gz]" for stem, kind in missing)
        if data_dir is None:
            raise UserError(
                f"Fashion-MNIST not found in {DEFAULT_DATA_DIR}: install it with "
                "`apt-get install dataset-fashion-mnist`, or pass --data-dir DIR "
                "with MNIST-format IDX files"
            )
        if not directory.is_dir():
            raise UserError(
                f"data directory {directory} does not exist: pass --data-dir DIR "
                "with MNIST-format IDX files"
            )
        raise UserError(
            f"{directory} is missing {missing_names}: pass --data-dir DIR with the "
            "four MNIST-format IDX files (train-images-idx3-ubyte, "
            "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, "
            "each optionally .gz)"
        )

    arrays: dict[str, np.ndarray] = {}
    for role, path in found.items():
        assert path is not None
        array = read_idx(path)
        if role.endswith("images"):
            _check_images(path, array)
        else:
            _check_labels(path, array)
        array.setflags(write=False)
        arrays[role] = array

    for split in ("train", "test"):
        n_images = len(arrays[f"{split}_images"])
        n_labels = len(arrays[f"{split}_labels"])
        if n_images != n_labels:
            raise UserError(
                f"{split} split of {directory} does not match: "
                f"{found[f'{split}_images']} has {n_images} images but "
                f"{found[f'{split}_labels']} has {n_labels} labels"
            )
        if n_images == 0:
            raise UserError(f"{split} split of {directory} is empty ({found[f'{split}_images']})")

    return Dataset(name=_dataset_name(directory), directory=directory, **arrays)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, 28, 28]`` (or ``[28, 28]``) pixels → float32 ``[N, 1, 28, 28]`` = pixel / 255.

    No mean/std normalisation: this is exactly the real value of the int8
    input ``q = pixel - 128`` at scale 1/255 and zero point -128.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8 pixels, got {images.dtype}")
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"images must have shape [N, H, W], got {images.shape}")
    scaled = images.astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(scaled[:, None, :, :])


def image_to_int8(images: np.ndarray) -> np.ndarray:
    """uint8 images -> int8 model input (N, H, W, 1): exactly pixel - 128."""
    return (images.astype(np.int16) - 128).astype(np.int8)[..., None]
