/*
 * A QEMU TCG plugin that counts executed guest instructions (qemu-user, one vCPU), for
 * scripts/count_inference.sh. About 100x faster than tracing every instruction with
 * `-singlestep -d exec`, and exact: each translation block adds its instruction count inline
 * every time it runs.
 *
 *   qemu-aarch64 -cpu CPU -plugin ./libcount.so[,marker=on][,ranges=FILE] PROG ARGS...
 *
 * Prints `instructions: N` on stderr when the program exits.
 * - `marker=on`: count between marker system calls only: `close(-4242)` (fails with EBADF, and
 *   nothing else closes that descriptor) opens a segment, the next one closes it and prints
 *   `segment K: N`. That cuts Python's start-up, imports and session creation out of an ONNX
 *   Runtime count, and one process measures several inputs.
 * - `ranges=FILE`: also count the instructions whose address lies in one of FILE's ranges
 *   (lines `START SIZE [LABEL]`, hexadecimal, from `nm -S`: e.g. the GEMM kernels), printed as
 *   `in ranges: N` (and per segment), and per label as `label NAME: N` (a profile by function).
 *
 * The few declarations below are QEMU 7.2's plugin API (include/qemu/qemu-plugin.h, API
 * version 1), written out here because Debian ships no header for it.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through */
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index,
                                              int64_t num, uint64_t a1, uint64_t a2,
                                              uint64_t a3, uint64_t a4, uint64_t a5,
                                              uint64_t a6, uint64_t a7, uint64_t a8);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                    void *userdata);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);

#define EXPORT __attribute__((visibility("default")))
EXPORT int qemu_plugin_version = 1;

/* Every block adds its instructions to `running`, and those inside the ranges to `in_range`;
 * marker calls snapshot both. */
static uint64_t running, in_range;
static uint64_t mark, mark_in_range;
static uint64_t counted, counted_in_range;
static bool marker_mode;
static bool on;
static int segments;

#define MAX_RANGES 256
#define MAX_LABELS 32
static uint64_t range_start[MAX_RANGES], range_end[MAX_RANGES];
static int range_label[MAX_RANGES];
static int ranges;
static char label_name[MAX_LABELS][64];
static uint64_t label_count[MAX_LABELS];
static int labels;

/* aarch64 Linux: close is system call 57. */
#define SYS_CLOSE 57
#define MARKER_FD ((uint64_t)(int64_t)-4242)

/* The range holding `pc`, or -1. */
static int range_of(uint64_t pc)
{
    for (int i = 0; i < ranges; i++) {
        if (pc >= range_start[i] && pc < range_end[i]) {
            return i;
        }
    }
    return -1;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &running, n);
    if (ranges > 0) {
        uint64_t inside = 0, per_label[MAX_LABELS] = {0};
        for (size_t i = 0; i < n; i++) {
            int r = range_of(qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, i)));
            if (r >= 0) {
                inside++;
                per_label[range_label[r]]++;
            }
        }
        if (inside > 0) {
            qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &in_range,
                                                     inside);
        }
        for (int l = 0; l < labels; l++) {
            if (per_label[l] > 0) {
                qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
                                                         &label_count[l], per_label[l]);
            }
        }
    }
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    (void)id, (void)vcpu, (void)a2, (void)a3, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
    if (num != SYS_CLOSE || a1 != MARKER_FD) {
        return;
    }
    if (on) {
        uint64_t n = running - mark, r = in_range - mark_in_range;
        counted += n;
        counted_in_range += r;
        if (ranges > 0) {
            fprintf(stderr, "segment %d: %" PRIu64 " (in ranges: %" PRIu64 ")\n", segments, n, r);
        } else {
            fprintf(stderr, "segment %d: %" PRIu64 "\n", segments, n);
        }
        segments++;
    } else {
        mark = running;
        mark_in_range = in_range;
    }
    on = !on;
}

static void report(qemu_plugin_id_t id, void *userdata)
{
    (void)id, (void)userdata;
    uint64_t n = marker_mode ? counted : running;
    uint64_t r = marker_mode ? counted_in_range : in_range;
    fprintf(stderr, "instructions: %" PRIu64 "\n", n);
    if (ranges > 0) {
        fprintf(stderr, "in ranges: %" PRIu64 "\n", r);
        for (int l = 0; l < labels; l++) {
            fprintf(stderr, "label %s: %" PRIu64 "\n", label_name[l], label_count[l]);
        }
    }
}

/* The label's index, added if new (labels past MAX_LABELS share the last). */
static int label_index(const char *name)
{
    for (int l = 0; l < labels; l++) {
        if (strcmp(label_name[l], name) == 0) {
            return l;
        }
    }
    if (labels == MAX_LABELS) {
        return MAX_LABELS - 1;
    }
    snprintf(label_name[labels], sizeof label_name[labels], "%s", name);
    return labels++;
}

static int read_ranges(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "libcount: cannot open %s\n", path);
        return 1;
    }
    char line[512], name[64];
    unsigned long long start, size;
    while (ranges < MAX_RANGES && fgets(line, sizeof line, f) != NULL) {
        int fields = sscanf(line, "%llx %llx %63s", &start, &size, name);
        if (fields < 2) {
            continue;
        }
        range_start[ranges] = start;
        range_end[ranges] = start + size;
        range_label[ranges] = label_index(fields == 3 ? name : "ranges");
        ranges++;
    }
    fclose(f);
    return 0;
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                               char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        const char *a = strncmp(argv[i], "arg=", 4) == 0 ? argv[i] + 4 : argv[i];
        if (strcmp(a, "marker") == 0 || strcmp(a, "marker=on") == 0) {
            marker_mode = true;
        } else if (strncmp(a, "ranges=", 7) == 0) {
            if (read_ranges(a + 7) != 0) {
                return 1;
            }
        } else {
            fprintf(stderr, "libcount: unknown argument %s\n", argv[i]);
            return 1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    if (marker_mode) {
        qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    }
    qemu_plugin_register_atexit_cb(id, report, NULL);
    return 0;
}
