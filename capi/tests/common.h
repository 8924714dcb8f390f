/* Helpers shared by the C tests: reading files, allocation counting (link with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=posix_memalign,
 * --wrap=aligned_alloc), check macros. */
#ifndef BERTQ_TEST_COMMON_H
#define BERTQ_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertq.h"

/* Allocator calls made while `counting` is nonzero. */
static volatile int counting;
static volatile size_t allocator_calls;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_posix_memalign(void **p, size_t align, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);

void *__wrap_malloc(size_t n) {
    if (counting) allocator_calls++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size) {
    if (counting) allocator_calls++;
    return __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n) {
    if (counting) allocator_calls++;
    return __real_realloc(p, n);
}
void __wrap_free(void *p) {
    if (counting && p) allocator_calls++;
    __real_free(p);
}
int __wrap_posix_memalign(void **p, size_t align, size_t n) {
    if (counting) allocator_calls++;
    return __real_posix_memalign(p, align, n);
}
void *__wrap_aligned_alloc(size_t align, size_t n) {
    if (counting) allocator_calls++;
    return __real_aligned_alloc(align, n);
}

/* Evaluates a library call with allocation counting on. */
#define COUNTED(expr) (counting = 1, _counted_tmp = (expr), counting = 0, _counted_tmp)
static int _counted_tmp;

static int checks, failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        checks++;                                                              \
        if (!(cond)) {                                                         \
            failures++;                                                        \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fprintf(stderr, "\n");                                             \
        }                                                                      \
    } while (0)

#define CHECK_STATUS(got, want)                                                \
    do {                                                                       \
        int _g = (got), _w = (want);                                           \
        CHECK(_g == _w, "status %d (%s), expected %d (%s)", _g,                \
              bertq_status_str(_g), _w, bertq_status_str(_w));                 \
    } while (0)

/* A whole file in 64-byte aligned memory (the model's bytes), or exits. */
static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    long n;
    void *p = NULL;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    if (posix_memalign(&p, 64, (size_t)n + 64) != 0 || fread(p, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* The lines of a text file (without their newlines), NULL-terminated; or exits. */
static char **read_lines(const char *path, size_t *count) {
    size_t len, n = 0, cap = 16;
    char *s = (char *)read_file(path, &len), **lines = malloc(cap * sizeof *lines), *p = s;
    s[len] = 0;
    while (p < s + len) {
        char *nl = memchr(p, '\n', (size_t)(s + len - p));
        if (nl) *nl = 0;
        if (n + 2 > cap) lines = realloc(lines, (cap *= 2) * sizeof *lines);
        lines[n++] = p;
        p = nl ? nl + 1 : s + len;
    }
    lines[n] = NULL;
    *count = n;
    return lines;
}

#endif
