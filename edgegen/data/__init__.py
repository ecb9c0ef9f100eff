"""Datasets in the MNIST IDX format (Fashion-MNIST by default)."""

from edgegen.data.datasets import (
    DEFAULT_DATA_DIR,
    Dataset,
    images_to_tensor,
    load_dataset,
)
from edgegen.data.idx import read_idx

__all__ = ["DEFAULT_DATA_DIR", "Dataset", "images_to_tensor", "load_dataset", "read_idx"]
