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

#endif /* EG_BIT_READER_H */
