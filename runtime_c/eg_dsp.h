/*
 * eg_dsp.h: the Arm DSP-extension instructions the kernels use, or exact C
 * models of them. Private to runtime_c/.
 *
 * A build selects the DSP kernels with EG_KERNELS_DSP=1 (edgegen sets it
 * for boards whose `kernels` field is "dsp"; leave it out to build the
 * portable C, which stays the reference). Then:
 *  - on a core with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4, M7,
 *    M33) the intrinsics of <arm_acle.h> compile to SXTB16, SXTAB16,
 *    SMLAD, SMLABB/SMLATT, SSUB16 (and asm gives SSUB8/SEL);
 *  - with EG_DSP_EMULATE (host builds only) the C models below compute
 *    the same values, so that the host property tests cover the DSP
 *    kernels' arithmetic (lane order, widening, wrap-around);
 *  - anywhere else the build stops, rather than run the models slowly on
 *    a core without the instructions.
 *
 * EG_USE_DSP is 1 when the DSP kernels are compiled, 0 otherwise.
 */
#ifndef EG_DSP_H
#define EG_DSP_H

#include <stdint.h>

#if defined(EG_KERNELS_DSP) && EG_KERNELS_DSP
#define EG_USE_DSP 1
#else
#define EG_USE_DSP 0
#endif

#if EG_USE_DSP
#include <string.h> /* memcpy: cores with the DSP extension have newlib */

/* Four int8 values from any address, in one word load where the core
 * allows unaligned access (every core with the DSP extension does). */
static inline uint32_t eg_load4(const int8_t *p)
{
    uint32_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

/* Store four int8 values at any address, in one word store. */
static inline void eg_store4(int8_t *p, uint32_t word)
{
    memcpy(p, &word, sizeof word);
}

#if defined(__ARM_FEATURE_DSP) && !defined(EG_DSP_EMULATE)
#include <arm_acle.h>

/* Bytes 0 and 2 of x sign-extended into the low and high halfwords. */
static inline uint32_t eg_sxtb16(uint32_t x)
{
    return (uint32_t)__sxtb16((int32_t)x);
}

/* Bytes 1 and 3 of x sign-extended into the low and high halfwords: one
 * SXTB16 with its operand rotated (GCC 12 has no __ror, and does not fold
 * a C rotate into the instruction). */
static inline uint32_t eg_sxtb16_ror8(uint32_t x)
{
#if defined(__GNUC__)
    uint32_t result;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(result) : "r"(x));
    return result;
#else
    return (uint32_t)__sxtb16((int32_t)((x >> 8) | (x << 24)));
#endif
}

/* acc + lo(a) * lo(b) + hi(a) * hi(b), halfwords signed, modulo 2^32. */
static inline uint32_t eg_smlad(uint32_t a, uint32_t b, uint32_t acc)
{
    return (uint32_t)__smlad((int32_t)a, (int32_t)b, (int32_t)acc);
}

/* Each halfword of acc plus bytes 0 and 2 of x sign-extended (SXTAB16),
 * and plus bytes 1 and 3 (its operand rotated, in asm for the reason
 * above); each halfword modulo 2^16. */
static inline uint32_t eg_sxtab16(uint32_t acc, uint32_t x)
{
    return (uint32_t)__sxtab16((int32_t)acc, (int32_t)x);
}

static inline uint32_t eg_sxtab16_ror8(uint32_t acc, uint32_t x)
{
#if defined(__GNUC__)
    uint32_t result;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(result) : "r"(acc), "r"(x));
    return result;
#else
    return (uint32_t)__sxtab16((int32_t)acc, (int32_t)((x >> 8) | (x << 24)));
#endif
}

/* acc + lo(a) * lo(b), and acc + hi(a) * hi(b): one lane each. */
static inline uint32_t eg_smlabb(uint32_t a, uint32_t b, uint32_t acc)
{
    return (uint32_t)__smlabb((int32_t)a, (int32_t)b, (int32_t)acc);
}

static inline uint32_t eg_smlatt(uint32_t a, uint32_t b, uint32_t acc)
{
    return (uint32_t)__smlatt((int32_t)a, (int32_t)b, (int32_t)acc);
}

/* Each halfword of a minus the same halfword of b, modulo 2^16 (SSUB16;
 * the GE flags it sets are not used). */
static inline uint32_t eg_ssub16(uint32_t a, uint32_t b)
{
    return (uint32_t)__ssub16((int32_t)a, (int32_t)b);
}

/* Byte-wise signed maximum and minimum: SSUB8 sets a GE flag per byte
 * where a >= b, SEL picks by them (one asm statement: the flags must not
 * be separated from their use). */
static inline uint32_t eg_max4(uint32_t a, uint32_t b)
{
    uint32_t result;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(result) : "r"(a), "r"(b) : "cc");
    return result;
}

static inline uint32_t eg_min4(uint32_t a, uint32_t b)
{
    uint32_t result;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %2, %1" : "=&r"(result) : "r"(a), "r"(b) : "cc");
    return result;
}

#elif defined(EG_DSP_EMULATE)

static inline uint32_t eg_sext8_halfword(uint32_t byte)
{
    return (byte ^ 0x80u) - 0x80u; /* sign-extend, then keep the low 16 bits */
}

static inline uint32_t eg_sxtb16(uint32_t x)
{
    return (eg_sext8_halfword(x & 0xFFu) & 0xFFFFu) |
           (eg_sext8_halfword((x >> 16) & 0xFFu) << 16);
}

static inline uint32_t eg_sxtb16_ror8(uint32_t x)
{
    return eg_sxtb16((x >> 8) | (x << 24));
}

static inline int32_t eg_halfword(uint32_t x, int32_t high)
{
    const uint32_t h = high ? x >> 16 : x & 0xFFFFu;
    return (int32_t)(h ^ 0x8000u) - 0x8000;
}

static inline uint32_t eg_smlabb(uint32_t a, uint32_t b, uint32_t acc)
{
    return acc + (uint32_t)(eg_halfword(a, 0) * eg_halfword(b, 0));
}

static inline uint32_t eg_smlatt(uint32_t a, uint32_t b, uint32_t acc)
{
    return acc + (uint32_t)(eg_halfword(a, 1) * eg_halfword(b, 1));
}

static inline uint32_t eg_sxtab16(uint32_t acc, uint32_t x)
{
    const uint32_t lanes = eg_sxtb16(x);
    return ((acc + lanes) & 0xFFFFu) | (((acc >> 16) + (lanes >> 16)) << 16);
}

static inline uint32_t eg_sxtab16_ror8(uint32_t acc, uint32_t x)
{
    return eg_sxtab16(acc, (x >> 8) | (x << 24));
}

static inline uint32_t eg_ssub16(uint32_t a, uint32_t b)
{
    return ((a - b) & 0xFFFFu) | (((a >> 16) - (b >> 16)) << 16);
}

static inline uint32_t eg_smlad(uint32_t a, uint32_t b, uint32_t acc)
{
    /* Each product is within [-2^30, 2^30]: int32 holds it exactly. */
    const int32_t low = eg_halfword(a, 0) * eg_halfword(b, 0);
    const int32_t high = eg_halfword(a, 1) * eg_halfword(b, 1);
    return acc + (uint32_t)low + (uint32_t)high;
}

/* Byte lane k of x as a signed value. */
static inline int32_t eg_lane(uint32_t x, int32_t k)
{
    return (int32_t)(((x >> (8 * k)) & 0xFFu) ^ 0x80u) - 0x80;
}

static inline uint32_t eg_pick4(uint32_t a, uint32_t b, int take_max)
{
    uint32_t result = 0;
    int32_t k;
    for (k = 0; k < 4; ++k) {
        const int a_wins = (eg_lane(a, k) >= eg_lane(b, k)) == take_max;
        result |= ((a_wins ? a : b) >> (8 * k) & 0xFFu) << (8 * k);
    }
    return result;
}

static inline uint32_t eg_max4(uint32_t a, uint32_t b)
{
    return eg_pick4(a, b, 1);
}

static inline uint32_t eg_min4(uint32_t a, uint32_t b)
{
    return eg_pick4(a, b, 0);
}

#else
#error "EG_KERNELS_DSP=1 needs a core with the Arm DSP extension (__ARM_FEATURE_DSP: Cortex-M4, M7, M33); build the portable kernels (no EG_KERNELS_DSP) for this core, or define EG_DSP_EMULATE for a host test build"
#endif

#endif /* EG_USE_DSP */

/* 1 where the kernels' inline assembly for cores with the DSP extension
 * is compiled: GCC or Clang, optimising (the blocks use up to fourteen
 * registers: r0-r12 and lr, which a frame pointer would take). A build
 * that keeps a frame pointer (-fno-omit-frame-pointer) defines
 * EG_NO_INLINE_ASM and gets the C, which computes the same values. */
#if EG_USE_DSP && defined(__ARM_FEATURE_DSP) && !defined(EG_DSP_EMULATE) && \
    defined(__GNUC__) && defined(__OPTIMIZE__) && !defined(EG_NO_INLINE_ASM)
#define EG_DSP_ASM 1
#else
#define EG_DSP_ASM 0
#endif

#endif /* EG_DSP_H */
