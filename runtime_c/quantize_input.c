/*
 * quantize_input.c: float32 values to a model's int8 input, the one file of
 * the runtime with floating point. A firmware that never calls
 * eg_quantize_f32_s8 links none of it (-ffunction-sections with
 * --gc-sections, or an archive member nothing references), nor the
 * compiler's software float routines it calls on cores without an FPU.
 *
 * float only, never double: every constant has the f suffix, and nothing is
 * promoted (clean under -Wdouble-promotion). Each step is exact or one IEEE
 * float32 operation, so every target computes the same bytes:
 *  - r = input[i] / scale: one division, correctly rounded by IEEE 754 on
 *    an FPU (Cortex-M4F/M7/M33, x86-64 SSE) and in libgcc's soft float
 *    (Cortex-M0/M3, RV32IMAC), and stored to a float (C99 drops any
 *    excess precision on assignment);
 *  - |r| < 256: the conversion to int32 truncates exactly, r - trunc(r) is
 *    exact, and comparing it with 0.5f rounds half away from zero;
 *  - otherwise r is compared, never converted: +-inf and huge values clamp,
 *    NaN (false in every comparison) becomes the zero point.
 * It assumes the default floating-point environment: round to nearest even,
 * subnormals not flushed to zero (the reset state of every FPU here).
 */
#include <float.h>
#include <stddef.h>

#include "eg_runtime.h"

/* Beyond +-EG_QUANTIZE_LIMIT every zero point in [-128, 127] clamps alike. */
#define EG_QUANTIZE_LIMIT 256

/* r rounded half away from zero, limited to
 * [-EG_QUANTIZE_LIMIT, EG_QUANTIZE_LIMIT]; NaN gives 0. */
static int32_t eg_round_half_away_f32(float r)
{
    if (r > -(float)EG_QUANTIZE_LIMIT && r < (float)EG_QUANTIZE_LIMIT) {
        const int32_t whole = (int32_t)r;   /* truncated toward zero */
        const float rest = r - (float)whole; /* exact, with the sign of r */
        if (rest >= 0.5f) {
            return whole + 1;
        }
        if (rest <= -0.5f) {
            return whole - 1;
        }
        return whole;
    }
    if (r > 0.0f) {
        return EG_QUANTIZE_LIMIT;
    }
    if (r < 0.0f) {
        return -EG_QUANTIZE_LIMIT;
    }
    return 0; /* NaN */
}

eg_status eg_quantize_f32_s8(const float *input, int32_t size, float scale,
                             int32_t zero_point, int8_t *output)
{
    int32_t i;

    if (input == NULL || output == NULL || size < 1) {
        return EG_ERR_ARG;
    }
    /* Also false for NaN. */
    if (!(scale > 0.0f && scale <= FLT_MAX)) {
        return EG_ERR_ARG;
    }
    if (zero_point < -128 || zero_point > 127) {
        return EG_ERR_ARG;
    }
    for (i = 0; i < size; ++i) {
        const float r = input[i] / scale;
        const int32_t q = eg_round_half_away_f32(r) + zero_point;
        output[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
    return EG_OK;
}
