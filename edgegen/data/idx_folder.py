"""A folder of MNIST-format IDX files: the four files of MNIST and
Fashion-MNIST, under the names people give them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgegen.data.datasets import (
    DATA_HELP,
    Dataset,
    Layout,
    check_inputs,
    check_labels,
    check_same_samples,
    dataset_name,
    layout_of,
)
from edgegen.data.idx import read_idx
from edgegen.errors import UserError

# Role -> (stem, IDX kind) of the four files of an MNIST-format dataset.
_FILES: dict[str, tuple[str, str]] = {
    "train_inputs": ("train-images", "idx3"),
    "train_labels": ("train-labels", "idx1"),
    "test_inputs": ("t10k-images", "idx3"),
    "test_labels": ("t10k-labels", "idx1"),
}


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
                            f"{exc.strerror or exc}: {DATA_HELP}") from None
        if found:
            return candidate
    return None


def load_idx_folder(directory: Path, *, layout: Layout | None = None,
                    default: bool = False) -> Dataset:
    """The four IDX files of ``directory``; ``default``: it is the Debian
    Fashion-MNIST package's folder, and a missing file gets the install command."""
    found = {role: _find_file(directory, *spec) for role, spec in _FILES.items()}
    missing = [_FILES[role] for role, path in found.items() if path is None]
    if missing:
        if default:
            raise UserError(
                f"Fashion-MNIST not found in {directory}: install it with "
                "`apt-get install dataset-fashion-mnist`, or pass --data PATH "
                "(an IDX folder, .npz or .npy)"
            )
        missing_names = ", ".join(f"{stem}-{kind}-ubyte[.gz]" for stem, kind in missing)
        raise UserError(
            f"{directory} is missing {missing_names}: an IDX data folder holds the four "
            "MNIST-format files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally .gz); or "
            f"{DATA_HELP}"
        )

    arrays: dict[str, np.ndarray] = {}
    for role, path in found.items():
        assert path is not None
        array = read_idx(path)
        if role.endswith("inputs"):
            arrays[role] = check_inputs(array, str(path))
        else:
            labels = check_labels(array, str(path))
            labels.setflags(write=False)
            arrays[role] = labels
    check_same_samples({str(found[r]): arrays[r] for r in ("train_inputs", "test_inputs")},
                       directory)

    for split in ("train", "test"):
        n_inputs = len(arrays[f"{split}_inputs"])
        n_labels = len(arrays[f"{split}_labels"])
        if n_inputs != n_labels:
            raise UserError(
                f"{split} split of {directory} does not match: "
                f"{found[f'{split}_inputs']} has {n_inputs} images but "
                f"{found[f'{split}_labels']} has {n_labels} labels"
            )
    return Dataset(name=dataset_name(directory), path=directory,
                   layout=layout_of(arrays["test_inputs"].ndim, layout), **arrays)
