"""Data sets in NumPy files: an ``.npz`` with the names of Keras' data sets,
or a plain ``.npy`` of inputs.

Files are read without pickle and checked before anything large is
allocated (``edgegen.npz_file``): data is never code.
"""

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
from edgegen.errors import UserError
from edgegen.npz_file import read_plain_arrays

# Data sets are bigger than models: a VWW split of 96x96x3 float32 images is
# already 1 GiB at 10,000 samples.
MAX_DATA_BYTES = 4 * 1024**3
INPUT_KEYS = ("x_train", "x_test", "x_calib")
LABEL_KEYS = ("y_train", "y_test")


def _read(path: Path) -> dict[str, np.ndarray]:
    return read_plain_arrays(path, what="NumPy data set", limit=MAX_DATA_BYTES,
                             remedy=f"save it with numpy.savez / numpy.save; {DATA_HELP}")


def load_numpy_dataset(path: Path, layout: Layout | None) -> Dataset:
    """An ``.npz`` (``x_train``, ``x_test``; optionally ``y_train``,
    ``y_test``, ``x_calib``) or an ``.npy`` of inputs, which serves both
    calibration and verification and carries no labels."""
    arrays = _read(path)
    if path.suffix.lower() == ".npy":
        inputs = check_inputs(arrays[""], str(path))
        return Dataset(dataset_name(path), path, inputs, inputs,
                       layout=layout_of(inputs.ndim, layout))

    unknown = sorted(set(arrays) - set(INPUT_KEYS) - set(LABEL_KEYS))
    missing = [key for key in ("x_train", "x_test") if key not in arrays]
    if missing:
        raise UserError(f"{path} has no {' or '.join(missing)} (it holds "
                        f"{', '.join(sorted(arrays)) or 'nothing'}): an .npz data set names its "
                        "arrays x_train, x_test and optionally y_train, y_test, x_calib")
    if unknown:
        raise UserError(f"{path} holds arrays edgegen does not know: {', '.join(unknown)}; "
                        "an .npz data set holds only x_train, x_test, y_train, y_test, x_calib")
    labelled = [key for key in LABEL_KEYS if key in arrays]
    if len(labelled) == 1:
        absent = "y_test" if labelled == ["y_train"] else "y_train"
        raise UserError(f"{path} has {labelled[0]} but no {absent}: give both label arrays "
                        "or neither")

    inputs = {key: check_inputs(arrays[key], f"{path}[{key}]") for key in INPUT_KEYS
              if key in arrays}
    check_same_samples({f"{path.name}[{k}]": v for k, v in inputs.items()}, path)
    labels = {}
    for key in labelled:
        labels[key] = check_labels(arrays[key], f"{path}[{key}]")
        labels[key].setflags(write=False)
        split = key[2:]
        if len(labels[key]) != len(inputs[f"x_{split}"]):
            raise UserError(f"{path}: x_{split} has {len(inputs[f'x_{split}'])} samples but "
                            f"{key} has {len(labels[key])} labels")
    return Dataset(dataset_name(path), path, inputs["x_train"], inputs["x_test"],
                   labels.get("y_train"), labels.get("y_test"), inputs.get("x_calib"),
                   layout=layout_of(inputs["x_test"].ndim, layout))
