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

/* Four channels' accumulators. */
typedef struct {
    uint32_t a0, a1, a2, a3;
} four_sums;

static inline four_sums four_biases(const int32_t *bias, int32_t oc)
{
    four_sums s;
    s.a0 = bias != NULL ? (uint32_t)bias[oc] : 0u;
    s.a1 = bias != NULL ? (uint32_t)bias[oc + 1] : 0u;
    s.a2 = bias != NULL ? (uint32_t)bias[oc + 2] : 0u;
    s.a3 = bias != NULL ? (uint32_t)bias[oc + 3] : 0u;
    return s;
}

/* One tap of four channels, depth multiplier 1: the four inputs at px
 * times the four weights at pw, lane by lane. With the DSP extension both
 * are one word, widened by SXTB16 (bytes 0, 2 and 1, 3) and multiplied by
 * SMLABB/SMLATT. */
static inline four_sums tap_four(four_sums s, const int8_t *px, const int8_t *pw)
{
#if EG_USE_DSP
    const uint32_t x = eg_load4(px), w = eg_load4(pw);
    const uint32_t x_even = eg_sxtb16(x), w_even = eg_sxtb16(w);
    const uint32_t x_odd = eg_sxtb16_ror8(x), w_odd = eg_sxtb16_ror8(w);
    s.a0 = eg_smlabb(x_even, w_even, s.a0);
    s.a2 = eg_smlatt(x_even, w_even, s.a2);
    s.a1 = eg_smlabb(x_odd, w_odd, s.a1);
    s.a3 = eg_smlatt(x_odd, w_odd, s.a3);
#else
    s.a0 = eg_mac(s.a0, px[0], pw[0]);
    s.a1 = eg_mac(s.a1, px[1], pw[1]);
    s.a2 = eg_mac(s.a2, px[2], pw[2]);
    s.a3 = eg_mac(s.a3, px[3], pw[3]);
#endif
    return s;
}

/* One padded tap of four channels: the zero point (zp_pair: in both
 * halfwords, for SMLABB/SMLATT; zp: itself) times the four weights at pw. */
static inline four_sums padded_tap_four(four_sums s, uint32_t zp_pair, int8_t zp, const int8_t *pw)
{
#if EG_USE_DSP
    const uint32_t w = eg_load4(pw);
    const uint32_t w_even = eg_sxtb16(w), w_odd = eg_sxtb16_ror8(w);
    (void)zp;
    s.a0 = eg_smlabb(zp_pair, w_even, s.a0);
    s.a2 = eg_smlatt(zp_pair, w_even, s.a2);
    s.a1 = eg_smlabb(zp_pair, w_odd, s.a1);
    s.a3 = eg_smlatt(zp_pair, w_odd, s.a3);
#else
    (void)zp_pair;
    s.a0 = eg_mac(s.a0, zp, pw[0]);
    s.a1 = eg_mac(s.a1, zp, pw[1]);
    s.a2 = eg_mac(s.a2, zp, pw[2]);
    s.a3 = eg_mac(s.a3, zp, pw[3]);
#endif
    return s;
}

/* Channels whose accumulators a pixel computes before their output stage:
 * a block of them (DW_BLOCK * 4 bytes of stack) lets the tap loops and the
 * output stage each keep their own values in registers. A multiple of 4. */
#define DW_BLOCK 32

/* The four accumulators of s into acc[j, j + 4). */
static inline void keep_four(four_sums s, uint32_t *acc)
{
    acc[0] = s.a0;
    acc[1] = s.a1;
    acc[2] = s.a2;
    acc[3] = s.a3;
}

/* The output stage of channels [oc, oc + n) from their accumulators. */
static EG_NOINLINE void output_block(const layer_stage *stage, int32_t oc, const uint32_t *acc,
                                     int32_t n, int8_t *out)
{
    const layer_stage st = *stage; /* in locals across the output stores */
    int32_t j;
    for (j = 0; j < n; ++j) {
        out[oc + j] = layer_output(st, oc + j, wrap_int32(acc[j]));
    }
}

/* The channels of a pixel's block [oc, oc + n) (n <= DW_BLOCK). */
static int32_t block_length(int32_t oc, int32_t channels)
{
    return channels - oc < DW_BLOCK ? channels - oc : DW_BLOCK;
}

#if EG_USE_DSP && defined(__ARM_FEATURE_DSP) && !defined(EG_DSP_EMULATE) && defined(__GNUC__)
/* One tap in assembly (window_3x3_four): the words at px + offset and
 * pw + offset, widened and multiplied lane by lane as tap_four does. */
#define EG_DW_TAP(offset)                                   \
    "ldr %[x], [%[px]" offset "]\n\t"                       \
    "ldr %[w], [%[pw]" offset "]\n\t"                       \
    "sxtb16 %[x_lanes], %[x]\n\t"                           \
    "sxtb16 %[w_lanes], %[w]\n\t"                           \
    "smlabb %[a0], %[x_lanes], %[w_lanes], %[a0]\n\t"       \
    "smlatt %[a2], %[x_lanes], %[w_lanes], %[a2]\n\t"       \
    "sxtb16 %[x], %[x], ror #8\n\t"                         \
    "sxtb16 %[w], %[w], ror #8\n\t"                         \
    "smlabb %[a1], %[x], %[w], %[a1]\n\t"                   \
    "smlatt %[a3], %[x], %[w], %[a3]\n\t"
#define EG_DW_ROW EG_DW_TAP("") EG_DW_TAP(", %[c]") EG_DW_TAP(", %[c2]")
#define EG_DW_NEXT_ROW                                      \
    "add %[px], %[px], %[x_row]\n\t"                        \
    "add %[pw], %[pw], %[c2]\n\t"                           \
    "add %[pw], %[pw], %[c]\n\t"
#endif

/* The nine taps of a 3x3 window inside the input, four channels: px and
 * pw at the window's first tap of channel oc, channel strides c and c2 =
 * 2c, input rows x_row apart. On a DSP core compiled by GCC or Clang it is
 * one block of assembly, so that the compiler keeps its thirteen values in
 * registers (in C it spills them); the instructions are tap_four's. */
static inline four_sums window_3x3_four(four_sums s, const int8_t *px, const int8_t *pw,
                                        int32_t c, int32_t c2, int32_t x_row)
{
#if EG_USE_DSP && defined(__ARM_FEATURE_DSP) && !defined(EG_DSP_EMULATE) && defined(__GNUC__)
    uint32_t x, w, x_lanes, w_lanes;
    __asm__(EG_DW_ROW EG_DW_NEXT_ROW EG_DW_ROW EG_DW_NEXT_ROW EG_DW_ROW
            : [a0] "+r"(s.a0), [a1] "+r"(s.a1), [a2] "+r"(s.a2), [a3] "+r"(s.a3),
              [px] "+r"(px), [pw] "+r"(pw), [x] "=&r"(x), [w] "=&r"(w),
              [x_lanes] "=&r"(x_lanes), [w_lanes] "=&r"(w_lanes)
            : [c] "r"(c), [c2] "r"(c2), [x_row] "r"(x_row)
            : "memory");
#else
    int32_t ky;
    for (ky = 0; ky < 3; ++ky) {
        s = tap_four(s, px, pw);
        s = tap_four(s, px + c, pw + c);
        s = tap_four(s, px + c2, pw + c2);
        px += x_row;
        pw += c2 + c;
    }
#endif
    return s;
}

/* The accumulators of a block of channels [oc, oc + n) (n a multiple of 4)
 * of one pixel, depth multiplier 1 (in_c == out_c: inputs and weights
 * share the channel stride), x at the window's first in-bounds tap. One
 * function per kind of window, each its own call so that its loop keeps
 * its values in registers. */

/* A 3x3 window inside the input (the most common depthwise layer). */
static EG_NOINLINE void block_3x3_inside(const depthwise_layer *g, const int8_t *x,
                                         int32_t oc, int32_t n, uint32_t *acc)
{
    const int32_t channels = g->out_c, x_row = g->in_w * channels;
    const int32_t *bias = g->bias;
    const int8_t *filter = g->filter;
    int32_t j;
    for (j = 0; j < n; j += 4) {
        keep_four(window_3x3_four(four_biases(bias, oc + j), x + oc + j, filter + oc + j,
                                  channels, 2 * channels, x_row),
                  acc + j);
    }
}

/* Any window inside the input. */
static EG_NOINLINE void block_inside(const depthwise_layer *g, const int8_t *x, int32_t oc,
                                     int32_t n, uint32_t *acc)
{
    const int32_t channels = g->out_c, x_row = g->in_w * channels;
    int32_t j, ky, kx;
    for (j = 0; j < n; j += 4) {
        four_sums s = four_biases(g->bias, oc + j);
        const int8_t *row = x + oc + j, *pw = g->filter + oc + j;
        for (ky = 0; ky < g->kernel_h; ++ky) {
            const int8_t *px = row;
            for (kx = 0; kx < g->kernel_w; ++kx) {
                s = tap_four(s, px, pw);
                px += channels;
                pw += channels;
            }
            row += x_row;
        }
        keep_four(s, acc + j);
    }
}

/* A window that overlaps the padding (span s): a padded tap reads the zero
 * point, which the folded bias took away from every tap. The taps are
 * visited in order, each either inside (at its offset from x) or padded. */
static EG_NOINLINE void block_border(const depthwise_layer *g, window_span s, const int8_t *x,
                                     int32_t oc, int32_t n, uint32_t *acc)
{
    const int32_t channels = g->out_c, x_row = g->in_w * channels;
    const int8_t zp = (int8_t)g->zero_point; /* in [-128, 127] (conv_geometry_ok) */
    const uint32_t zp_pair = ((uint32_t)(uint16_t)zp) * 0x00010001u;
    const int32_t taps = g->kernel_h * g->kernel_w;
    int32_t j, t;
    for (j = 0; j < n; j += 4) {
        four_sums sums = four_biases(g->bias, oc + j);
        const int8_t *pw = g->filter + oc + j;
        const int8_t *row = x + oc + j;
        int32_t ky = 0, kx = 0;
        for (t = 0; t < taps; ++t) {
            if (ky >= s.ky_begin && ky < s.ky_end && kx >= s.kx_begin && kx < s.kx_end) {
                sums = tap_four(sums, row + (kx - s.kx_begin) * channels, pw);
            } else {
                sums = padded_tap_four(sums, zp_pair, zp, pw);
            }
            pw += channels;
            if (++kx == g->kernel_w) {
                kx = 0;
                if (ky >= s.ky_begin && ky < s.ky_end) {
                    row += x_row;
                }
                ++ky;
            }
        }
        keep_four(sums, acc + j);
    }
}

/* The taps of a window of at most LIST_TAPS taps that overlaps the
 * padding, listed once per pixel: the in-bounds taps' input and weight
 * offsets (from the window's first in-bounds tap and from the filter's
 * first tap), then the padded taps' weight offsets. */
#define LIST_TAPS 9

typedef struct {
    int32_t inside, taps;
    int32_t x_offset[LIST_TAPS];
    int32_t w_offset[LIST_TAPS];
} tap_list;

static void list_taps(const depthwise_layer *g, window_span s, tap_list *list)
{
    const int32_t channels = g->out_c, x_row = g->in_w * channels;
    int32_t ky, kx, inside = 0, padded = LIST_TAPS, w_offset = 0;
    for (ky = 0; ky < g->kernel_h; ++ky) {
        const int row_inside = ky >= s.ky_begin && ky < s.ky_end;
        for (kx = 0; kx < g->kernel_w; ++kx, w_offset += channels) {
            if (row_inside && kx >= s.kx_begin && kx < s.kx_end) {
                list->x_offset[inside] = (ky - s.ky_begin) * x_row + (kx - s.kx_begin) * channels;
                list->w_offset[inside++] = w_offset;
            } else {
                list->w_offset[--padded] = w_offset; /* from the end: order does not matter */
            }
        }
    }
    list->inside = inside;
    list->taps = g->kernel_h * g->kernel_w;
}

/* A window of at most LIST_TAPS taps that overlaps the padding, its taps
 * listed. */
static EG_NOINLINE void block_listed(const depthwise_layer *g, const tap_list *list,
                                     const int8_t *x, int32_t oc, int32_t n, uint32_t *acc)
{
    const int8_t zp = (int8_t)g->zero_point; /* in [-128, 127] (conv_geometry_ok) */
    const uint32_t zp_pair = ((uint32_t)(uint16_t)zp) * 0x00010001u;
    const int32_t padded_from = LIST_TAPS - (list->taps - list->inside);
    int32_t j, t;
    for (j = 0; j < n; j += 4) {
        four_sums sums = four_biases(g->bias, oc + j);
        const int8_t *px = x + oc + j, *pw = g->filter + oc + j;
        for (t = 0; t < list->inside; ++t) {
            sums = tap_four(sums, px + list->x_offset[t], pw + list->w_offset[t]);
        }
        for (t = padded_from; t < LIST_TAPS; ++t) {
            sums = padded_tap_four(sums, zp_pair, zp, pw + list->w_offset[t]);
        }
        keep_four(sums, acc + j);
    }
}

/* The channels below out_c rounded down to four of one pixel, depth
 * multiplier 1, a block of DW_BLOCK channels at a time: their
 * accumulators, then their output stage. */
static EG_NOINLINE void pixel_multiplier_one(const depthwise_layer *g, window_span s, int8_t *out)
{
    const int32_t channels = g->out_c, fours = channels & ~3;
    const int inside = s.ky_begin == 0 && s.ky_end == g->kernel_h && s.kx_begin == 0 &&
                       s.kx_end == g->kernel_w;
    const int inside_3x3 = inside && g->kernel_h == 3 && g->kernel_w == 3;
    const int8_t *x = g->input + ((s.y0 + s.ky_begin) * g->in_w + s.x0 + s.kx_begin) * channels;
    const int listed = !inside && g->kernel_h * g->kernel_w <= LIST_TAPS;
    tap_list list;
    uint32_t acc[DW_BLOCK];
    int32_t oc;
    if (listed) {
        list_taps(g, s, &list);
    }
    for (oc = 0; oc < fours; oc += DW_BLOCK) {
        const int32_t n = block_length(oc, fours);
        if (inside_3x3) {
            block_3x3_inside(g, x, oc, n, acc);
        } else if (inside) {
            block_inside(g, x, oc, n, acc);
        } else if (listed) {
            block_listed(g, &list, x, oc, n, acc);
        } else {
            block_border(g, s, x, oc, n, acc);
        }
        output_block(&g->stage, oc, acc, n, out);
    }
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
            oc = 0;
            if (g.multiplier == 1) {
                pixel_multiplier_one(&g, s, px_out);
                oc = out->c & ~3;
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
