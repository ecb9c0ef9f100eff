/*
 * eg_dot.h: the int8 dot products at the heart of the dense kernels, as
 * small register tiles. Private to runtime_c/.
 *
 * A tile computes several dot products at once so that every value loaded
 * serves more than one multiply-accumulate: 2 filters against 2 windows
 * (convolution; fully_connected.c has its own 4-row tile, on weights laid
 * out for it).
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

/* Inlined into every caller even at -Os (where GCC would otherwise call
 * them: a call frame more on the deepest stack, and a call per tile). */
#ifndef EG_ALWAYS_INLINE
#if defined(__GNUC__)
#define EG_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define EG_ALWAYS_INLINE inline
#endif
#endif

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

/* Two filters f0, f1 against two windows x0, x1 (n values each):
 * acc[2 * f + p] += sum x_p[i] * f_f[i]. */
#if EG_USE_DSP
/* Four values of two windows against four of two filters: 16 products. */
#define EG_DOT_2X2_STEP(p0, p1, f0, f1, a00, a01, a10, a11)                  \
    do {                                                                      \
        const uint32_t p0_ = eg_load4(p0), p1_ = eg_load4(p1);               \
        const uint32_t p0_even = eg_sxtb16(p0_), p0_odd = eg_sxtb16_ror8(p0_); \
        const uint32_t p1_even = eg_sxtb16(p1_), p1_odd = eg_sxtb16_ror8(p1_); \
        uint32_t w_ = eg_load4(f0);                                           \
        uint32_t w_even = eg_sxtb16(w_), w_odd = eg_sxtb16_ror8(w_);         \
        a00 = eg_smlad(w_odd, p0_odd, eg_smlad(w_even, p0_even, a00));        \
        a01 = eg_smlad(w_odd, p1_odd, eg_smlad(w_even, p1_even, a01));        \
        w_ = eg_load4(f1);                                                    \
        w_even = eg_sxtb16(w_);                                               \
        w_odd = eg_sxtb16_ror8(w_);                                           \
        a10 = eg_smlad(w_odd, p0_odd, eg_smlad(w_even, p0_even, a10));        \
        a11 = eg_smlad(w_odd, p1_odd, eg_smlad(w_even, p1_even, a11));        \
    } while (0)
#endif

/* Without DSP on a Thumb-2 core (Cortex-M3; ARMv7-M), the byte loop as
 * assembly: LDRSB with post-increment and MLA are there, and the C loop's
 * count, compare and branch cost a fifth of each step. Its 13 operands fit
 * beside a frame pointer (checked with GCC 12, -fno-omit-frame-pointer); a
 * build that wants no assembly defines EG_NO_INLINE_ASM and gets the C
 * loop, which computes the same values. */
#if !EG_USE_DSP && defined(__thumb2__) && defined(__GNUC__) && defined(__OPTIMIZE__) && \
    !defined(EG_NO_INLINE_ASM)
#define EG_THUMB2_ASM 1
/* One value of each array: p0, p1 of the windows, w, v of the filters. */
#define EG_THUMB2_MAC4                          \
    "ldrsb %[p0], [%[x0]], #1\n\t"             \
    "ldrsb %[p1], [%[x1]], #1\n\t"             \
    "ldrsb %[w], [%[f0]], #1\n\t"              \
    "ldrsb %[v], [%[f1]], #1\n\t"              \
    "mla %[a00], %[p0], %[w], %[a00]\n\t"      \
    "mla %[a01], %[p1], %[w], %[a01]\n\t"      \
    "mla %[a10], %[p0], %[v], %[a10]\n\t"      \
    "mla %[a11], %[p1], %[v], %[a11]\n\t"
#else
#define EG_THUMB2_ASM 0
#endif

/* Two filters f0, f1 against two windows x0, x1 (n values each):
 * acc[2 * f + p] += sum x_p[i] * f_f[i]. */
static EG_ALWAYS_INLINE void eg_dot_2x2(const int8_t *x0, const int8_t *x1,
                                       const int8_t *f0, const int8_t *f1, int32_t n,
                                       uint32_t acc[4])
{
    uint32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t i = 0;
#if EG_USE_DSP
    for (; i + 4 <= n; i += 4) {
        EG_DOT_2X2_STEP(x0 + i, x1 + i, f0 + i, f1 + i, a00, a01, a10, a11);
    }
#elif EG_THUMB2_ASM
    if (n >= 4) {
        const int8_t *end = f0 + (n & ~3);
        int32_t p0, p1, w, v;
        /* four values of each of the four arrays per step: 16 LDRSB + MLA
         * pairs and one loop test (GCC reassociates the C loop unrolled,
         * adding a product chain into each accumulator, and spills) */
        __asm__("1:\n\t"
                EG_THUMB2_MAC4 EG_THUMB2_MAC4 EG_THUMB2_MAC4 EG_THUMB2_MAC4
                "cmp %[f0], %[end]\n\t"
                "bne 1b"
                : [x0] "+r"(x0), [x1] "+r"(x1), [f0] "+r"(f0), [f1] "+r"(f1),
                  [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11),
                  [p0] "=&r"(p0), [p1] "=&r"(p1), [w] "=&r"(w), [v] "=&r"(v)
                : [end] "r"(end)
                : "cc", "memory");
        n &= 3; /* the pointers have moved past the steps: the tail is left */
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

/* eg_dot_2x2 for windows x, x + n and filters f, f + n: one distance for
 * both pairs leaves the loop few enough pointers to stay in registers. */
static EG_ALWAYS_INLINE void eg_dot_2x2_stacked(const int8_t *x, const int8_t *f, int32_t n,
                                               uint32_t acc[4])
{
#if EG_USE_DSP
    uint32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const int8_t *end = x + (n & ~3);
    while (x != end) {
        EG_DOT_2X2_STEP(x, x + n, f, f + n, a00, a01, a10, a11);
        x += 4;
        f += 4;
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
    eg_dot_2x2(x, x + n, f, f + n, n & 3, acc);
#else
    eg_dot_2x2(x, x + n, f, f + n, n, acc);
#endif
}

#endif /* EG_DOT_H */
