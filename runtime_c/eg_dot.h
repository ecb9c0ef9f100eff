/*
 * eg_dot.h: the int8 dot products at the heart of the dense kernels, as
 * small register tiles. Private to runtime_c/.
 *
 * A tile computes several dot products at once so that every value loaded
 * serves more than one multiply-accumulate: 4 weight rows against one input
 * vector (fully connected), 2 filters against 2 windows (convolution).
 * With EG_USE_DSP (eg_dsp.h) four int8 values are loaded as one word,
 * widened pairwise by SXTB16 and multiplied pairwise by SMLAD: the bytes
 * 0,2 and 1,3 of an input word meet the same bytes of the weight word, so
 * every product of the plain sum is formed once. The portable loop is
 * unrolled by four; both handle any length and alignment (the last n % 4
 * elements one at a time).
 *
 * Accumulators are uint32_t: int32 arithmetic modulo 2^32, as TFLite
 * computes it on real targets, without signed-overflow undefined
 * behaviour; SMLAD wraps the same way.
 */
#ifndef EG_DOT_H
#define EG_DOT_H

#include <stdint.h>

#include "eg_dsp.h"

static inline uint32_t eg_mac(uint32_t acc, int8_t a, int8_t b)
{
    return acc + (uint32_t)((int32_t)a * (int32_t)b);
}

/* sum over i < n of x[i] * w[i], added to acc. */
static inline uint32_t eg_dot_1x1(const int8_t *x, const int8_t *w, int32_t n, uint32_t acc)
{
    int32_t i = 0;
#if EG_USE_DSP
    for (; i + 4 <= n; i += 4) {
        const uint32_t xs = eg_load4(x + i), ws = eg_load4(w + i);
        acc = eg_smlad(eg_sxtb16(ws), eg_sxtb16(xs), acc);
        acc = eg_smlad(eg_sxtb16_ror8(ws), eg_sxtb16_ror8(xs), acc);
    }
#else
    for (; i + 4 <= n; i += 4) {
        acc = eg_mac(acc, x[i], w[i]);
        acc = eg_mac(acc, x[i + 1], w[i + 1]);
        acc = eg_mac(acc, x[i + 2], w[i + 2]);
        acc = eg_mac(acc, x[i + 3], w[i + 3]);
    }
#endif
    for (; i < n; ++i) {
        acc = eg_mac(acc, x[i], w[i]);
    }
    return acc;
}

/* Four weight rows (w, w + stride, w + 2 stride, w + 3 stride) against
 * one input vector x of n values: acc[r] += sum x[i] * row_r[i]. */
static inline void eg_dot_4x1(const int8_t *x, const int8_t *w, int32_t stride,
                              int32_t n, uint32_t acc[4])
{
    const int8_t *w0 = w, *w1 = w + stride, *w2 = w1 + stride, *w3 = w2 + stride;
    uint32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t i = 0;
#if EG_USE_DSP
    for (; i + 4 <= n; i += 4) {
        const uint32_t xs = eg_load4(x + i);
        const uint32_t x_even = eg_sxtb16(xs), x_odd = eg_sxtb16_ror8(xs);
        uint32_t ws = eg_load4(w0 + i);
        a0 = eg_smlad(eg_sxtb16(ws), x_even, a0);
        a0 = eg_smlad(eg_sxtb16_ror8(ws), x_odd, a0);
        ws = eg_load4(w1 + i);
        a1 = eg_smlad(eg_sxtb16(ws), x_even, a1);
        a1 = eg_smlad(eg_sxtb16_ror8(ws), x_odd, a1);
        ws = eg_load4(w2 + i);
        a2 = eg_smlad(eg_sxtb16(ws), x_even, a2);
        a2 = eg_smlad(eg_sxtb16_ror8(ws), x_odd, a2);
        ws = eg_load4(w3 + i);
        a3 = eg_smlad(eg_sxtb16(ws), x_even, a3);
        a3 = eg_smlad(eg_sxtb16_ror8(ws), x_odd, a3);
    }
#endif
    for (; i < n; ++i) {
        const int8_t xi = x[i];
        a0 = eg_mac(a0, xi, w0[i]);
        a1 = eg_mac(a1, xi, w1[i]);
        a2 = eg_mac(a2, xi, w2[i]);
        a3 = eg_mac(a3, xi, w3[i]);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Two filters f0, f1 against two windows x0, x1 (n values each):
 * acc[2 * f + p] += sum x_p[i] * f_f[i]. */
static inline void eg_dot_2x2(const int8_t *x0, const int8_t *x1,
                              const int8_t *f0, const int8_t *f1, int32_t n,
                              uint32_t acc[4])
{
    uint32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t i = 0;
#if EG_USE_DSP
    for (; i + 4 <= n; i += 4) {
        const uint32_t p0 = eg_load4(x0 + i), p1 = eg_load4(x1 + i);
        const uint32_t p0_even = eg_sxtb16(p0), p0_odd = eg_sxtb16_ror8(p0);
        const uint32_t p1_even = eg_sxtb16(p1), p1_odd = eg_sxtb16_ror8(p1);
        uint32_t ws = eg_load4(f0 + i);
        uint32_t w_even = eg_sxtb16(ws), w_odd = eg_sxtb16_ror8(ws);
        a00 = eg_smlad(w_even, p0_even, a00);
        a00 = eg_smlad(w_odd, p0_odd, a00);
        a01 = eg_smlad(w_even, p1_even, a01);
        a01 = eg_smlad(w_odd, p1_odd, a01);
        ws = eg_load4(f1 + i);
        w_even = eg_sxtb16(ws);
        w_odd = eg_sxtb16_ror8(ws);
        a10 = eg_smlad(w_even, p0_even, a10);
        a10 = eg_smlad(w_odd, p0_odd, a10);
        a11 = eg_smlad(w_even, p1_even, a11);
        a11 = eg_smlad(w_odd, p1_odd, a11);
    }
#else
    for (; i + 2 <= n; i += 2) {
        const int8_t p0a = x0[i], p1a = x1[i], p0b = x0[i + 1], p1b = x1[i + 1];
        const int8_t wa = f0[i], wb = f0[i + 1], va = f1[i], vb = f1[i + 1];
        a00 = eg_mac(eg_mac(a00, p0a, wa), p0b, wb);
        a01 = eg_mac(eg_mac(a01, p1a, wa), p1b, wb);
        a10 = eg_mac(eg_mac(a10, p0a, va), p0b, vb);
        a11 = eg_mac(eg_mac(a11, p1a, va), p1b, vb);
    }
#endif
    for (; i < n; ++i) {
        const int8_t p0 = x0[i], p1 = x1[i], w = f0[i], v = f1[i];
        a00 = eg_mac(a00, p0, w);
        a01 = eg_mac(a01, p1, w);
        a10 = eg_mac(a10, p0, v);
        a11 = eg_mac(a11, p1, v);
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

#endif /* EG_DOT_H */
