/*
 * clamp.c: element-wise clamp, a stand-alone ReLU/ReLU6 on int8 data.
 */
#include <stddef.h>

#include "eg_runtime.h"

eg_status eg_clamp_s8(const int8_t *input, int32_t size,
                      int32_t act_min, int32_t act_max, int8_t *output)
{
    int8_t lo, hi;
    int32_t i;

    if (input == NULL || output == NULL || size < 1) {
        return EG_ERR_ARG;
    }
    if (act_min < -128 || act_min > act_max || act_max > 127) {
        return EG_ERR_ARG;
    }
    lo = (int8_t)act_min;
    hi = (int8_t)act_max;
    /* Each element is read before its own output is written, so the
     * in-place call (output == input) is safe. */
    for (i = 0; i < size; ++i) {
        const int8_t v = input[i];
        output[i] = v < lo ? lo : (v > hi ? hi : v);
    }
    return EG_OK;
}
