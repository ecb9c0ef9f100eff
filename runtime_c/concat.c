/*
 * concat.c: int8 tensors joined along the channel (last) axis, each input
 * rescaled to the output's quantization (the branches of a Fire module or
 * an Inception block are quantized on their own). An input that already
 * has the output's quantization is copied.
 *
 * The first input may lie at the start of the output buffer (the memory
 * planner puts it there when that saves RAM): pixels are then joined from
 * the last to the first, each channel from the last to the first, so that
 * every byte of the first input is read before the output overwrites it
 * (the output's pixel p starts at p * total >= p * channels[0], and ends
 * before any byte of a later input pixel of the first input is needed).
 */
#include <stddef.h>

#include "eg_kernel_support.h"
#include "eg_runtime.h"

/* The multiplier and shift of a scale of exactly 1 (2^30 * 2^(1 - 31)). */
#define IDENTITY_MULTIPLIER (1 << 30)
#define IDENTITY_SHIFT 1

static int parts_ok(const eg_concat_params *p)
{
    int32_t i;
    if (p->inputs == NULL || p->count < 1 || p->output_offset < -128 || p->output_offset > 127) {
        return 0;
    }
    if (p->rounding != EG_ROUNDING_DOUBLE && p->rounding != EG_ROUNDING_SINGLE) {
        return 0;
    }
    if (p->rounding != EG_ROUNDING_OF(p)) {
        return 0; /* built for the other rounding (EG_FIXED_ROUNDING) */
    }
    for (i = 0; i < p->count; ++i) {
        const eg_concat_input *in = &p->inputs[i];
        if (in->channels < 1 || in->offset < -127 || in->offset > 128 || in->multiplier < 0 ||
            in->shift < -31 || in->shift > 30) {
            return 0;
        }
    }
    return 1;
}

/* One input's channels of one pixel. */
static void rescale(const int8_t *src, int32_t n, const eg_concat_input *in,
                    int32_t output_offset, eg_rounding rounding, int8_t *dst)
{
    int32_t k;
    if (in->multiplier == IDENTITY_MULTIPLIER && in->shift == IDENTITY_SHIFT &&
        in->offset == -output_offset) {
        for (k = n - 1; k >= 0; --k) {
            dst[k] = src[k];
        }
        return;
    }
    for (k = n - 1; k >= 0; --k) {
        const int32_t v =
            stage_scale(src[k] + in->offset, in->multiplier, in->shift, rounding) + output_offset;
        dst[k] = (int8_t)clamp_range(v, INT8_MIN, INT8_MAX);
    }
}

eg_status eg_concat_s8(const int8_t *const *inputs, int32_t pixels,
                       const eg_concat_params *params, int8_t *output)
{
    int32_t total = 0, i, p;
    eg_rounding rounding;

    if (inputs == NULL || params == NULL || output == NULL || pixels < 1 || !parts_ok(params)) {
        return EG_ERR_ARG;
    }
    for (i = 0; i < params->count; ++i) {
        if (inputs[i] == NULL || (int64_t)total + params->inputs[i].channels > INT32_MAX) {
            return EG_ERR_ARG;
        }
        total += params->inputs[i].channels;
    }
    if ((int64_t)pixels * total > INT32_MAX) {
        return EG_ERR_ARG;
    }
    rounding = EG_ROUNDING_OF(params);
    for (p = pixels - 1; p >= 0; --p) {
        int8_t *dst = output + p * total;
        for (i = 0; i < params->count; ++i) {
            const int32_t n = params->inputs[i].channels;
            rescale(inputs[i] + p * n, n, &params->inputs[i], params->output_offset, rounding,
                    dst);
            dst += n;
        }
    }
    return EG_OK;
}
