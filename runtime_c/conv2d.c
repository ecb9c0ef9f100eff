/*
 * conv2d.c: 2-D convolution, int8 NHWC input, int8 OHWI filter (groups = 1).
 *
 * Loop order: output row, output column, output channel, filter row, then
 * one contiguous run over (filter column, input channel): for a fixed
 * filter row, the in-bounds part of a window row is contiguous both in the
 * NHWC input and in the OHWI filter. Window clipping against the padding is
 * computed once per output pixel, so the inner loop has no bounds checks.
 *
 * The accumulator is kept in uint32_t: int32 arithmetic modulo 2^32, which
 * is what TFLite computes on every real target, without the undefined
 * behaviour of signed overflow. A well-formed layer never wraps.
 */
#include <stddef.h>

#include "eg_runtime.h"

/* The int32 value congruent to u modulo 2^32 (a portable two's-complement
 * reinterpretation; compilers emit nothing for it). */
static int32_t wrap_int32(uint32_t u)
{
    if (u <= (uint32_t)INT32_MAX) {
        return (int32_t)u;
    }
    return -(int32_t)(~u) - 1;
}

/* 1 if a feature map's dimensions are >= 1 and its size fits int32. */
static int shape_ok(const eg_shape *s)
{
    if (s->h < 1 || s->w < 1 || s->c < 1) {
        return 0;
    }
    return (int64_t)s->h * s->w <= INT32_MAX &&
           (int64_t)s->h * s->w * s->c <= INT32_MAX;
}

/* 1 if a window sliding along one axis is consistent: every window holds at
 * least one input element and all index arithmetic fits int32. */
static int axis_ok(int32_t in_len, int32_t out_len, int32_t kernel,
                   int32_t stride, int32_t pad)
{
    int64_t last_start;
    if (kernel < 1 || stride < 1 || pad < 0 || pad >= kernel) {
        return 0;
    }
    last_start = (int64_t)(out_len - 1) * stride;
    return last_start - pad < in_len && last_start + kernel <= INT32_MAX &&
           (int64_t)in_len + kernel <= INT32_MAX;
}

/* 1 if the output stage is in range for `channels` output channels. */
static int requant_ok(const eg_requant *rq, int32_t channels)
{
    int32_t o;
    if (rq->multiplier == NULL || rq->shift == NULL) {
        return 0;
    }
    if (rq->act_min < -128 || rq->act_min > rq->act_max || rq->act_max > 127) {
        return 0;
    }
    if (rq->rounding != EG_ROUNDING_DOUBLE && rq->rounding != EG_ROUNDING_SINGLE) {
        return 0;
    }
    for (o = 0; o < channels; ++o) {
        if (rq->multiplier[o] < 0 || rq->shift[o] < -31 || rq->shift[o] > 30) {
            return 0;
        }
    }
    return 1;
}

/* requantize, add the output zero point, clamp (in 64 bits: a saturated
 * requantization plus the offset may leave the int32 range). */
static int8_t output_stage(int32_t acc, int32_t multiplier, int32_t shift,
                           const eg_requant *rq)
{
    int64_t v = (int64_t)eg_requantize(acc, multiplier, shift, rq->rounding) +
                rq->output_offset;
    if (v < rq->act_min) {
        v = rq->act_min;
    } else if (v > rq->act_max) {
        v = rq->act_max;
    }
    return (int8_t)v;
}

/* sum over n of filter[i] * (input[i] + offset), modulo 2^32. Each term is
 * below 2^15 in magnitude. */
static uint32_t dot_with_offset(const int8_t *input, const int8_t *filter,
                                int32_t n, int32_t offset)
{
    uint32_t acc = 0;
    int32_t i;
    for (i = 0; i < n; ++i) {
        acc += (uint32_t)((int32_t)filter[i] * ((int32_t)input[i] + offset));
    }
    return acc;
}

eg_status eg_conv2d_s8(const int8_t *input, const eg_shape *in,
                       const int8_t *filter, int32_t kernel_h, int32_t kernel_w,
                       const int32_t *bias, const eg_conv_params *params,
                       const eg_requant *requant,
                       int8_t *output, const eg_shape *out)
{
    int32_t in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t stride_h, stride_w, pad_top, pad_left, offset;
    int32_t in_row_stride, filter_row_stride, filter_oc_stride;
    int32_t oy, ox, oc;
    int8_t *out_px;

    if (input == NULL || in == NULL || filter == NULL || params == NULL ||
        requant == NULL || output == NULL || out == NULL) {
        return EG_ERR_ARG;
    }
    if (!shape_ok(in) || !shape_ok(out)) {
        return EG_ERR_ARG;
    }
    if (!axis_ok(in->h, out->h, kernel_h, params->stride_h, params->pad_top) ||
        !axis_ok(in->w, out->w, kernel_w, params->stride_w, params->pad_left)) {
        return EG_ERR_ARG;
    }
    /* The whole filter must be addressable with int32 indices. */
    if ((int64_t)kernel_h * kernel_w > INT32_MAX ||
        (int64_t)kernel_h * kernel_w * in->c > INT32_MAX ||
        (int64_t)kernel_h * kernel_w * in->c * out->c > INT32_MAX) {
        return EG_ERR_ARG;
    }
    if (params->input_offset < -127 || params->input_offset > 128) {
        return EG_ERR_ARG;
    }
    if (!requant_ok(requant, out->c)) {
        return EG_ERR_ARG;
    }

    in_h = in->h;
    in_w = in->w;
    in_c = in->c;
    out_h = out->h;
    out_w = out->w;
    out_c = out->c;
    stride_h = params->stride_h;
    stride_w = params->stride_w;
    pad_top = params->pad_top;
    pad_left = params->pad_left;
    offset = params->input_offset;
    in_row_stride = in_w * in_c;
    filter_row_stride = kernel_w * in_c;
    filter_oc_stride = kernel_h * filter_row_stride;

    out_px = output;
    for (oy = 0; oy < out_h; ++oy) {
        /* Window rows [y0 + ky_begin, y0 + ky_end) are inside the input. */
        const int32_t y0 = oy * stride_h - pad_top;
        const int32_t ky_begin = y0 < 0 ? -y0 : 0;
        const int32_t ky_end = in_h - y0 < kernel_h ? in_h - y0 : kernel_h;
        const int32_t rows = ky_end - ky_begin;
        for (ox = 0; ox < out_w; ++ox) {
            const int32_t x0 = ox * stride_w - pad_left;
            const int32_t kx_begin = x0 < 0 ? -x0 : 0;
            const int32_t kx_end = in_w - x0 < kernel_w ? in_w - x0 : kernel_w;
            const int32_t run = (kx_end - kx_begin) * in_c;
            const int8_t *window =
                input + ((y0 + ky_begin) * in_w + (x0 + kx_begin)) * in_c;
            const int8_t *filter_window =
                filter + ky_begin * filter_row_stride + kx_begin * in_c;
            for (oc = 0; oc < out_c; ++oc) {
                const int8_t *in_row = window;
                const int8_t *f_row = filter_window + oc * filter_oc_stride;
                uint32_t acc = bias != NULL ? (uint32_t)bias[oc] : 0u;
                int32_t r;
                for (r = 0; r < rows; ++r) {
                    acc += dot_with_offset(in_row, f_row, run, offset);
                    in_row += in_row_stride;
                    f_row += filter_row_stride;
                }
                *out_px++ = output_stage(wrap_int32(acc), requant->multiplier[oc],
                                         requant->shift[oc], requant);
            }
        }
    }
    return EG_OK;
}
