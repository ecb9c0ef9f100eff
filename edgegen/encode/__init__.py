"""Bit-level storage formats of Deep Compression (Han et al., ICLR 2016; EIE).

Pure numpy, no torch. Layers come in as a 2-D boolean ``mask`` of surviving
weights and an integer matrix of codebook ``indices``; they go out as

* ``relative_index``: CSR-style sparse entries ``(gap, codebook index)`` per
  row, with filler entries for gaps longer than ``2^gap_bits - 1`` and
  cumulative row pointers;
* ``huffman``: canonical, length-limited Huffman codes of those streams,
  with a compact table (counts per length + symbols) and a table-driven
  decoder a small C function can mirror;
* ``bitstream``: the MSB-first bit packing every stream uses.

``encode_layer`` / ``decode_layer`` tie them together and account for every
bit (``LayerSizes``), in the fixed-width (P+Q) and Huffman (P+Q+H) variants.
"""

from edgegen.encode.bitstream import (
    BitReader,
    BitWriter,
    pack_fixed,
    pack_variable,
    padded_bytes,
    unpack_bits,
    unpack_fixed,
)
from edgegen.encode.huffman import (
    DEFAULT_MAX_CODE_LENGTH,
    CanonicalTable,
    HuffmanSize,
    HuffmanStream,
    build_table,
    decode_canonical,
    huffman_decode,
    huffman_encode,
    kraft_numerator,
    limited_code_lengths,
    shannon_entropy_bits,
    symbol_counts,
)
from edgegen.encode.layer import (
    FORMAT_VERSION,
    BitsPerWeight,
    EncodedLayer,
    LayerSizes,
    decode_layer,
    encode_layer,
)
from edgegen.encode.relative_index import (
    DEFAULT_FILLER_INDEX,
    RelativeIndexSize,
    RelativeIndexStreams,
    choose_gap_bits,
    count_fillers,
    decode_relative,
    encode_relative,
    relative_index_size,
    row_pointer_width,
    survivor_gaps,
)

__all__ = [
    "BitReader",
    "BitWriter",
    "BitsPerWeight",
    "CanonicalTable",
    "DEFAULT_FILLER_INDEX",
    "DEFAULT_MAX_CODE_LENGTH",
    "EncodedLayer",
    "FORMAT_VERSION",
    "HuffmanSize",
    "HuffmanStream",
    "LayerSizes",
    "RelativeIndexSize",
    "RelativeIndexStreams",
    "build_table",
    "choose_gap_bits",
    "count_fillers",
    "decode_canonical",
    "decode_layer",
    "decode_relative",
    "encode_layer",
    "encode_relative",
    "huffman_decode",
    "huffman_encode",
    "kraft_numerator",
    "limited_code_lengths",
    "pack_fixed",
    "pack_variable",
    "padded_bytes",
    "relative_index_size",
    "row_pointer_width",
    "shannon_entropy_bits",
    "survivor_gaps",
    "symbol_counts",
    "unpack_bits",
    "unpack_fixed",
]
