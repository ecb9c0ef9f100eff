/*
 * eg_bit_reader.h: reading the compressed weight streams (MSB-first bit
 * fields and canonical Huffman codes). Private to runtime_c/: static inline
 * so that each kernel's inner loop keeps the reader in registers.
 *
 * Two ways to read, both MSB-first and both reading up to 4 bytes past the
 * last bit they use (every stream ends with 4 zero bytes for them):
 *  - eg_bit_reader holds the next unread bits left-aligned in a 32-bit
 *    word; after eg_br_refill() at least 25 bits are held (fixed-width
 *    fields, the codebook layout);
 *  - eg_window() loads the 32 bits at any bit position of a stream stored
 *    in reverse byte order (the Huffman layout): one window per entry
 *    covers its gap code and its index code (at most 12 bits each).
 */
#ifndef EG_BIT_READER_H
#define EG_BIT_READER_H

#include <stdint.h>

#include "eg_runtime.h"

typedef struct {
    const uint8_t *next;  /* next byte to load */
    uint32_t bits;        /* unread bits, the next one in bit 31 */
    int32_t count;        /* how many of them are valid */
} eg_bit_reader;

static inline void eg_br_refill(eg_bit_reader *r)
{
    while (r->count <= 24) {
        r->bits |= (uint32_t)*r->next++ << (24 - r->count);
        r->count += 8;
    }
}

static inline void eg_br_init(eg_bit_reader *r, const uint8_t *data)
{
    r->next = data;
    r->bits = 0u;
    r->count = 0;
    eg_br_refill(r);
}

/* The next `width` bits (1..25) as an unsigned field; no refill. */
static inline uint32_t eg_br_take(eg_bit_reader *r, int32_t width)
{
    uint32_t field = r->bits >> (32 - width);
    r->bits <<= width;
    r->count -= width;
    return field;
}

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
