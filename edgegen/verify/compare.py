"""Byte equality between the golden model and an implementation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mismatch:
    vector: int
    byte: int
    expected: int
    got: int


@dataclass(frozen=True)
class Comparison:
    vectors: int
    mismatched_vectors: int
    first: Mismatch | None

    @property
    def bit_exact(self) -> bool:
        return self.mismatched_vectors == 0

    def line(self, what: str) -> str:
        if self.bit_exact:
            return f"{what}: bit-exact on {self.vectors} vectors (every output byte equal)"
        f = self.first
        return (
            f"{what}: MISMATCH on {self.mismatched_vectors} of {self.vectors} vectors; "
            f"first at vector {f.vector}, byte {f.byte}: golden {f.expected}, C {f.got}"
        )


def compare_outputs(golden: np.ndarray, actual: np.ndarray) -> Comparison:
    golden = np.asarray(golden, np.int8).reshape(len(golden), -1)
    actual = np.asarray(actual, np.int8).reshape(len(actual), -1)
    if golden.shape != actual.shape:
        raise ValueError(f"output shapes differ: golden {golden.shape}, C {actual.shape}")
    differs = golden != actual
    bad_vectors = np.flatnonzero(differs.any(axis=1))
    first = None
    if bad_vectors.size:
        v = int(bad_vectors[0])
        b = int(np.flatnonzero(differs[v])[0])
        first = Mismatch(v, b, int(golden[v, b]), int(actual[v, b]))
    return Comparison(len(golden), int(bad_vectors.size), first)


def top1(outputs: np.ndarray, labels: np.ndarray | None) -> float | None:
    """Top-1 accuracy of outputs ``(N, classes)`` against class ``labels``;
    ``None`` without labels (nothing to measure)."""
    if labels is None:
        return None
    return float((np.asarray(outputs).reshape(len(outputs), -1).argmax(axis=1) == labels).mean())
