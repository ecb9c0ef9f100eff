/*
 * pooling.c: max and average pooling, int8 NHWC, TFLite reference rounding.
 *
 * Padded positions never take part in a window: the in-bounds part of each
 * window is computed once per output pixel, and the inner loops run over
 * the channels, contiguous in memory.
 */
#include <stddef.h>

#include "eg_dsp.h"
#include "eg_kernel_support.h"
#include "eg_runtime.h"

/* Largest in-bounds window area for average pooling: the sum of that many
 * int8 values, plus half the count for rounding, stays far inside int32. */
#define AVG_MAX_AREA ((int64_t)1 << 23)

/* Largest window whose int8 sum fits a halfword: 256 * -128 = -2^15. */
#define AVG_HALFWORD_AREA 256

static int pool_args_ok(const int8_t *input, const eg_shape *in,
                        const eg_pool_params *p, const int8_t *output,
                        const eg_shape *out)
{
    if (input == NULL || in == NULL || p == NULL || output == NULL || out == NULL) {
        return 0;
    }
    if (!shape_ok(in) || !shape_ok(out) || out->c != in->c) {
        return 0;
    }
    if (p->act_min < -128 || p->act_min > p->act_max || p->act_max > 127) {
        return 0;
    }
    return axis_ok(in->h, out->h, p->kernel_h, p->stride_h, p->pad_top) &&
           axis_ok(in->w, out->w, p->kernel_w, p->stride_w, p->pad_left);
}

static int32_t min_i32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

/* The part [*begin, *end) of output index o's window along one axis that
 * lies inside the input grown by `grown` positions on each side: with 0,
 * the in-bounds part (padded positions are never part of a pooling
 * window's values); with an average's divisor padding, the part its
 * divisor counts. */
static void window_span(int32_t o, int32_t stride, int32_t pad, int32_t kernel,
                        int32_t in_len, int32_t grown, int32_t *begin, int32_t *end)
{
    const int32_t start = o * stride - pad;
    *begin = start < -grown ? -grown : start;
    *end = min_i32(start + kernel, in_len + grown);
}

/* One output pixel of max pooling: the window's `rows` x `columns`
 * pixels from `window` (rows `row_stride` apart), every channel, clamped
 * to [lo, hi]. Each channel's maximum stays in a register; with the DSP
 * extension four channels at a time (SSUB8 and SEL, a byte-wise max). */
static void max_pixel(const int8_t *window, int32_t rows, int32_t columns, int32_t row_stride,
                      int32_t channels, int8_t lo, int8_t hi, int8_t *out)
{
    int32_t c = 0, y, x;
#if EG_USE_DSP
    const uint32_t lo4 = (uint8_t)lo * 0x01010101u, hi4 = (uint8_t)hi * 0x01010101u;
    for (; c + 4 <= channels; c += 4) {
        uint32_t m = 0x80808080u; /* INT8_MIN in each byte */
        for (y = 0; y < rows; ++y) {
            const int8_t *px = window + y * row_stride + c;
            for (x = 0; x < columns; ++x) {
                m = eg_max4(m, eg_load4(px));
                px += channels;
            }
        }
        eg_store4(out + c, eg_min4(eg_max4(m, lo4), hi4));
    }
#else
    /* Four running maxima in registers: one pointer step serves four. */
    for (; c + 4 <= channels; c += 4) {
        int8_t m0 = INT8_MIN, m1 = INT8_MIN, m2 = INT8_MIN, m3 = INT8_MIN;
        for (y = 0; y < rows; ++y) {
            const int8_t *px = window + y * row_stride + c;
            for (x = 0; x < columns; ++x) {
                m0 = px[0] > m0 ? px[0] : m0;
                m1 = px[1] > m1 ? px[1] : m1;
                m2 = px[2] > m2 ? px[2] : m2;
                m3 = px[3] > m3 ? px[3] : m3;
                px += channels;
            }
        }
        out[c] = (int8_t)clamp_range(m0, lo, hi);
        out[c + 1] = (int8_t)clamp_range(m1, lo, hi);
        out[c + 2] = (int8_t)clamp_range(m2, lo, hi);
        out[c + 3] = (int8_t)clamp_range(m3, lo, hi);
    }
#endif
    for (; c < channels; ++c) {
        int8_t m = INT8_MIN;
        for (y = 0; y < rows; ++y) {
            const int8_t *px = window + y * row_stride + c;
            for (x = 0; x < columns; ++x) {
                m = *px > m ? *px : m;
                px += channels;
            }
        }
        out[c] = (int8_t)clamp_range(m, lo, hi);
    }
}

eg_status eg_max_pool_s8(const int8_t *input, const eg_shape *in,
                         const eg_pool_params *params,
                         int8_t *output, const eg_shape *out)
{
    int32_t in_h, in_w, channels, oy, ox;
    int8_t lo, hi;
    int8_t *out_px;

    if (!pool_args_ok(input, in, params, output, out)) {
        return EG_ERR_ARG;
    }
    in_h = in->h;
    in_w = in->w;
    channels = in->c;
    lo = (int8_t)params->act_min;
    hi = (int8_t)params->act_max;

    out_px = output;
    for (oy = 0; oy < out->h; ++oy) {
        int32_t y_begin, y_end;
        window_span(oy, params->stride_h, params->pad_top, params->kernel_h, in_h, 0,
                    &y_begin, &y_end);
        for (ox = 0; ox < out->w; ++ox) {
            int32_t x_begin, x_end;
            window_span(ox, params->stride_w, params->pad_left, params->kernel_w, in_w, 0,
                        &x_begin, &x_end);
            max_pixel(input + (y_begin * in_w + x_begin) * channels, y_end - y_begin,
                      x_end - x_begin, in_w * channels, channels, lo, hi, out_px);
            out_px += channels;
        }
    }
    return EG_OK;
}

/* The average of a window's sum over its count elements (half: count / 2),
 * TFLite's reference rounding (half away from zero; C division truncates),
 * clamped to [lo, hi]. */
static int8_t average_of(int32_t sum, int32_t count, int32_t half, int32_t lo, int32_t hi)
{
    const int32_t avg = sum > 0 ? (sum + half) / count : (sum - half) / count;
    return (int8_t)clamp_range(avg, lo, hi);
}

#if EG_USE_DSP
/* Halfword `high` (0 or 1) of x as a signed value. */
static int32_t halfword_lane(uint32_t x, int high)
{
    return (int32_t)(((high ? x >> 16 : x) & 0xFFFFu) ^ 0x8000u) - 0x8000;
}
#endif

/* One output pixel of average pooling: the sums of the window's `rows` x
 * `columns` in-bounds pixels from `window` (rows `row_stride` apart), every
 * channel, over `count` (>= 1). Four channels at a time, their sums in
 * registers (one pointer step serves four); with the DSP extension and a
 * window of at most AVG_HALFWORD_AREA elements, SXTAB16 adds a word's even
 * and odd bytes to two pairs of halfword sums, which that many int8
 * values cannot overflow. */
static void avg_pixel(const int8_t *window, int32_t rows, int32_t columns, int32_t row_stride,
                      int32_t channels, int32_t count, int32_t lo, int32_t hi, int8_t *out)
{
    const int32_t half = count / 2;
    int32_t c0 = 0, y, x;
#if EG_USE_DSP
    if (rows * columns <= AVG_HALFWORD_AREA) {
        for (; c0 + 4 <= channels; c0 += 4) {
            uint32_t even = 0, odd = 0; /* channels c0, c0 + 2 and c0 + 1, c0 + 3 */
            for (y = 0; y < rows; ++y) {
                const int8_t *px = window + y * row_stride + c0;
                for (x = 0; x < columns; ++x) {
                    const uint32_t word = eg_load4(px);
                    even = eg_sxtab16(even, word);
                    odd = eg_sxtab16_ror8(odd, word);
                    px += channels;
                }
            }
            out[c0] = average_of(halfword_lane(even, 0), count, half, lo, hi);
            out[c0 + 1] = average_of(halfword_lane(odd, 0), count, half, lo, hi);
            out[c0 + 2] = average_of(halfword_lane(even, 1), count, half, lo, hi);
            out[c0 + 3] = average_of(halfword_lane(odd, 1), count, half, lo, hi);
        }
    }
#endif
    for (; c0 + 4 <= channels; c0 += 4) {
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (y = 0; y < rows; ++y) {
            const int8_t *px = window + y * row_stride + c0;
            for (x = 0; x < columns; ++x) {
                s0 += px[0];
                s1 += px[1];
                s2 += px[2];
                s3 += px[3];
                px += channels;
            }
        }
        out[c0] = average_of(s0, count, half, lo, hi);
        out[c0 + 1] = average_of(s1, count, half, lo, hi);
        out[c0 + 2] = average_of(s2, count, half, lo, hi);
        out[c0 + 3] = average_of(s3, count, half, lo, hi);
    }
    for (; c0 < channels; ++c0) {
        int32_t sum = 0;
        for (y = 0; y < rows; ++y) {
            const int8_t *px = window + y * row_stride + c0;
            for (x = 0; x < columns; ++x) {
                sum += *px;
                px += channels;
            }
        }
        out[c0] = average_of(sum, count, half, lo, hi);
    }
}

eg_status eg_avg_pool_s8(const int8_t *input, const eg_shape *in,
                         const eg_pool_params *params,
                         int8_t *output, const eg_shape *out)
{
    int32_t in_h, in_w, channels, oy, ox;
    int8_t *out_px;

    if (!pool_args_ok(input, in, params, output, out)) {
        return EG_ERR_ARG;
    }
    /* Below the kernel, as the padding (axis_ok): in_len + counted fits. A
     * band of eg_conv_pool_slice keeps the divisor's counted padding while
     * its own pad_top drops to 0: its windows keep their divisors. */
    if (params->divisor_pad_h < 0 || params->divisor_pad_h >= params->kernel_h ||
        params->divisor_pad_w < 0 || params->divisor_pad_w >= params->kernel_w) {
        return EG_ERR_ARG;
    }
    if ((int64_t)min_i32(params->kernel_h, in->h + 2 * params->divisor_pad_h) *
            min_i32(params->kernel_w, in->w + 2 * params->divisor_pad_w) >
        AVG_MAX_AREA) {
        return EG_ERR_ARG;
    }
    in_h = in->h;
    in_w = in->w;
    channels = in->c;

    out_px = output;
    for (oy = 0; oy < out->h; ++oy) {
        int32_t y_begin, y_end, counted_begin, counted_end, counted_rows;
        window_span(oy, params->stride_h, params->pad_top, params->kernel_h, in_h,
                    params->divisor_pad_h, &counted_begin, &counted_end);
        counted_rows = counted_end - counted_begin;
        window_span(oy, params->stride_h, params->pad_top, params->kernel_h, in_h, 0,
                    &y_begin, &y_end);
        for (ox = 0; ox < out->w; ++ox) {
            int32_t x_begin, x_end;
            window_span(ox, params->stride_w, params->pad_left, params->kernel_w, in_w,
                        params->divisor_pad_w, &counted_begin, &counted_end);
            window_span(ox, params->stride_w, params->pad_left, params->kernel_w, in_w, 0,
                        &x_begin, &x_end);
            avg_pixel(input + (y_begin * in_w + x_begin) * channels, y_end - y_begin,
                      x_end - x_begin, in_w * channels, channels,
                      counted_rows * (counted_end - counted_begin), params->act_min,
                      params->act_max, out_px);
            out_px += channels;
        }
    }
    return EG_OK;
}
