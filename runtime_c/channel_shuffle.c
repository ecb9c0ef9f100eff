/*
 * channel_shuffle.c: ShuffleNet's channel shuffle on int8 NHWC data, a
 * permutation of each pixel's channels (the values and their quantization
 * are unchanged).
 */
#include <stddef.h>

#include "eg_runtime.h"

eg_status eg_channel_shuffle_s8(const int8_t *input, int32_t pixels, int32_t channels,
                                int32_t groups, int8_t *output)
{
    int32_t per_group, p, i, j;

    if (input == NULL || output == NULL || pixels < 1 || channels < 1 || groups < 1 ||
        channels % groups != 0 || (int64_t)pixels * channels > INT32_MAX) {
        return EG_ERR_ARG;
    }
    per_group = channels / groups;
    for (p = 0; p < pixels; ++p) {
        const int8_t *src = input + p * channels;
        int8_t *dst = output + p * channels;
        /* group i's channel j goes to position j * groups + i */
        for (i = 0; i < groups; ++i) {
            for (j = 0; j < per_group; ++j) {
                dst[j * groups + i] = src[i * per_group + j];
            }
        }
    }
    return EG_OK;
}
