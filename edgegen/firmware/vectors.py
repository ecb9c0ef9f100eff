"""Input vectors of a firmware run, and the golden outputs they must give.

A vector is one model input, flattened: a row of int8 values, as the
harness reads them from input.bin and the self-test embeds them.
"""

from __future__ import annotations

import numpy as np

from edgegen.ir import QGraph
from edgegen.reference.golden import run_golden


def int8_rows(vectors, size: int) -> np.ndarray:
    """int8 vectors as a contiguous (n, size) array; ValueError if they are
    not int8 or not whole inputs of ``size`` values."""
    array = np.asarray(vectors)
    if array.dtype != np.int8:
        raise ValueError(f"input vectors must be int8, got {array.dtype}")
    if array.ndim == 0 or len(array) == 0 or array.size != len(array) * size:
        raise ValueError(f"input vectors of shape {array.shape} are not a batch of inputs of {size} values")
    return np.ascontiguousarray(array.reshape(len(array), size))


def as_vectors(qgraph: QGraph, vectors) -> np.ndarray:
    """``vectors`` as (n, input size) int8 rows of ``qgraph``'s input."""
    return int8_rows(vectors, qgraph.tensor(qgraph.input).size)


def random_vectors(qgraph: QGraph, count: int, seed: int = 0) -> np.ndarray:
    """``count`` uniformly random int8 inputs, (count, input size)."""
    size = qgraph.tensor(qgraph.input).size
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(count, size), dtype=np.int64).astype(np.int8)


def golden_outputs(qgraph: QGraph, vectors) -> np.ndarray:
    """The golden model's outputs for ``vectors``, (n, output size) int8."""
    vectors = as_vectors(qgraph, vectors)
    shape = (len(vectors),) + tuple(qgraph.tensor(qgraph.input).shape)
    return np.asarray(run_golden(qgraph, vectors.reshape(shape)), np.int8).reshape(len(vectors), -1)


def verification_vectors(qgraph: QGraph, test_inputs: np.ndarray, random_count: int,
                         seed: int = 0) -> np.ndarray:
    """The vectors of an on-board verification, as on the host: the int8
    ``test_inputs`` (already quantized), then ``random_count`` uniformly
    random int8 inputs; (n, input size)."""
    return np.concatenate([as_vectors(qgraph, test_inputs),
                           random_vectors(qgraph, random_count, seed)])
