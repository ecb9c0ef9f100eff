/*
 * conv2d.c: 2-D convolution, int8 NHWC input, int8 OHWI filter (groups = 1).
 *
 * Output pixels are computed two at a time (neighbours in a row) and
 * output channels two at a time: a 2x2 register tile (eg_dot_2x2), so each
 * input and weight loaded serves two multiply-accumulates. For a filter
 * row, the window row is contiguous both in the NHWC input and in the OHWI
 * filter (kernel_w * in_c values): the tile runs over it in place. When
 * that run is short (EG_IM2COL_MAX_RUN), loop overhead would dominate, so
 * the two windows are first copied whole into the caller's scratch
 * (im2col) and the tile runs once over kernel_h * kernel_w * in_c values.
 *
 * The input zero point is folded into the bias at generation time, so the
 * loops multiply raw inputs. A window that overlaps the padding must then
 * add the zero point times the weights of its padded taps: im2col simply
 * writes the zero point there; the in-place path computes such border
 * pixels one at a time (clipped windows, corrected by a weight sum).
 *
 * Accumulators are uint32_t: int32 arithmetic modulo 2^32, as TFLite
 * computes it on every real target, without signed-overflow undefined
 * behaviour. A well-formed layer never wraps.
 */
#include <stddef.h>

#include "eg_dot.h"
#include "eg_kernel_support.h"
#include "eg_runtime.h"

/* What every part of the layer reads, in one place. */
typedef struct {
    const int8_t *input;
    const int8_t *filter;
    const int32_t *bias;
    const eg_requant *requant;
    int8_t *im2col;          /* NULL: the windows are read in place */
    int32_t in_h, in_w, in_c, out_w, out_c;
    int32_t kernel_h, kernel_w, stride_w, pad_left;
    int32_t run;             /* kernel_w * in_c: one filter row */
    int32_t columns;         /* kernel_h * run: one filter */
    int32_t in_row;          /* in_w * in_c: one input row */
    int32_t offset;          /* input_offset, minus the input zero point */
} conv_layer;

/* Window rows [y0 + ky_begin, y0 + ky_end) of output row oy are inside. */
typedef struct {
    int32_t y0, ky_begin, ky_end;
} window_rows;

static uint32_t bias_of(const conv_layer *g, int32_t oc)
{
    return g->bias != NULL ? (uint32_t)g->bias[oc] : 0u;
}

/* The output stage of a 2x2 tile: channels oc, oc + 1 (if two_channels)
 * of pixels out0 and out1 (if not NULL). */
static void store_tile(const conv_layer *g, const uint32_t acc[4], int32_t oc,
                       int two_channels, int8_t *out0, int8_t *out1)
{
    channel_stage stage = stage_of_channel(g->requant, oc);
    out0[oc] = apply_stage(wrap_int32(acc[0]), stage);
    if (out1 != NULL) {
        out1[oc] = apply_stage(wrap_int32(acc[1]), stage);
    }
    if (two_channels) {
        stage = stage_of_channel(g->requant, oc + 1);
        out0[oc + 1] = apply_stage(wrap_int32(acc[2]), stage);
        if (out1 != NULL) {
            out1[oc + 1] = apply_stage(wrap_int32(acc[3]), stage);
        }
    }
}

/* Every channel of two pixels whose windows x0 and x1 are `rows` runs of
 * `run` values, `stride` apart (the filter's runs are contiguous). out1
 * NULL: one pixel (x1 == x0, its results dropped). */
static void pixel_pair(const conv_layer *g, const int8_t *x0, const int8_t *x1,
                       int32_t rows, int32_t run, int32_t stride,
                       int8_t *out0, int8_t *out1)
{
    int32_t oc;
    for (oc = 0; oc < g->out_c; oc += 2) {
        const int two_channels = oc + 1 < g->out_c;
        const int8_t *f0 = g->filter + oc * g->columns;
        /* An odd last channel runs as a pair with itself. */
        const int8_t *f1 = two_channels ? f0 + g->columns : f0;
        uint32_t acc[4];
        int32_t r;
        acc[0] = acc[1] = bias_of(g, oc);
        acc[2] = acc[3] = two_channels ? bias_of(g, oc + 1) : 0u;
        for (r = 0; r < rows; ++r) {
            eg_dot_2x2(x0 + r * stride, x1 + r * stride, f0 + r * run, f1 + r * run, run, acc);
        }
        store_tile(g, acc, oc, two_channels, out0, out1);
    }
}

/* Window of output pixel (rows, ox) into dst: kernel_h * kernel_w * in_c
 * values, the zero point at padded taps (which cancels their share of
 * the folded bias). */
static void gather_window(const conv_layer *g, window_rows rows, int32_t ox, int8_t *dst)
{
    const int8_t zero_point = (int8_t)(-g->offset);
    const int32_t x0 = ox * g->stride_w - g->pad_left;
    int32_t ky, kx, c;
    for (ky = 0; ky < g->kernel_h; ++ky) {
        const int inside_row = ky >= rows.ky_begin && ky < rows.ky_end;
        for (kx = 0; kx < g->kernel_w; ++kx) {
            const int32_t x = x0 + kx;
            if (inside_row && x >= 0 && x < g->in_w) {
                const int8_t *px = g->input + ((rows.y0 + ky) * g->in_w + x) * g->in_c;
                for (c = 0; c < g->in_c; ++c) {
                    dst[c] = px[c];
                }
            } else {
                for (c = 0; c < g->in_c; ++c) {
                    dst[c] = zero_point;
                }
            }
            dst += g->in_c;
        }
    }
}

/* The sum of `rows` runs of `run` weights, `stride` apart. */
static int32_t weight_sum(const int8_t *filter, int32_t rows, int32_t run, int32_t stride)
{
    int32_t sum = 0, r, i;
    for (r = 0; r < rows; ++r) {
        for (i = 0; i < run; ++i) {
            sum += filter[i];
        }
        filter += stride;
    }
    return sum;
}

/* One output pixel whose window overlaps the padding, read in place: the
 * in-bounds part, plus the zero point times the padded taps' weights. */
EG_NOINLINE static void clipped_pixel(const conv_layer *g, window_rows rows, int32_t ox,
                                      int8_t *out)
{
    const int32_t x0 = ox * g->stride_w - g->pad_left;
    const int32_t kx_begin = x0 < 0 ? -x0 : 0;
    const int32_t kx_end = g->in_w - x0 < g->kernel_w ? g->in_w - x0 : g->kernel_w;
    const int32_t run = (kx_end - kx_begin) * g->in_c;
    const int32_t height = rows.ky_end - rows.ky_begin;
    const int8_t *window =
        g->input + ((rows.y0 + rows.ky_begin) * g->in_w + (x0 + kx_begin)) * g->in_c;
    const int32_t skip = rows.ky_begin * g->run + kx_begin * g->in_c;
    int32_t oc;
    for (oc = 0; oc < g->out_c; ++oc) {
        const int8_t *f = g->filter + oc * g->columns;
        const int32_t outside =
            weight_sum(f, g->kernel_h, g->run, g->run) - weight_sum(f + skip, height, run, g->run);
        uint32_t acc = bias_of(g, oc) + (uint32_t)(-g->offset) * (uint32_t)outside;
        int32_t r;
        for (r = 0; r < height; ++r) {
            acc = eg_dot_1x1(window + r * g->in_row, f + skip + r * g->run, run, acc);
        }
        out[oc] = output_stage_channel(wrap_int32(acc), oc, g->requant);
    }
}

static int columns_inside(const conv_layer *g, int32_t ox)
{
    const int32_t x0 = ox * g->stride_w - g->pad_left;
    return x0 >= 0 && x0 + g->kernel_w <= g->in_w;
}

/* Output pixels ox and ox + 1 (if pair) of one output row. */
static void compute_pixels(const conv_layer *g, window_rows rows, int32_t ox, int pair,
                           int8_t *out0)
{
    int8_t *out1 = pair ? out0 + g->out_c : NULL;
    const int32_t pair_ox = pair ? ox + 1 : ox;
    if (g->im2col != NULL) {
        int8_t *w0 = g->im2col, *w1 = g->im2col + g->columns;
        gather_window(g, rows, ox, w0);
        if (pair) {
            gather_window(g, rows, pair_ox, w1);
        }
        pixel_pair(g, w0, pair ? w1 : w0, 1, g->columns, 0, out0, out1);
        return;
    }
    if (rows.ky_begin == 0 && rows.ky_end == g->kernel_h && columns_inside(g, ox) &&
        columns_inside(g, pair_ox)) {
        const int8_t *x0 = g->input + rows.y0 * g->in_row +
                           (ox * g->stride_w - g->pad_left) * g->in_c;
        const int8_t *x1 = x0 + (pair_ox - ox) * g->stride_w * g->in_c;
        pixel_pair(g, x0, x1, g->kernel_h, g->run, g->in_row, out0, out1);
        return;
    }
    clipped_pixel(g, rows, ox, out0);
    if (pair) {
        clipped_pixel(g, rows, pair_ox, out1);
    }
}

eg_status eg_conv2d_s8(const int8_t *input, const eg_shape *in,
                       const int8_t *filter, int32_t kernel_h, int32_t kernel_w,
                       const int32_t *bias, const eg_conv_params *params,
                       const eg_requant *requant,
                       void *scratch, int32_t scratch_bytes,
                       int8_t *output, const eg_shape *out)
{
    conv_layer g;
    int32_t oy, ox;
    int64_t needed;

    if (input == NULL || in == NULL || filter == NULL || params == NULL ||
        requant == NULL || output == NULL || out == NULL) {
        return EG_ERR_ARG;
    }
    if (!conv_geometry_ok(in, out, kernel_h, kernel_w, params)) {
        return EG_ERR_ARG;
    }
    if (!requant_ok(requant, out->c)) {
        return EG_ERR_ARG;
    }
    needed = EG_CONV2D_S8_SCRATCH_BYTES((int64_t)kernel_h, (int64_t)kernel_w, (int64_t)in->c);
    if (needed > 0 && (scratch == NULL || scratch_bytes < needed)) {
        return EG_ERR_ARG;
    }

    g.input = input;
    g.filter = filter;
    g.bias = bias;
    g.requant = requant;
    g.im2col = needed > 0 ? (int8_t *)scratch : NULL;
    g.in_h = in->h;
    g.in_w = in->w;
    g.in_c = in->c;
    g.out_w = out->w;
    g.out_c = out->c;
    g.kernel_h = kernel_h;
    g.kernel_w = kernel_w;
    g.stride_w = params->stride_w;
    g.pad_left = params->pad_left;
    g.run = kernel_w * in->c;
    g.columns = kernel_h * g.run;
    g.in_row = in->w * in->c;
    g.offset = params->input_offset;

    for (oy = 0; oy < out->h; ++oy) {
        window_rows rows;
        rows.y0 = oy * params->stride_h - params->pad_top;
        rows.ky_begin = rows.y0 < 0 ? -rows.y0 : 0;
        rows.ky_end = g.in_h - rows.y0 < kernel_h ? g.in_h - rows.y0 : kernel_h;
        for (ox = 0; ox < g.out_w; ox += 2) {
            compute_pixels(&g, rows, ox, ox + 1 < g.out_w,
                           output + (oy * g.out_w + ox) * g.out_c);
        }
    }
    return EG_OK;
}
