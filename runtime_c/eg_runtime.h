/*
 * edgegen runtime: int8 inference kernels for microcontrollers.
 *
 * Usage (what a generated model's .c does, one call per layer):
 *
 *     static const eg_shape in_shape = {28, 28, 1}, out_shape = {24, 24, 20};
 *     static const eg_conv_params conv = {1, 1, 0, 0, 128, 1}; (stride 1, no pad, zp -128,
 *                                                                one group)
 *     static const eg_requant rq = {mult, shift, -5, -128, 127, EG_ROUNDING_DOUBLE, 0};
 *     eg_status st = eg_conv2d_s8(input, &in_shape, w, 5, 5, bias, &conv, &rq,
 *                                 output, &out_shape);
 *
 * Conventions shared by every function:
 *  - arithmetic is TFLite's int8 specification: int8 activations with a
 *    per-tensor zero point, symmetric int8 weights, int32 bias and
 *    accumulator, per-output-channel requantization by a Q31 multiplier and a
 *    power-of-two shift (see eg_requantize);
 *  - feature maps are one sample in NHWC order without N: element (y, x, k)
 *    of an eg_shape {h, w, c} is at index (y * w + x) * c + k;
 *  - conv filters are OHWI; fully connected weights are [out][in], row-major;
 *  - no allocation, no global state, no floating point (except
 *    eg_quantize_f32_s8, quantize_input.c, which a firmware that does not
 *    call it never links): the caller owns every buffer, and input and
 *    output buffers must not overlap (except for eg_clamp_s8, which may run
 *    in place);
 *  - every parameter struct is read-only and may live in flash.
 *
 * Return codes: EG_OK, or EG_ERR_ARG when a pointer is NULL, a shape is
 * inconsistent with the parameters, or a parameter is outside the range
 * documented here (checked before any output is written). Sizes whose
 * element count or index arithmetic would leave int32 are rejected too.
 *
 * Accumulators are int32 as in TFLite; one that overflows wraps modulo 2^32
 * (computed without undefined behaviour), which is what TFLite produces on
 * real targets. The generator keeps every layer's accumulators in range.
 *
 * The region between the cdef markers holds only plain declarations: the
 * host build hands it to cffi verbatim, so the Python side never keeps a
 * second copy of this API.
 */
#ifndef EG_RUNTIME_H
#define EG_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* cdef-begin */

typedef enum {
    EG_OK = 0,
    EG_ERR_ARG = 1,
    EG_ERR_DATA = 2     /* a compressed weight stream does not decode */
} eg_status;

/* How an int32 accumulator is scaled by (multiplier, shift).
 * DOUBLE: TFLite reference MultiplyByQuantizedMultiplier, i.e. gemmlowp
 *         SaturatingRoundingDoublingHighMul then RoundingDivideByPOT
 *         (two roundings; also CMSIS-NN's default).
 * SINGLE: TFLITE_SINGLE_ROUNDING: (x * multiplier + 2^(30 - shift)) >> (31 - shift)
 *         in 64 bits (one rounding, half up). */
typedef enum {
    EG_ROUNDING_DOUBLE = 0,
    EG_ROUNDING_SINGLE = 1
} eg_rounding;

/* One feature map: height, width, channels (NHWC, batch 1). All >= 1. */
typedef struct {
    int32_t h;
    int32_t w;
    int32_t c;
} eg_shape;

/* Output stage of conv and fully connected, per output channel o:
 *   out = clamp(eg_requantize(acc, multiplier[o], shift[o], rounding)
 *               + output_offset, act_min, act_max)
 * multiplier[o] in [0, INT32_MAX] (normally [2^30, 2^31)), shift[o] in
 * [-31, 30] (> 0 shifts left); output_offset is the output zero point, in
 * [-128, 127]; -128 <= act_min <= act_max <= 127 (a fused ReLU/ReLU6
 * narrows them); rounding is one of the eg_rounding values. per_tensor 1:
 * multiplier[0] and shift[0] serve every channel (a layer with one weight
 * scale, e.g. a shared codebook); 0: one of each per channel.
 * The kernels return EG_ERR_ARG for values outside these ranges. */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    eg_rounding rounding;
    int32_t per_tensor;
} eg_requant;

/* Convolution geometry. pad_top/pad_left are the zero padding before the
 * first row/column (bottom/right padding follows from the output shape).
 * input_offset is minus the input zero point, in [-127, 128]: a padded
 * position contributes (zero_point + input_offset) * w = 0, i.e. real zero.
 * groups is PyTorch's: >= 1, dividing in->c and out->c; output channel o
 * belongs to group g = o / (out->c / groups) and reads input channels
 * [g * in->c / groups, (g + 1) * in->c / groups) only, so a filter holds
 * in->c / groups channels per tap (1: an ordinary convolution).
 * eg_depthwise_conv2d_s8 does not read it (its groups are in->c). */
typedef struct {
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_top;
    int32_t pad_left;
    int32_t input_offset;
    int32_t groups;
} eg_conv_params;

/* Pooling window. Padded positions are never part of a window's values:
 * max pooling ignores them and average pooling sums the in-bounds
 * elements. act_min/act_max clamp the result (input and output share their
 * quantization parameters). Average pooling divides by the count of the
 * window's elements inside the input grown by divisor_pad_h rows and
 * divisor_pad_w columns on each side: 0, 0 counts the in-bounds elements;
 * PyTorch's count_include_pad=True counts its explicit padding (at most
 * the padding on either side; max pooling ignores both fields). */
typedef struct {
    int32_t kernel_h;
    int32_t kernel_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_top;
    int32_t pad_left;
    int32_t act_min;
    int32_t act_max;
    int32_t divisor_pad_h;
    int32_t divisor_pad_w;
} eg_pool_params;

/* ---- compressed weights (docs/storage_formats.md) ---------------------
 *
 * A weight layer is a matrix: one row per output channel, one column per
 * input feature (fully connected) or filter tap (convolution, OHWI order:
 * column (ky * kernel_w + kx) * in_c + c). Every compressed format indexes
 * a codebook of int8 values whose slot 0 holds 0 (pruned weights and
 * filler entries). The version field must equal EG_STREAM_FORMAT_VERSION:
 * weights generated for another layout are refused (EG_ERR_ARG). */

#define EG_STREAM_FORMAT_VERSION 1

/* Bytes of conv scratch per stored nonzero of the longest filter row: the
 * decoded taps (int32 input offset, int8 weight, uint8 ky and kx). The
 * scratch may have any alignment: EG_CONV_SCRATCH_BYTES (below the API
 * declarations) leaves room to align it. */
#define EG_CONV_TAP_BYTES 7

/* Bit streams (codebook indices, Huffman codes) are MSB-first and stored
 * in reverse byte order: the pointer is the stream's byte 0, byte k is
 * pointer[-k], and 4 zero bytes lie below its last byte.
 *
 * codebook: every position stored as an index_bits-bit codebook index,
 * rows one after another. */
typedef struct {
    int32_t version;
    const int8_t *codebook;     /* codebook_size values, codebook[0] == 0 */
    int32_t codebook_size;      /* 2^index_bits (unused slots hold 0) */
    int32_t index_bits;         /* 1..8, 2^index_bits >= codebook_size */
    const uint8_t *indices;     /* byte 0 of the index stream */
    int32_t max_row_nonzeros;   /* most nonzero weights in one row */
} eg_codebook_weights;

/* sparse: nonzeros only, as entries (gap, index). A row's cursor starts at
 * column 0; an entry sits at column cursor + gap and moves the cursor one
 * past it. Gaps longer than the gap field are bridged by fillers (largest
 * gap, index 0). entry_bits 8: one byte (gap << index_bits) | index per
 * entry in `entries`; entry_bits 16: the entry's 8-bit gap in `entries`
 * and its 8-bit index in `indices` (two planes, one load each). */
typedef struct {
    int32_t version;
    const int8_t *codebook;     /* codebook[0] == 0 */
    int32_t codebook_size;      /* 2^index_bits (unused slots hold 0) */
    int32_t index_bits;         /* 1..7 with 8-bit entries, 1..8 with 16 */
    int32_t entry_bits;         /* 8 or 16 */
    const uint8_t *entries;
    const uint8_t *indices;     /* entry_bits 16 only, else NULL */
    const uint16_t *row_entries; /* entries (fillers included) of each row */
    int32_t max_row_nonzeros;
} eg_sparse_weights;

/* A canonical Huffman code, read MSB-first. lut[v] for the next lut_bits
 * bits v is (length << 12) | symbol when a code of length <= lut_bits
 * starts there, 0 when the code is longer; longer codes are decoded from
 * first/count/offset (indexed by length 0..max_length, NULL when
 * max_length <= lut_bits) and symbols. max_length 0: an empty code (no
 * symbol is ever read). */
typedef struct {
    const uint16_t *lut;
    int32_t lut_bits;           /* 1..12 (0 with max_length 0) */
    int32_t max_length;         /* 0..12 */
    const uint16_t *first;      /* first code of each length */
    const uint16_t *count;      /* codes of each length */
    const uint16_t *offset;     /* index in symbols of that first code */
    const uint16_t *symbols;    /* in canonical order */
} eg_huffman_table;

/* huffman: the sparse entries Huffman-coded in one stream, each entry its
 * gap code followed by its index code. With
 * gaps.max_length == 0 there are no gap codes: every position is an entry
 * (the codebook layout, entropy-coded). The index code always has at least
 * one code, even for a layer without entries. Optionally (pairs != NULL,
 * sparse entries only) a lookup of the next pair_bits bits decodes a whole
 * entry at once: (length << 20) | (gap << 8) | index, where length is the
 * two codes' total, or 0 when they do not both end within pair_bits. */
typedef struct {
    int32_t version;
    const int8_t *codebook;     /* codebook[0] == 0 */
    int32_t codebook_size;      /* 1..256, above every index symbol */
    const uint8_t *stream;      /* byte 0 of the stream (see above) */
    const uint16_t *row_entries;
    eg_huffman_table gaps;
    eg_huffman_table indices;
    const uint32_t *pairs;      /* 2^pair_bits entries, or NULL */
    int32_t pair_bits;          /* 1..12 with pairs, else 0 */
    int32_t max_row_nonzeros;
} eg_huffman_weights;

/* ---- requantize.c ---------------------------------------------------- */

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31) with ties
 * toward +infinity (nudge 2^30, or 1 - 2^30 for a negative product, then a
 * truncating division: 1.5 -> 2, -1.5 -> -1); the single overflow case
 * a == b == INT32_MIN gives INT32_MAX. */
int32_t eg_saturating_rounding_doubling_high_mul(int32_t a, int32_t b);

/* gemmlowp RoundingDivideByPOT: round(x / 2^exponent), ties away from zero
 * (-1.5 -> -2, -1.25 -> -1). exponent in [0, 31]; values outside are
 * clamped to that range. */
int32_t eg_rounding_divide_by_pot(int32_t x, int32_t exponent);

/* Scale an accumulator by multiplier * 2^(shift - 31) with the given
 * rounding. A left shift (shift > 0) saturates to the int32 range before the
 * multiply (TFLite leaves that overflow undefined); the single-rounding
 * result saturates likewise. multiplier >= 0 (a negative one is taken as
 * 0), shift in [-31, 30] (a shift
 * outside is clamped to that range); a rounding other than
 * EG_ROUNDING_SINGLE means EG_ROUNDING_DOUBLE. No input has undefined
 * behaviour. */
int32_t eg_requantize(int32_t acc, int32_t multiplier, int32_t shift,
                      eg_rounding rounding);

/* ---- conv2d.c -------------------------------------------------------- */

/* 2-D convolution, int8 NHWC input, int8 OHWI filter, params->groups
 * groups (1: ordinary; a grouped convolution gathers each group's channel
 * slice of a window once, as much input in all as one ungrouped window).
 * filter: out->c x kernel_h x kernel_w x (in->c / groups); bias: out->c
 * int32 values,
 * the folded bias computed at generation time (NULL: all zero):
 *   bias[o] = true_bias[o] + input_offset * sum of filter o's weights,
 * so that acc[o] = bias[o] + sum input * filter over the window needs no
 * offset in the inner loop (a window that overlaps the padding adds the
 * zero point times its padded taps' weights, which cancels their share of
 * the fold: padding contributes real zero). Then the output stage of
 * eg_requant. scratch: any alignment, at least
 * EG_CONV2D_S8_SCRATCH_BYTES(kernel_h, kernel_w, in->c / groups) bytes:
 * two windows of one group (for a 1x1 filter, two pixels widened to 16
 * bits; when that is 0 bytes scratch may be NULL). Returns EG_ERR_ARG if
 * a dimension,
 * kernel size or stride is < 1, a padding is < 0 or >= the kernel size,
 * the last output window starts past the input
 * ((out->h - 1) * stride_h - pad_top >= in->h, likewise for w), the
 * input_offset is outside [-127, 128], groups does not divide both
 * channel counts, the requantization constants are
 * outside their ranges or the scratch is too small. Every window thus
 * holds at least one input element;
 * out->h may be smaller than the largest consistent value (the remaining
 * rows are simply not computed). */
eg_status eg_conv2d_s8(const int8_t *input, const eg_shape *in,
                       const int8_t *filter, int32_t kernel_h, int32_t kernel_w,
                       const int32_t *bias, const eg_conv_params *params,
                       const eg_requant *requant,
                       void *scratch, int32_t scratch_bytes,
                       int8_t *output, const eg_shape *out);

/* ---- depthwise_conv2d.c ---------------------------------------------- */

/* Depthwise 2-D convolution (PyTorch groups = in->c): output channel o reads
 * input channel o / (out->c / in->c) only; out->c must be a multiple of
 * in->c (the depth multiplier). filter: [kernel_h][kernel_w][out->c], the
 * output channels innermost (TFLite's depthwise layout). bias: the folded
 * bias as for eg_conv2d_s8 (NULL: all zero); a padded tap contributes real
 * zero. Argument rules as eg_conv2d_s8, except that the scratch is
 * optional: NULL, 0 always works; with the DSP kernels, at least
 * EG_DEPTHWISE_CONV2D_S8_SCRATCH_BYTES(kernel_h, kernel_w) bytes (any
 * alignment) make a depth multiplier of 1 faster (its weights widened
 * once per four channels instead of once per pixel). */
eg_status eg_depthwise_conv2d_s8(const int8_t *input, const eg_shape *in,
                                 const int8_t *filter, int32_t kernel_h, int32_t kernel_w,
                                 const int32_t *bias, const eg_conv_params *params,
                                 const eg_requant *requant,
                                 void *scratch, int32_t scratch_bytes,
                                 int8_t *output, const eg_shape *out);

/* ---- fully_connected.c ----------------------------------------------- */

/* Fully connected: the weight matrix W[out_features][in_features], int8,
 * in blocks of four rows (docs/storage_formats.md, dense):
 *  - for each block of rows 4b..4b+3 (b < out_features / 4): for each
 *    j < in_features / 4 the 16 values W[4b + r][4j + k], r major, k minor;
 *    then the last in_features % 4 columns of each of the four rows, row
 *    by row;
 *  - then the last out_features % 4 rows, row-major.
 * (With out_features < 4 or in_features < 4 this is plain row-major.)
 * bias is the folded bias, computed at generation time:
 *   bias[o] = true_bias[o] - input_zero_point * sum_i weights[o][i]
 * so that acc[o] = bias[o] + sum_i input[i] * weights[o][i] needs no offset
 * in the inner loop. bias must not be NULL. Returns EG_ERR_ARG if a feature
 * count is < 1 or the requantization constants are outside their ranges. */
eg_status eg_fully_connected_s8(const int8_t *input, int32_t in_features,
                                const int8_t *weights, const int32_t *bias,
                                int32_t out_features, const eg_requant *requant,
                                int8_t *output);

/* ---- fully_connected_compressed.c ------------------------------------ */

/* Fully connected on compressed weights: as eg_fully_connected_s8 (bias
 * folded, not NULL), with the weights in one of the layouts above, read
 * from flash as the products are computed. Returns EG_ERR_ARG for an
 * inconsistent struct (version, codebook, widths, tables, NULL arrays),
 * EG_ERR_DATA for a Huffman bit pattern that is no code (outputs of the
 * rows before it are written). */
eg_status eg_fully_connected_codebook_s8(const int8_t *input, int32_t in_features,
                                         const eg_codebook_weights *weights,
                                         const int32_t *bias, int32_t out_features,
                                         const eg_requant *requant, int8_t *output);
eg_status eg_fully_connected_sparse_s8(const int8_t *input, int32_t in_features,
                                       const eg_sparse_weights *weights,
                                       const int32_t *bias, int32_t out_features,
                                       const eg_requant *requant, int8_t *output);
eg_status eg_fully_connected_huffman_s8(const int8_t *input, int32_t in_features,
                                        const eg_huffman_weights *weights,
                                        const int32_t *bias, int32_t out_features,
                                        const eg_requant *requant, int8_t *output);

/* ---- conv2d_compressed.c --------------------------------------------- */

/* 2-D convolution on compressed filters (rows: output channels, columns:
 * OHWI taps of in->c / groups channels). Shape and parameter rules as
 * eg_conv2d_s8, groups included (a depthwise layer, groups = in->c, may
 * be computed here when its filters are stored compressed), except that bias
 * is the folded bias, not NULL:
 *   bias[o] = true_bias[o] + input_offset * sum of filter o's weights.
 * scratch: any alignment, at least
 * EG_CONV_SCRATCH_BYTES(weights->max_row_nonzeros) bytes (one decoded
 * filter); kernel_h and
 * kernel_w at most 256. Returns EG_ERR_ARG for inconsistent arguments,
 * EG_ERR_DATA when a stored filter has more nonzeros than
 * max_row_nonzeros, an entry past its last tap or a Huffman bit pattern
 * that is no code (the channels before it are written). */
eg_status eg_conv2d_codebook_s8(const int8_t *input, const eg_shape *in,
                                const eg_codebook_weights *weights,
                                int32_t kernel_h, int32_t kernel_w,
                                const int32_t *bias, const eg_conv_params *params,
                                const eg_requant *requant,
                                void *scratch, int32_t scratch_bytes,
                                int8_t *output, const eg_shape *out);
eg_status eg_conv2d_sparse_s8(const int8_t *input, const eg_shape *in,
                              const eg_sparse_weights *weights,
                              int32_t kernel_h, int32_t kernel_w,
                              const int32_t *bias, const eg_conv_params *params,
                              const eg_requant *requant,
                              void *scratch, int32_t scratch_bytes,
                              int8_t *output, const eg_shape *out);
eg_status eg_conv2d_huffman_s8(const int8_t *input, const eg_shape *in,
                               const eg_huffman_weights *weights,
                               int32_t kernel_h, int32_t kernel_w,
                               const int32_t *bias, const eg_conv_params *params,
                               const eg_requant *requant,
                               void *scratch, int32_t scratch_bytes,
                               int8_t *output, const eg_shape *out);

/* ---- pooling.c ------------------------------------------------------- */

/* Max pooling over in-bounds window elements, then clamp. Shape rules as
 * eg_conv2d_s8 with the pool kernel; out->c must equal in->c;
 * -128 <= act_min <= act_max <= 127. */
eg_status eg_max_pool_s8(const int8_t *input, const eg_shape *in,
                         const eg_pool_params *params,
                         int8_t *output, const eg_shape *out);

/* Average pooling, TFLite reference rounding: with divisor n (the
 * in-bounds elements, and the padding eg_pool_params' divisor_pad_h/w
 * count) and the in-bounds elements' sum s, avg = (s + n/2) / n for
 * s > 0, (s - n/2) / n otherwise (C division, truncating: half away from
 * zero), then clamp. Argument rules as eg_max_pool_s8; in addition
 * divisor_pad_h in [0, kernel_h) and divisor_pad_w in [0, kernel_w), and
 * the largest counted window, min(kernel_h, in->h + 2 * divisor_pad_h) *
 * min(kernel_w, in->w + 2 * divisor_pad_w), may hold at most 2^23
 * elements (so that the int32 sum cannot overflow). */
eg_status eg_avg_pool_s8(const int8_t *input, const eg_shape *in,
                         const eg_pool_params *params,
                         int8_t *output, const eg_shape *out);

/* ---- add.c ----------------------------------------------------------- */

/* TFLite's int8 ADD, element-wise over two tensors of `size` values:
 *   one = scale((input1 + input1_offset) << 20, input1_multiplier, input1_shift)
 *   two = scale((input2 + input2_offset) << 20, input2_multiplier, input2_shift)
 *   out = clamp(scale(one + two, output_multiplier, output_shift) + output_offset,
 *               act_min, act_max)
 * where scale is eg_requantize in `rounding`. Offsets: minus the input zero
 * points, in [-127, 128]; output_offset, the output zero point, in
 * [-128, 127]; multipliers >= 0 (normally in [2^30, 2^31), the input ones
 * from scales below 1/2) and shifts in [-31, 30]. output may be one of the
 * inputs (in place). EG_ERR_ARG for values outside these ranges. */
typedef struct {
    int32_t input1_offset;
    int32_t input1_multiplier;
    int32_t input1_shift;
    int32_t input2_offset;
    int32_t input2_multiplier;
    int32_t input2_shift;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
    eg_rounding rounding;
} eg_add_params;

eg_status eg_add_s8(const int8_t *input1, const int8_t *input2, int32_t size,
                    const eg_add_params *params, int8_t *output);

/* ---- softmax.c ------------------------------------------------------- */

/* The longest row eg_softmax_s8 takes: its sum of exponentials, each at
 * most 2^19 in Q12.19, must fit int32. */
#define EG_SOFTMAX_MAX_DEPTH 4095

/* TFLite's int8 SOFTMAX parameters, from the input scale and beta (the
 * generator computes them): a difference to the row's maximum becomes
 * Q5.26 as srdhm(diff * 2^input_left_shift, input_multiplier);
 * differences below diff_min (<= 0) count as probability 0. */
typedef struct {
    int32_t input_multiplier; /* >= 0 */
    int32_t input_left_shift; /* in [0, 30], with -diff_min * 2^shift <= INT32_MAX */
    int32_t diff_min;
} eg_softmax_params;

/* Softmax over each of `rows` rows of `depth` int8 values (the last axis
 * of an NHWC tensor), bit-exact with TFLite's reference kernel; output
 * scale 1/256, zero point -128. output may not overlap input. EG_ERR_ARG
 * for a depth outside [1, EG_SOFTMAX_MAX_DEPTH] or parameters outside the
 * ranges above. */
eg_status eg_softmax_s8(const int8_t *input, int32_t rows, int32_t depth,
                        const eg_softmax_params *params, int8_t *output);

/* TFLite's int8 LOG_SOFTMAX parameters: the softmax's, with the inverse of
 * the input scaling (reverse_multiplier >= 0, reverse_shift in [-31, 0])
 * and the build's rounding for both scalings. */
typedef struct {
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t reverse_multiplier;
    int32_t reverse_shift;
    int32_t diff_min;
    eg_rounding rounding;
} eg_log_softmax_params;

/* log_softmax over each of `rows` rows of `depth` int8 values, bit-exact
 * with TFLite's reference kernel; output scale 16/256, zero point 127.
 * output may not overlap input. EG_ERR_ARG as eg_softmax_s8, and for a
 * rounding other than the build's (EG_FIXED_ROUNDING). */
eg_status eg_log_softmax_s8(const int8_t *input, int32_t rows, int32_t depth,
                            const eg_log_softmax_params *params, int8_t *output);

/* ---- concat.c -------------------------------------------------------- */

/* One input of eg_concat_s8: its channel count, minus its zero point (in
 * [-127, 128]) and its scale over the output's as a multiplier >= 0 and a
 * shift in [-31, 30] (multiplier 2^30 with shift 1 is a scale of 1). */
typedef struct {
    int32_t channels;
    int32_t offset;
    int32_t multiplier;
    int32_t shift;
} eg_concat_input;

typedef struct {
    const eg_concat_input *inputs;
    int32_t count;              /* >= 1 */
    int32_t output_offset;      /* the output zero point, in [-128, 127] */
    eg_rounding rounding;
} eg_concat_params;

/* Tensors of `pixels` NHWC pixels joined along the channels, in order:
 * output value = saturate_int8(eg_requantize(x + offset, multiplier, shift,
 * rounding) + output_offset) for each input value x (an input with a scale
 * of exactly 1 and the output's zero point is copied). inputs[i] holds
 * pixels x params->inputs[i].channels values. inputs[0] may start where
 * output starts (it is then joined in place); no other overlap of an input
 * and the output is allowed. EG_ERR_ARG for values outside these ranges. */
eg_status eg_concat_s8(const int8_t *const *inputs, int32_t pixels,
                       const eg_concat_params *params, int8_t *output);

/* ---- channel_shuffle.c ----------------------------------------------- */

/* ShuffleNet's channel shuffle of `pixels` NHWC pixels of `channels`
 * channels in `groups` groups (PyTorch's ChannelShuffle): output channel
 * j * groups + i is input channel i * (channels / groups) + j. groups must
 * divide channels; input and output must not overlap. */
eg_status eg_channel_shuffle_s8(const int8_t *input, int32_t pixels, int32_t channels,
                                int32_t groups, int8_t *output);

/* ---- clamp.c --------------------------------------------------------- */

/* Element-wise clamp to [act_min, act_max]: a stand-alone ReLU or ReLU6
 * whose input and output share quantization parameters. size >= 1,
 * -128 <= act_min <= act_max <= 127. output may equal input (in place). */
eg_status eg_clamp_s8(const int8_t *input, int32_t size,
                      int32_t act_min, int32_t act_max, int8_t *output);

/* ---- quantize_input.c ------------------------------------------------ */

/* Float values to int8, as a model's input: for each of `size` values
 *   r = input[i] / scale            one IEEE float32 division
 *   q = round(r) + zero_point       half away from zero, exactly (TFLite's
 *                                   Quantize: std::round)
 *   output[i] = clamp(q, -128, 127)
 * NaN gives zero_point; +-inf and values beyond the int8 range clamp (no
 * undefined conversion: r is compared before it is converted). Bit-exact
 * with edgegen's golden model (edgegen.reference.golden.quantize_floats)
 * on every target, with or without an FPU: float arithmetic only, in the
 * default rounding mode (to nearest even) without flush-to-zero. The one
 * function of the runtime with floating point: a firmware that does not
 * call it links none of it (the build's -ffunction-sections and
 * --gc-sections). A generated model's <prefix>_quantize_input calls it with
 * the input's size, scale and zero point. scale > 0 and finite (the float
 * nearest the model's input scale), zero_point in [-128, 127], size >= 1;
 * input and output must not overlap. EG_ERR_ARG otherwise, or for a NULL
 * pointer (nothing is written). */
eg_status eg_quantize_f32_s8(const float *input, int32_t size, float scale,
                             int32_t zero_point, int8_t *output);

/* ---- conv_pool.c ----------------------------------------------------- */

/* One band of a convolution fused with the pooling that follows it: the
 * slices eg_conv_pool_slice computes (element offsets, shapes, parameters
 * for the unchanged kernels). */
typedef struct {
    int32_t input_offset;   /* conv input elements before the band's first input row */
    eg_shape conv_in;       /* the input rows the band's windows read */
    eg_conv_params conv;    /* the convolution's parameters, pad_top of the band */
    eg_shape band;          /* the band: conv output rows the pooled rows cover */
    eg_pool_params pool;    /* the pooling's parameters, pad_top of the band */
    int32_t output_offset;  /* pool output elements before the first pooled row */
    eg_shape pool_out;      /* the pooled rows: {rows, pool_out->w, pool_out->c} */
} eg_conv_pool_band;

/* Convolution then pooling, computed band by band: pooled rows [row, row +
 * rows) need only the convolution output rows their windows cover, and a
 * band of output rows of a window operation is the same operation on a
 * sliced problem (input from the band's first input row, the padding left
 * above it, the band's rows out). For the convolution conv_in -> conv_out
 * (kernel_h x kernel_w, conv) followed by the pooling conv_out -> pool_out
 * (pool), fills *band so that
 *
 *   conv kernel(input + band->input_offset, &band->conv_in, filter,
 *               kernel_h, kernel_w, bias, &band->conv, requant, scratch,
 *               scratch_bytes, buffer, &band->band);
 *   pool kernel(buffer, &band->band, &band->pool,
 *               output + band->output_offset, &band->pool_out);
 *
 * with any conv kernel (eg_conv2d_s8, eg_conv2d_{codebook,sparse,huffman}_s8)
 * and either pool kernel writes exactly those pooled rows of the unfused
 * sequence's output, byte for byte: pooling windows never include padding,
 * so clipping a window to the band (band->pool.pad_top: its padding above
 * the band) leaves the same elements. buffer holds band_bytes bytes;
 * windows that overlap in rows (pool stride_h < kernel_h) are correct too
 * but recompute the rows they share when run band by band. Returns
 * EG_ERR_ARG (writing nothing) for a NULL pointer, a convolution geometry
 * eg_conv2d_s8 refuses, a pooling geometry or range eg_max_pool_s8 refuses
 * on conv_out -> pool_out, row < 0, rows < 1, row + rows > pool_out->h,
 * or a band of more than band_bytes elements. */
eg_status eg_conv_pool_slice(const eg_shape *conv_in, int32_t kernel_h, int32_t kernel_w,
                             const eg_conv_params *conv, const eg_shape *conv_out,
                             const eg_pool_params *pool, const eg_shape *pool_out,
                             int32_t row, int32_t rows, int32_t band_bytes,
                             eg_conv_pool_band *band);

/* cdef-end */

/* eg_conv2d_s8 copies the windows of two output pixels into its scratch
 * (im2col), one group's channels (filter_c = in->c / groups) at a time.
 * A 1x1 filter's windows are read in place; the DSP kernels widen the two
 * pixels' first filter_c & ~3 values to 16 bits there once for all their
 * filters (16 bytes per four channels, 3 to align them; none below four
 * channels; the portable kernels take the same scratch and leave it). */
#define EG_CONV2D_S8_SCRATCH_BYTES(kernel_h, kernel_w, filter_c)                   \
    ((kernel_h) == 1 && (kernel_w) == 1                                             \
         ? ((filter_c) < 4 ? 0 : 16 * ((filter_c) / 4) + 3)                         \
         : 2 * (kernel_h) * (kernel_w) * (filter_c))

/* eg_depthwise_conv2d_s8's scratch, optional: with the DSP kernels and a
 * filter of at most EG_DEPTHWISE_WIDENED_TAPS taps, at least this many
 * bytes (any alignment) let each group of four channels widen its weights
 * to 16 bits there once for all the output pixels (8 bytes a tap, 3 to
 * align them); with less, or NULL, or the portable kernels, the kernel
 * reads its weights as it goes (the same outputs, a little slower). */
#define EG_DEPTHWISE_WIDENED_TAPS 9
#define EG_DEPTHWISE_CONV2D_S8_SCRATCH_BYTES(kernel_h, kernel_w)                  \
    ((kernel_h) * (kernel_w) <= EG_DEPTHWISE_WIDENED_TAPS                          \
         ? 8 * (kernel_h) * (kernel_w) + 3                                         \
         : 0)

/* Scratch bytes of a compressed convolution: one decoded filter of
 * max_row_nonzeros taps, plus room to align it. */
#define EG_CONV_SCRATCH_BYTES(max_row_nonzeros) (EG_CONV_TAP_BYTES * (max_row_nonzeros) + 3)

#ifdef __cplusplus
}
#endif

#endif /* EG_RUNTIME_H */
