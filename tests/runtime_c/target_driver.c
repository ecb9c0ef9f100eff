/*
 * target_driver.c: the convolution kernels on an emulated Cortex-M, each
 * case's output compared byte for byte with the golden model's.
 *
 * test_kernels_on_targets.py writes target_cases.h (the cases, their data
 * and expected outputs) and builds this file with the runtime for a core
 * (the DSP kernels and their assembly on a Cortex-M4, the portable C with
 * the Thumb-2 tile on a Cortex-M3), then runs it under QEMU. The exit code
 * (semihosting SYS_EXIT_EXTENDED) is 0 when every case matched, else 1; the
 * console names each failing case.
 */
#include <stddef.h>
#include <stdint.h>

#include "eg_runtime.h"

enum { OP_CONV = 1, OP_DEPTHWISE = 2 };

typedef struct {
    int32_t op;
    eg_shape in, out;
    int32_t kernel_h, kernel_w;
    eg_conv_params params;
    eg_requant requant;
    const int8_t *input;
    const int8_t *filter;
    const int32_t *bias;
    const int8_t *expected;
    int32_t scratch_bytes;
} test_case;

#include "target_cases.h" /* test_cases[], TEST_CASES, MAX_OUTPUT, MAX_SCRATCH */

/* ---- semihosting ---- */

static int32_t semihost(int32_t op, const void *argument)
{
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void print(const char *text)
{
    (void)semihost(0x04, text); /* SYS_WRITE0 */
}

static void print_number(int32_t value)
{
    char digits[12];
    int32_t i = 11;
    uint32_t u = value < 0 ? 0u - (uint32_t)value : (uint32_t)value;
    digits[i] = '\0';
    do {
        digits[--i] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0u);
    if (value < 0) {
        digits[--i] = '-';
    }
    print(digits + i);
}

static void leave(int32_t code)
{
    /* SYS_EXIT_EXTENDED: ADP_Stopped_ApplicationExit with the code */
    static uint32_t block[2];
    block[0] = 0x20026u;
    block[1] = (uint32_t)code;
    (void)semihost(0x20, block);
    for (;;) {
    }
}

/* ---- the cases ---- */

static int8_t output[MAX_OUTPUT + 8];
static uint32_t scratch_words[MAX_SCRATCH / 4 + 2];

int main(void);

int main(void)
{
    int32_t failed = 0, k, i;
    for (k = 0; k < TEST_CASES; ++k) {
        const test_case *t = &test_cases[k];
        const int32_t size = t->out.h * t->out.w * t->out.c;
        /* the scratch one byte past a word boundary, as documented: any alignment */
        void *scratch = t->scratch_bytes > 0 ? (uint8_t *)scratch_words + 1 : NULL;
        eg_status status;
        for (i = 0; i < size + 8; ++i) {
            output[i] = 0x5A;
        }
        if (t->op == OP_CONV) {
            status = eg_conv2d_s8(t->input, &t->in, t->filter, t->kernel_h, t->kernel_w,
                                  t->bias, &t->params, &t->requant, scratch, t->scratch_bytes,
                                  output, &t->out);
        } else {
            status = eg_depthwise_conv2d_s8(t->input, &t->in, t->filter, t->kernel_h,
                                            t->kernel_w, t->bias, &t->params, &t->requant,
                                            scratch, t->scratch_bytes, output, &t->out);
        }
        if (status != EG_OK) {
            print("case ");
            print_number(k);
            print(": status ");
            print_number((int32_t)status);
            print("\n");
            ++failed;
            continue;
        }
        for (i = 0; i < size; ++i) {
            if (output[i] != t->expected[i]) {
                break;
            }
        }
        if (i < size) {
            print("case ");
            print_number(k);
            print(": output ");
            print_number(i);
            print(" is ");
            print_number(output[i]);
            print(", expected ");
            print_number(t->expected[i]);
            print("\n");
            ++failed;
        } else {
            for (i = size; i < size + 8; ++i) {
                if (output[i] != 0x5A) {
                    print("case ");
                    print_number(k);
                    print(": wrote past the output\n");
                    ++failed;
                    break;
                }
            }
        }
    }
    print("cases ");
    print_number(TEST_CASES);
    print(", failed ");
    print_number(failed);
    print("\n");
    leave(failed == 0 ? 0 : 1);
    return 0;
}

/* ---- start-up: flash at 0, RAM at 0x20000000 (mps2-an385, mps2-an386) ---- */

extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_top__;

void reset_handler(void);
void fault_handler(void);

void reset_handler(void)
{
    uint32_t *src = &__data_load__, *dst = &__data_start__;
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CP10, CP11: the FPU */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    while (dst < &__data_end__) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start__; dst < &__bss_end__; ++dst) {
        *dst = 0u;
    }
    leave(main());
}

void fault_handler(void)
{
    print("fault\n");
    leave(2);
}

typedef void (*vector)(void);

__attribute__((section(".vectors"), used)) static const vector vectors[16] = {
    (vector)(uintptr_t)&__stack_top__, reset_handler, fault_handler, fault_handler,
    fault_handler, fault_handler, fault_handler, 0, 0, 0, 0, fault_handler,
    fault_handler, 0, fault_handler, fault_handler,
};
