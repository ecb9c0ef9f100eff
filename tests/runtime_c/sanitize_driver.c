/*
 * Test driver for the C runtime under AddressSanitizer and UBSan.
 *
 * usage: sanitize_driver CASES OUTPUTS
 *
 * CASES is a sequence of records written by test_sanitizers_c.py, all
 * fields native-endian int32:
 *     op, nparams, params[nparams], narrays,
 *     then per array: element size (1 or 4), count, count * size bytes.
 * Every array is copied into a heap block of exactly its size (an array of
 * count 0 is passed as NULL), and every output goes to a heap block of
 * exactly the size the kernel may write, so that any access out of bounds
 * is caught. For each record, OUTPUTS receives: status, byte count, bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eg_runtime.h"

#define MAX_PARAMS 32
#define MAX_ARRAYS 8

enum { OP_CONV = 1, OP_FC, OP_MAX_POOL, OP_AVG_POOL, OP_CLAMP, OP_REQUANTIZE, OP_SRDHM, OP_RDBP,
       OP_DEPTHWISE, OP_SOFTMAX = 20, OP_LOG_SOFTMAX };

static FILE *cases;
static FILE *results;

static void fail(const char *what)
{
    fprintf(stderr, "sanitize_driver: %s\n", what);
    exit(2);
}

static int read_i32(int32_t *v)
{
    return fread(v, sizeof *v, 1, cases) == 1;
}

static int32_t must_read_i32(void)
{
    int32_t v;
    if (!read_i32(&v)) {
        fail("truncated case file");
    }
    return v;
}

static void *must_alloc(size_t bytes)
{
    void *p = malloc(bytes);
    if (p == NULL) {
        fail("out of memory");
    }
    return p;
}

static void write_result(int32_t status, const void *data, int32_t bytes)
{
    if (fwrite(&status, sizeof status, 1, results) != 1 ||
        fwrite(&bytes, sizeof bytes, 1, results) != 1 ||
        (bytes > 0 && fwrite(data, 1, (size_t)bytes, results) != (size_t)bytes)) {
        fail("cannot write results");
    }
}

static eg_shape shape_at(const int32_t *p)
{
    eg_shape s;
    s.h = p[0];
    s.w = p[1];
    s.c = p[2];
    return s;
}

static int32_t shape_size(const eg_shape *s)
{
    return s->h * s->w * s->c;
}

static void run_record(int32_t op, const int32_t *p, void *const *a)
{
    if (op == OP_CONV || op == OP_DEPTHWISE) {
        /* in h w c, out h w c, kh, kw, sh, sw, pt, pl, input_offset,
         * rounding, output_offset, act_min, act_max, groups, with the
         * depthwise kernel's optional scratch (1) or not (0);
         * arrays: input, filter (OHWI; depthwise: [kh][kw][out]), bias,
         * multiplier, shift */
        const eg_shape in = shape_at(p), out = shape_at(p + 3);
        eg_conv_params params;
        eg_requant rq;
        int8_t *output = must_alloc((size_t)shape_size(&out));
        eg_status st;
        params.stride_h = p[8];
        params.stride_w = p[9];
        params.pad_top = p[10];
        params.pad_left = p[11];
        params.input_offset = p[12];
        params.groups = p[17];
        rq.multiplier = a[3];
        rq.shift = a[4];
        rq.rounding = (eg_rounding)p[13];
        rq.output_offset = p[14];
        rq.act_min = p[15];
        rq.act_max = p[16];
        rq.per_tensor = 0;
        /* exactly the documented scratch: an overrun is caught */
        const int32_t scratch_bytes =
            op == OP_CONV ? EG_CONV2D_S8_SCRATCH_BYTES(p[6], p[7], in.c / p[17])
                          : p[18] ? EG_DEPTHWISE_CONV2D_S8_SCRATCH_BYTES(p[6], p[7]) : 0;
        void *scratch = scratch_bytes > 0 ? must_alloc((size_t)scratch_bytes) : NULL;
        st = (op == OP_CONV ? eg_conv2d_s8 : eg_depthwise_conv2d_s8)(
            a[0], &in, a[1], p[6], p[7], a[2], &params, &rq, scratch, scratch_bytes, output,
            &out);
        write_result((int32_t)st, output, shape_size(&out));
        free(scratch);
        free(output);
    } else if (op == OP_FC) {
        /* in_features, out_features, rounding, output_offset, act_min, act_max;
         * arrays: input, weights, bias, multiplier, shift */
        eg_requant rq;
        int8_t *output = must_alloc((size_t)p[1]);
        eg_status st;
        rq.multiplier = a[3];
        rq.shift = a[4];
        rq.rounding = (eg_rounding)p[2];
        rq.output_offset = p[3];
        rq.act_min = p[4];
        rq.act_max = p[5];
        rq.per_tensor = 0;
        st = eg_fully_connected_s8(a[0], p[0], a[1], a[2], p[1], &rq, output);
        write_result((int32_t)st, output, p[1]);
        free(output);
    } else if (op == OP_MAX_POOL || op == OP_AVG_POOL) {
        /* in h w c, out h w c, kh, kw, sh, sw, pt, pl, act_min, act_max, divisor_pad_h,
         * divisor_pad_w; array: input */
        const eg_shape in = shape_at(p), out = shape_at(p + 3);
        eg_pool_params params;
        int8_t *output = must_alloc((size_t)shape_size(&out));
        eg_status st;
        params.kernel_h = p[6];
        params.kernel_w = p[7];
        params.stride_h = p[8];
        params.stride_w = p[9];
        params.pad_top = p[10];
        params.pad_left = p[11];
        params.act_min = p[12];
        params.act_max = p[13];
        params.divisor_pad_h = p[14];
        params.divisor_pad_w = p[15];
        st = op == OP_MAX_POOL ? eg_max_pool_s8(a[0], &in, &params, output, &out)
                               : eg_avg_pool_s8(a[0], &in, &params, output, &out);
        write_result((int32_t)st, output, shape_size(&out));
        free(output);
    } else if (op == OP_CLAMP) {
        /* size, act_min, act_max; array: input */
        int8_t *output = must_alloc((size_t)p[0]);
        eg_status st = eg_clamp_s8(a[0], p[0], p[1], p[2], output);
        write_result((int32_t)st, output, p[0]);
        free(output);
    } else if (op == OP_SOFTMAX) {
        /* rows, depth, input_multiplier, input_left_shift, diff_min; array: input */
        const eg_softmax_params params = {p[2], p[3], p[4]};
        int8_t *output = must_alloc((size_t)p[0] * (size_t)p[1]);
        eg_status st = eg_softmax_s8(a[0], p[0], p[1], &params, output);
        write_result((int32_t)st, output, p[0] * p[1]);
        free(output);
    } else if (op == OP_LOG_SOFTMAX) {
        /* rows, depth, input_multiplier, input_left_shift, reverse_multiplier,
         * reverse_shift, diff_min, rounding; array: input */
        const eg_log_softmax_params params = {p[2], p[3], p[4], p[5], p[6], (eg_rounding)p[7]};
        int8_t *output = must_alloc((size_t)p[0] * (size_t)p[1]);
        eg_status st = eg_log_softmax_s8(a[0], p[0], p[1], &params, output);
        write_result((int32_t)st, output, p[0] * p[1]);
        free(output);
    } else if (op == OP_REQUANTIZE || op == OP_SRDHM || op == OP_RDBP) {
        /* count [, rounding]; arrays: int32 operands */
        const int32_t n = p[0];
        const int32_t *x = a[0], *y = a[1];
        int32_t *output = must_alloc((size_t)n * sizeof *output);
        int32_t i;
        for (i = 0; i < n; ++i) {
            if (op == OP_REQUANTIZE) {
                const int32_t *s = a[2];
                output[i] = eg_requantize(x[i], y[i], s[i], (eg_rounding)p[1]);
            } else if (op == OP_SRDHM) {
                output[i] = eg_saturating_rounding_doubling_high_mul(x[i], y[i]);
            } else {
                output[i] = eg_rounding_divide_by_pot(x[i], y[i]);
            }
        }
        write_result(EG_OK, output, n * (int32_t)sizeof *output);
        free(output);
    } else {
        fail("unknown op");
    }
}

int main(int argc, char **argv)
{
    int32_t op;
    if (argc != 3) {
        fail("usage: sanitize_driver CASES OUTPUTS");
    }
    cases = fopen(argv[1], "rb");
    results = fopen(argv[2], "wb");
    if (cases == NULL || results == NULL) {
        fail("cannot open files");
    }
    while (read_i32(&op)) {
        int32_t params[MAX_PARAMS];
        void *arrays[MAX_ARRAYS];
        int32_t nparams = must_read_i32(), narrays, i;
        if (nparams < 0 || nparams > MAX_PARAMS) {
            fail("bad parameter count");
        }
        for (i = 0; i < nparams; ++i) {
            params[i] = must_read_i32();
        }
        narrays = must_read_i32();
        if (narrays < 0 || narrays > MAX_ARRAYS) {
            fail("bad array count");
        }
        for (i = 0; i < narrays; ++i) {
            const int32_t size = must_read_i32(), count = must_read_i32();
            const size_t bytes = (size_t)size * (size_t)count;
            if ((size != 1 && size != 4) || count < 0) {
                fail("bad array header");
            }
            arrays[i] = NULL;
            if (count > 0) {
                arrays[i] = must_alloc(bytes);
                if (fread(arrays[i], 1, bytes, cases) != bytes) {
                    fail("truncated array");
                }
            }
        }
        for (; i < MAX_ARRAYS; ++i) {
            arrays[i] = NULL;
        }
        run_record(op, params, arrays);
        for (i = 0; i < MAX_ARRAYS; ++i) {
            free(arrays[i]);
        }
    }
    if (fclose(results) != 0) {
        fail("cannot write results");
    }
    fclose(cases);
    return 0;
}
