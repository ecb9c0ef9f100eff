/*
 * fully_connected.c: int8 fully connected layer.
 *
 * Four output rows at a time: each input value loaded serves four
 * multiply-accumulates. The weights come in the order this loop reads
 * them (eg_runtime.h, eg_fully_connected_s8): for a block of four rows,
 * the rows' weights for inputs 4j..4j+3 lie together, so one pointer walks
 * the block and, with the DSP extension, one word load per row brings four
 * weights.
 *
 * The input zero point is folded into the bias at generation time
 * (bias[o] = true_bias[o] - zero_point * sum_i weights[o][i]), so the inner
 * loop is a plain int8 dot product. The accumulator is kept in uint32_t
 * (int32 arithmetic modulo 2^32, as TFLite computes it on real targets,
 * without signed-overflow UB); in that ring the folded form equals
 * TFLite's acc = bias + sum w * (x - zero_point) exactly.
 */
#include <stddef.h>

#include "eg_dot.h"
#include "eg_kernel_support.h"
#include "eg_runtime.h"

/* Four rows of one block: `chunks` chunks of 16 weights (4 inputs x 4
 * rows), then `tail` weights of each row. Returns past the block. */
static const int8_t *block_4rows(const int8_t *x, const int8_t *w, int32_t chunks,
                                 int32_t tail, uint32_t acc[4])
{
    uint32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *end = w + 16 * chunks;
    int32_t i;
#if EG_USE_DSP
    while (w != end) {
        const uint32_t xs = eg_load4(x);
        const uint32_t x_even = eg_sxtb16(xs), x_odd = eg_sxtb16_ror8(xs);
        uint32_t ws = eg_load4(w);
        a0 = eg_smlad(eg_sxtb16(ws), x_even, a0);
        a0 = eg_smlad(eg_sxtb16_ror8(ws), x_odd, a0);
        ws = eg_load4(w + 4);
        a1 = eg_smlad(eg_sxtb16(ws), x_even, a1);
        a1 = eg_smlad(eg_sxtb16_ror8(ws), x_odd, a1);
        ws = eg_load4(w + 8);
        a2 = eg_smlad(eg_sxtb16(ws), x_even, a2);
        a2 = eg_smlad(eg_sxtb16_ror8(ws), x_odd, a2);
        ws = eg_load4(w + 12);
        a3 = eg_smlad(eg_sxtb16(ws), x_even, a3);
        a3 = eg_smlad(eg_sxtb16_ror8(ws), x_odd, a3);
        x += 4;
        w += 16;
    }
#else
    /* Unrolled by hand: the four inputs' loads use constant offsets. */
#define EG_FC_INPUT(k)                      \
    do {                                    \
        const int8_t xk = x[k];             \
        a0 = eg_mac(a0, xk, w[k]);          \
        a1 = eg_mac(a1, xk, w[4 + (k)]);    \
        a2 = eg_mac(a2, xk, w[8 + (k)]);    \
        a3 = eg_mac(a3, xk, w[12 + (k)]);   \
    } while (0)
    while (w != end) {
        EG_FC_INPUT(0);
        EG_FC_INPUT(1);
        EG_FC_INPUT(2);
        EG_FC_INPUT(3);
        x += 4;
        w += 16;
    }
#undef EG_FC_INPUT
#endif
    for (i = 0; i < tail; ++i) {
        const int8_t xi = x[i];
        a0 = eg_mac(a0, xi, w[i]);
        a1 = eg_mac(a1, xi, w[tail + i]);
        a2 = eg_mac(a2, xi, w[2 * tail + i]);
        a3 = eg_mac(a3, xi, w[3 * tail + i]);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    return w + 4 * tail;
}

eg_status eg_fully_connected_s8(const int8_t *input, int32_t in_features,
                                const int8_t *weights, const int32_t *bias,
                                int32_t out_features, const eg_requant *requant,
                                int8_t *output)
{
    const int8_t *w = weights;
    layer_stage stage;
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

    stage = layer_stage_of(requant);
    for (o = 0; o + 4 <= out_features; o += 4) {
        uint32_t acc[4];
        int32_t k;
        for (k = 0; k < 4; ++k) {
            acc[k] = (uint32_t)bias[o + k];
        }
        w = block_4rows(input, w, in_features / 4, in_features % 4, acc);
        for (k = 0; k < 4; ++k) {
            output[o + k] = layer_output(stage, o + k, wrap_int32(acc[k]));
        }
    }
    for (; o < out_features; ++o) {
        const uint32_t acc = eg_dot_1x1(input, w, in_features, (uint32_t)bias[o]);
        output[o] = layer_output(stage, o, wrap_int32(acc));
        w += in_features;
    }
    return EG_OK;
}
