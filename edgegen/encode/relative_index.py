"""Sparse storage with relative column indices (Deep Compression §2, EIE).

A layer is a 2-D matrix: rows are output channels, columns the flattened
inputs (a conv weight OHWI is viewed as ``(O, H*W*I)``). ``mask`` says which
weights survived pruning; ``indices`` holds each survivor's codebook index.

Each row becomes a list of entries ``(gap, index)``, in column order:

* a cursor starts at column 0 at the beginning of every row;
* an entry sits at column ``cursor + gap``; the cursor then moves one past it.
  So ``gap`` counts the pruned columns skipped since the previous entry (or
  since the row start), and fits in ``gap_bits`` unsigned bits;
* a gap longer than ``max_gap = 2^gap_bits - 1`` is bridged by **filler**
  entries ``(max_gap, filler_index)``. A filler sits on a pruned column and
  advances the cursor by ``2^gap_bits``; a real gap ``g`` therefore costs
  ``g >> gap_bits`` fillers and leaves ``g & max_gap`` for the real entry;
* pruned columns after a row's last survivor cost nothing: the row ends
  where its row pointer says.

The filler scheme: ``filler_index`` (default 0) is a codebook slot reserved
for fillers. The codebook must hold the value 0 in that slot, so a kernel can
treat every entry alike (``acc += codebook[index] * x[column]``: a filler adds
exactly 0), and no surviving weight may use it, so a decoder tells fillers
from weights by their index alone and the mask round-trips exactly. Decoding
therefore yields the dense index matrix with ``filler_index`` at every pruned
position. ``filler_index=None`` reserves no slot; the layer must then need no
filler (pick ``gap_bits`` with ``choose_gap_bits(..., fillers_allowed=False)``).

Row pointers: ``row_ends[r]`` is the number of entries (fillers included) in
rows ``0..r``; the leading 0 of the usual CSR array is implied, so ``rows``
values are stored, each in ``row_pointer_width = bit_length(entries)`` bits
(at least 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgegen.ir import frozen_array

DEFAULT_FILLER_INDEX = 0
GAP_BITS_CANDIDATES = range(1, 9)  # what choose_gap_bits tries by default
MAX_GAP_BITS = 16


@dataclass(frozen=True, eq=False)
class RelativeIndexStreams:
    """A layer as parallel entry streams plus row pointers (not yet packed)."""

    shape: tuple[int, int]  # (rows, columns) of the dense matrix
    gap_bits: int
    filler_index: int | None  # reserved codebook slot of fillers, or None
    gaps: np.ndarray  # int64, one per entry, each <= 2^gap_bits - 1
    indices: np.ndarray  # int64 codebook index per entry (fillers: filler_index)
    row_ends: np.ndarray  # int64, cumulative entries at the end of each row

    @property
    def entries(self) -> int:
        return int(self.gaps.size)

    @property
    def fillers(self) -> int:
        if self.filler_index is None:
            return 0
        return int(np.count_nonzero(self.indices == self.filler_index))

    @property
    def nonzeros(self) -> int:
        return self.entries - self.fillers


@dataclass(frozen=True)
class RelativeIndexSize:
    """Every bit a fixed-width (P+Q) sparse layer needs, apart from its codebook."""

    rows: int
    nonzeros: int
    fillers: int
    index_bits: int
    gap_bits: int

    @property
    def entries(self) -> int:
        return self.nonzeros + self.fillers

    @property
    def row_pointer_width(self) -> int:
        return row_pointer_width(self.entries)

    @property
    def index_stream_bits(self) -> int:
        """Codebook indices, fillers' included."""
        return self.entries * self.index_bits

    @property
    def gap_stream_bits(self) -> int:
        """Relative column indices, fillers' included."""
        return self.entries * self.gap_bits

    @property
    def row_pointer_bits(self) -> int:
        return self.rows * self.row_pointer_width

    @property
    def total_bits(self) -> int:
        return self.index_stream_bits + self.gap_stream_bits + self.row_pointer_bits


def row_pointer_width(entries: int) -> int:
    """Bits of one stored row pointer: enough for the largest, ``entries``."""
    return max(1, int(entries).bit_length())


def _check_gap_bits(gap_bits: int) -> None:
    if not 1 <= gap_bits <= MAX_GAP_BITS:
        raise ValueError(f"gap_bits must be 1..{MAX_GAP_BITS}, got {gap_bits}")


def _check_mask(mask) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (rows, columns), got shape {mask.shape}")
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be boolean, got dtype {mask.dtype}")
    return mask


def survivor_gaps(mask) -> tuple[np.ndarray, np.ndarray]:
    """Row and gap of every surviving weight, in row-major order; the gap is
    the number of pruned columns since the previous survivor of its row."""
    rows, columns = np.nonzero(_check_mask(mask))
    rows = rows.astype(np.int64)
    columns = columns.astype(np.int64)
    cursor = np.zeros_like(columns)  # column after the previous survivor
    if columns.size:
        same_row = rows[1:] == rows[:-1]
        cursor[1:] = np.where(same_row, columns[:-1] + 1, 0)
    return rows, columns - cursor


def count_fillers(mask, gap_bits: int) -> int:
    """Filler entries a layer needs with ``gap_bits``-bit gaps."""
    _check_gap_bits(gap_bits)
    _, gaps = survivor_gaps(mask)
    return int((gaps >> gap_bits).sum())


def relative_index_size(mask, index_bits: int, gap_bits: int) -> RelativeIndexSize:
    """The fixed-width size of a layer, without encoding it."""
    mask = _check_mask(mask)
    return RelativeIndexSize(
        rows=mask.shape[0],
        nonzeros=int(np.count_nonzero(mask)),
        fillers=count_fillers(mask, gap_bits),
        index_bits=index_bits,
        gap_bits=gap_bits,
    )


def choose_gap_bits(
    mask,
    index_bits: int,
    *,
    fillers_allowed: bool = True,
    candidates=GAP_BITS_CANDIDATES,
) -> int:
    """The ``gap_bits`` that minimises the layer's fixed-width total bits
    (ties: the narrower gap). Without fillers, the narrowest gap field that
    holds the longest gap (which may exceed the candidates)."""
    mask = _check_mask(mask)
    _, gaps = survivor_gaps(mask)
    if not fillers_allowed:
        longest = int(gaps.max()) if gaps.size else 0
        return max(1, longest.bit_length())
    nonzeros = int(gaps.size)

    def total_bits(gap_bits: int) -> int:
        _check_gap_bits(gap_bits)
        fillers = int((gaps >> gap_bits).sum())
        size = RelativeIndexSize(mask.shape[0], nonzeros, fillers, index_bits, gap_bits)
        return size.total_bits

    return min(candidates, key=lambda gap_bits: (total_bits(gap_bits), gap_bits))


def _check_indices(mask: np.ndarray, indices, filler_index: int | None) -> np.ndarray:
    indices = np.asarray(indices)
    if indices.shape != mask.shape:
        raise ValueError(f"indices shape {indices.shape} differs from mask shape {mask.shape}")
    if not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices must be integers, got dtype {indices.dtype}")
    kept = indices[mask].astype(np.int64)
    if kept.size and kept.min() < 0:
        raise ValueError("codebook indices must be >= 0")
    if filler_index is not None and np.any(kept == filler_index):
        raise ValueError(
            f"a surviving weight uses codebook index {filler_index}, which is "
            "reserved for filler entries (its slot must hold 0); give survivors "
            "other indices or choose another filler_index"
        )
    return kept


def encode_relative(
    mask, indices, gap_bits: int, *, filler_index: int | None = DEFAULT_FILLER_INDEX
) -> RelativeIndexStreams:
    """The entry streams and row pointers of a layer (see the module docstring)."""
    _check_gap_bits(gap_bits)
    mask = _check_mask(mask)
    kept = _check_indices(mask, indices, filler_index)
    rows, gaps = survivor_gaps(mask)
    fillers = gaps >> gap_bits
    if filler_index is None and fillers.any():
        raise ValueError(
            f"a gap of {int(gaps.max())} columns needs fillers, which "
            f"filler_index=None forbids; use gap_bits >= {int(gaps.max()).bit_length()}"
        )
    # Survivor k becomes fillers[k] fillers followed by itself.
    entries_through = np.concatenate(([0], np.cumsum(fillers + 1)))
    survivor_slot = entries_through[1:] - 1
    entry_gaps = np.full(int(entries_through[-1]), (1 << gap_bits) - 1, dtype=np.int64)
    entry_indices = np.full(entry_gaps.size, filler_index or 0, dtype=np.int64)
    entry_gaps[survivor_slot] = gaps & ((1 << gap_bits) - 1)
    entry_indices[survivor_slot] = kept
    # Survivors are in row order: row r ends after the last survivor of rows <= r.
    survivors_through = np.searchsorted(rows, np.arange(mask.shape[0]), side="right")
    row_ends = entries_through[survivors_through]
    return RelativeIndexStreams(
        shape=(int(mask.shape[0]), int(mask.shape[1])),
        gap_bits=gap_bits,
        filler_index=filler_index,
        gaps=frozen_array(entry_gaps, np.int64),
        indices=frozen_array(entry_indices, np.int64),
        row_ends=frozen_array(row_ends, np.int64),
    )


def _entry_rows(row_ends: np.ndarray, rows: int, entries: int) -> np.ndarray:
    """The row of every entry, checking that the row pointers are consistent."""
    if row_ends.shape != (rows,):
        raise ValueError(f"expected {rows} row pointers, got shape {row_ends.shape}")
    per_row = np.diff(row_ends, prepend=0)
    if per_row.size and (per_row.min() < 0 or row_ends[-1] != entries):
        raise ValueError(f"row pointers do not describe {entries} entries")
    if not per_row.size and entries:
        raise ValueError(f"{entries} entries but no rows")
    return np.repeat(np.arange(rows, dtype=np.int64), per_row)


def decode_relative(streams: RelativeIndexStreams) -> tuple[np.ndarray, np.ndarray]:
    """The dense ``(mask, indices)`` of ``streams``; pruned positions hold
    ``filler_index`` (0 when it is None). Raises ValueError on a stream that
    points outside its row."""
    rows, columns = streams.shape
    gaps = np.asarray(streams.gaps, dtype=np.int64)
    if gaps.size and gaps.min() < 0:
        raise ValueError("gaps must be >= 0")
    entry_rows = _entry_rows(np.asarray(streams.row_ends, dtype=np.int64), rows, gaps.size)
    # Column = cumulative advance (gap + 1) since the row start, minus one.
    advance = np.concatenate(([0], np.cumsum(gaps + 1)))
    row_begins = np.concatenate(([0], np.asarray(streams.row_ends, dtype=np.int64)[:-1]))
    entry_columns = advance[1:] - advance[row_begins][entry_rows] - 1
    if entry_columns.size and entry_columns.max() >= columns:
        raise ValueError(f"an entry lies past the last column ({columns - 1})")
    filler = streams.filler_index
    survivors = np.ones(gaps.size, dtype=bool) if filler is None else streams.indices != filler
    mask = np.zeros((rows, columns), dtype=bool)
    dense = np.full((rows, columns), 0 if filler is None else filler, dtype=np.int64)
    mask[entry_rows[survivors], entry_columns[survivors]] = True
    dense[entry_rows[survivors], entry_columns[survivors]] = streams.indices[survivors]
    return mask, dense
