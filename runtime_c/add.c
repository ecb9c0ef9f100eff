/*
 * add.c: element-wise addition of two int8 tensors of one shape, TFLite's
 * int8 ADD: a residual join of two branches with their own quantization.
 *
 * Each input, offset by its zero point, is shifted left by 20 bits so that
 * rescaling keeps its precision, then scaled to a grid shared by both (its
 * multiplier and shift, both < 1); the sum is scaled to the output and
 * offset by the output zero point, then clamped. The scalings are the
 * output stage's (eg_kernel_support.h), in the build's rounding.
 */
#include <stddef.h>

#include "eg_kernel_support.h"
#include "eg_runtime.h"

#define ADD_LEFT_SHIFT 20

static int scale_ok(int32_t multiplier, int32_t shift)
{
    return multiplier >= 0 && shift >= -31 && shift <= 30;
}

static int add_params_ok(const eg_add_params *p)
{
    if (p->input1_offset < -127 || p->input1_offset > 128 ||
        p->input2_offset < -127 || p->input2_offset > 128 ||
        p->output_offset < -128 || p->output_offset > 127) {
        return 0;
    }
    if (p->act_min < -128 || p->act_min > p->act_max || p->act_max > 127) {
        return 0;
    }
    if (p->rounding != EG_ROUNDING_DOUBLE && p->rounding != EG_ROUNDING_SINGLE) {
        return 0;
    }
    if (p->rounding != EG_ROUNDING_OF(p)) {
        return 0; /* built for the other rounding (EG_FIXED_ROUNDING) */
    }
    return scale_ok(p->input1_multiplier, p->input1_shift) &&
           scale_ok(p->input2_multiplier, p->input2_shift) &&
           scale_ok(p->output_multiplier, p->output_shift);
}

eg_status eg_add_s8(const int8_t *input1, const int8_t *input2, int32_t size,
                    const eg_add_params *params, int8_t *output)
{
    eg_add_params p;
    int32_t i;

    if (input1 == NULL || input2 == NULL || params == NULL || output == NULL || size < 1) {
        return EG_ERR_ARG;
    }
    if (!add_params_ok(params)) {
        return EG_ERR_ARG;
    }
    p = *params; /* in locals: the output stores may alias the struct */
    p.rounding = EG_ROUNDING_OF(params);
    for (i = 0; i < size; ++i) {
        /* |x + offset| <= 255: shifted by 20 it stays far inside int32 */
        const int32_t one = (input1[i] + p.input1_offset) * (1 << ADD_LEFT_SHIFT);
        const int32_t two = (input2[i] + p.input2_offset) * (1 << ADD_LEFT_SHIFT);
        /* each scaled term is below 2^28 in magnitude: the sum fits */
        const int32_t sum = stage_scale(one, p.input1_multiplier, p.input1_shift, p.rounding) +
                            stage_scale(two, p.input2_multiplier, p.input2_shift, p.rounding);
        const int32_t v = stage_scale(sum, p.output_multiplier, p.output_shift, p.rounding) +
                          p.output_offset;
        output[i] = (int8_t)clamp_range(v, p.act_min, p.act_max);
    }
    return EG_OK;
}
