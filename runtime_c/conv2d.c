/*
 * conv2d.c: 2-D convolution, int8 NHWC input, int8 OHWI filter, in one or
 * more groups.
 *
 * Output pixels are computed two at a time (neighbours in a row) and
 * output channels two at a time: a 2x2 register tile (eg_dot_2x2), so each
 * input and weight loaded serves two multiply-accumulates. The two windows
 * are first copied whole into the caller's scratch (im2col: two runs of
 * kernel_h * kernel_w * in_c values), so the tile runs over contiguous
 * memory, as long as a filter, whatever the kernel size or channel count;
 * the copy costs one load and store per value for kernel_h * kernel_w *
 * out_c multiply-accumulates. A 1x1 filter's window is already contiguous
 * in NHWC: it is read in place, and the DSP kernels widen the two pixels
 * to 16 bits in the scratch once for all their filters (pointwise_pair).
 *
 * A grouped convolution runs the same tile group by group for each pixel
 * pair: the pair's windows are gathered one group's channel slice at a
 * time, and that group's filters run over the slice. Every input value of
 * a window is thus copied once per pixel pair, as for groups = 1, and the
 * scratch holds one group's slice (a 1x1 filter reads its slice in place).
 *
 * The input zero point is folded into the bias at generation time, so the
 * loops multiply raw inputs. A window that overlaps the padding must then
 * add the zero point times the weights of its padded taps: im2col simply
 * writes the zero point there.
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
    layer_stage stage;
    int8_t *im2col;          /* NULL: 1x1 windows, read in place */
    uint32_t *widened;       /* 1x1 with DSP: two pixels' slices, widened (else NULL) */
    int32_t in_h, in_w, in_c, out_c;
    int32_t kernel_h, kernel_w, stride_w, pad_left;
    int32_t groups;
    int32_t group_c;         /* in_c / groups: the channels a filter reads */
    int32_t group_out_c;     /* out_c / groups: the filters of a group */
    int32_t columns;         /* kernel_h * kernel_w * group_c: one filter */
    int8_t zero_point;       /* the value of a padded tap */
} conv_layer;

/* Window rows [y0 + ky_begin, y0 + ky_end) of output row oy are inside. */
typedef struct {
    int32_t y0, ky_begin, ky_end;
} window_rows;

static uint32_t bias_of(const conv_layer *g, int32_t oc)
{
    return g->bias != NULL ? (uint32_t)g->bias[oc] : 0u;
}

/* The output stage of a 2x2 tile: channels oc and oc + 1 (if
 * two_channels) of pixels out0 and out1 (if not NULL). */
static void store_tile(const conv_layer *g, const uint32_t acc[4], int32_t oc,
                       int two_channels, int8_t *out0, int8_t *out1)
{
    const layer_stage stage = g->stage;
    const int32_t k = oc * stage.step;
    int32_t multiplier = stage.multiplier[k], shift = stage.shift[k];
    out0[oc] = scaled_output(stage, multiplier, shift, wrap_int32(acc[0]));
    if (out1 != NULL) {
        out1[oc] = scaled_output(stage, multiplier, shift, wrap_int32(acc[1]));
    }
    if (two_channels) {
        multiplier = stage.multiplier[k + stage.step];
        shift = stage.shift[k + stage.step];
        out0[oc + 1] = scaled_output(stage, multiplier, shift, wrap_int32(acc[2]));
        if (out1 != NULL) {
            out1[oc + 1] = scaled_output(stage, multiplier, shift, wrap_int32(acc[3]));
        }
    }
}

/* The channels [first, first + group_out_c) of two pixels whose windows
 * (one group's slice) are x0 and x0 + dx (`columns` values each). out1
 * NULL: one pixel (its twin's results are dropped). Channels go in pairs;
 * an odd count ends with a pair that overlaps the one before, a single
 * channel pairs with itself. With dx == columns (the im2col scratch) the
 * windows and the filters of a pair lie the same distance apart:
 * eg_dot_2x2_stacked. */
static void pixel_pair(const conv_layer *g, const int8_t *x0, int32_t dx, int32_t first,
                       int8_t *out0, int8_t *out1)
{
    const int32_t n = g->columns;
    const int32_t end = first + g->group_out_c;
    int32_t next = first;
    if (g->group_out_c == 1) {
        const int8_t *f = g->filter + first * n;
        uint32_t acc[4];
        acc[0] = acc[1] = acc[2] = acc[3] = bias_of(g, first);
        eg_dot_2x2(x0, x0 + dx, f, f, n, acc);
        store_tile(g, acc, first, 0, out0, out1);
        return;
    }
    while (next < end) {
        const int32_t oc = next < end - 2 ? next : end - 2;
        const int8_t *f0 = g->filter + oc * n;
        uint32_t acc[4];
        acc[0] = acc[1] = bias_of(g, oc);
        acc[2] = acc[3] = bias_of(g, oc + 1);
        if (dx == n) {
            eg_dot_2x2_stacked(x0, f0, n, acc);
        } else {
            eg_dot_2x2(x0, x0 + dx, f0, f0 + n, n, acc);
        }
        store_tile(g, acc, oc, 1, out0, out1);
        next = oc + 2;
    }
}

#if EG_USE_DSP
/* The first n & ~3 values of pixels x0 and x1 widened for SMLAD, four
 * words per four values i..i+3: x0's i and i + 2 (SXTB16), x0's i + 1 and
 * i + 3, then x1's two. Done once per pixel pair, it spares every filter
 * of the pair the widening of its inputs. */
static void widen_pair(const int8_t *x0, const int8_t *x1, int32_t n, uint32_t *dst)
{
    int32_t i;
    for (i = 0; i + 4 <= n; i += 4) {
        const uint32_t a = eg_load4(x0 + i), b = eg_load4(x1 + i);
        dst[0] = eg_sxtb16(a);
        dst[1] = eg_sxtb16_ror8(a);
        dst[2] = eg_sxtb16(b);
        dst[3] = eg_sxtb16_ror8(b);
        dst += 4;
    }
}

#if defined(__ARM_FEATURE_DSP) && !defined(EG_DSP_EMULATE) && defined(__GNUC__) && \
    defined(__OPTIMIZE__) && !defined(EG_NO_INLINE_ASM)
/* widened_dot on a core with the DSP extension, as assembly: GCC 12 keeps
 * a pointer of the C loop below on the stack (22 instructions per four
 * values); here the fourteen values of the loop fill r0-r12 and lr, and a
 * step is two LDRDs of widened inputs, two weight loads, four SXTB16s,
 * eight SMLADs and the loop test: 18 instructions for 16 products. A build
 * that keeps a frame pointer (-fno-omit-frame-pointer: r7 taken, GCC
 * reports impossible constraints here) defines EG_NO_INLINE_ASM to get the
 * C loop, which computes the same values. */
static void widened_dot(const uint32_t *xw, const int8_t *f, int32_t n, int32_t whole,
                        uint32_t acc[4])
{
    uint32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    uint32_t p0_even, p0_odd, p1_even, p1_odd, w_even, w_odd;
    const int8_t *end = f + whole;
    if (whole == 0) {
        return;
    }
    __asm__("1:\n\t"
            "ldrd %[p0e], %[p0o], [%[xw]], #16\n\t"
            "ldrd %[p1e], %[p1o], [%[xw], #-8]\n\t"
            "ldr %[wo], [%[f], %[n]]\n\t"
            "sxtb16 %[we], %[wo]\n\t"
            "sxtb16 %[wo], %[wo], ror #8\n\t"
            "smlad %[a10], %[we], %[p0e], %[a10]\n\t"
            "smlad %[a10], %[wo], %[p0o], %[a10]\n\t"
            "smlad %[a11], %[we], %[p1e], %[a11]\n\t"
            "smlad %[a11], %[wo], %[p1o], %[a11]\n\t"
            "ldr %[wo], [%[f]], #4\n\t"
            "sxtb16 %[we], %[wo]\n\t"
            "sxtb16 %[wo], %[wo], ror #8\n\t"
            "smlad %[a00], %[we], %[p0e], %[a00]\n\t"
            "smlad %[a00], %[wo], %[p0o], %[a00]\n\t"
            "smlad %[a01], %[we], %[p1e], %[a01]\n\t"
            "smlad %[a01], %[wo], %[p1o], %[a01]\n\t"
            "cmp %[f], %[end]\n\t"
            "bne 1b"
            : [xw] "+r"(xw), [f] "+r"(f), [a00] "+r"(a00), [a01] "+r"(a01),
              [a10] "+r"(a10), [a11] "+r"(a11), [p0e] "=&r"(p0_even), [p0o] "=&r"(p0_odd),
              [p1e] "=&r"(p1_even), [p1o] "=&r"(p1_odd), [we] "=&r"(w_even),
              [wo] "=&r"(w_odd)
            : [n] "r"(n), [end] "r"(end)
            : "cc", "memory");
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}
#else
/* acc[2 * f + p] += the products of filter f (at f, f + n) and pixel p over
 * the first `whole` (a multiple of four) values, the pixels' values
 * widened (widen_pair): per four values two weight words and their
 * widening, eight SMLADs. */
static void widened_dot(const uint32_t *xw, const int8_t *f, int32_t n, int32_t whole,
                        uint32_t acc[4])
{
    uint32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const int8_t *end = f + whole;
    while (f != end) {
        const uint32_t w0 = eg_load4(f), w1 = eg_load4(f + n);
        const uint32_t w0_even = eg_sxtb16(w0), w0_odd = eg_sxtb16_ror8(w0);
        const uint32_t w1_even = eg_sxtb16(w1), w1_odd = eg_sxtb16_ror8(w1);
        a00 = eg_smlad(w0_odd, xw[1], eg_smlad(w0_even, xw[0], a00));
        a01 = eg_smlad(w0_odd, xw[3], eg_smlad(w0_even, xw[2], a01));
        a10 = eg_smlad(w1_odd, xw[1], eg_smlad(w1_even, xw[0], a10));
        a11 = eg_smlad(w1_odd, xw[3], eg_smlad(w1_even, xw[2], a11));
        xw += 4;
        f += 4;
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}
#endif

/* eg_dot_2x2 of pixels x0, x1 with filters f0, f0 + n: the first n & ~3
 * values from their widened form xw, the rest as they are. */
static void pointwise_dot(const uint32_t *xw, const int8_t *x0, const int8_t *x1,
                          const int8_t *f0, int32_t n, uint32_t acc[4])
{
    const int32_t whole = n & ~3;
    widened_dot(xw, f0, n, whole, acc);
    if (whole != n) {
        eg_dot_2x2(x0 + whole, x1 + whole, f0 + whole, f0 + n + whole, n - whole, acc);
    }
}
#else
static void pointwise_dot(const uint32_t *xw, const int8_t *x0, const int8_t *x1,
                          const int8_t *f0, int32_t n, uint32_t acc[4])
{
    (void)xw;
    eg_dot_2x2(x0, x1, f0, f0 + n, n, acc);
}
#endif

/* 1x1 filters: the channels [first, first + group_out_c) (at least two) of
 * pixels x0 and x0 + dx, read in place (with DSP, widened once into the
 * scratch). The tile of pixel_pair, with the layer's fields and its output
 * stage in locals for the whole channel loop: the tile's overhead weighs
 * as much as its products in a 1x1 layer's short filters. */
static EG_NOINLINE void pointwise_pair(const conv_layer *g, const int8_t *x0, int32_t dx,
                                       int32_t first, int8_t *out0, int8_t *out1)
{
    const int32_t n = g->columns;
    const int32_t last = first + g->group_out_c - 2; /* the last pair's first channel */
    const int8_t *x1 = x0 + dx;
    const int8_t *filter = g->filter;
    const int32_t *bias = g->bias;
    const uint32_t *xw = g->widened;
    const layer_stage stage = g->stage;
    int32_t oc = first;
    if (out1 == NULL) {
        out1 = out0; /* dx is 0: the twin's outputs are the pixel's own */
    }
#if EG_USE_DSP
    widen_pair(x0, x1, n, g->widened);
#endif
    for (;;) {
        const int32_t k = oc * stage.step;
        uint32_t acc[4];
        acc[0] = acc[1] = bias != NULL ? (uint32_t)bias[oc] : 0u;
        acc[2] = acc[3] = bias != NULL ? (uint32_t)bias[oc + 1] : 0u;
        /* both channels' constants before any int8_t store (which could
         * alias them), each serving its channel's two outputs */
        const int32_t m0 = stage.multiplier[k], s0 = stage.shift[k];
        const int32_t m1 = stage.multiplier[k + stage.step], s1 = stage.shift[k + stage.step];
        pointwise_dot(xw, x0, x1, filter + oc * n, n, acc);
        out0[oc] = scaled_output(stage, m0, s0, wrap_int32(acc[0]));
        out1[oc] = scaled_output(stage, m0, s0, wrap_int32(acc[1]));
        out0[oc + 1] = scaled_output(stage, m1, s1, wrap_int32(acc[2]));
        out1[oc + 1] = scaled_output(stage, m1, s1, wrap_int32(acc[3]));
        if (oc == last) {
            return;
        }
        /* an odd count ends with a pair that overlaps the one before */
        oc = oc + 2 < last ? oc + 2 : last;
    }
}

/* dst[i] = src[i] for i < n; word by word where the core allows
 * unaligned access. */
static void copy_values(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i = 0;
#if EG_USE_DSP
    for (; i + 4 <= n; i += 4) {
        eg_store4(dst + i, eg_load4(src + i));
    }
#endif
    for (; i < n; ++i) {
        dst[i] = src[i];
    }
}

/* `taps` input pixels from src (in_c apart) into dst, group_c values each
 * (the channel slice src starts at), one after the other. */
static void copy_taps(const conv_layer *g, int8_t *dst, const int8_t *src, int32_t taps)
{
    int32_t k;
    if (g->groups == 1) {
        copy_values(dst, src, taps * g->in_c); /* the slice is the whole pixel */
        return;
    }
    for (k = 0; k < taps; ++k) {
        copy_values(dst + k * g->group_c, src + k * g->in_c, g->group_c);
    }
}

/* Window of output pixel (rows, ox), its channels [channel, channel +
 * group_c), into dst: kernel_h * kernel_w * group_c values, the zero point
 * at padded taps (which cancels their share of the folded bias). */
static void gather_window(const conv_layer *g, window_rows rows, int32_t ox,
                          int32_t channel, int8_t *dst)
{
    const int32_t run = g->kernel_w * g->group_c;
    const int32_t x0 = ox * g->stride_w - g->pad_left;
    const int32_t kx_begin = x0 < 0 ? -x0 : 0;
    const int32_t kx_end = g->in_w - x0 < g->kernel_w ? g->in_w - x0 : g->kernel_w;
    const int32_t before = kx_begin * g->group_c;
    const int32_t inside = (kx_end - kx_begin) * g->group_c;
    int32_t ky, i;
    for (ky = 0; ky < g->kernel_h; ++ky) {
        if (ky < rows.ky_begin || ky >= rows.ky_end) {
            for (i = 0; i < run; ++i) {
                dst[i] = g->zero_point;
            }
        } else {
            /* The in-bounds part of a window row is contiguous in NHWC. */
            const int8_t *src =
                g->input + ((rows.y0 + ky) * g->in_w + x0 + kx_begin) * g->in_c + channel;
            for (i = 0; i < before; ++i) {
                dst[i] = g->zero_point;
            }
            copy_taps(g, dst + before, src, kx_end - kx_begin);
            for (i = before + inside; i < run; ++i) {
                dst[i] = g->zero_point;
            }
        }
        dst += run;
    }
}

/* Output pixels ox and ox + 1 (if pair) of one output row. */
static void compute_pixels(const conv_layer *g, window_rows rows, int32_t ox, int pair,
                           int8_t *out0)
{
    int8_t *out1 = pair ? out0 + g->out_c : NULL;
    int32_t group;
    for (group = 0; group < g->groups; ++group) {
        const int32_t channel = group * g->group_c, first = group * g->group_out_c;
        if (g->im2col != NULL) {
            /* A pixel without a twin is gathered twice: the tile reads both. */
            gather_window(g, rows, ox, channel, g->im2col);
            gather_window(g, rows, pair ? ox + 1 : ox, channel, g->im2col + g->columns);
            pixel_pair(g, g->im2col, g->columns, first, out0, out1);
        } else {
            /* 1x1: no padding (it is < the kernel size), the window is the pixel */
            const int8_t *x0 =
                g->input + (rows.y0 * g->in_w + ox * g->stride_w) * g->in_c + channel;
            const int32_t dx = pair ? g->stride_w * g->in_c : 0;
            if (g->group_out_c >= 2) {
                pointwise_pair(g, x0, dx, first, out0, out1);
            } else {
                pixel_pair(g, x0, dx, first, out0, out1);
            }
        }
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
    int pointwise;

    if (input == NULL || in == NULL || filter == NULL || params == NULL ||
        requant == NULL || output == NULL || out == NULL) {
        return EG_ERR_ARG;
    }
    if (!conv_geometry_ok(in, out, kernel_h, kernel_w, params) ||
        !conv_groups_ok(in, out, params)) {
        return EG_ERR_ARG;
    }
    if (!requant_ok(requant, out->c)) {
        return EG_ERR_ARG;
    }
    needed = EG_CONV2D_S8_SCRATCH_BYTES((int64_t)kernel_h, (int64_t)kernel_w,
                                        (int64_t)(in->c / params->groups));
    pointwise = kernel_h == 1 && kernel_w == 1;
    if (needed > 0 && (scratch == NULL || scratch_bytes < needed)) {
        return EG_ERR_ARG;
    }

    g.input = input;
    g.filter = filter;
    g.bias = bias;
    g.stage = layer_stage_of(requant);
    g.im2col = needed > 0 && !pointwise ? (int8_t *)scratch : NULL;
    /* the widened pixels are read as words: the first 4-byte boundary */
    g.widened = needed > 0 && pointwise && EG_USE_DSP
                    ? (uint32_t *)(void *)((uint8_t *)scratch +
                                           ((4u - ((uintptr_t)scratch & 3u)) & 3u))
                    : NULL;
    g.in_h = in->h;
    g.in_w = in->w;
    g.in_c = in->c;
    g.out_c = out->c;
    g.kernel_h = kernel_h;
    g.kernel_w = kernel_w;
    g.stride_w = params->stride_w;
    g.pad_left = params->pad_left;
    g.groups = params->groups;
    g.group_c = in->c / params->groups;
    g.group_out_c = out->c / params->groups;
    g.columns = kernel_h * kernel_w * g.group_c;
    g.zero_point = (int8_t)(-params->input_offset);

    for (oy = 0; oy < out->h; ++oy) {
        window_rows rows;
        rows.y0 = oy * params->stride_h - params->pad_top;
        rows.ky_begin = rows.y0 < 0 ? -rows.y0 : 0;
        rows.ky_end = g.in_h - rows.y0 < kernel_h ? g.in_h - rows.y0 : kernel_h;
        for (ox = 0; ox < out->w; ox += 2) {
            compute_pixels(&g, rows, ox, ox + 1 < out->w,
                           output + (oy * out->w + ox) * g.out_c);
        }
    }
    return EG_OK;
}
