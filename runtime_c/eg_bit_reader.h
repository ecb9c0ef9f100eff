/*
 * eg_bit_reader.h: reading the compressed weight streams (MSB-first bit
 * fields and canonical Huffman codes). Private to runtime_c/: static inline
 * so that each kernel's inner loop keeps the reader in registers.
 *
 * The reader holds the next unread bits left-aligned in a 32-bit word.
 * After eg_br_refill() at least 25 bits are held, enough for one codebook
 * index (<= 8 bits) or one gap code and one index code (<= 12 bits each).
 * Refilling reads whole bytes up to 4 bytes past the last consumed bit:
 * every stream ends with 4 zero bytes so that this never leaves the array.
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

/* A code longer than the table's lookup: the canonical search over the
 * lengths past lut_bits. Returns the symbol, or -1 if no code matches. */
static inline int32_t eg_br_huffman_long(eg_bit_reader *r, const eg_huffman_table *t)
{
    int32_t length;
    for (length = t->lut_bits + 1; length <= t->max_length; ++length) {
        uint32_t code = r->bits >> (32 - length);
        uint32_t rank = code - t->first[length];
        if (rank < t->count[length]) {
            r->bits <<= length;
            r->count -= length;
            return t->symbols[t->offset[length] + rank];
        }
    }
    return -1;
}

/* One Huffman-coded symbol (the reader must hold max_length bits), or -1
 * for a bit pattern that is no code of the table. */
static inline int32_t eg_br_huffman(eg_bit_reader *r, const eg_huffman_table *t)
{
    uint32_t entry = t->lut[r->bits >> (32 - t->lut_bits)];
    if (entry != 0u) {
        int32_t length = (int32_t)(entry >> 12);
        r->bits <<= length;
        r->count -= length;
        return (int32_t)(entry & 0xFFFu);
    }
    return eg_br_huffman_long(r, t);
}

#endif /* EG_BIT_READER_H */
