/*
 * conv2d.c: 2-D convolution, int8 NHWC input, int8 OHWI filter (groups = 1).
 *
 * Loop order: output row, output column, output channel, filter row, then
 * one contiguous run over (filter column, input channel): for a fixed
 * filter row, the in-bounds part of a window row is contiguous both in the
 * NHWC input and in the OHWI filter. Window clipping against the padding is
 * computed once per output pixel, so the inner loop has no bounds checks.
 * The input zero point is folded into the bias at generation time, so the
 * inner loop multiplies raw inputs; a clipped window adds the zero point
 * times the weights of its padded taps (border pixels only).
 *
 * The accumulator is kept in uint32_t: int32 arithmetic modulo 2^32, which
 * is what TFLite computes on every real target, without the undefined
 * behaviour of signed overflow. A well-formed layer never wraps.
 */
#include <stddef.h>

#include "eg_runtime.h"
#include "eg_kernel_support.h"

/* sum over n of filter[i] * input[i], modulo 2^32. */
static uint32_t dot(const int8_t *input, const int8_t *filter, int32_t n)
{
    uint32_t acc = 0;
    int32_t i;
    for (i = 0; i < n; ++i) {
        acc += (uint32_t)((int32_t)filter[i] * (int32_t)input[i]);
    }
    return acc;
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
    if (!conv_geometry_ok(in, out, kernel_h, kernel_w, params)) {
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
            const int clipped = rows != kernel_h || run != filter_row_stride;
            for (oc = 0; oc < out_c; ++oc) {
                const int8_t *in_row = window;
                const int8_t *f_row = filter_window + oc * filter_oc_stride;
                uint32_t acc = bias != NULL ? (uint32_t)bias[oc] : 0u;
                int32_t r;
                for (r = 0; r < rows; ++r) {
                    acc += dot(in_row, f_row, run);
                    in_row += in_row_stride;
                    f_row += filter_row_stride;
                }
                if (clipped) {
                    /* The padded taps read the zero point: zp * their weights. */
                    const int8_t *f = filter + oc * filter_oc_stride;
                    const int32_t outside =
                        weight_sum(f, kernel_h, filter_row_stride, filter_row_stride) -
                        weight_sum(filter_window + oc * filter_oc_stride, rows, run,
                                   filter_row_stride);
                    acc += (uint32_t)(-offset) * (uint32_t)outside;
                }
                *out_px++ = output_stage_channel(wrap_int32(acc), oc, requant);
            }
        }
    }
    return EG_OK;
}
