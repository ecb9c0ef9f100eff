/*
 * fully_connected.c: int8 fully connected layer, weights [out][in].
 *
 * Four output rows at a time (eg_dot_4x1): each input value loaded serves
 * four multiply-accumulates; the last out % 4 rows one at a time.
 *
 * The input zero point is folded into the bias at generation time
 * (bias[o] = true_bias[o] - zero_point * sum_i weights[o][i]), so the inner
 * loop is a plain int8 dot product over contiguous weight rows. The
 * accumulator is kept in uint32_t (int32 arithmetic modulo 2^32, as TFLite
 * computes it on real targets, without signed-overflow UB); in that ring the
 * folded form equals TFLite's acc = bias + sum w * (x - zero_point) exactly.
 */
#include <stddef.h>

#include "eg_dot.h"
#include "eg_kernel_support.h"
#include "eg_runtime.h"

eg_status eg_fully_connected_s8(const int8_t *input, int32_t in_features,
                                const int8_t *weights, const int32_t *bias,
                                int32_t out_features, const eg_requant *requant,
                                int8_t *output)
{
    int32_t o;

    if (input == NULL || weights == NULL || bias == NULL || requant == NULL ||
        output == NULL) {
        return EG_ERR_ARG;
    }
    if (in_features < 1 || out_features < 1 ||
        (int64_t)in_features * out_features > INT32_MAX) {
        return EG_ERR_ARG;
    }
    if (!requant_ok(requant, out_features)) {
        return EG_ERR_ARG;
    }

    for (o = 0; o + 4 <= out_features; o += 4) {
        uint32_t acc[4];
        int32_t k;
        for (k = 0; k < 4; ++k) {
            acc[k] = (uint32_t)bias[o + k];
        }
        eg_dot_4x1(input, weights + o * in_features, in_features, in_features, acc);
        for (k = 0; k < 4; ++k) {
            output[o + k] = output_stage_channel(wrap_int32(acc[k]), o + k, requant);
        }
    }
    for (; o < out_features; ++o) {
        const uint32_t acc =
            eg_dot_1x1(input, weights + o * in_features, in_features, (uint32_t)bias[o]);
        output[o] = output_stage_channel(wrap_int32(acc), o, requant);
    }
    return EG_OK;
}
