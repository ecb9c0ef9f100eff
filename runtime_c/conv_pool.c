/*
 * conv_pool.c: a convolution followed by a pooling layer, run in bands of
 * output rows so that the convolution's whole output never exists.
 *
 * A band of output rows of a window operation (convolution or pooling) is
 * the same operation on a sliced problem: the input starts at the band's
 * first input row, the top padding is what remains of it above that row,
 * and the output has the band's rows. eg_conv_pool_slice computes those
 * slices for pooled rows [row, row + rows): the rows of the convolution's
 * output that their pooling windows cover (the band), the convolution that
 * computes exactly the band, and the pooling of the band into the pooled
 * rows. Any convolution kernel (dense or compressed) and either pooling
 * kernel then runs unchanged on the slices.
 *
 * Pooling windows never include padding (max ignores it, average divides
 * by the in-bounds count), so a window clipped to the band equals the
 * window clipped to the whole convolution output: the band covers every
 * in-bounds row of each of its windows.
 */
#include <stddef.h>

#include "eg_kernel_support.h"
#include "eg_runtime.h"

static int32_t max_i32(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

static int32_t min_i32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

/* Output rows [first, last) of a window sliding along an axis of in_len
 * elements (window start o * stride - pad, kernel elements): the input
 * rows [*begin, *end) they read, and the padding left above *begin. */
static void row_span(int32_t first, int32_t last, int32_t kernel, int32_t stride,
                     int32_t pad, int32_t in_len, int32_t *begin, int32_t *end,
                     int32_t *pad_before)
{
    const int32_t start = first * stride - pad;
    *begin = max_i32(0, start);
    *end = min_i32(in_len, (last - 1) * stride - pad + kernel);
    *pad_before = max_i32(0, -start);
}

eg_status eg_conv_pool_slice(const eg_shape *conv_in, int32_t kernel_h, int32_t kernel_w,
                             const eg_conv_params *conv, const eg_shape *conv_out,
                             const eg_pool_params *pool, const eg_shape *pool_out,
                             int32_t row, int32_t rows, int32_t band_bytes,
                             eg_conv_pool_band *band)
{
    int32_t c0, c1, i0, i1, conv_pad, pool_pad;

    if (conv_in == NULL || conv == NULL || conv_out == NULL || pool == NULL ||
        pool_out == NULL || band == NULL) {
        return EG_ERR_ARG;
    }
    if (!conv_geometry_ok(conv_in, conv_out, kernel_h, kernel_w, conv) ||
        !shape_ok(pool_out) || pool_out->c != conv_out->c ||
        !axis_ok(conv_out->h, pool_out->h, pool->kernel_h, pool->stride_h, pool->pad_top) ||
        !axis_ok(conv_out->w, pool_out->w, pool->kernel_w, pool->stride_w, pool->pad_left) ||
        pool->act_min < -128 || pool->act_min > pool->act_max || pool->act_max > 127) {
        return EG_ERR_ARG;
    }
    if (row < 0 || rows < 1 || (int64_t)row + rows > pool_out->h) {
        return EG_ERR_ARG;
    }
    /* The band: the convolution output rows the pooled rows' windows cover
     * (never empty: axis_ok puts an in-bounds row in every window). */
    row_span(row, row + rows, pool->kernel_h, pool->stride_h, pool->pad_top, conv_out->h,
             &c0, &c1, &pool_pad);
    if ((int64_t)(c1 - c0) * conv_out->w * conv_out->c > band_bytes) {
        return EG_ERR_ARG;
    }
    /* The input rows the band's convolution windows read. */
    row_span(c0, c1, kernel_h, conv->stride_h, conv->pad_top, conv_in->h, &i0, &i1, &conv_pad);

    band->input_offset = i0 * conv_in->w * conv_in->c;
    band->conv_in.h = i1 - i0;
    band->conv_in.w = conv_in->w;
    band->conv_in.c = conv_in->c;
    band->conv = *conv;
    band->conv.pad_top = conv_pad;
    band->band.h = c1 - c0;
    band->band.w = conv_out->w;
    band->band.c = conv_out->c;
    band->pool = *pool;
    band->pool.pad_top = pool_pad;
    band->output_offset = row * pool_out->w * pool_out->c;
    band->pool_out.h = rows;
    band->pool_out.w = pool_out->w;
    band->pool_out.c = pool_out->c;
    return EG_OK;
}
