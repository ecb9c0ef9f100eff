/*
 * insn_count: a QEMU TCG plugin that counts executed guest instructions and
 * records the running count each time one marker address executes.
 *
 * Debian's QEMU 7.2 loads plugins but ships no <qemu-plugin.h>, so the few
 * API functions used here are declared below, exactly as plugin API
 * version 1 defines them (a plugin that announces another version is
 * refused at load time).
 *
 * Arguments (-plugin insn_count.so,marker=0x...,out=PATH):
 *   marker  guest address of the firmware's marker function (the firmware
 *           calls it before and after the regions it wants counted);
 *   out     file written at exit: "total <n>" and "hits <k>", then k lines
 *           each holding the count of instructions executed before the
 *           k-th execution of the marker.
 *
 * Counting is an inline +1 per executed instruction: exact and repeatable
 * (QEMU translates each instruction's increment into the generated code, so
 * an instruction that is never reached is never counted).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU plugin API, version 1 (subset) ---- */
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through, never read */
struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS,
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS
};

enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64
};

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

#define PLUGIN_EXPORT __attribute__((visibility("default")))
PLUGIN_EXPORT int qemu_plugin_version = 1;
PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                      int argc, char **argv);
/* ---- end of the API subset ---- */

static uint64_t executed;        /* instructions executed so far */
static uint64_t marker_address;  /* 0: no marker given */
static uint64_t *hits;           /* executed count at each marker execution */
static size_t hit_count;
static size_t hit_capacity;
static char out_path[4096];
static int out_of_memory;

static void record_marker(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (hit_count == hit_capacity) {
        size_t capacity = hit_capacity ? 2 * hit_capacity : 4096;
        uint64_t *grown = realloc(hits, capacity * sizeof *hits);
        if (grown == NULL) {
            out_of_memory = 1;
            return;
        }
        hits = grown;
        hit_capacity = capacity;
    }
    hits[hit_count++] = executed;
}

static void translate_block(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    size_t i;

    (void)id;
    for (i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);

        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
        if (marker_address != 0 && qemu_plugin_insn_vaddr(insn) == marker_address) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, record_marker, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void write_counts(qemu_plugin_id_t id, void *userdata)
{
    FILE *out;
    size_t i;

    (void)id;
    (void)userdata;
    if (out_path[0] == '\0') {
        char line[64];
        snprintf(line, sizeof line, "total %" PRIu64 "\n", executed);
        qemu_plugin_outs(line);
        return;
    }
    out = fopen(out_path, "w");
    if (out == NULL) {
        qemu_plugin_outs("insn_count: cannot open the output file\n");
        return;
    }
    fprintf(out, "total %" PRIu64 "\nhits %zu\n", executed, hit_count);
    if (out_of_memory) {
        fprintf(out, "error out of memory\n");
    }
    for (i = 0; i < hit_count; i++) {
        fprintf(out, "%" PRIu64 "\n", hits[i]);
    }
    fclose(out);
}

/* "key=value" -> value if the key matches, else NULL. */
static const char *argument_value(const char *argument, const char *key)
{
    size_t length = strlen(key);
    if (strncmp(argument, key, length) == 0 && argument[length] == '=') {
        return argument + length + 1;
    }
    return NULL;
}

PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                      int argc, char **argv)
{
    int i;

    (void)info;
    for (i = 0; i < argc; i++) {
        const char *value;
        if ((value = argument_value(argv[i], "marker")) != NULL) {
            char *end;
            marker_address = strtoull(value, &end, 0);
            if (*value == '\0' || *end != '\0') {
                qemu_plugin_outs("insn_count: marker must be an address such as 0x1234\n");
                return -1;
            }
        } else if ((value = argument_value(argv[i], "out")) != NULL) {
            if (strlen(value) >= sizeof out_path) {
                qemu_plugin_outs("insn_count: output path too long\n");
                return -1;
            }
            strcpy(out_path, value);
        } else {
            qemu_plugin_outs("insn_count: unknown argument (expected marker=ADDR or out=PATH)\n");
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, translate_block);
    qemu_plugin_register_atexit_cb(id, write_counts, NULL);
    return 0;
}
