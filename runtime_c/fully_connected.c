/*
 * fully_connected.c: int8 fully connected layer, weights [out][in].
 *
 * The input zero point is folded into the bias at generation time
 * (bias[o] = true_bias[o] - zero_point * sum_i weights[o][i]), so the inner
 * loop is a plain int8 dot product over a contiguous weight row. The
 * accumulator is kept in uint32_t (int32 arithmetic modulo 2^32, as TFLite
 * computes it on real targets, without signed-overflow UB); in that ring the
 * folded form equals TFLite's acc = bias + sum w * (x - zero_point) exactly.
 */
#include <stddef.h>

#include "eg_runtime.h"
#include "eg_kernel_support.h"

eg_status eg_fully_connected_s8(const int8_t *input, int32_t in_features,
                                const int8_t *weights, const int32_t *bias,
                                int32_t out_features, const eg_requant *requant,
                                int8_t *output)
{
    const int8_t *row;
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

    row = weights;
    for (o = 0; o < out_features; ++o) {
        uint32_t acc = (uint32_t)bias[o];
        int32_t i;
        for (i = 0; i < in_features; ++i) {
            acc += (uint32_t)((int32_t)input[i] * (int32_t)row[i]);
        }
        output[o] = output_stage_channel(wrap_int32(acc), o, requant);
        row += in_features;
    }
    return EG_OK;
}
