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

/* Elements rescaled at once: their sums on the grid shared by both
 * inputs live on the stack (ADD_BLOCK * 4 bytes), so that the rescaling of
 * the inputs and the output stage each keep their values in registers. */
#define ADD_BLOCK 32

/* The sums of [0, n) elements on the shared grid: each input, offset by its
 * zero point and shifted left by 20 bits, scaled by its multiplier. */
static EG_NOINLINE void shared_grid_sums(const int8_t *input1, const int8_t *input2, int32_t n,
                                         const eg_add_params *params, eg_rounding rounding,
                                         int32_t *sum)
{
    const int32_t offset1 = params->input1_offset, offset2 = params->input2_offset;
    const int32_t multiplier1 = params->input1_multiplier, shift1 = params->input1_shift;
    const int32_t multiplier2 = params->input2_multiplier, shift2 = params->input2_shift;
    int32_t i;
    for (i = 0; i < n; ++i) {
        /* |x + offset| <= 255: shifted by 20 it stays far inside int32 */
        const int32_t one = (input1[i] + offset1) * (1 << ADD_LEFT_SHIFT);
        const int32_t two = (input2[i] + offset2) * (1 << ADD_LEFT_SHIFT);
        /* each scaled term is below 2^28 in magnitude: the sum fits */
        sum[i] = stage_scale(one, multiplier1, shift1, rounding) +
                 stage_scale(two, multiplier2, shift2, rounding);
    }
}

/* The output of [0, n) elements from their sums: scaled to the output,
 * offset by its zero point, clamped. */
static EG_NOINLINE void add_outputs(const int32_t *sum, int32_t n, const eg_add_params *params,
                                    eg_rounding rounding, int8_t *output)
{
    const int32_t multiplier = params->output_multiplier, shift = params->output_shift;
    const int32_t offset = params->output_offset;
    const int32_t lo = params->act_min, hi = params->act_max;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t v = stage_scale(sum[i], multiplier, shift, rounding) + offset;
        output[i] = (int8_t)clamp_range(v, lo, hi);
    }
}

eg_status eg_add_s8(const int8_t *input1, const int8_t *input2, int32_t size,
                    const eg_add_params *params, int8_t *output)
{
    int32_t sum[ADD_BLOCK];
    int32_t i;

    if (input1 == NULL || input2 == NULL || params == NULL || output == NULL || size < 1) {
        return EG_ERR_ARG;
    }
    if (!add_params_ok(params)) {
        return EG_ERR_ARG;
    }
    for (i = 0; i < size; i += ADD_BLOCK) {
        const int32_t n = size - i < ADD_BLOCK ? size - i : ADD_BLOCK;
        shared_grid_sums(input1 + i, input2 + i, n, params, EG_ROUNDING_OF(params), sum);
        add_outputs(sum, n, params, EG_ROUNDING_OF(params), output + i);
    }
    return EG_OK;
}
