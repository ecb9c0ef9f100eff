/*
 * conv2d.c: 2-D convolution, int8 NHWC input, int8 OHWI filter, in one or
 * more groups.
 *
 * Output pixels are computed two at a time and output channels two at a
 * time: a 2x2 register tile, so each input and weight loaded serves two
 * multiply-accumulates. The pixels are taken in output order, a row's
 * last one paired with the next row's first, so that an odd output width
 * costs no half-empty tile (only an odd pixel count does, once). The two
 * windows are first copied whole into the caller's scratch (im2col: two
 * runs of kernel_h * kernel_w * in_c values), so the tile runs over
 * contiguous memory, as long as a filter, whatever the kernel size or
 * channel count; the copy costs one load and store per value for
 * kernel_h * kernel_w * out_c multiply-accumulates. A 1x1 filter's window
 * is already contiguous in NHWC: it is read in place, and the DSP kernels
 * widen the two pixels to 16 bits in the scratch once for all their
 * filters (widen_pair).
 *
 * On a core with the DSP extension, a layer whose output stage is plain
 * (layer_stage.plain, double rounding, per-channel constants: nearly
 * every layer) runs all the tiles of a pixel pair, output stage included,
 * in one block of assembly (pointwise_plain_tiles, gathered_plain_tiles);
 * every other layer, and every other core, runs the C tiles (eg_dot.h)
 * and their output stage in C.
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
 * Frames are kept small (the deepest stack of an inference is the sum of
 * the frames along its deepest call chain): the arguments are checked in
 * a function of their own, and each kind of layer (1x1, gathered) is one
 * function that holds the layer's fields and calls almost nothing.
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

/* The output of any stage other than a plain one (rare: out of line, one
 * copy of its code). */
static EG_NOINLINE int8_t general_output_of(const layer_stage *stage, int32_t acc,
                                            int32_t multiplier, int32_t shift)
{
    return general_output(stage, acc, multiplier, shift, EG_STAGE_ROUNDING(*stage));
}

/* The output of any stage: a plain one inline. */
static inline int8_t conv_output(const layer_stage *stage, int32_t acc, int32_t multiplier,
                                 int32_t shift)
{
    if (stage->plain) {
        return plain_output(acc, multiplier, -2 - shift, EG_STAGE_ROUNDING(*stage),
                            stage->offset);
    }
    return general_output_of(stage, acc, multiplier, shift);
}

/* The output stage of a 2x2 tile: channels oc and oc + 1 (if
 * two_channels) of pixels out0 and out1 (if not NULL). */
static EG_ALWAYS_INLINE void store_tile(const conv_layer *g, const uint32_t acc[4], int32_t oc,
                                        int two_channels, int8_t *out0, int8_t *out1)
{
    const layer_stage *stage = &g->stage;
    const int32_t k = oc * stage->step;
    const int32_t m0 = stage->multiplier[k], s0 = stage->shift[k];
    const int32_t k1 = two_channels ? k + stage->step : k;
    /* the constants read before the first int8_t store (which may alias them) */
    const int32_t m1 = stage->multiplier[k1], s1 = stage->shift[k1];
    out0[oc] = conv_output(stage, wrap_int32(acc[0]), m0, s0);
    if (out1 != NULL) {
        out1[oc] = conv_output(stage, wrap_int32(acc[1]), m0, s0);
    }
    if (two_channels) {
        out0[oc + 1] = conv_output(stage, wrap_int32(acc[2]), m1, s1);
        if (out1 != NULL) {
            out1[oc + 1] = conv_output(stage, wrap_int32(acc[3]), m1, s1);
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
static EG_ALWAYS_INLINE void pixel_pair(const conv_layer *g, const int8_t *x0, int32_t dx,
                                        int32_t first, int8_t *out0, int8_t *out1)
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

#if EG_DSP_ASM
#define EG_POINTWISE_ASM 1
/* One output of pointwise_plain_tiles' stage: accumulator `acc` of a
 * channel with multiplier `m` and k = -2 - shift (rq_scale_double_right:
 * the nudge from the sign, SMLAL, ASR by k, +1, ASR by 1), plus the zero
 * point, saturated (plain_output), stored at `to`. */
#define EG_PW_OUTPUT(acc, m, k, to)                                            \
    "asr %[we], %[" acc "], #31\n\t"                                           \
    "eor %[wo], %[xw], %[we], lsl #31\n\t"                                     \
    "smlal %[wo], %[we], %[" acc "], %[" m "]\n\t"                             \
    "asr %[we], %[we], %[" k "]\n\t"                                           \
    "add %[we], %[we], #1\n\t"                                                 \
    "add %[we], %[n], %[we], asr #1\n\t"                                       \
    "ssat %[we], #8, %[we]\n\t"                                                \
    "strb %[we], " to "\n\t"

/* The end of a tile of pointwise_plain_tiles or gathered_plain_tiles, f
 * past its second filter (f is free until the next tile): its four
 * outputs, then the next tile, if any. */
#define EG_TILE_STAGE                                                          \
    "str %[f], %[f_saved]\n\t"                                                 \
    /* the constants: m0, m1 in p0e, p0o; k0, k1 in p1e, p1o */                \
    "ldr %[end], %[multiplier]\n\t"                                            \
    "ldrd %[p0e], %[p0o], [%[end]], #8\n\t"                                    \
    "str %[end], %[multiplier]\n\t"                                            \
    "ldr %[end], %[shift]\n\t"                                                 \
    "ldrd %[p1e], %[p1o], [%[end]], #8\n\t"                                    \
    "str %[end], %[shift]\n\t"                                                 \
    "mvn %[p1e], %[p1e]\n\t"                                                   \
    "sub %[p1e], %[p1e], #1\n\t"                                               \
    "mvn %[p1o], %[p1o]\n\t"                                                   \
    "sub %[p1o], %[p1o], #1\n\t"                                               \
    /* the nudge's 2^30 in xw, the zero point in n, out in f, twin in end */   \
    "mov %[xw], #0x40000000\n\t"                                               \
    "ldr %[n], %[offset]\n\t"                                                  \
    "ldr %[f], %[out]\n\t"                                                     \
    "ldr %[end], %[twin]\n\t"                                                  \
    EG_PW_OUTPUT("a00", "p0e", "p1e", "[%[f]]")                                \
    EG_PW_OUTPUT("a10", "p0o", "p1o", "[%[f], #1]")                            \
    "add %[f], %[f], %[end]\n\t"                                               \
    EG_PW_OUTPUT("a01", "p0e", "p1e", "[%[f]]")                                \
    EG_PW_OUTPUT("a11", "p0o", "p1o", "[%[f], #1]")                            \
    "sub %[f], %[f], %[end]\n\t"                                               \
    "add %[f], %[f], #2\n\t"                                                   \
    "str %[f], %[out]\n\t"                                                     \
    "ldr %[end], %[out_end]\n\t"                                               \
    "cmp %[f], %[end]\n\t"                                                     \
    "bne 1b"

/* The operands of both: fourteen registers, the tile loop's pointers in
 * the frame (memory operands: 29 of the 30 operands GCC allows). */
#define EG_TILE_OPERANDS                                                          \
    [xw] "=&r"(xw), [f] "=&r"(f), [n] "=&r"(n), [end] "=&r"(end),                  \
        [a00] "=&r"(a00), [a01] "=&r"(a01), [a10] "=&r"(a10), [a11] "=&r"(a11),     \
        [p0e] "=&r"(p0_even), [p0o] "=&r"(p0_odd), [p1e] "=&r"(p1_even),            \
        [p1o] "=&r"(p1_odd), [we] "=&r"(w_even), [wo] "=&r"(w_odd),                 \
        [bias] "+m"(bias), [multiplier] "+m"(multiplier), [shift] "+m"(shift),      \
        [out] "+m"(out), [f_saved] "+m"(f_saved)                                    \
        : [columns] "m"(columns), [xw0] "m"(xw0), [offset] "m"(offset),             \
          [twin] "m"(twin), [out_end] "m"(out_end)                                  \
        : "cc", "memory"

/* The start of a tile: f at its first filter, its biases in the four
 * accumulators, n and xw (the inputs) loaded. */
#define EG_TILE_START                                                          \
    "1:\n\t"                                                                   \
    "ldr %[f], %[f_saved]\n\t"                                                 \
    "ldr %[p0e], %[bias]\n\t"                                                  \
    "ldrd %[a00], %[a10], [%[p0e]], #8\n\t"                                    \
    "str %[p0e], %[bias]\n\t"                                                  \
    "mov %[a01], %[a00]\n\t"                                                   \
    "mov %[a11], %[a10]\n\t"                                                   \
    "ldr %[n], %[columns]\n\t"                                                 \
    "ldr %[xw], %[xw0]\n\t"

/* `tiles` >= 1 tiles of two filters (n values each, n a positive multiple
 * of four) from f against the two pixels widened at xw (widen_pair), with
 * their output stage: a plain stage (layer_stage.plain), double rounding,
 * per-channel constants. Tile t starts from the biases bias[2t], bias[2t
 * + 1] and writes out[2t], out[2t + 1] (pixel 0) and the same at out +
 * twin (pixel 1). One block of assembly for all the tiles: a step of the
 * dot product is two LDRDs of widened inputs, two weight loads, four
 * SXTB16s, eight SMLADs and the loop test (18 instructions for 16
 * products, the loop's fourteen values in r0-r12 and lr); a tile's set-up,
 * its four outputs (8 instructions each) and its bookkeeping take some 60
 * more, the tile loop's pointers kept in the frame (EG_TILE_OPERANDS). In
 * C, GCC keeps a pointer of the loop on the stack (22 instructions a step)
 * and spills around each tile. */
static EG_ALWAYS_INLINE void pointwise_plain_tiles(const uint32_t *xw0, const int8_t *f_saved,
                                              int32_t columns, const int32_t *bias,
                                              const int32_t *multiplier,
                                              const int32_t *shift, int32_t offset,
                                              int8_t *out, int32_t twin, int32_t tiles)
{
    int8_t *const out_end = out + 2 * tiles;
    uint32_t a00, a01, a10, a11, p0_even, p0_odd, p1_even, p1_odd, w_even, w_odd;
    const uint32_t *xw;
    const int8_t *f, *end;
    int32_t n;
    __asm__(EG_TILE_START
            "add %[end], %[f], %[n]\n\t"
            "2:\n\t"
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
            "bne 2b\n\t"
            /* past the tile's second filter */
            "add %[f], %[f], %[n]\n\t"
            EG_TILE_STAGE
            : EG_TILE_OPERANDS);
}

/* pointwise_plain_tiles for gathered windows: two windows of n >= 1
 * values (any n) at xw0 and xw0 + n, as int8 (the im2col scratch), each
 * word widened as it is read: 22 instructions a step of four values, the
 * last n % 4 values one at a time. */
static EG_ALWAYS_INLINE void gathered_plain_tiles(const int8_t *xw0, const int8_t *f_saved,
                                             int32_t columns, const int32_t *bias,
                                             const int32_t *multiplier,
                                             const int32_t *shift, int32_t offset,
                                             int8_t *out, int32_t twin, int32_t tiles)
{
    int8_t *const out_end = out + 2 * tiles;
    uint32_t a00, a01, a10, a11, p0_even, p0_odd, p1_even, p1_odd, w_even, w_odd;
    const int8_t *xw;
    const int8_t *f, *end;
    int32_t n;
    __asm__(EG_TILE_START
            "bic %[end], %[n], #3\n\t"
            "add %[end], %[f], %[end]\n\t"
            "cmp %[f], %[end]\n\t"
            "beq 3f\n\t"
            "2:\n\t"
            "ldr %[p1o], [%[xw], %[n]]\n\t"
            "ldr %[p0o], [%[xw]], #4\n\t"
            "sxtb16 %[p0e], %[p0o]\n\t"
            "sxtb16 %[p0o], %[p0o], ror #8\n\t"
            "sxtb16 %[p1e], %[p1o]\n\t"
            "sxtb16 %[p1o], %[p1o], ror #8\n\t"
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
            "bne 2b\n\t"
            "3:\n\t"
            "ands %[p0e], %[n], #3\n\t"
            "beq 5f\n\t"
            "add %[end], %[f], %[p0e]\n\t"
            "4:\n\t"
            "ldrsb %[p1e], [%[xw], %[n]]\n\t"
            "ldrsb %[p0e], [%[xw]], #1\n\t"
            "ldrsb %[we], [%[f], %[n]]\n\t"
            "ldrsb %[wo], [%[f]], #1\n\t"
            "mla %[a00], %[p0e], %[wo], %[a00]\n\t"
            "mla %[a01], %[p1e], %[wo], %[a01]\n\t"
            "mla %[a10], %[p0e], %[we], %[a10]\n\t"
            "mla %[a11], %[p1e], %[we], %[a11]\n\t"
            "cmp %[f], %[end]\n\t"
            "bne 4b\n\t"
            "5:\n\t"
            /* past the tile's second filter */
            "add %[f], %[f], %[n]\n\t"
            EG_TILE_STAGE
            : EG_TILE_OPERANDS);
}
#else
#define EG_POINTWISE_ASM 0
#endif

/* One tile's four outputs: channels oc, oc + 1 of pixels 0 (acc[0],
 * acc[2]) and 1 (acc[1], acc[3]). */
static inline void tile_outputs(const layer_stage *stage, int32_t oc, const uint32_t acc[4],
                                int8_t *out0, int8_t *out1)
{
    const int32_t k = oc * stage->step;
    const int32_t m0 = stage->multiplier[k], s0 = stage->shift[k];
    const int32_t m1 = stage->multiplier[k + stage->step], s1 = stage->shift[k + stage->step];
    /* every constant read before the first int8_t store (which may alias them) */
    out0[oc] = conv_output(stage, wrap_int32(acc[0]), m0, s0);
    out1[oc] = conv_output(stage, wrap_int32(acc[1]), m0, s0);
    out0[oc + 1] = conv_output(stage, wrap_int32(acc[2]), m1, s1);
    out1[oc + 1] = conv_output(stage, wrap_int32(acc[3]), m1, s1);
}

/* 1x1 filters: the channels [first, first + group_out_c) (at least two) of
 * pixels x0 and x1 (widened at g->widened with DSP), two at a time (an
 * odd count ends with a pair that overlaps the one before). out1 NULL:
 * one pixel (x1 == x0), written once. */
static EG_ALWAYS_INLINE void pointwise_pair(const conv_layer *g, const int8_t *x0,
                                            const int8_t *x1, int32_t first, int8_t *out0,
                                            int8_t *out1)
{
    const int32_t n = g->columns;
    const int32_t last = first + g->group_out_c - 2; /* the last pair's first channel */
    int32_t oc = first;
    if (out1 == NULL) {
        out1 = out0; /* x1 is x0: the twin's outputs are the pixel's own */
    }
    for (;;) {
        uint32_t acc[4];
        acc[0] = acc[1] = g->bias != NULL ? (uint32_t)g->bias[oc] : 0u;
        acc[2] = acc[3] = g->bias != NULL ? (uint32_t)g->bias[oc + 1] : 0u;
        pointwise_dot(g->widened, x0, x1, g->filter + oc * n, n, acc);
        tile_outputs(&g->stage, oc, acc, out0, out1);
        if (oc == last) {
            return;
        }
        oc = oc + 2 < last ? oc + 2 : last;
    }
}

#if EG_POINTWISE_ASM
/* 1 if a layer's tiles can run in assembly with their output stage
 * (pointwise_plain_tiles, gathered_plain_tiles): a plain stage of double
 * rounding and per-channel constants, biases, at least two filters a
 * group. */
static int plain_tiles_ok(const conv_layer *g)
{
    return g->stage.plain && EG_STAGE_ROUNDING(g->stage) == EG_ROUNDING_DOUBLE &&
           g->stage.step == 1 && g->bias != NULL && g->group_out_c >= 2;
}

/* The filters [first, first + group_out_c) of the two pixels (gathered
 * at g->im2col: gathered, else widened at g->widened) through
 * plain_tiles_ok's assembly: the pairs, then a last one that overlaps
 * the one before for an odd count. out1 NULL: one pixel. */
static EG_ALWAYS_INLINE void plain_tiles(const conv_layer *g, int32_t first, int8_t *out0,
                                         int8_t *out1, const int gathered)
{
    const int32_t n = g->columns;
    const int32_t twin = out1 != NULL ? (int32_t)(out1 - out0) : 0;
    int32_t oc = first, tiles = g->group_out_c / 2;
    for (;;) {
        if (gathered) {
            gathered_plain_tiles(g->im2col, g->filter + oc * n, n, g->bias + oc,
                                 g->stage.multiplier + oc, g->stage.shift + oc,
                                 g->stage.offset, out0 + oc, twin, tiles);
        } else {
            pointwise_plain_tiles(g->widened, g->filter + oc * n, n, g->bias + oc,
                                  g->stage.multiplier + oc, g->stage.shift + oc,
                                  g->stage.offset, out0 + oc, twin, tiles);
        }
        if (oc != first || (g->group_out_c & 1) == 0) {
            return;
        }
        oc = first + g->group_out_c - 2;
        tiles = 1;
    }
}
#endif

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
static EG_ALWAYS_INLINE void gather_window(const conv_layer *g, window_rows rows, int32_t ox,
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

/* The window rows of output row oy. */
static window_rows rows_of(const conv_layer *g, const eg_conv_params *params, int32_t oy)
{
    window_rows rows;
    rows.y0 = oy * params->stride_h - params->pad_top;
    rows.ky_begin = rows.y0 < 0 ? -rows.y0 : 0;
    rows.ky_end = g->in_h - rows.y0 < g->kernel_h ? g->in_h - rows.y0 : g->kernel_h;
    return rows;
}

/* A layer whose windows are gathered (im2col): the output pixels in
 * order, two at a time, a row's last one paired with the next row's
 * first (an odd width costs no tile that computes one pixel twice, only
 * an odd total does: the last pixel, gathered twice). */
static EG_ALWAYS_INLINE void gathered_layer(const conv_layer *g, const eg_conv_params *params,
                                            int32_t out_h, int32_t out_w, int8_t *output)
{
    int32_t oy = 0, ox = 0, group;
    int8_t *out0 = output;
    while (oy < out_h) {
        const window_rows rows0 = rows_of(g, params, oy);
        window_rows rows1 = rows0;
        const int32_t ox0 = ox;
        int32_t ox1 = ox;
        int8_t *out1 = NULL;
        if (++ox == out_w) {
            ox = 0;
            ++oy;
        }
        if (oy < out_h) {
            rows1 = rows_of(g, params, oy);
            ox1 = ox;
            out1 = out0 + g->out_c;
            if (++ox == out_w) {
                ox = 0;
                ++oy;
            }
        }
        for (group = 0; group < g->groups; ++group) {
            const int32_t channel = group * g->group_c, first = group * g->group_out_c;
            gather_window(g, rows0, ox0, channel, g->im2col);
            gather_window(g, rows1, ox1, channel, g->im2col + g->columns);
#if EG_POINTWISE_ASM
            if (plain_tiles_ok(g)) {
                plain_tiles(g, first, out0, out1, 1);
                continue;
            }
#endif
            pixel_pair(g, g->im2col, g->columns, first, out0, out1);
        }
        out0 += 2 * g->out_c;
    }
}

/* A 1x1 layer: no padding (it is < the kernel size), a pixel's window is
 * the pixel. The output pixels are taken in order, two at a time, a row's
 * last one paired with the next row's first: an odd width costs no tile
 * that computes one pixel twice, only an odd total does (the last). */
static EG_ALWAYS_INLINE void pointwise_layer(const conv_layer *g, int32_t stride_h,
                                             int32_t out_h, int32_t out_w, int8_t *output)
{
    const int32_t pixel_step = g->stride_w * g->in_c;
    const int32_t row_step = stride_h * g->in_w * g->in_c;
    int32_t row = 0; /* output row oy's input row, as an offset */
    int32_t oy = 0, ox = 0, group;
    int8_t *out0 = output;
    while (oy < out_h) {
        const int8_t *x0 = g->input + row + ox * pixel_step, *x1 = x0;
        int8_t *out1 = NULL;
        if (++ox == out_w) {
            ox = 0;
            if (++oy < out_h) {
                row += row_step;
            }
        }
        if (oy < out_h) {
            x1 = g->input + row + ox * pixel_step;
            out1 = out0 + g->out_c;
            if (++ox == out_w) {
                ox = 0;
                if (++oy < out_h) {
                    row += row_step;
                }
            }
        }
        for (group = 0; group < g->groups; ++group) {
            const int32_t channel = group * g->group_c, first = group * g->group_out_c;
            if (g->group_out_c >= 2) {
#if EG_USE_DSP
                widen_pair(x0 + channel, x1 + channel, g->columns, g->widened);
#endif
#if EG_POINTWISE_ASM
                if (plain_tiles_ok(g) && (g->columns & 3) == 0) {
                    plain_tiles(g, first, out0, out1, 0);
                    continue;
                }
#endif
                pointwise_pair(g, x0 + channel, x1 + channel, first, out0, out1);
            } else {
                pixel_pair(g, x0 + channel, (int32_t)(x1 - x0), first, out0, out1);
            }
        }
        out0 += 2 * g->out_c;
    }
}

/* 1 if eg_conv2d_s8's arguments (not NULL) are consistent (a function of
 * its own: its frame is not added to the layer loops'). */
static EG_NOINLINE int conv_args_ok(const eg_shape *in, int32_t kernel_h, int32_t kernel_w,
                                    const eg_conv_params *params, const eg_requant *requant,
                                    const void *scratch, int32_t scratch_bytes,
                                    const eg_shape *out)
{
    int64_t needed;
    if (!conv_geometry_ok(in, out, kernel_h, kernel_w, params) ||
        !conv_groups_ok(in, out, params) || !requant_ok(requant, out->c)) {
        return 0;
    }
    needed = EG_CONV2D_S8_SCRATCH_BYTES((int64_t)kernel_h, (int64_t)kernel_w,
                                        (int64_t)(in->c / params->groups));
    return needed == 0 || (scratch != NULL && scratch_bytes >= needed);
}

/* The layer's fields from eg_conv2d_s8's (checked) arguments. */
static EG_ALWAYS_INLINE void layer_init(conv_layer *g, const int8_t *input, const eg_shape *in,
                                        const int8_t *filter, int32_t kernel_h,
                                        int32_t kernel_w, const int32_t *bias,
                                        const eg_conv_params *params,
                                        const eg_requant *requant, void *scratch,
                                        const eg_shape *out)
{
    const int pointwise = kernel_h == 1 && kernel_w == 1;
    g->input = input;
    g->filter = filter;
    g->bias = bias;
    layer_stage_init(&g->stage, requant, out->c);
    g->in_h = in->h;
    g->in_w = in->w;
    g->in_c = in->c;
    g->out_c = out->c;
    g->kernel_h = kernel_h;
    g->kernel_w = kernel_w;
    g->stride_w = params->stride_w;
    g->pad_left = params->pad_left;
    g->groups = params->groups;
    g->group_c = in->c / params->groups;
    g->group_out_c = out->c / params->groups;
    g->columns = kernel_h * kernel_w * g->group_c;
    g->zero_point = (int8_t)(-params->input_offset);
    /* the scratch: the gathered windows, or two pixels widened (read as
     * words: from its first 4-byte boundary) */
    g->im2col = pointwise ? NULL : (int8_t *)scratch;
    g->widened = pointwise && EG_USE_DSP && g->group_c >= 4
                     ? (uint32_t *)(void *)((uint8_t *)scratch +
                                            ((4u - ((uintptr_t)scratch & 3u)) & 3u))
                     : NULL;
}

/* The two kinds of layer, each a function of its own that holds the
 * layer's fields (the deepest stack of a layer is eg_conv2d_s8's small
 * frame plus one of these). */
static EG_NOINLINE void pointwise_conv(const int8_t *input, const eg_shape *in,
                                       const int8_t *filter, const int32_t *bias,
                                       const eg_conv_params *params, const eg_requant *requant,
                                       void *scratch, int8_t *output, const eg_shape *out)
{
    conv_layer g;
    layer_init(&g, input, in, filter, 1, 1, bias, params, requant, scratch, out);
    pointwise_layer(&g, params->stride_h, out->h, out->w, output);
}

static EG_NOINLINE void gathered_conv(const int8_t *input, const eg_shape *in,
                                      const int8_t *filter, int32_t kernel_h, int32_t kernel_w,
                                      const int32_t *bias, const eg_conv_params *params,
                                      const eg_requant *requant, void *scratch, int8_t *output,
                                      const eg_shape *out)
{
    conv_layer g;
    layer_init(&g, input, in, filter, kernel_h, kernel_w, bias, params, requant, scratch, out);
    gathered_layer(&g, params, out->h, out->w, output);
}

eg_status eg_conv2d_s8(const int8_t *input, const eg_shape *in,
                       const int8_t *filter, int32_t kernel_h, int32_t kernel_w,
                       const int32_t *bias, const eg_conv_params *params,
                       const eg_requant *requant,
                       void *scratch, int32_t scratch_bytes,
                       int8_t *output, const eg_shape *out)
{
    if (input == NULL || in == NULL || filter == NULL || params == NULL ||
        requant == NULL || output == NULL || out == NULL ||
        !conv_args_ok(in, kernel_h, kernel_w, params, requant, scratch, scratch_bytes, out)) {
        return EG_ERR_ARG;
    }
    if (kernel_h == 1 && kernel_w == 1) {
        pointwise_conv(input, in, filter, bias, params, requant, scratch, output, out);
    } else {
        gathered_conv(input, in, filter, kernel_h, kernel_w, bias, params, requant, scratch,
                      output, out);
    }
    return EG_OK;
}
