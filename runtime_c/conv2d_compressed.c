/*
 * conv2d_compressed.c: 2-D convolution, in one or more groups, computed on
 * compressed filters (codebook, sparse, huffman; docs/storage_formats.md).
 *
 * Loop order: output channel outermost. Each filter is decoded once per
 * inference into a tap list in the caller's scratch buffer: for every
 * nonzero weight its offset from the window's first input element, its
 * value and its (ky, kx). Every output pixel of that channel then costs
 * one multiply-accumulate per nonzero weight: pruned weights cost nothing,
 * and the scratch holds one filter's nonzeros, never a dense layer.
 *
 * Groups cost nothing extra: a filter of group g holds in_c / groups
 * channels per tap, its taps' offsets step over whole input pixels, and
 * its windows start g * in_c / groups channels into the pixel. Depthwise
 * layers stored compressed run here (groups = in_c).
 *
 * The input zero point is folded into the bias at generation time
 * (bias[o] = true_bias[o] + input_offset * sum of filter o), so a window
 * inside the input multiplies raw int8 values. A window that overlaps the
 * padding reads the zero point in place of each padded element, which
 * cancels that element's share of the folded bias: padding still
 * contributes real zero, as in eg_conv2d_s8.
 */
#include <stddef.h>

#include "eg_bit_reader.h"
#include "eg_kernel_support.h"
#include "eg_runtime.h"

/* One filter's nonzero taps, and the cursor that places new ones. */
typedef struct {
    int32_t *offset;      /* (ky * in_w + kx) * in_c + c, c < filter_c */
    int8_t *weight;
    uint8_t *ky;
    uint8_t *kx;
    int32_t count;
    int32_t capacity;
    /* Geometry and cursor: the filter column being placed lies in filter
     * row ky (columns [row_start, row_start + row_len)) at filter column
     * kx (columns [px_start, px_start + filter_c)). */
    int32_t in_c, filter_c, in_w, kernel_w, columns, row_len;
    int32_t cy, cx, row_start, px_start;
} tap_list;

typedef struct {
    const int8_t *input;
    const eg_shape *in;
    const eg_shape *out;
    int32_t kernel_h, kernel_w;
    const eg_conv_params *params; /* groups: already checked */
    const int32_t *bias;
    const eg_requant *requant;
    int8_t *output;
} conv_job;

static int taps_init(tap_list *t, const conv_job *job, void *scratch,
                     int32_t scratch_bytes, int32_t max_row_nonzeros)
{
    const int32_t n = max_row_nonzeros;
    /* The int32 offsets come first, at the first 4-byte boundary. */
    const int32_t skip = (int32_t)((4u - ((uintptr_t)scratch & 3u)) & 3u);
    if (scratch == NULL || n < 0 ||
        (int64_t)n * EG_CONV_TAP_BYTES + 3 > scratch_bytes ||
        job->kernel_h > 256 || job->kernel_w > 256) {
        return 0;
    }
    t->offset = (int32_t *)(void *)((uint8_t *)scratch + skip);
    t->weight = (int8_t *)(t->offset + n);
    t->ky = (uint8_t *)(t->weight + n);
    t->kx = t->ky + n;
    t->capacity = n;
    t->in_c = job->in->c;
    t->filter_c = job->in->c / job->params->groups;
    t->in_w = job->in->w;
    t->kernel_w = job->kernel_w;
    t->row_len = job->kernel_w * t->filter_c;
    t->columns = job->kernel_h * t->row_len;
    return 1;
}

static void taps_start(tap_list *t)
{
    t->count = 0;
    t->cy = 0;
    t->cx = 0;
    t->row_start = 0;
    t->px_start = 0;
}

/* Add the weight at filter column `column` (columns only increase within
 * a filter). 0: the column is past the filter or the list is full, i.e.
 * the stored filter disagrees with its declared shape. */
static int taps_add(tap_list *t, int32_t column, int8_t weight)
{
    int32_t k;
    if (column >= t->columns || t->count == t->capacity) {
        return 0;
    }
    while (column >= t->row_start + t->row_len) {
        t->row_start += t->row_len;
        t->px_start = t->row_start;
        t->cy += 1;
        t->cx = 0;
    }
    while (column >= t->px_start + t->filter_c) {
        t->px_start += t->filter_c;
        t->cx += 1;
    }
    k = t->count++;
    t->offset[k] = (t->cy * t->in_w + t->cx) * t->in_c + (column - t->px_start);
    t->weight[k] = weight;
    t->ky[k] = (uint8_t)t->cy;
    t->kx[k] = (uint8_t)t->cx;
    return 1;
}

/* acc over a window that lies inside the input. */
static uint32_t window_inside(const tap_list *t, const int8_t *window)
{
    const int32_t *offset = t->offset;
    const int8_t *weight = t->weight;
    uint32_t acc = 0;
    int32_t k;
    for (k = 0; k < t->count; ++k) {
        acc += (uint32_t)((int32_t)window[offset[k]] * (int32_t)weight[k]);
    }
    return acc;
}

/* acc over a window that overlaps the padding, whose first element is at
 * (y0, x0), channel `channel`; padded elements read as the zero point. */
static uint32_t window_clipped(const tap_list *t, const conv_job *job,
                               int32_t y0, int32_t x0, int32_t channel)
{
    const int32_t zero_point = -job->params->input_offset;
    const int32_t base = (y0 * job->in->w + x0) * job->in->c + channel;
    uint32_t acc = 0;
    int32_t k;
    for (k = 0; k < t->count; ++k) {
        const int32_t y = y0 + t->ky[k];
        const int32_t x = x0 + t->kx[k];
        const int inside = y >= 0 && y < job->in->h && x >= 0 && x < job->in->w;
        const int32_t value = inside ? job->input[base + t->offset[k]] : zero_point;
        acc += (uint32_t)(value * (int32_t)t->weight[k]);
    }
    return acc;
}

/* Every output pixel of channel o from its decoded filter. Geometry and
 * the output stage are copied to locals first: outputs are int8_t stores,
 * which may alias anything, so fields read through pointers would be read
 * again for every pixel. */
static void conv_channel(const conv_job *job, const tap_list *t, int32_t o)
{
    const int32_t in_h = job->in->h, in_w = job->in->w, in_c = job->in->c;
    const int32_t out_h = job->out->h, out_w = job->out->w, out_c = job->out->c;
    const int32_t stride_h = job->params->stride_h, stride_w = job->params->stride_w;
    const int32_t pad_top = job->params->pad_top, pad_left = job->params->pad_left;
    const int32_t kernel_h = job->kernel_h, kernel_w = job->kernel_w;
    /* the first input channel of o's group */
    const int32_t channel = o / (out_c / job->params->groups) * (in_c / job->params->groups);
    const int8_t *input = job->input + channel;
    const uint32_t bias = (uint32_t)job->bias[o];
    const layer_stage stage = layer_stage_of(job->requant);
    const int32_t multiplier = stage.multiplier[o * stage.step];
    const int32_t shift = stage.shift[o * stage.step];
    int8_t *px = job->output + o;
    int32_t oy, ox;
    for (oy = 0; oy < out_h; ++oy) {
        const int32_t y0 = oy * stride_h - pad_top;
        const int rows_inside = y0 >= 0 && y0 + kernel_h <= in_h;
        for (ox = 0; ox < out_w; ++ox) {
            const int32_t x0 = ox * stride_w - pad_left;
            uint32_t acc = bias;
            if (rows_inside && x0 >= 0 && x0 + kernel_w <= in_w) {
                acc += window_inside(t, input + (y0 * in_w + x0) * in_c);
            } else {
                acc += window_clipped(t, job, y0, x0, channel);
            }
            *px = scaled_output(stage, multiplier, shift, wrap_int32(acc));
            px += out_c;
        }
    }
}

static int conv_args_ok(const conv_job *job)
{
    if (job->input == NULL || job->in == NULL || job->out == NULL ||
        job->params == NULL || job->bias == NULL || job->requant == NULL ||
        job->output == NULL) {
        return 0;
    }
    return conv_geometry_ok(job->in, job->out, job->kernel_h, job->kernel_w,
                            job->params) &&
           conv_groups_ok(job->in, job->out, job->params) &&
           requant_ok(job->requant, job->out->c);
}

eg_status eg_conv2d_codebook_s8(const int8_t *input, const eg_shape *in,
                                const eg_codebook_weights *weights,
                                int32_t kernel_h, int32_t kernel_w,
                                const int32_t *bias, const eg_conv_params *params,
                                const eg_requant *requant,
                                void *scratch, int32_t scratch_bytes,
                                int8_t *output, const eg_shape *out)
{
    const conv_job job = {input, in, out, kernel_h, kernel_w, params, bias, requant, output};
    tap_list taps;
    uint32_t pos = 0, drop;
    int32_t o;

    if (weights == NULL || weights->indices == NULL || !conv_args_ok(&job) ||
        !codebook_ok(weights->version, weights->codebook, weights->codebook_size,
                     weights->index_bits) ||
        !taps_init(&taps, &job, scratch, scratch_bytes, weights->max_row_nonzeros)) {
        return EG_ERR_ARG;
    }
    drop = 32u - (uint32_t)weights->index_bits;
    for (o = 0; o < out->c; ++o) {
        int32_t column;
        taps_start(&taps);
        for (column = 0; column < taps.columns; ++column) {
            const int8_t weight = weights->codebook[eg_window(weights->indices, pos) >> drop];
            pos += (uint32_t)weights->index_bits;
            if (weight != 0 && !taps_add(&taps, column, weight)) {
                return EG_ERR_DATA;
            }
        }
        conv_channel(&job, &taps, o);
    }
    return EG_OK;
}

eg_status eg_conv2d_sparse_s8(const int8_t *input, const eg_shape *in,
                              const eg_sparse_weights *weights,
                              int32_t kernel_h, int32_t kernel_w,
                              const int32_t *bias, const eg_conv_params *params,
                              const eg_requant *requant,
                              void *scratch, int32_t scratch_bytes,
                              int8_t *output, const eg_shape *out)
{
    const conv_job job = {input, in, out, kernel_h, kernel_w, params, bias, requant, output};
    tap_list taps;
    int32_t o, next = 0;

    if (weights == NULL || !sparse_weights_ok(weights) || !conv_args_ok(&job) ||
        !taps_init(&taps, &job, scratch, scratch_bytes, weights->max_row_nonzeros)) {
        return EG_ERR_ARG;
    }
    for (o = 0; o < out->c; ++o) {
        const uint32_t shift = weights->entry_bits == 16 ? 8u : (uint32_t)weights->index_bits;
        const uint32_t mask = (1u << shift) - 1u;
        const int32_t end = next + weights->row_entries[o];
        int32_t column = 0;
        taps_start(&taps);
        for (; next < end; ++next) {
            /* Both layouts as one (gap << shift) | index value. */
            const uint32_t entry = weights->entry_bits == 16
                                       ? ((uint32_t)weights->entries[next] << 8) |
                                             weights->indices[next]
                                       : (uint32_t)weights->entries[next];
            const int8_t weight = weights->codebook[entry & mask];
            column += (int32_t)(entry >> shift);
            if (weight != 0 && !taps_add(&taps, column, weight)) {
                return EG_ERR_DATA;
            }
            column += 1;
        }
        conv_channel(&job, &taps, o);
    }
    return EG_OK;
}

eg_status eg_conv2d_huffman_s8(const int8_t *input, const eg_shape *in,
                               const eg_huffman_weights *weights,
                               int32_t kernel_h, int32_t kernel_w,
                               const int32_t *bias, const eg_conv_params *params,
                               const eg_requant *requant,
                               void *scratch, int32_t scratch_bytes,
                               int8_t *output, const eg_shape *out)
{
    const conv_job job = {input, in, out, kernel_h, kernel_w, params, bias, requant, output};
    tap_list taps;
    uint32_t pos = 0;
    int32_t o;

    if (weights == NULL || !huffman_weights_ok(weights) || !conv_args_ok(&job) ||
        !taps_init(&taps, &job, scratch, scratch_bytes, weights->max_row_nonzeros)) {
        return EG_ERR_ARG;
    }
    for (o = 0; o < out->c; ++o) {
        const int32_t n = weights->row_entries[o];
        int32_t column = 0, k;
        taps_start(&taps);
        for (k = 0; k < n; ++k) {
            const uint32_t entry = eg_huffman_entry(weights, eg_window(weights->stream, pos));
            const int32_t weight = eg_entry_weight(entry);
            if (entry == EG_ENTRY_FAILED) {
                return EG_ERR_DATA;
            }
            pos += eg_entry_length(entry);
            column += (int32_t)eg_entry_gap(entry);
            if (weight != 0 && !taps_add(&taps, column, (int8_t)weight)) {
                return EG_ERR_DATA;
            }
            column += 1;
        }
        conv_channel(&job, &taps, o);
    }
    return EG_OK;
}
