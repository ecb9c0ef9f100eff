"""One pruned, weight-shared layer in the storage of Deep Compression.

``encode_layer`` turns a layer's ``mask`` and codebook ``indices`` into the
sparse entry streams of ``relative_index`` (gaps and codebook indices, fillers
included) and stores each stream twice: packed in fixed-width fields
("P+Q": pruning + quantization) and Huffman-coded with its own canonical
table ("P+Q+H"). The row pointers are stored once, in fixed-width fields.
``LayerSizes`` counts every bit a decoder needs apart from the codebook
itself (its centroids belong to the compress stage): the columns of the
paper's per-layer table plus row pointers and fillers.

``decode_layer`` reads only the stored bytes and the small integers beside
them (shape, widths, counts), so a round trip proves the storage complete.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgegen.encode.bitstream import pack_fixed, unpack_fixed
from edgegen.encode.huffman import (
    DEFAULT_MAX_CODE_LENGTH,
    HuffmanStream,
    huffman_decode,
    huffman_encode,
)
from edgegen.encode.relative_index import (
    DEFAULT_FILLER_INDEX,
    RelativeIndexStreams,
    choose_gap_bits,
    decode_relative,
    encode_relative,
    row_pointer_width,
)

FORMAT_VERSION = 1  # of the stream layout described in this package's docstrings
MAX_INDEX_BITS = 16


@dataclass(frozen=True)
class BitsPerWeight:
    """The paper's per-layer columns: average bits per surviving weight
    (NaN for a layer with no survivor). Fillers' bits are included."""

    weight_pq: float  # codebook indices, fixed width
    weight_pqh: float  # codebook indices, Huffman-coded, table included
    index_pq: float  # relative column indices, fixed width
    index_pqh: float  # relative column indices, Huffman-coded, table included


@dataclass(frozen=True)
class LayerSizes:
    """Bits of a stored layer, per stream, in both storage variants."""

    rows: int
    columns: int
    nonzeros: int  # surviving weights
    fillers: int  # filler entries bridging long gaps
    index_bits: int  # width of a fixed-width codebook index
    gap_bits: int  # width of a fixed-width relative column index
    row_pointer_width: int
    weight_bits_pq: int  # codebook-index stream, fixed width
    weight_bits_pqh: int  # codebook-index stream, Huffman payload + table
    weight_table_bits: int  # ... of which the Huffman table
    index_bits_pq: int  # gap stream, fixed width
    index_bits_pqh: int  # gap stream, Huffman payload + table
    index_table_bits: int  # ... of which the Huffman table
    stored_bytes_pq: int  # row pointers + both fixed streams, each padded to bytes
    stored_bytes_pqh: int  # row pointers + both coded streams and tables, padded

    @property
    def entries(self) -> int:
        return self.nonzeros + self.fillers

    @property
    def row_pointer_bits(self) -> int:
        return self.rows * self.row_pointer_width

    @property
    def total_bits_pq(self) -> int:
        return self.weight_bits_pq + self.index_bits_pq + self.row_pointer_bits

    @property
    def total_bits_pqh(self) -> int:
        return self.weight_bits_pqh + self.index_bits_pqh + self.row_pointer_bits

    def bits_per_weight(self) -> BitsPerWeight:
        def per_weight(bits: int) -> float:
            return bits / self.nonzeros if self.nonzeros else math.nan

        return BitsPerWeight(
            weight_pq=per_weight(self.weight_bits_pq),
            weight_pqh=per_weight(self.weight_bits_pqh),
            index_pq=per_weight(self.index_bits_pq),
            index_pqh=per_weight(self.index_bits_pqh),
        )


@dataclass(frozen=True)
class EncodedLayer:
    """A stored layer: the bytes and the few integers needed to decode them."""

    shape: tuple[int, int]  # (rows, columns) of the dense matrix
    index_bits: int
    gap_bits: int
    filler_index: int | None  # codebook slot of fillers (holds 0), None: no fillers
    entries: int  # stream length: survivors + fillers
    row_pointer_width: int
    row_pointers: bytes  # rows cumulative entry counts, row_pointer_width bits each
    weight_indices: bytes  # entries codebook indices, index_bits each (P+Q)
    gaps: bytes  # entries relative column indices, gap_bits each (P+Q)
    weight_huffman: HuffmanStream  # the codebook-index stream coded (P+Q+H)
    gap_huffman: HuffmanStream  # the gap stream coded (P+Q+H)
    sizes: LayerSizes
    version: int = FORMAT_VERSION


def _check_widths(index_bits: int, filler_index: int | None) -> None:
    if not 1 <= index_bits <= MAX_INDEX_BITS:
        raise ValueError(f"index_bits must be 1..{MAX_INDEX_BITS}, got {index_bits}")
    if filler_index is not None and not 0 <= filler_index < 1 << index_bits:
        raise ValueError(f"filler_index {filler_index} does not fit {index_bits} bits")


def _sizes(
    streams: RelativeIndexStreams,
    index_bits: int,
    fixed_width: tuple[bytes, ...],
    weight_huffman: HuffmanStream,
    gap_huffman: HuffmanStream,
) -> LayerSizes:
    """``fixed_width``: the packed row pointers, codebook indices and gaps."""
    rows, columns = streams.shape
    row_pointers = fixed_width[0]
    coded_bytes = weight_huffman.size.stored_bytes + gap_huffman.size.stored_bytes
    return LayerSizes(
        rows=rows,
        columns=columns,
        nonzeros=streams.nonzeros,
        fillers=streams.fillers,
        index_bits=index_bits,
        gap_bits=streams.gap_bits,
        row_pointer_width=row_pointer_width(streams.entries),
        weight_bits_pq=streams.entries * index_bits,
        weight_bits_pqh=weight_huffman.size.total_bits,
        weight_table_bits=weight_huffman.size.table_bits,
        index_bits_pq=streams.entries * streams.gap_bits,
        index_bits_pqh=gap_huffman.size.total_bits,
        index_table_bits=gap_huffman.size.table_bits,
        stored_bytes_pq=sum(len(data) for data in fixed_width),
        stored_bytes_pqh=len(row_pointers) + coded_bytes,
    )


def encode_layer(
    mask,
    indices,
    index_bits: int,
    *,
    max_code_length: int = DEFAULT_MAX_CODE_LENGTH,
    gap_bits: int | None = None,
    filler_index: int | None = DEFAULT_FILLER_INDEX,
) -> EncodedLayer:
    """Store a 2-D layer (``mask`` of survivors, ``indices`` into a codebook of
    2^index_bits slots) in both variants. ``gap_bits=None`` picks the width
    with the fewest fixed-width bits (``choose_gap_bits``)."""
    _check_widths(index_bits, filler_index)
    if gap_bits is None:
        gap_bits = choose_gap_bits(mask, index_bits, fillers_allowed=filler_index is not None)
    streams = encode_relative(mask, indices, gap_bits, filler_index=filler_index)
    largest = int(streams.indices.max(initial=0))
    if largest >= 1 << index_bits:
        raise ValueError(f"codebook index {largest} does not fit {index_bits} bits")
    pointer_width = row_pointer_width(streams.entries)
    row_pointers = pack_fixed(streams.row_ends, pointer_width)
    weight_indices = pack_fixed(streams.indices, index_bits)
    gaps = pack_fixed(streams.gaps, gap_bits)
    weight_huffman = huffman_encode(
        streams.indices, max_code_length=max_code_length, symbol_bits=index_bits
    )
    gap_huffman = huffman_encode(
        streams.gaps, max_code_length=max_code_length, symbol_bits=gap_bits
    )
    return EncodedLayer(
        shape=streams.shape,
        index_bits=index_bits,
        gap_bits=gap_bits,
        filler_index=filler_index,
        entries=streams.entries,
        row_pointer_width=pointer_width,
        row_pointers=row_pointers,
        weight_indices=weight_indices,
        gaps=gaps,
        weight_huffman=weight_huffman,
        gap_huffman=gap_huffman,
        sizes=_sizes(
            streams, index_bits, (row_pointers, weight_indices, gaps), weight_huffman, gap_huffman
        ),
    )


def decode_layer(encoded: EncodedLayer, *, huffman: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The dense ``(mask, indices)`` back from the stored bytes, through the
    Huffman-coded streams or (``huffman=False``) the fixed-width ones.
    Pruned positions of ``indices`` hold ``filler_index`` (0 if None)."""
    if encoded.version != FORMAT_VERSION:
        raise ValueError(
            f"encoded layer has format version {encoded.version}; this edgegen "
            f"reads version {FORMAT_VERSION}"
        )
    rows, _ = encoded.shape
    if huffman:
        weight_indices = huffman_decode(encoded.weight_huffman)
        gaps = huffman_decode(encoded.gap_huffman)
        if weight_indices.size != encoded.entries or gaps.size != encoded.entries:
            raise ValueError("Huffman streams disagree with the entry count")
    else:
        weight_indices = unpack_fixed(encoded.weight_indices, encoded.index_bits, encoded.entries)
        gaps = unpack_fixed(encoded.gaps, encoded.gap_bits, encoded.entries)
    streams = RelativeIndexStreams(
        shape=encoded.shape,
        gap_bits=encoded.gap_bits,
        filler_index=encoded.filler_index,
        gaps=gaps,
        indices=weight_indices,
        row_ends=unpack_fixed(encoded.row_pointers, encoded.row_pointer_width, rows),
    )
    return decode_relative(streams)

