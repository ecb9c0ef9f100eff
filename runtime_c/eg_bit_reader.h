/*
 * eg_bit_reader.h: reading the compressed weight streams (MSB-first bit
 * fields and canonical Huffman codes). Private to runtime_c/: static inline
 * so that each kernel's inner loop keeps the reader in registers.
 *
 * Streams are MSB-first and stored in reverse byte order behind 4 zero
 * bytes (docs/storage_formats.md); eg_window() loads the 32 bits at any
 * bit position of one with a single little-endian word load where the core
 * allows unaligned loads. One window covers three codebook indices (up to
 * 8 bits each) or an entry's gap code and index code (up to 12 bits each).
 */
#ifndef EG_BIT_READER_H
#define EG_BIT_READER_H

#include <stdint.h>

#include "eg_runtime.h"

/* The 32 stream bits from bit position `pos` on, the first in bit 31, of
 * a stream stored in reverse byte order: `first` points at its byte 0,
 * byte k is first[-k], and 4 zero bytes lie below its last byte. The four
 * bytes k..k+3 then sit at first[-k-3..-k], least significant first: a
 * little-endian word, which compilers load with one instruction where the
 * core allows unaligned loads. At least 25 of the bits belong to the
 * stream or its padding. */
static inline uint32_t eg_window(const uint8_t *first, uint32_t pos)
{
    const uint8_t *p = first - (pos >> 3) - 3;
    const uint32_t word = (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
                          ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    return word << (pos & 7u);
}

/* A code longer than the table's lookup: the canonical search over the
 * lengths past lut_bits. */
static inline int32_t eg_huffman_long(uint32_t bits, const eg_huffman_table *t,
                                      uint32_t *length)
{
    int32_t len;
    for (len = t->lut_bits + 1; len <= t->max_length; ++len) {
        const uint32_t rank = (bits >> (32 - len)) - t->first[len];
        if (rank < t->count[len]) {
            *length = (uint32_t)len;
            return t->symbols[t->offset[len] + rank];
        }
    }
    *length = 0;
    return -1;
}

/* The symbol whose code starts at bit 31 of `bits` (its length in
 * *length), or -1 for a bit pattern that is no code of the table. */
static inline int32_t eg_huffman(uint32_t bits, const eg_huffman_table *t, uint32_t *length)
{
    const uint32_t entry = t->lut[bits >> (32 - t->lut_bits)];
    if (entry != 0u) {
        *length = entry >> 12;
        return (int32_t)(entry & 0xFFFu);
    }
    return eg_huffman_long(bits, t, length);
}

/* A decoded entry of the Huffman layout, packed as the pair lookup holds it:
 * (length << 27) | (gap << 16) | the weight as a 16-bit two's complement
 * value (length <= 24, gap <= 2047). Packed, so that loops keep it in one
 * register and a multiply takes the weight straight from the low half. */
#define EG_ENTRY_FAILED 0xFFFFFFFFu

static inline uint32_t eg_pack_entry(uint32_t length, uint32_t gap, int32_t weight)
{
    return (length << 27) | (gap << 16) | ((uint32_t)weight & 0xFFFFu);
}

static inline uint32_t eg_entry_length(uint32_t entry)
{
    return entry >> 27;
}

static inline uint32_t eg_entry_gap(uint32_t entry)
{
    return (entry >> 16) & 0x7FFu;
}

static inline int32_t eg_entry_weight(uint32_t entry)
{
    return (int32_t)(int16_t)(uint16_t)(entry & 0xFFFFu);
}

/* One entry decoded code by code from the window `bits` (its gap code, if
 * the layer has gap codes, then its index code), or EG_ENTRY_FAILED for a
 * bit pattern that is no code or a symbol outside the layout. */
static inline uint32_t eg_huffman_entry(const eg_huffman_weights *w, uint32_t bits)
{
    uint32_t gap_length = 0, index_length;
    int32_t gap = 0, index;
    if (w->gaps.max_length != 0) {
        gap = eg_huffman(bits, &w->gaps, &gap_length);
    }
    index = eg_huffman(bits << gap_length, &w->indices, &index_length);
    if ((gap | index) < 0 || gap > 2047 || index >= w->codebook_size) {
        return EG_ENTRY_FAILED;
    }
    return eg_pack_entry(gap_length + index_length, (uint32_t)gap, w->codebook[index]);
}

#endif /* EG_BIT_READER_H */
