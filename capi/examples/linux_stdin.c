/* bertq from C on Linux: answers every line of stdin with the model's JSON, as
 * `bertq run --model MODEL` does.
 *
 *   cargo build --release -p bertq-capi
 *   cc -std=c99 -O2 -Icapi/include capi/examples/linux_stdin.c target/release/libbertq.a \
 *      -lpthread -ldl -lm -o linux_stdin
 *   echo "Hi, I'm Maria Gonzalez." | ./linux_stdin models/rampart-pii.bertq
 *
 * The model is read into memory here (a memory map or flash works the same: the library only
 * borrows the bytes). The only allocations are the program's own: the model, the session memory
 * and the buffers, all made before the first text.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertq.h"

int main(int argc, char **argv) {
    FILE *f;
    long n;
    void *model = NULL, *memory = NULL;
    size_t model_len, memory_len, max_seq, len, out_cap = 1 << 20;
    char *line = NULL, *out = malloc(out_cap);
    size_t line_cap = 0;
    ssize_t got;
    bertq_session *session;
    bertq_info info;
    int status, failed = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.bertq [MAX_SEQ] < texts\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        posix_memalign(&model, 64, (size_t)n) != 0 || fread(model, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: cannot read\n", argv[1]);
        return 1;
    }
    fclose(f);
    model_len = (size_t)n;

    /* Memory for windows of MAX_SEQ tokens (default 128). */
    max_seq = argc > 2 ? strtoul(argv[2], NULL, 10) : 128;
    memory_len = bertq_session_bytes(model, model_len, max_seq);
    if (memory_len == 0) {
        fprintf(stderr, "%s: not a valid model for max_seq %zu\n", argv[1], max_seq);
        return 1;
    }
    if (posix_memalign(&memory, BERTQ_MEMORY_ALIGN, memory_len) != 0) return 1;
    status = bertq_open(model, model_len, max_seq, memory, memory_len, &session);
    if (status != BERTQ_OK) {
        fprintf(stderr, "bertq_open: %s\n", bertq_status_str(status));
        return 1;
    }
    bertq_session_info(session, &info);
    fprintf(stderr, "%.*s: %zu bytes of session memory, kernels %s\n", (int)info.name_len,
            info.name, memory_len, info.kernels);

    while ((got = getline(&line, &line_cap, stdin)) > 0) {
        len = (size_t)got;
        if (len > 0 && line[len - 1] == '\n') len--;
        if (len > 0 && line[len - 1] == '\r') len--;
        status = bertq_run_json(session, line, len, out, out_cap, &len);
        if (status == BERTQ_OK) {
            printf("%s\n", out);
        } else {
            printf("{\"error\":\"%s\"}\n", bertq_status_str(status));
            failed++;
        }
    }
    bertq_close(session);
    free(memory);
    free(model);
    free(out);
    free(line);
    return failed ? 1 : 0;
}
