"""Data sets: MNIST-format IDX folders, NumPy files, synthetic inputs."""

from edgegen.data.datasets import (
    DEFAULT_DATA_DIR,
    Dataset,
    Layout,
    fit_layout,
    load_dataset,
    synthetic_dataset,
)
from edgegen.data.idx import read_idx

__all__ = ["DEFAULT_DATA_DIR", "Dataset", "Layout", "fit_layout", "load_dataset", "read_idx",
           "synthetic_dataset"]
