/*
 * fully_connected_compressed.c: fully connected layers computed on their
 * compressed weights (codebook, sparse, huffman; docs/storage_formats.md).
 *
 * The work is per stored entry, never per dense position (except in the
 * codebook layout, which stores every position): a sparse row walks its
 * entries with an input pointer that each gap moves forward, and a pruned
 * weight costs nothing. As in fully_connected.c the input zero point is
 * folded into the bias at generation time, so the inner loop is a plain
 * product of raw int8 values, accumulated modulo 2^32 in uint32_t.
 * Nothing is decoded into RAM: each weight is read from flash once.
 *
 * The kernels check every argument and struct field, not each entry: the
 * entries are trusted, because the generator decodes every stream it
 * writes and compares it with the model first. An index can never leave
 * its codebook (the codebook has 2^index_bits slots); a Huffman bit
 * pattern that is no code gives EG_ERR_DATA.
 */
#include <stddef.h>

#include "eg_bit_reader.h"
#include "eg_kernel_support.h"
#include "eg_runtime.h"

static int fc_args_ok(const int8_t *input, int32_t in_features, const int32_t *bias,
                      int32_t out_features, const eg_requant *requant,
                      const int8_t *output)
{
    if (input == NULL || bias == NULL || requant == NULL || output == NULL) {
        return 0;
    }
    if (in_features < 1 || out_features < 1 ||
        (int64_t)in_features * out_features > INT32_MAX) {
        return 0;
    }
    return requant_ok(requant, out_features);
}

/* The products of one row of n positions in the codebook layout, from bit
 * `*pos` on (advanced past them): a window holds at least 25 bits, three
 * indices of up to 8 bits, so positions go three to a window. */
static uint32_t codebook_row(const uint8_t *first, uint32_t *pos, const int8_t *x, int32_t n,
                             const int8_t *codebook, uint32_t width)
{
    const uint32_t drop = 32u - width;
    uint32_t at = *pos;
    uint32_t acc = 0;
    int32_t i = 0;
    for (; i + 3 <= n; i += 3) {
        const uint32_t bits = eg_window(first, at);
        at += 3u * width;
        acc += (uint32_t)((int32_t)x[i] * (int32_t)codebook[bits >> drop] +
                          (int32_t)x[i + 1] * (int32_t)codebook[(bits << width) >> drop] +
                          (int32_t)x[i + 2] * (int32_t)codebook[(bits << (2u * width)) >> drop]);
    }
    for (; i < n; ++i) {
        acc += (uint32_t)((int32_t)x[i] * (int32_t)codebook[eg_window(first, at) >> drop]);
        at += width;
    }
    *pos = at;
    return acc;
}

eg_status eg_fully_connected_codebook_s8(const int8_t *input, int32_t in_features,
                                         const eg_codebook_weights *weights,
                                         const int32_t *bias, int32_t out_features,
                                         const eg_requant *requant, int8_t *output)
{
    uint32_t pos = 0;
    layer_stage stage;
    int32_t o;

    if (weights == NULL || weights->indices == NULL ||
        !codebook_ok(weights->version, weights->codebook, weights->codebook_size,
                     weights->index_bits) ||
        !fc_args_ok(input, in_features, bias, out_features, requant, output)) {
        return EG_ERR_ARG;
    }
    stage = layer_stage_of(requant);
    for (o = 0; o < out_features; ++o) {
        uint32_t acc = (uint32_t)bias[o];
        acc += codebook_row(weights->indices, &pos, input, in_features, weights->codebook,
                            (uint32_t)weights->index_bits);
        output[o] = layer_output(stage, o, wrap_int32(acc));
    }
    return EG_OK;
}

/* The products of one row's n entries: each entry moves the input
 * pointer by its gap, multiplies the input there by its codebook value and
 * steps past it. Packed 8-bit entries: */
static uint32_t sparse_row_packed(const uint8_t *e, int32_t n, const int8_t *x,
                                  const int8_t *codebook, uint32_t shift)
{
    const uint32_t mask = (1u << shift) - 1u;
    const uint8_t *end = e + n;
    uint32_t acc = 0;
    while (e != end) {
        const uint32_t entry = *e++;
        x += entry >> shift;
        acc += (uint32_t)((int32_t)*x++ * (int32_t)codebook[entry & mask]);
    }
    return acc;
}

/* ... and gap and index planes (16-bit entries): two byte loads, no
 * unpacking, the tightest loop GCC and Clang make of it. */
static uint32_t sparse_row_planes(const uint8_t *gap, const uint8_t *index, int32_t n,
                                  const int8_t *x, const int8_t *codebook)
{
    const uint8_t *end = gap + n;
    uint32_t acc = 0;
    while (gap != end) {
        x += *gap++;
        acc += (uint32_t)((int32_t)*x++ * (int32_t)codebook[*index++]);
    }
    return acc;
}

eg_status eg_fully_connected_sparse_s8(const int8_t *input, int32_t in_features,
                                       const eg_sparse_weights *weights,
                                       const int32_t *bias, int32_t out_features,
                                       const eg_requant *requant, int8_t *output)
{
    const uint8_t *entries;
    const uint8_t *indices;
    layer_stage stage;
    int32_t o;

    if (weights == NULL || !sparse_weights_ok(weights) ||
        !fc_args_ok(input, in_features, bias, out_features, requant, output)) {
        return EG_ERR_ARG;
    }
    entries = weights->entries;
    indices = weights->indices;
    stage = layer_stage_of(requant);
    for (o = 0; o < out_features; ++o) {
        const int32_t n = weights->row_entries[o];
        uint32_t acc = (uint32_t)bias[o];
        if (weights->entry_bits == 16) {
            acc += sparse_row_planes(entries, indices, n, input, weights->codebook);
            indices += n;
        } else {
            acc += sparse_row_packed(entries, n, input, weights->codebook,
                                     (uint32_t)weights->index_bits);
        }
        entries += n;
        output[o] = layer_output(stage, o, wrap_int32(acc));
    }
    return EG_OK;
}

/* The product of a decoded entry (eg_huffman_entry's packing): move the
 * input pointer past the gap, multiply, step past; advance the stream
 * position by the codes' bits. */
static inline uint32_t entry_product(uint32_t entry, const int8_t **x, uint32_t *at)
{
    const int8_t *input = *x + eg_entry_gap(entry);
    *x = input + 1;
    *at += eg_entry_length(entry);
    return (uint32_t)((int32_t)*input * eg_entry_weight(entry));
}

/* eg_huffman_entry out of line: only the lookups' misses take it, and
 * inlined it would crowd the hot loops' registers. */
static EG_NOINLINE uint32_t huffman_entry_slow(const eg_huffman_weights *w, uint32_t bits)
{
    return eg_huffman_entry(w, bits);
}

/* The products of one Huffman-coded row of n entries, read from bit `*pos`
 * on (advanced past them); 0 for a bit pattern that is no code. One window
 * load per entry; then either one pair lookup for both codes, or one lookup
 * per code; whatever the lookups miss goes through huffman_entry_slow. */
static int huffman_row(const eg_huffman_weights *w, uint32_t *pos, int32_t n,
                       const int8_t *x, uint32_t *acc)
{
    const uint8_t *stream = w->stream;
    uint32_t at = *pos;
    uint32_t sum = 0;
    if (w->pairs != NULL) {
        const uint32_t *pairs = w->pairs;
        const uint32_t pair_shift = 32u - (uint32_t)w->pair_bits;
        for (; n > 0; --n) {
            const uint32_t bits = eg_window(stream, at);
            uint32_t entry = pairs[bits >> pair_shift];
            if (EG_UNLIKELY(entry == 0u)) {
                entry = huffman_entry_slow(w, bits);
                if (entry == EG_ENTRY_FAILED) {
                    return 0;
                }
            }
            sum += entry_product(entry, &x, &at);
        }
    } else {
        const int8_t *codebook = w->codebook;
        const uint16_t *index_lut = w->indices.lut;
        const uint32_t index_shift = 32u - (uint32_t)w->indices.lut_bits;
        const uint16_t *gap_lut = w->gaps.lut;
        const uint32_t gap_shift = 32u - (uint32_t)w->gaps.lut_bits;
        const int every_position = w->gaps.max_length == 0;
        for (; n > 0; --n) {
            const uint32_t bits = eg_window(stream, at);
            const uint32_t gap_entry = every_position ? 0x1000u : gap_lut[bits >> gap_shift];
            const uint32_t gap_length = every_position ? 0u : gap_entry >> 12;
            const uint32_t index_entry = index_lut[(bits << gap_length) >> index_shift];
            uint32_t entry;
            if (gap_entry != 0u && index_entry != 0u) {
                entry = eg_pack_entry(gap_length + (index_entry >> 12), gap_entry & 0xFFFu,
                                      codebook[index_entry & 0xFFFu]);
            } else {
                entry = huffman_entry_slow(w, bits);
                if (entry == EG_ENTRY_FAILED) {
                    return 0;
                }
            }
            sum += entry_product(entry, &x, &at);
        }
    }
    *pos = at;
    *acc += sum;
    return 1;
}

eg_status eg_fully_connected_huffman_s8(const int8_t *input, int32_t in_features,
                                        const eg_huffman_weights *weights,
                                        const int32_t *bias, int32_t out_features,
                                        const eg_requant *requant, int8_t *output)
{
    uint32_t pos = 0;
    layer_stage stage;
    int32_t o;

    if (weights == NULL || !huffman_weights_ok(weights) ||
        !fc_args_ok(input, in_features, bias, out_features, requant, output)) {
        return EG_ERR_ARG;
    }
    stage = layer_stage_of(requant);
    for (o = 0; o < out_features; ++o) {
        uint32_t acc = (uint32_t)bias[o];
        if (!huffman_row(weights, &pos, weights->row_entries[o], input, &acc)) {
            return EG_ERR_DATA;
        }
        output[o] = layer_output(stage, o, wrap_int32(acc));
    }
    return EG_OK;
}
