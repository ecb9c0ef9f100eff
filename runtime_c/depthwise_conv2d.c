/*
 * depthwise_conv2d.c: depthwise 2-D convolution, int8 NHWC input, one
 * filter per output channel (groups = input channels, a depth multiplier
 * of output channels per input channel).
 *
 * The filter is stored [kernel_h][kernel_w][out_c] (channels innermost, as
 * TFLite's depthwise filter), so that for one tap the weights of
 * neighbouring output channels are contiguous, like their inputs in NHWC.
 * Channels are computed four at a time: each tap loads four inputs and
 * four weights and updates four accumulators held in registers.
 *
 * The input zero point is folded into the bias at generation time; a
 * window that overlaps the padding adds the zero point times the weights
 * of its padded taps (border pixels only), so padding contributes real
 * zero. Accumulators are uint32_t: int32 arithmetic modulo 2^32 without
 * signed-overflow undefined behaviour.
 */
#include <stddef.h>

#include "eg_dot.h"
#include "eg_kernel_support.h"
#include "eg_runtime.h"

/* What every part of the layer reads. */
typedef struct {
    const int8_t *input;
    const int8_t *filter;
    const int32_t *bias;
    layer_stage stage;
    int32_t in_w, in_c, out_c, multiplier;
    int32_t kernel_h, kernel_w;
    int32_t zero_point;
} depthwise_layer;

/* The in-bounds taps [ky_begin, ky_end) x [kx_begin, kx_end) of a window
 * whose top-left input position is (y0, x0). */
typedef struct {
    int32_t y0, x0, ky_begin, ky_end, kx_begin, kx_end;
} window_span;

static int32_t clip_begin(int32_t start)
{
    return start < 0 ? -start : 0;
}

static int32_t clip_end(int32_t start, int32_t kernel, int32_t length)
{
    return length - start < kernel ? length - start : kernel;
}

static uint32_t bias_at(const depthwise_layer *g, int32_t oc)
{
    return g->bias != NULL ? (uint32_t)g->bias[oc] : 0u;
}

/* The output stage of channels [oc, oc + 4). */
static void store_four(layer_stage stage, int32_t oc, uint32_t a0, uint32_t a1, uint32_t a2,
                       uint32_t a3, int8_t *out)
{
    out[oc] = layer_output(stage, oc, wrap_int32(a0));
    out[oc + 1] = layer_output(stage, oc + 1, wrap_int32(a1));
    out[oc + 2] = layer_output(stage, oc + 2, wrap_int32(a2));
    out[oc + 3] = layer_output(stage, oc + 3, wrap_int32(a3));
}

/* Output channels [oc, oc + 4) of one pixel (all four exist). */
static void four_channels(const depthwise_layer *g, window_span s, int32_t oc, int8_t *out)
{
    const int32_t m = g->multiplier;
    /* The input channel of each of the four outputs. */
    const int32_t c0 = oc / m, c1 = (oc + 1) / m, c2 = (oc + 2) / m, c3 = (oc + 3) / m;
    uint32_t a0, a1, a2, a3;
    int32_t ky, kx;
    a0 = bias_at(g, oc);
    a1 = bias_at(g, oc + 1);
    a2 = bias_at(g, oc + 2);
    a3 = bias_at(g, oc + 3);
    for (ky = 0; ky < g->kernel_h; ++ky) {
        const int row_inside = ky >= s.ky_begin && ky < s.ky_end;
        for (kx = 0; kx < g->kernel_w; ++kx) {
            const int8_t *w = g->filter + (ky * g->kernel_w + kx) * g->out_c + oc;
            if (row_inside && kx >= s.kx_begin && kx < s.kx_end) {
                const int8_t *px = g->input + ((s.y0 + ky) * g->in_w + s.x0 + kx) * g->in_c;
                a0 = eg_mac(a0, px[c0], w[0]);
                a1 = eg_mac(a1, px[c1], w[1]);
                a2 = eg_mac(a2, px[c2], w[2]);
                a3 = eg_mac(a3, px[c3], w[3]);
            } else {
                /* a padded tap reads the zero point */
                a0 += (uint32_t)g->zero_point * (uint32_t)(int32_t)w[0];
                a1 += (uint32_t)g->zero_point * (uint32_t)(int32_t)w[1];
                a2 += (uint32_t)g->zero_point * (uint32_t)(int32_t)w[2];
                a3 += (uint32_t)g->zero_point * (uint32_t)(int32_t)w[3];
            }
        }
    }
    store_four(g->stage, oc, a0, a1, a2, a3, out);
}

/* Output channels [oc, oc + 4) of one pixel whose window lies inside the
 * input, depth multiplier 1: per tap, four inputs and four weights lie
 * together (with the DSP extension, one word each, widened by SXTB16 and
 * multiplied lane by lane with SMLABB/SMLATT). */
static void four_inside(const depthwise_layer *g, const int8_t *window, int32_t oc, int8_t *out)
{
    const layer_stage stage = g->stage; /* in locals across the output stores */
    const int8_t *row = window + oc;
    const int8_t *w = g->filter + oc;
    const int32_t in_row = g->in_w * g->in_c;
    uint32_t a0, a1, a2, a3;
    int32_t ky, kx;
    a0 = bias_at(g, oc);
    a1 = bias_at(g, oc + 1);
    a2 = bias_at(g, oc + 2);
    a3 = bias_at(g, oc + 3);
    for (ky = 0; ky < g->kernel_h; ++ky) {
        const int8_t *px = row;
        for (kx = 0; kx < g->kernel_w; ++kx) {
#if EG_USE_DSP
            const uint32_t x = eg_load4(px), v = eg_load4(w);
            const uint32_t x_even = eg_sxtb16(x), v_even = eg_sxtb16(v);
            const uint32_t x_odd = eg_sxtb16_ror8(x), v_odd = eg_sxtb16_ror8(v);
            a0 = eg_smlabb(x_even, v_even, a0);
            a2 = eg_smlatt(x_even, v_even, a2);
            a1 = eg_smlabb(x_odd, v_odd, a1);
            a3 = eg_smlatt(x_odd, v_odd, a3);
#else
            a0 = eg_mac(a0, px[0], w[0]);
            a1 = eg_mac(a1, px[1], w[1]);
            a2 = eg_mac(a2, px[2], w[2]);
            a3 = eg_mac(a3, px[3], w[3]);
#endif
            px += g->in_c;
            w += g->out_c;
        }
        row += in_row;
    }
    store_four(stage, oc, a0, a1, a2, a3, out);
}

/* Output channel oc of one pixel. */
static void one_channel(const depthwise_layer *g, window_span s, int32_t oc, int8_t *out)
{
    const int32_t c = oc / g->multiplier;
    uint32_t acc = bias_at(g, oc);
    int32_t ky, kx;
    for (ky = 0; ky < g->kernel_h; ++ky) {
        for (kx = 0; kx < g->kernel_w; ++kx) {
            const int8_t w = g->filter[(ky * g->kernel_w + kx) * g->out_c + oc];
            if (ky >= s.ky_begin && ky < s.ky_end && kx >= s.kx_begin && kx < s.kx_end) {
                acc = eg_mac(acc, g->input[((s.y0 + ky) * g->in_w + s.x0 + kx) * g->in_c + c], w);
            } else {
                acc += (uint32_t)g->zero_point * (uint32_t)(int32_t)w;
            }
        }
    }
    out[oc] = layer_output(g->stage, oc, wrap_int32(acc));
}

eg_status eg_depthwise_conv2d_s8(const int8_t *input, const eg_shape *in,
                                 const int8_t *filter, int32_t kernel_h, int32_t kernel_w,
                                 const int32_t *bias, const eg_conv_params *params,
                                 const eg_requant *requant,
                                 void *scratch, int32_t scratch_bytes,
                                 int8_t *output, const eg_shape *out)
{
    depthwise_layer g;
    int32_t oy, ox, oc;

    (void)scratch; /* none needed: the signature of every convolution kernel */
    (void)scratch_bytes;
    if (input == NULL || in == NULL || filter == NULL || params == NULL ||
        requant == NULL || output == NULL || out == NULL) {
        return EG_ERR_ARG;
    }
    if (!shape_ok(in) || !shape_ok(out) || out->c % in->c != 0) {
        return EG_ERR_ARG;
    }
    /* The geometry checks of a convolution whose filter sees one channel. */
    {
        eg_shape one_channel_in = *in;
        one_channel_in.c = 1;
        if (!conv_geometry_ok(&one_channel_in, out, kernel_h, kernel_w, params) ||
            (int64_t)kernel_h * kernel_w * out->c > INT32_MAX) {
            return EG_ERR_ARG;
        }
    }
    if (!requant_ok(requant, out->c)) {
        return EG_ERR_ARG;
    }

    g.input = input;
    g.filter = filter;
    g.bias = bias;
    g.stage = layer_stage_of(requant);
    g.in_w = in->w;
    g.in_c = in->c;
    g.out_c = out->c;
    g.multiplier = out->c / in->c;
    g.kernel_h = kernel_h;
    g.kernel_w = kernel_w;
    g.zero_point = -params->input_offset;

    for (oy = 0; oy < out->h; ++oy) {
        window_span s;
        s.y0 = oy * params->stride_h - params->pad_top;
        s.ky_begin = clip_begin(s.y0);
        s.ky_end = clip_end(s.y0, kernel_h, in->h);
        for (ox = 0; ox < out->w; ++ox) {
            int8_t *px_out = output + (oy * out->w + ox) * out->c;
            s.x0 = ox * params->stride_w - params->pad_left;
            s.kx_begin = clip_begin(s.x0);
            s.kx_end = clip_end(s.x0, kernel_w, in->w);
            const int inside = s.ky_begin == 0 && s.ky_end == kernel_h &&
                               s.kx_begin == 0 && s.kx_end == kernel_w;
            oc = 0;
            if (inside && g.multiplier == 1) {
                const int8_t *window = input + (s.y0 * in->w + s.x0) * in->c;
                for (; oc + 4 <= out->c; oc += 4) {
                    four_inside(&g, window, oc, px_out);
                }
            }
            for (; oc + 4 <= out->c; oc += 4) {
                four_channels(&g, s, oc, px_out);
            }
            for (; oc < out->c; ++oc) {
                one_channel(&g, s, oc, px_out);
            }
        }
    }
    return EG_OK;
}
