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
 * With a depth multiplier of 1 (the layer of MobileNets and DS-CNNs), a
 * group of four channels (a quad) sweeps the whole output before the
 * next, and each pixel's four outputs go from the accumulators straight
 * to the output stage. Each output row is three runs: windows over the
 * left padding, windows inside the input (3x3: one block of assembly on a
 * DSP core), windows over the right padding. With the DSP extension, a
 * scratch of EG_DEPTHWISE_CONV2D_S8_SCRATCH_BYTES lets a quad widen its
 * weights to 16 bits once for all its pixels (a tap then costs one input
 * word, its widening and four multiply-accumulates); without, each tap
 * widens its weights as it goes. Other depth multipliers, and the last
 * out_c % 4 channels, go pixel by pixel.
 *
 * The input zero point is folded into the bias at generation time; a
 * window that overlaps the padding adds the zero point times the weights
 * of its padded taps (border pixels only), so padding contributes real
 * zero. With the DSP extension a quad adds, to such a window, the zero
 * point times all its weights (once per quad) and takes (x - zp) * w over
 * the in-bounds taps only. Accumulators are uint32_t: int32 arithmetic
 * modulo 2^32 without signed-overflow undefined behaviour.
 *
 * Frames are kept small (the deepest stack of an inference is the sum of
 * the frames along its deepest call chain): the arguments are checked in
 * a function of their own, and the layer's fields live in one struct.
 */
#include <stddef.h>

#include "eg_dot.h"
#include "eg_kernel_support.h"
#include "eg_runtime.h"

/* What every part of the layer reads. */
typedef struct {
    const int8_t *input;
    const int8_t *filter;
    const int32_t *bias;        /* NULL: all zero */
    layer_stage stage;
    uint32_t *widened;          /* a quad's widened weights (DSP, in the scratch), or NULL */
    int32_t in_h, in_w, in_c;
    int32_t channels;           /* out_c */
    int32_t multiplier;         /* out_c / in_c */
    int32_t kernel_h, kernel_w;
    int32_t zero_point;         /* the value of a padded tap, in [-128, 127] */
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

/* Four channels' accumulators. */
typedef struct {
    uint32_t a0, a1, a2, a3;
} four_sums;

/* The biases of a quad whose layer has none. */
static const int32_t no_biases[4] = {0, 0, 0, 0};

/* The output stage of channels [oc, oc + 4) of one pixel, any stage. */
static EG_ALWAYS_INLINE void store_four(const layer_stage *stage, int32_t oc,
                                        const four_sums *s, int8_t *out)
{
    const layer_stage st = *stage; /* in locals across the output stores */
    const four_sums a = *s;
    out[oc] = layer_output(st, oc, wrap_int32(a.a0));
    out[oc + 1] = layer_output(st, oc + 1, wrap_int32(a.a1));
    out[oc + 2] = layer_output(st, oc + 2, wrap_int32(a.a2));
    out[oc + 3] = layer_output(st, oc + 3, wrap_int32(a.a3));
}

/* ---- any depth multiplier: pixel by pixel ---------------------------- */

/* Output channel oc of one pixel. */
static inline int8_t one_channel(const depthwise_layer *g, const window_span *s, int32_t oc)
{
    const int32_t c = oc / g->multiplier;
    uint32_t acc = bias_at(g, oc);
    int32_t ky, kx;
    for (ky = 0; ky < g->kernel_h; ++ky) {
        for (kx = 0; kx < g->kernel_w; ++kx) {
            const int8_t w = g->filter[(ky * g->kernel_w + kx) * g->channels + oc];
            if (ky >= s->ky_begin && ky < s->ky_end && kx >= s->kx_begin && kx < s->kx_end) {
                acc = eg_mac(acc, g->input[((s->y0 + ky) * g->in_w + s->x0 + kx) * g->in_c + c],
                             w);
            } else {
                /* a padded tap reads the zero point */
                acc += (uint32_t)g->zero_point * (uint32_t)(int32_t)w;
            }
        }
    }
    return layer_output(g->stage, oc, wrap_int32(acc));
}

/* Channels [first, out_c) of every output pixel, one at a time (a depth
 * multiplier other than 1, or the channels after the last quad). */
static EG_ALWAYS_INLINE void pixel_sweep(const depthwise_layer *g,
                                         const eg_conv_params *params, const eg_shape *out,
                                         int32_t first, int8_t *output)
{
    int32_t oy, ox, oc;
    for (oy = 0; oy < out->h; ++oy) {
        window_span s;
        s.y0 = oy * params->stride_h - params->pad_top;
        s.ky_begin = clip_begin(s.y0);
        s.ky_end = clip_end(s.y0, g->kernel_h, g->in_h);
        for (ox = 0; ox < out->w; ++ox) {
            int8_t *px_out = output + (oy * out->w + ox) * g->channels;
            s.x0 = ox * params->stride_w - params->pad_left;
            s.kx_begin = clip_begin(s.x0);
            s.kx_end = clip_end(s.x0, g->kernel_w, g->in_w);
            for (oc = first; oc < g->channels; ++oc) {
                px_out[oc] = one_channel(g, &s, oc);
            }
        }
    }
}

/* ---- depth multiplier 1: a quad of channels at a time ---------------- */

/* A quad's plain output stage, read once per quad: each channel's
 * multiplier and k = -2 - shift (rq_scale_right). */
typedef struct {
    int32_t multiplier[4];
    int32_t k[4];
} quad_stage;

static EG_ALWAYS_INLINE void quad_stage_of(const layer_stage *stage, int32_t oc, quad_stage *q)
{
    const int32_t step = stage->step;
    int32_t j;
    for (j = 0; j < 4; ++j) {
        q->multiplier[j] = stage->multiplier[(oc + j) * step];
        q->k[j] = -2 - stage->shift[(oc + j) * step];
    }
}

/* The outputs of quad oc of one pixel: out[oc], ..., out[oc + 3]. A plain
 * stage here, from its constants in q; any other in store_four. */
static EG_ALWAYS_INLINE void store_quad(const layer_stage *stage, const quad_stage *q,
                                        int32_t oc, four_sums s, int8_t *out)
{
    if (stage->plain) {
        const eg_rounding rounding = EG_STAGE_ROUNDING(*stage);
        const int32_t offset = stage->offset;
        out += oc;
        out[0] = plain_output(wrap_int32(s.a0), q->multiplier[0], q->k[0], rounding, offset);
        out[1] = plain_output(wrap_int32(s.a1), q->multiplier[1], q->k[1], rounding, offset);
        out[2] = plain_output(wrap_int32(s.a2), q->multiplier[2], q->k[2], rounding, offset);
        out[3] = plain_output(wrap_int32(s.a3), q->multiplier[3], q->k[3], rounding, offset);
    } else {
        store_four(stage, oc, &s, out);
    }
}

/* The biases of quad oc (pointing at four values). */
static inline four_sums quad_biases(const int32_t *bias)
{
    four_sums s;
    s.a0 = (uint32_t)bias[0];
    s.a1 = (uint32_t)bias[1];
    s.a2 = (uint32_t)bias[2];
    s.a3 = (uint32_t)bias[3];
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

#if EG_DSP_ASM
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
#define EG_DW_ROW EG_DW_TAP("") EG_DW_TAP(", %[c]") EG_DW_TAP(", %[c], lsl #1")
#define EG_DW_NEXT_ROW                                      \
    "add %[px], %[px], %[x_row]\n\t"                        \
    "add %[pw], %[pw], %[c], lsl #1\n\t"                    \
    "add %[pw], %[pw], %[c]\n\t"
#endif

/* The nine taps of a 3x3 window inside the input, four channels: px and
 * pw at the window's first tap of the quad, channel stride c, input rows
 * x_row apart. On a DSP core, one block of assembly (10 instructions a
 * tap), so that the compiler keeps its values in registers; the
 * instructions are tap_four's. */
static inline four_sums window_3x3_four(four_sums s, const int8_t *px, const int8_t *pw,
                                        int32_t c, int32_t x_row)
{
#if EG_DSP_ASM
    uint32_t x, w, x_lanes, w_lanes;
    __asm__(EG_DW_ROW EG_DW_NEXT_ROW EG_DW_ROW EG_DW_NEXT_ROW EG_DW_ROW
            : [a0] "+r"(s.a0), [a1] "+r"(s.a1), [a2] "+r"(s.a2), [a3] "+r"(s.a3),
              [px] "+r"(px), [pw] "+r"(pw), [x] "=&r"(x), [w] "=&r"(w),
              [x_lanes] "=&r"(x_lanes), [w_lanes] "=&r"(w_lanes)
            : [c] "r"(c), [x_row] "r"(x_row)
            : "memory");
#else
    const int32_t c2 = 2 * c, c3 = 3 * c;
    int32_t ky;
    for (ky = 0; ky < 3; ++ky) {
        s = tap_four(s, px, pw);
        s = tap_four(s, px + c, pw + c);
        s = tap_four(s, px + c2, pw + c2);
        px += x_row;
        pw += c3;
    }
#endif
    return s;
}

#if EG_USE_DSP
/* The weights of each tap t of a quad (pw: the quad's first weight),
 * widened: w[2t] bytes 0 and 2 (the quad's channels 0 and 2), w[2t + 1]
 * bytes 1 and 3. */
static void widen_quad(const int8_t *pw, int32_t channels, int32_t taps, uint32_t *w)
{
    int32_t t;
    for (t = 0; t < taps; ++t, pw += channels) {
        const uint32_t word = eg_load4(pw);
        w[2 * t] = eg_sxtb16(word);
        w[2 * t + 1] = eg_sxtb16_ror8(word);
    }
}

/* What the folded bias took away from every window of a quad for the zero
 * point: zp times the sum of each channel's weights over all `taps` taps
 * (pw: the quad's first weight). A window that overlaps the padding
 * starts from the biases plus these, and takes (x - zp) * w over its
 * in-bounds taps only: its padded taps then contribute nothing. */
static four_sums quad_zero_point_sums(const int8_t *pw, int32_t channels, int32_t taps,
                                      uint32_t zp_pair)
{
    four_sums z;
    int32_t t;
    z.a0 = z.a1 = z.a2 = z.a3 = 0u;
    for (t = 0; t < taps; ++t, pw += channels) {
        const uint32_t word = eg_load4(pw);
        const uint32_t w_even = eg_sxtb16(word), w_odd = eg_sxtb16_ror8(word);
        z.a0 = eg_smlabb(zp_pair, w_even, z.a0);
        z.a2 = eg_smlatt(zp_pair, w_even, z.a2);
        z.a1 = eg_smlabb(zp_pair, w_odd, z.a1);
        z.a3 = eg_smlatt(zp_pair, w_odd, z.a3);
    }
    return z;
}

/* One tap with widened weights at w (window_3x3_widened's C). */
static inline four_sums tap_widened(four_sums s, const int8_t *px, const uint32_t *w)
{
    const uint32_t x = eg_load4(px);
    const uint32_t x_even = eg_sxtb16(x), x_odd = eg_sxtb16_ror8(x);
    s.a0 = eg_smlabb(x_even, w[0], s.a0);
    s.a2 = eg_smlatt(x_even, w[0], s.a2);
    s.a1 = eg_smlabb(x_odd, w[1], s.a1);
    s.a3 = eg_smlatt(x_odd, w[1], s.a3);
    return s;
}

#if EG_DSP_ASM
/* One tap in assembly (window_3x3_widened): the input word at px (plus
 * an offset), its widening, the tap's widened weights (an LDRD at w +
 * offset) and four multiply-accumulates. */
#define EG_DW_WIDE_TAP(x_offset, w_offset)                  \
    "ldr %[x], [%[px]" x_offset "]\n\t"                     \
    "ldrd %[we], %[wo], [%[w], #" w_offset "]\n\t"          \
    "sxtb16 %[xe], %[x]\n\t"                                \
    "sxtb16 %[x], %[x], ror #8\n\t"                         \
    "smlabb %[a0], %[xe], %[we], %[a0]\n\t"                 \
    "smlatt %[a2], %[xe], %[we], %[a2]\n\t"                 \
    "smlabb %[a1], %[x], %[wo], %[a1]\n\t"                  \
    "smlatt %[a3], %[x], %[wo], %[a3]\n\t"
#define EG_DW_WIDE_ROW(w0, w1, w2)                          \
    EG_DW_WIDE_TAP("", w0) EG_DW_WIDE_TAP(", %[c]", w1)     \
    EG_DW_WIDE_TAP(", %[c], lsl #1", w2)
#endif

/* window_3x3_four with the quad's weights widened at w (8 instructions a
 * tap in assembly). */
static inline four_sums window_3x3_widened(four_sums s, const int8_t *px, const uint32_t *w,
                                           int32_t c, int32_t x_row)
{
#if EG_DSP_ASM
    uint32_t x, x_even, w_even, w_odd;
    __asm__(EG_DW_WIDE_ROW("0", "8", "16") "add %[px], %[px], %[x_row]\n\t"
            EG_DW_WIDE_ROW("24", "32", "40") "add %[px], %[px], %[x_row]\n\t"
            EG_DW_WIDE_ROW("48", "56", "64")
            : [a0] "+r"(s.a0), [a1] "+r"(s.a1), [a2] "+r"(s.a2), [a3] "+r"(s.a3),
              [px] "+r"(px), [x] "=&r"(x), [xe] "=&r"(x_even), [we] "=&r"(w_even),
              [wo] "=&r"(w_odd)
            : [w] "r"(w), [c] "r"(c), [x_row] "r"(x_row)
            : "memory");
#else
    int32_t ky;
    for (ky = 0; ky < 3; ++ky, w += 6) {
        s = tap_widened(s, px, w);
        s = tap_widened(s, px + c, w + 2);
        s = tap_widened(s, px + 2 * c, w + 4);
        px += x_row;
    }
#endif
    return s;
}

/* A window of quad oc (span s) on a DSP core: acc holds the biases plus
 * quad_zero_point_sums; the in-bounds taps (rows [ky_begin, ky_end) x
 * columns [kx_begin, kx_end)) add (x - zp) * w, x - zp in [-255, 255] (a
 * halfword, SSUB16). The weights are the quad's widened ones at
 * g->widened, or else read from the filter. In assembly (13 or 15
 * instructions a tap, 7 a row), as GCC spills the four sums of the C. */
static EG_ALWAYS_INLINE four_sums quad_window_dsp(const depthwise_layer *g, const window_span *s,
                                             int32_t oc, const four_sums *start)
{
    four_sums acc = *start;
    const int32_t channels = g->channels;
    const uint32_t zp_pair = ((uint32_t)(uint16_t)(int8_t)g->zero_point) * 0x00010001u;
    int32_t taps = s->kx_end - s->kx_begin, rows = s->ky_end - s->ky_begin;
    const int32_t first_tap = s->ky_begin * g->kernel_w + s->kx_begin;
    /* from past a row's last in-bounds tap to the next row's first */
    int32_t px_skip = g->in_w * channels - taps * channels;
    int32_t w_skip = (g->kernel_w - taps) * (g->widened != NULL ? 8 : channels);
    const int8_t *px =
        g->input + ((s->y0 + s->ky_begin) * g->in_w + s->x0 + s->kx_begin) * channels + oc;
    if (g->widened != NULL) {
        const uint32_t *w = g->widened + 2 * first_tap;
#if EG_DSP_ASM
        uint32_t x, x_even, w_even, w_odd;
        int32_t n;
        __asm__("1:\n\t"
                "ldr %[n], %[taps]\n\t"
                "2:\n\t"
                "ldr %[x], [%[px]]\n\t"
                "add %[px], %[px], %[c]\n\t"
                "ldrd %[we], %[wo], [%[w]], #8\n\t"
                "sxtb16 %[xe], %[x]\n\t"
                "sxtb16 %[x], %[x], ror #8\n\t"
                "ssub16 %[xe], %[xe], %[zp]\n\t"
                "ssub16 %[x], %[x], %[zp]\n\t"
                "smlabb %[a0], %[xe], %[we], %[a0]\n\t"
                "smlatt %[a2], %[xe], %[we], %[a2]\n\t"
                "smlabb %[a1], %[x], %[wo], %[a1]\n\t"
                "smlatt %[a3], %[x], %[wo], %[a3]\n\t"
                "subs %[n], %[n], #1\n\t"
                "bne 2b\n\t"
                "ldr %[x], %[px_skip]\n\t"
                "add %[px], %[px], %[x]\n\t"
                "ldr %[x], %[w_skip]\n\t"
                "add %[w], %[w], %[x]\n\t"
                "subs %[rows], %[rows], #1\n\t"
                "bne 1b"
                : [a0] "+r"(acc.a0), [a1] "+r"(acc.a1), [a2] "+r"(acc.a2), [a3] "+r"(acc.a3),
                  [px] "+r"(px), [w] "+r"(w), [rows] "+r"(rows), [n] "=&r"(n), [x] "=&r"(x),
                  [xe] "=&r"(x_even), [we] "=&r"(w_even), [wo] "=&r"(w_odd)
                : [c] "r"(channels), [zp] "r"(zp_pair), [taps] "m"(taps),
                  [px_skip] "m"(px_skip), [w_skip] "m"(w_skip)
                : "cc", "memory");
#else
        for (; rows > 0; --rows, px += px_skip, w += w_skip / 4) {
            int32_t t;
            for (t = 0; t < taps; ++t, px += channels, w += 2) {
                const uint32_t x = eg_load4(px);
                const uint32_t x_even = eg_ssub16(eg_sxtb16(x), zp_pair);
                const uint32_t x_odd = eg_ssub16(eg_sxtb16_ror8(x), zp_pair);
                acc.a0 = eg_smlabb(x_even, w[0], acc.a0);
                acc.a2 = eg_smlatt(x_even, w[0], acc.a2);
                acc.a1 = eg_smlabb(x_odd, w[1], acc.a1);
                acc.a3 = eg_smlatt(x_odd, w[1], acc.a3);
            }
        }
#endif
    } else {
        const int8_t *pw = g->filter + first_tap * channels + oc;
#if EG_DSP_ASM
        uint32_t x, x_even, w, w_even;
        int32_t n;
        __asm__("1:\n\t"
                "ldr %[n], %[taps]\n\t"
                "2:\n\t"
                "ldr %[x], [%[px]]\n\t"
                "add %[px], %[px], %[c]\n\t"
                "ldr %[w], [%[pw]]\n\t"
                "add %[pw], %[pw], %[c]\n\t"
                "sxtb16 %[xe], %[x]\n\t"
                "sxtb16 %[x], %[x], ror #8\n\t"
                "ssub16 %[xe], %[xe], %[zp]\n\t"
                "ssub16 %[x], %[x], %[zp]\n\t"
                "sxtb16 %[we], %[w]\n\t"
                "sxtb16 %[w], %[w], ror #8\n\t"
                "smlabb %[a0], %[xe], %[we], %[a0]\n\t"
                "smlatt %[a2], %[xe], %[we], %[a2]\n\t"
                "smlabb %[a1], %[x], %[w], %[a1]\n\t"
                "smlatt %[a3], %[x], %[w], %[a3]\n\t"
                "subs %[n], %[n], #1\n\t"
                "bne 2b\n\t"
                "ldr %[x], %[px_skip]\n\t"
                "add %[px], %[px], %[x]\n\t"
                "ldr %[x], %[w_skip]\n\t"
                "add %[pw], %[pw], %[x]\n\t"
                "subs %[rows], %[rows], #1\n\t"
                "bne 1b"
                : [a0] "+r"(acc.a0), [a1] "+r"(acc.a1), [a2] "+r"(acc.a2), [a3] "+r"(acc.a3),
                  [px] "+r"(px), [pw] "+r"(pw), [rows] "+r"(rows), [n] "=&r"(n), [x] "=&r"(x),
                  [xe] "=&r"(x_even), [w] "=&r"(w), [we] "=&r"(w_even)
                : [c] "r"(channels), [zp] "r"(zp_pair), [taps] "m"(taps),
                  [px_skip] "m"(px_skip), [w_skip] "m"(w_skip)
                : "cc", "memory");
#else
        for (; rows > 0; --rows, px += px_skip, pw += w_skip) {
            int32_t t;
            for (t = 0; t < taps; ++t, px += channels, pw += channels) {
                const uint32_t x = eg_load4(px), w = eg_load4(pw);
                const uint32_t x_even = eg_ssub16(eg_sxtb16(x), zp_pair);
                const uint32_t x_odd = eg_ssub16(eg_sxtb16_ror8(x), zp_pair);
                const uint32_t w_even = eg_sxtb16(w), w_odd = eg_sxtb16_ror8(w);
                acc.a0 = eg_smlabb(x_even, w_even, acc.a0);
                acc.a2 = eg_smlatt(x_even, w_even, acc.a2);
                acc.a1 = eg_smlabb(x_odd, w_odd, acc.a1);
                acc.a3 = eg_smlatt(x_odd, w_odd, acc.a3);
            }
        }
#endif
    }
    return acc;
}
#else
/* quad_zero_point_sums, portable. */
static four_sums quad_zero_point_sums(const int8_t *pw, int32_t channels, int32_t taps,
                                      int8_t zp)
{
    four_sums z;
    int32_t t;
    z.a0 = z.a1 = z.a2 = z.a3 = 0u;
    for (t = 0; t < taps; ++t, pw += channels) {
        z.a0 = eg_mac(z.a0, zp, pw[0]);
        z.a1 = eg_mac(z.a1, zp, pw[1]);
        z.a2 = eg_mac(z.a2, zp, pw[2]);
        z.a3 = eg_mac(z.a3, zp, pw[3]);
    }
    return z;
}

/* quad_window_dsp, portable: acc holds the biases plus
 * quad_zero_point_sums, the in-bounds taps add (x - zp) * w. */
static EG_ALWAYS_INLINE four_sums quad_window_portable(const depthwise_layer *g,
                                                       const window_span *s, int32_t oc,
                                                       const four_sums *start)
{
    four_sums acc = *start;
    const int32_t channels = g->channels, zp = g->zero_point;
    const int32_t taps = s->kx_end - s->kx_begin;
    const int8_t *px =
        g->input + ((s->y0 + s->ky_begin) * g->in_w + s->x0 + s->kx_begin) * channels + oc;
    const int8_t *pw = g->filter + (s->ky_begin * g->kernel_w + s->kx_begin) * channels + oc;
    int32_t ky, t;
    for (ky = s->ky_begin; ky < s->ky_end; ++ky) {
        for (t = 0; t < taps; ++t) {
            const int8_t *x = px + t * channels, *w = pw + t * channels;
            /* (x - zp) * w in [-255 * 128, 255 * 128]: int32 holds it */
            acc.a0 += (uint32_t)((x[0] - zp) * w[0]);
            acc.a1 += (uint32_t)((x[1] - zp) * w[1]);
            acc.a2 += (uint32_t)((x[2] - zp) * w[2]);
            acc.a3 += (uint32_t)((x[3] - zp) * w[3]);
        }
        px += g->in_w * channels;
        pw += g->kernel_w * channels;
    }
    return acc;
}
#endif /* EG_USE_DSP */

/* The output columns [begin, end) whose windows lie inside the input
 * along x (the same for every row and channel). */
typedef struct {
    int32_t begin, end;
} column_run;

static column_run inside_columns(const depthwise_layer *g, const eg_conv_params *params,
                                 int32_t out_w)
{
    column_run run;
    /* the first ox with ox * stride_w >= pad_left; the first with
     * ox * stride_w - pad_left + kernel_w > in_w */
    const int32_t last_start = g->in_w - g->kernel_w + params->pad_left;
    run.begin = (params->pad_left + params->stride_w - 1) / params->stride_w;
    run.end = last_start < 0 ? 0 : last_start / params->stride_w + 1;
    if (run.begin > out_w) {
        run.begin = out_w;
    }
    if (run.end > out_w) {
        run.end = out_w;
    }
    if (run.end < run.begin) {
        run.end = run.begin;
    }
    return run;
}

/* Channels [0, out_c & ~3), depth multiplier 1: each quad over every
 * output pixel. A row whose 3x3 windows lie inside the input along y has
 * a run of windows inside altogether (window_3x3_*); every other window
 * takes the general path (quad_window_*). */
static EG_ALWAYS_INLINE void quad_sweep(const depthwise_layer *g,
                                        const eg_conv_params *params, const eg_shape *out,
                                        int8_t *output)
{
    const int32_t channels = g->channels;
    const int32_t x_row = g->in_w * channels, x_step = params->stride_w * channels;
    const column_run inside = inside_columns(g, params, out->w);
    const int is_3x3 = g->kernel_h == 3 && g->kernel_w == 3;
    quad_stage q;
    int32_t oc, oy, ox;
    for (oc = 0; oc + 4 <= channels; oc += 4) {
        const int32_t *bias = g->bias != NULL ? g->bias + oc : no_biases;
        four_sums border = quad_biases(bias);
        const int32_t taps = g->kernel_h * g->kernel_w;
#if EG_USE_DSP
        const four_sums z =
            quad_zero_point_sums(g->filter + oc, channels, taps,
                                 ((uint32_t)(uint16_t)(int8_t)g->zero_point) * 0x00010001u);
        if (g->widened != NULL) {
            widen_quad(g->filter + oc, channels, taps, g->widened);
        }
#else
        const four_sums z =
            quad_zero_point_sums(g->filter + oc, channels, taps, (int8_t)g->zero_point);
#endif
        border.a0 += z.a0;
        border.a1 += z.a1;
        border.a2 += z.a2;
        border.a3 += z.a3;
        quad_stage_of(&g->stage, oc, &q);
        for (oy = 0; oy < out->h; ++oy) {
            int8_t *row_out = output + oy * out->w * channels;
            window_span s;
            column_run run = inside;
            s.y0 = oy * params->stride_h - params->pad_top;
            s.ky_begin = clip_begin(s.y0);
            s.ky_end = clip_end(s.y0, g->kernel_h, g->in_h);
            if (!is_3x3 || s.ky_begin != 0 || s.ky_end != 3) {
                run.begin = run.end = out->w; /* no window of this row is inside */
            } else {
                const int8_t *px = g->input + (s.y0 * g->in_w + run.begin * params->stride_w -
                                               params->pad_left) * channels + oc;
                int8_t *po = row_out + run.begin * channels;
                for (ox = run.begin; ox < run.end; ++ox, px += x_step, po += channels) {
                    four_sums acc;
#if EG_USE_DSP
                    if (g->widened != NULL) {
                        acc = window_3x3_widened(quad_biases(bias), px, g->widened, channels,
                                                 x_row);
                    } else
#endif
                    {
                        acc = window_3x3_four(quad_biases(bias), px, g->filter + oc, channels,
                                              x_row);
                    }
                    store_quad(&g->stage, &q, oc, acc, po);
                }
            }
            /* the other windows: [0, run.begin) and [run.end, out_w) */
            for (ox = 0; ox < out->w; ++ox) {
                four_sums acc;
                if (ox == run.begin) {
                    ox = run.end;
                    if (ox == out->w) {
                        break;
                    }
                }
                s.x0 = ox * params->stride_w - params->pad_left;
                s.kx_begin = clip_begin(s.x0);
                s.kx_end = clip_end(s.x0, g->kernel_w, g->in_w);
#if EG_USE_DSP
                acc = quad_window_dsp(g, &s, oc, &border);
#else
                acc = quad_window_portable(g, &s, oc, &border);
#endif
                store_quad(&g->stage, &q, oc, acc, row_out + ox * channels);
            }
        }
    }
}

/* ---- the layer ------------------------------------------------------- */

/* 1 if eg_depthwise_conv2d_s8's arguments (not NULL) are consistent (a
 * function of its own: its frame is not added to the sweeps'). */
static EG_NOINLINE int depthwise_args_ok(const eg_shape *in, int32_t kernel_h, int32_t kernel_w,
                                         const eg_conv_params *params,
                                         const eg_requant *requant, const eg_shape *out)
{
    eg_shape one_channel_in;
    if (!shape_ok(in) || !shape_ok(out) || out->c % in->c != 0) {
        return 0;
    }
    /* The geometry checks of a convolution whose filter sees one channel. */
    one_channel_in = *in;
    one_channel_in.c = 1;
    if (!conv_geometry_ok(&one_channel_in, out, kernel_h, kernel_w, params) ||
        (int64_t)kernel_h * kernel_w * out->c > INT32_MAX) {
        return 0;
    }
    return requant_ok(requant, out->c);
}

/* The layer's fields from eg_depthwise_conv2d_s8's (checked) arguments. */
static EG_ALWAYS_INLINE void layer_init(depthwise_layer *g, const int8_t *input,
                                        const eg_shape *in, const int8_t *filter,
                                        int32_t kernel_h, int32_t kernel_w, const int32_t *bias,
                                        const eg_conv_params *params,
                                        const eg_requant *requant, const eg_shape *out)
{
    g->input = input;
    g->filter = filter;
    g->bias = bias;
    layer_stage_init(&g->stage, requant, out->c);
    g->widened = NULL;
    g->in_h = in->h;
    g->in_w = in->w;
    g->in_c = in->c;
    g->channels = out->c;
    g->multiplier = out->c / in->c;
    g->kernel_h = kernel_h;
    g->kernel_w = kernel_w;
    g->zero_point = -params->input_offset;
}

/* The two sweeps, each a function of its own that calls none (the
 * deepest stack of a layer is eg_depthwise_conv2d_s8's small frame plus
 * one of these). */
static EG_NOINLINE void quad_layer(const int8_t *input, const eg_shape *in, const int8_t *filter,
                                   int32_t kernel_h, int32_t kernel_w, const int32_t *bias,
                                   const eg_conv_params *params, const eg_requant *requant,
                                   void *scratch, int32_t scratch_bytes, int8_t *output,
                                   const eg_shape *out)
{
    depthwise_layer g;
    layer_init(&g, input, in, filter, kernel_h, kernel_w, bias, params, requant, out);
    /* the widened weights are read as words (LDRD): the first 4-byte boundary */
    if (EG_USE_DSP && scratch != NULL &&
        scratch_bytes >= EG_DEPTHWISE_CONV2D_S8_SCRATCH_BYTES(kernel_h, kernel_w) &&
        kernel_h * kernel_w <= EG_DEPTHWISE_WIDENED_TAPS) {
        g.widened = (uint32_t *)(void *)((uint8_t *)scratch +
                                         ((4u - ((uintptr_t)scratch & 3u)) & 3u));
    }
    quad_sweep(&g, params, out, output);
}

static EG_NOINLINE void pixel_layer(const int8_t *input, const eg_shape *in,
                                    const int8_t *filter, int32_t kernel_h, int32_t kernel_w,
                                    const int32_t *bias, const eg_conv_params *params,
                                    const eg_requant *requant, int32_t first, int8_t *output,
                                    const eg_shape *out)
{
    depthwise_layer g;
    layer_init(&g, input, in, filter, kernel_h, kernel_w, bias, params, requant, out);
    pixel_sweep(&g, params, out, first, output);
}

eg_status eg_depthwise_conv2d_s8(const int8_t *input, const eg_shape *in,
                                 const int8_t *filter, int32_t kernel_h, int32_t kernel_w,
                                 const int32_t *bias, const eg_conv_params *params,
                                 const eg_requant *requant,
                                 void *scratch, int32_t scratch_bytes,
                                 int8_t *output, const eg_shape *out)
{
    int32_t quads;
    if (input == NULL || in == NULL || filter == NULL || params == NULL || requant == NULL ||
        output == NULL || out == NULL ||
        !depthwise_args_ok(in, kernel_h, kernel_w, params, requant, out)) {
        return EG_ERR_ARG;
    }
    quads = out->c == in->c ? out->c & ~3 : 0; /* depth multiplier 1: channels in quads */
    if (quads > 0) {
        quad_layer(input, in, filter, kernel_h, kernel_w, bias, params, requant, scratch,
                   scratch_bytes, output, out);
    }
    if (quads < out->c) {
        pixel_layer(input, in, filter, kernel_h, kernel_w, bias, params, requant, quads, output,
                    out);
    }
    return EG_OK;
}
