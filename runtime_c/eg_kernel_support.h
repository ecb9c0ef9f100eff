/*
 * eg_kernel_support.h: checks and the output stage shared by the kernels.
 * Private to runtime_c/ (not part of the API in eg_runtime.h): small static
 * inline functions, so each kernel keeps its arithmetic in one translation
 * unit and the compiler can inline the per-output work.
 */
#ifndef EG_KERNEL_SUPPORT_H
#define EG_KERNEL_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "eg_requantize.h"
#include "eg_runtime.h"

#if defined(__ARM_FEATURE_SAT) && defined(__GNUC__)
#include <arm_acle.h> /* __ssat */
#endif

/* The rounding of an output stage. A build for one model defines
 * EG_FIXED_ROUNDING (edgegen's generated build flags do, from the model):
 * the rounding is then a constant, the requantization has no branch on
 * it, and an eg_requant of the other rounding is refused (EG_ERR_ARG).
 * Without it, each output stage reads the rounding from the eg_requant. */
#if defined(EG_FIXED_ROUNDING)
#define EG_ROUNDING_OF(rq) ((eg_rounding)(EG_FIXED_ROUNDING))
#else
#define EG_ROUNDING_OF(rq) ((rq)->rounding)
#endif

/* Keep a rarely taken path out of a hot loop, so that the loop's values
 * stay in registers and its set-up is not paid on every iteration (GCC and
 * Clang; elsewhere a plain function and a plain condition). */
#if defined(__GNUC__)
#define EG_NOINLINE __attribute__((noinline))
#define EG_UNLIKELY(condition) __builtin_expect(!!(condition), 0)
#define EG_LIKELY(condition) __builtin_expect(!!(condition), 1)
#else
#define EG_NOINLINE
#define EG_UNLIKELY(condition) (condition)
#define EG_LIKELY(condition) (condition)
#endif

/* The int32 value congruent to u modulo 2^32 (a portable two's-complement
 * reinterpretation; compilers emit nothing for it). */
static inline int32_t wrap_int32(uint32_t u)
{
    if (u <= (uint32_t)INT32_MAX) {
        return (int32_t)u;
    }
    return -(int32_t)(~u) - 1;
}

/* 1 if a feature map's dimensions are >= 1 and its size fits int32. */
static inline int shape_ok(const eg_shape *s)
{
    if (s->h < 1 || s->w < 1 || s->c < 1) {
        return 0;
    }
    return (int64_t)s->h * s->w <= INT32_MAX &&
           (int64_t)s->h * s->w * s->c <= INT32_MAX;
}

/* 1 if a window sliding along one axis is consistent: every window holds at
 * least one input element and all index arithmetic fits int32. */
static inline int axis_ok(int32_t in_len, int32_t out_len, int32_t kernel,
                          int32_t stride, int32_t pad)
{
    int64_t last_start;
    if (kernel < 1 || stride < 1 || pad < 0 || pad >= kernel) {
        return 0;
    }
    last_start = (int64_t)(out_len - 1) * stride;
    return last_start - pad < in_len && last_start + kernel <= INT32_MAX &&
           (int64_t)in_len + kernel <= INT32_MAX;
}

/* 1 if the output stage is in range for `channels` output channels. */
static inline int requant_ok(const eg_requant *rq, int32_t channels)
{
    int32_t o, stored;
    if (rq->multiplier == NULL || rq->shift == NULL) {
        return 0;
    }
    if (rq->act_min < -128 || rq->act_min > rq->act_max || rq->act_max > 127) {
        return 0;
    }
    if (rq->output_offset < -128 || rq->output_offset > 127) {
        return 0;
    }
    if (rq->rounding != EG_ROUNDING_DOUBLE && rq->rounding != EG_ROUNDING_SINGLE) {
        return 0;
    }
    if (rq->rounding != EG_ROUNDING_OF(rq)) {
        return 0; /* built for the other rounding (EG_FIXED_ROUNDING) */
    }
    if (rq->per_tensor != 0 && rq->per_tensor != 1) {
        return 0;
    }
    stored = rq->per_tensor ? 1 : channels;
    for (o = 0; o < stored; ++o) {
        if (rq->multiplier[o] < 0 || rq->shift[o] < -31 || rq->shift[o] > 30) {
            return 0;
        }
    }
    return 1;
}

/* 1 if a convolution's geometry is consistent (see eg_conv2d_s8): shapes,
 * windows, a filter addressable with int32 indices, the input offset. */
static inline int conv_geometry_ok(const eg_shape *in, const eg_shape *out,
                                   int32_t kernel_h, int32_t kernel_w,
                                   const eg_conv_params *params)
{
    if (!shape_ok(in) || !shape_ok(out)) {
        return 0;
    }
    if (!axis_ok(in->h, out->h, kernel_h, params->stride_h, params->pad_top) ||
        !axis_ok(in->w, out->w, kernel_w, params->stride_w, params->pad_left)) {
        return 0;
    }
    if ((int64_t)kernel_h * kernel_w > INT32_MAX ||
        (int64_t)kernel_h * kernel_w * in->c > INT32_MAX ||
        (int64_t)kernel_h * kernel_w * in->c * out->c > INT32_MAX) {
        return 0;
    }
    return params->input_offset >= -127 && params->input_offset <= 128;
}

/* 1 if params->groups splits both channel counts evenly (see
 * eg_conv_params); the shapes are already known to be valid. */
static inline int conv_groups_ok(const eg_shape *in, const eg_shape *out,
                                 const eg_conv_params *params)
{
    return params->groups >= 1 && in->c % params->groups == 0 &&
           out->c % params->groups == 0;
}

/* 1 if a codebook holds a slot for every index_bits-bit index (so that no
 * stored index can leave it) and 0 in slot 0. */
static inline int codebook_ok(int32_t version, const int8_t *codebook,
                              int32_t size, int32_t index_bits)
{
    return version == EG_STREAM_FORMAT_VERSION && codebook != NULL &&
           index_bits >= 1 && index_bits <= 8 && size == (1 << index_bits) &&
           codebook[0] == 0;
}

/* 1 if a Huffman table can be read (not that its codes are complete:
 * a pattern that is no code makes the kernel return EG_ERR_DATA). */
static inline int huffman_table_ok(const eg_huffman_table *t)
{
    if (t->max_length == 0) {
        return 1;
    }
    if (t->lut == NULL || t->lut_bits < 1 || t->lut_bits > 12 ||
        t->max_length < 1 || t->max_length > 12) {
        return 0;
    }
    return t->max_length <= t->lut_bits ||
           (t->first != NULL && t->count != NULL && t->offset != NULL &&
            t->symbols != NULL);
}

/* 1 if a sparse layer's fields are consistent. */
static inline int sparse_weights_ok(const eg_sparse_weights *w)
{
    if (w->row_entries == NULL || w->entries == NULL ||
        !codebook_ok(w->version, w->codebook, w->codebook_size, w->index_bits)) {
        return 0;
    }
    return (w->entry_bits == 8 && w->index_bits < 8) ||
           (w->entry_bits == 16 && w->indices != NULL);
}

/* 1 if a Huffman-coded layer's fields are consistent. */
static inline int huffman_weights_ok(const eg_huffman_weights *w)
{
    return w->version == EG_STREAM_FORMAT_VERSION && w->codebook != NULL &&
           w->codebook_size >= 1 && w->codebook_size <= 256 &&
           w->codebook[0] == 0 && w->stream != NULL && w->row_entries != NULL &&
           huffman_table_ok(&w->gaps) && huffman_table_ok(&w->indices) &&
           w->indices.max_length >= 1 &&
           (w->pairs == NULL ? w->pair_bits == 0
                             : w->pair_bits >= 1 && w->pair_bits <= 12 &&
                                   w->gaps.max_length >= 1);
}

/* A layer's output stage in locals: kernels that write many outputs load
 * it once (a store through int8_t * may alias any struct, so a compiler
 * reloads struct fields after every output); each output then loads only
 * its channel's multiplier and shift (a step of 0 for a per-tensor layer).
 * The clamp happens before the zero point is added, against bounds moved
 * by it (all within [-255, 255]), so that nothing leaves int32:
 * clamp(r + z, lo, hi) == clamp(r, lo - z, hi - z) + z. */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t step;      /* 0 per tensor, 1 per channel */
    int32_t low;       /* act_min - output_offset */
    int32_t high;      /* act_max - output_offset */
    int32_t offset;
    eg_rounding rounding;
    int32_t plain;     /* 1: every shift <= -2 and the range [-128, 127] */
} layer_stage;

static inline layer_stage layer_stage_of(const eg_requant *rq)
{
    layer_stage stage;
    stage.multiplier = rq->multiplier;
    stage.shift = rq->shift;
    stage.step = rq->per_tensor ? 0 : 1;
    stage.low = rq->act_min - rq->output_offset;
    stage.high = rq->act_max - rq->output_offset;
    stage.offset = rq->output_offset;
    stage.rounding = EG_ROUNDING_OF(rq);
    stage.plain = 0;
    return stage;
}

/* layer_stage_of into *stage, with `plain` found for a layer of
 * `channels` channels (one pass over its shifts, once per layer; in
 * place: a returned struct would take a second copy in the caller's
 * frame). */
static inline void layer_stage_init(layer_stage *stage, const eg_requant *rq, int32_t channels)
{
    const int32_t stored = rq->per_tensor ? 1 : channels;
    int32_t o, plain = rq->act_min == -128 && rq->act_max == 127;
    for (o = 0; o < stored; ++o) {
        plain &= rq->shift[o] <= -2;
    }
    stage->multiplier = rq->multiplier;
    stage->shift = rq->shift;
    stage->step = rq->per_tensor ? 0 : 1;
    stage->low = rq->act_min - rq->output_offset;
    stage->high = rq->act_max - rq->output_offset;
    stage->offset = rq->output_offset;
    stage->rounding = EG_ROUNDING_OF(rq);
    stage->plain = plain;
}

/* rq_scale for a requant_ok multiplier and shift, the rounding fixed
 * where the build fixes it. */
static inline int32_t stage_scale(int32_t acc, int32_t multiplier, int32_t shift,
                                  eg_rounding rounding)
{
#if defined(EG_FIXED_ROUNDING)
    rounding = (eg_rounding)(EG_FIXED_ROUNDING);
#endif
    return rq_scale(acc, multiplier, shift, rounding);
}

/* v limited to [lo, hi] (lo <= hi). */
static inline int32_t clamp_range(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* The output of an accumulator of a channel with this multiplier and
 * shift: requantize, clamp, add the zero point. */
static inline int8_t scaled_output(layer_stage stage, int32_t multiplier, int32_t shift,
                                   int32_t acc)
{
    const int32_t v = stage_scale(acc, multiplier, shift, stage.rounding);
    return (int8_t)(clamp_range(v, stage.low, stage.high) + stage.offset);
}

/* The output of an accumulator of channel o. */
static inline int8_t layer_output(layer_stage stage, int32_t o, int32_t acc)
{
    const int32_t k = o * stage.step;
    return scaled_output(stage, stage.multiplier[k], stage.shift[k], acc);
}

/* The rounding of a layer_stage: a constant where the build fixes it. */
#if defined(EG_FIXED_ROUNDING)
#define EG_STAGE_ROUNDING(st) ((eg_rounding)(EG_FIXED_ROUNDING))
#else
#define EG_STAGE_ROUNDING(st) ((st).rounding)
#endif

/* Inlined into every caller even at -Os: for helpers whose call would add
 * a frame to the deepest stack, or a call to a per-tile path. */
#ifndef EG_ALWAYS_INLINE
#if defined(__GNUC__)
#define EG_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define EG_ALWAYS_INLINE inline
#endif
#endif

/* The output of a plain stage (layer_stage.plain: every shift right by 2
 * or more, the full int8 range; nearly every layer): rq_scale_right with k
 * = -2 - shift, the zero point, one saturation (an SSAT on Arm).
 * |rq_scale_right| <= 2^30, so adding the zero point cannot overflow. */
static inline int8_t plain_output(int32_t acc, int32_t multiplier, int32_t k,
                                  eg_rounding rounding, int32_t offset)
{
    const int32_t v = rq_scale_right(acc, multiplier, k, rounding) + offset;
#if defined(__ARM_FEATURE_SAT) && defined(__GNUC__)
    return (int8_t)__ssat(v, 8);
#else
    return (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
#endif
}

/* The output of any stage (scaled_output), still taking rq_scale_right
 * for a channel that shifts right by 2 or more. */
static inline int8_t general_output(const layer_stage *st, int32_t acc, int32_t multiplier,
                                    int32_t shift, eg_rounding rounding)
{
    const int32_t v = EG_LIKELY(shift <= -2)
                          ? rq_scale_right(acc, multiplier, -2 - shift, rounding)
                          : rq_scale_general(acc, multiplier, shift, rounding);
    return (int8_t)(clamp_range(v, st->low, st->high) + st->offset);
}

#endif /* EG_KERNEL_SUPPORT_H */
