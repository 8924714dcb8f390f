/* C tests of libbertq (run by scripts/test_capi.sh on x86-64 and, cross-compiled, under
 * qemu-aarch64). Every library call runs with allocation counting on (common.h): the test fails
 * if the allocator is called at all, from bertq_session_bytes and bertq_open on.
 *
 *   test_capi compare MODEL TEXTS EXPECTED MAX_SEQ MAX_INPUT [top_k=K] [pair=TEXT] [aggregation=N]
 *                     [threshold=X] [redact=1]
 *                     [question=TEXT] [handle_impossible_answer=1]
 *       (with a question, TEXTS are contexts: bertq_run_qa_json() and bertq_run_qa())
 *       For every line of TEXTS: bertq_run_json_with() must equal the line of EXPECTED (what
 *       `bertq run` printed), and the typed bertq_run() must give the same labels, scores,
 *       offsets, words or embedding floats (parsed from EXPECTED, bit-exact).
 *   test_capi errors MODEL TEXT EXPECTED_JSON [FLIPS]
 *       Bad model bytes, bad memory, bad UTF-8, NULLs, options, buffers: each its status; the
 *       session still answers TEXT with EXPECTED_JSON afterwards. FLIPS (default 97): how
 *       many single-bit flips spread over the model must each fail its checksum.
 */
#include <math.h>
#include <stdint.h>

#include "common.h"

/* ---- a minimal reader for the expected JSON ---- */

/* After `"key":` at or after p, or NULL. */
static const char *after_key(const char *p, const char *key) {
    char pat[64];
    const char *q;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    q = strstr(p, pat);
    return q ? q + strlen(pat) : NULL;
}

/* Decodes the JSON string at p (which starts with '"') into buf; returns the position after
 * it, or NULL. */
static const char *json_string(const char *p, char *buf, size_t cap, size_t *len) {
    size_t n = 0;
    if (!p || *p != '"') return NULL;
    for (p++; *p && *p != '"'; p++) {
        unsigned c = (unsigned char)*p;
        if (c == '\\') {
            p++;
            switch (*p) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'u': {
                unsigned long u = strtoul((char[5]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
                p += 4;
                if (u < 0x80) {
                    c = (unsigned)u;
                } else if (u < 0x800) {
                    if (n + 2 < cap) {
                        buf[n++] = (char)(0xc0 | (u >> 6));
                        buf[n++] = (char)(0x80 | (u & 0x3f));
                    }
                    continue;
                } else {
                    if (n + 3 < cap) {
                        buf[n++] = (char)(0xe0 | (u >> 12));
                        buf[n++] = (char)(0x80 | ((u >> 6) & 0x3f));
                        buf[n++] = (char)(0x80 | (u & 0x3f));
                    }
                    continue;
                }
                break;
            }
            default: c = (unsigned char)*p; break;
            }
        }
        if (n + 1 < cap) buf[n++] = (char)c;
    }
    if (*p != '"') return NULL;
    buf[n] = 0;
    *len = n;
    return p + 1;
}

static size_t count_of(const char *s, const char *pat) {
    size_t n = 0;
    for (s = strstr(s, pat); s; s = strstr(s + 1, pat)) n++;
    return n;
}

static int same_bytes(const char *a, size_t a_len, const char *b, size_t b_len) {
    return a_len == b_len && memcmp(a, b, a_len) == 0;
}

/* The typed result against the expected JSON line. */
static void check_typed(size_t line, const char *text, const bertq_result *r, const char *expected,
                        int aggregation) {
    char buf[4096];
    size_t len, i;
    const char *p = expected;
    switch (r->task) {
    case BERTQ_TASK_EMBEDDING: {
        size_t n = 0;
        int same = 1;
        p = expected + 1;
        while (*p && *p != ']') {
            char *end;
            float x = strtof(p, &end);
            if (n >= r->embedding_len || x != r->embedding[n]) same = 0;
            n++;
            p = *end == ',' ? end + 1 : end;
        }
        CHECK(same && n == r->embedding_len, "line %zu: embedding differs (%zu of %zu values)", line,
              n, r->embedding_len);
        break;
    }
    case BERTQ_TASK_CLASSIFICATION:
        CHECK(count_of(expected, "\"label\":") == r->label_count, "line %zu: %zu labels", line,
              r->label_count);
        for (i = 0; i < r->label_count; i++) {
            const bertq_label_score *l = &r->labels[i];
            p = json_string(after_key(p, "label"), buf, sizeof buf, &len);
            CHECK(p && same_bytes(buf, len, l->label, l->label_len), "line %zu: label %zu", line, i);
            if (!p) return;
            p = after_key(p, "score");
            CHECK(p && strtof(p, NULL) == l->score, "line %zu: score %zu: %.9g", line, i,
                  (double)l->score);
            if (!p) return;
        }
        break;
    case BERTQ_TASK_TOKEN_CLASSIFICATION: {
        const char *key = aggregation == BERTQ_AGGREGATION_NONE ? "entity" : "entity_group";
        char pat[32];
        snprintf(pat, sizeof pat, "\"%s\":", key);
        CHECK(count_of(expected, pat) == r->entity_count, "line %zu: %zu entities, expected %zu",
              line, r->entity_count, count_of(expected, pat));
        for (i = 0; i < r->entity_count && p; i++) {
            const bertq_entity *e = &r->entities[i];
            p = json_string(after_key(p, key), buf, sizeof buf, &len);
            CHECK(p && same_bytes(buf, len, e->label, e->label_len), "line %zu: entity %zu label",
                  line, i);
            if (!p) return;
            p = after_key(p, "score");
            CHECK(p && strtof(p, NULL) == e->score, "line %zu: entity %zu score", line, i);
            if (!p) return;
            p = json_string(after_key(p, "word"), buf, sizeof buf, &len);
            CHECK(p && same_bytes(buf, len, text + e->byte_start, e->byte_end - e->byte_start),
                  "line %zu: entity %zu word", line, i);
            if (!p) return;
            p = after_key(p, "start");
            CHECK(p && strtoul(p, NULL, 10) == e->start, "line %zu: entity %zu start", line, i);
            if (!p) return;
            p = after_key(p, "end");
            CHECK(p && strtoul(p, NULL, 10) == e->end, "line %zu: entity %zu end", line, i);
            if (!p) return;
            CHECK(e->start <= e->byte_start && e->end - e->start <= e->byte_end - e->byte_start,
                  "line %zu: entity %zu: character offsets beyond byte offsets", line, i);
        }
        break;
    }
    case BERTQ_TASK_FILL_MASK:
        CHECK(count_of(expected, "\"token\":") == r->candidate_count, "line %zu: %zu candidates",
              line, r->candidate_count);
        for (i = 0; i < r->candidate_count && p; i++) {
            const bertq_candidate *c = &r->candidates[i];
            p = after_key(p, "score");
            CHECK(p && strtof(p, NULL) == c->score, "line %zu: candidate %zu score", line, i);
            if (!p) return;
            p = after_key(p, "token");
            CHECK(p && strtoul(p, NULL, 10) == c->token_id, "line %zu: candidate %zu token", line,
                  i);
            CHECK(c->mask == i / r->top_k, "line %zu: candidate %zu of mask %u", line, i, c->mask);
        }
        break;
    case BERTQ_TASK_QUESTION_ANSWERING:
        CHECK(count_of(expected, "\"answer\":") == r->entity_count, "line %zu: %zu answers", line,
              r->entity_count);
        for (i = 0; i < r->entity_count && p; i++) {
            const bertq_entity *e = &r->entities[i];
            p = after_key(p, "score");
            CHECK(p && strtof(p, NULL) == e->score, "line %zu: answer %zu score", line, i);
            if (!p) return;
            p = after_key(p, "start");
            CHECK(p && strtoul(p, NULL, 10) == e->start, "line %zu: answer %zu start", line, i);
            if (!p) return;
            p = after_key(p, "end");
            CHECK(p && strtoul(p, NULL, 10) == e->end, "line %zu: answer %zu end", line, i);
            if (!p) return;
            p = json_string(after_key(p, "answer"), buf, sizeof buf, &len);
            CHECK(p && same_bytes(buf, len, text + e->byte_start, e->byte_end - e->byte_start),
                  "line %zu: answer %zu text", line, i);
        }
        break;
    default:
        CHECK(0, "line %zu: unexpected task %d", line, r->task);
    }
}

/* The question of question-answering runs (NULL: texts are run on their own). */
static const char *question;

static int run_json(bertq_session *s, const char *text, size_t text_len, const bertq_options *o,
                    char *out, size_t out_cap, size_t *out_len) {
    if (question)
        return bertq_run_qa_json(s, question, strlen(question), text, text_len, o, out, out_cap,
                                 out_len);
    return bertq_run_json_with(s, text, text_len, o, out, out_cap, out_len);
}

static int run_typed(bertq_session *s, const char *text, size_t text_len, const bertq_options *o,
                     bertq_result *r) {
    if (question) return bertq_run_qa(s, question, strlen(question), text, text_len, o, r);
    return bertq_run(s, text, text_len, o, r);
}

static int compare(int argc, char **argv) {
    size_t model_len, n_texts, n_expected, need, i, max_seq, max_input, out_cap = 1 << 20;
    size_t repack_len;
    unsigned char *model;
    char **texts, **expected, *out;
    void *memory = NULL, *repack = NULL;
    bertq_session *s = NULL;
    bertq_options o;
    bertq_info info;
    int a;

    if (argc < 7) return 2;
    model = read_file(argv[2], &model_len);
    texts = read_lines(argv[3], &n_texts);
    expected = read_lines(argv[4], &n_expected);
    max_seq = strtoul(argv[5], NULL, 10);
    max_input = strtoul(argv[6], NULL, 10);
    memset(&o, 0, sizeof o);
    for (a = 7; a < argc; a++) {
        if (!strncmp(argv[a], "top_k=", 6)) o.top_k = strtoul(argv[a] + 6, NULL, 10);
        else if (!strncmp(argv[a], "aggregation=", 12)) o.aggregation = atoi(argv[a] + 12);
        else if (!strncmp(argv[a], "threshold=", 10)) o.threshold = strtof(argv[a] + 10, NULL);
        else if (!strncmp(argv[a], "redact=", 7)) o.redact = atoi(argv[a] + 7);
        else if (!strncmp(argv[a], "question=", 9)) question = argv[a] + 9;
        else if (!strncmp(argv[a], "handle_impossible_answer=", 25))
            o.handle_impossible_answer = atoi(argv[a] + 25);
        else if (!strncmp(argv[a], "pair=", 5)) {
            o.pair = argv[a] + 5;
            o.pair_len = strlen(o.pair);
        } else return 2;
    }
    CHECK(n_texts == n_expected, "%zu texts, %zu expected lines", n_texts, n_expected);
    out = malloc(out_cap);

    counting = 1;
    need = bertq_session_bytes_input(model, model_len, max_seq, max_input);
    counting = 0;
    CHECK(need > 0, "bertq_session_bytes_input is 0");
    if (posix_memalign(&memory, BERTQ_MEMORY_ALIGN, need) != 0) return 2;
    /* Where this CPU's kernel table has a faster weight layout than the file's (an i8mm core
       and the default K4N16 file), the session runs on weights converted into a buffer of the
       caller's; the expected lines come from `bertq run`, which converts them too. */
    counting = 1;
    repack_len = bertq_repack_bytes(model, model_len);
    counting = 0;
    if (getenv("BERTQ_EXPECT_REPACK")) CHECK(repack_len > 0, "no weights to convert on this CPU");
    if (repack_len > 0) {
        repack = malloc(repack_len);
        if (!repack) return 2;
        CHECK_STATUS(COUNTED(bertq_open_repacked(model, model_len, max_seq, max_input, repack,
                                                 repack_len - 1, memory, need, &s)),
                     BERTQ_ERR_MEMORY_TOO_SMALL);
        CHECK_STATUS(COUNTED(bertq_open_repacked(model, model_len, max_seq, max_input, memory,
                                                 repack_len, memory, need, &s)),
                     BERTQ_ERR_ARGUMENT);
        CHECK_STATUS(COUNTED(bertq_open_repacked(model, model_len, max_seq, max_input, NULL,
                                                 repack_len, memory, need, &s)),
                     BERTQ_ERR_NULL);
        CHECK_STATUS(COUNTED(bertq_open_repacked(model, model_len, max_seq, max_input, repack,
                                                 repack_len, memory, need, &s)),
                     BERTQ_OK);
    } else {
        CHECK_STATUS(
            COUNTED(bertq_open_input(model, model_len, max_seq, max_input, memory, need, &s)),
            BERTQ_OK);
    }
    if (!s) return 1;
    CHECK_STATUS(COUNTED(bertq_session_info(s, &info)), BERTQ_OK);
    printf("   model %.*s, task %d, max_seq %zu, max_input %zu, kernels %s, session %zu bytes, "
           "converted weights %zu bytes\n",
           (int)info.name_len, info.name, info.task, info.max_seq, info.max_input, info.kernels,
           need, repack_len);

    for (i = 0; i < n_texts && i < n_expected; i++) {
        size_t len = 0, text_len = strlen(texts[i]);
        bertq_result r;
        if (i == 0) { /* the size query and a one-byte-short buffer */
            size_t needed = 0;
            CHECK_STATUS(COUNTED(run_json(s, texts[i], text_len, &o, NULL, 0, &needed)),
                         BERTQ_ERR_BUFFER_TOO_SMALL);
            CHECK(needed == strlen(expected[i]), "line %zu: size %zu needed, expected %zu", i + 1,
                  needed, strlen(expected[i]));
            CHECK_STATUS(COUNTED(run_json(s, texts[i], text_len, &o, out, needed - 1, &len)),
                         BERTQ_ERR_BUFFER_TOO_SMALL);
            CHECK(len == needed, "line %zu: *out_len %zu, expected %zu", i + 1, len, needed);
        }
        memset(out, 'x', 64);
        CHECK_STATUS(COUNTED(run_json(s, texts[i], text_len, &o, out, out_cap, &len)), BERTQ_OK);
        CHECK(len < out_cap && out[len] == 0, "line %zu: no NUL after the JSON", i + 1);
        CHECK(len == strlen(expected[i]) && !memcmp(out, expected[i], len),
              "line %zu: JSON differs\n  bertq run: %.300s\n  libbertq:  %.300s", i + 1,
              expected[i], out);
        CHECK_STATUS(COUNTED(run_typed(s, texts[i], text_len, &o, &r)), BERTQ_OK);
        /* Redaction is a JSON-function output; the typed result stays the entities. */
        if (!o.redact) check_typed(i + 1, texts[i], &r, expected[i], o.aggregation);
    }
    CHECK_STATUS(COUNTED(bertq_close(s)), BERTQ_OK);
    CHECK(allocator_calls == 0, "the allocator was called %zu times", (size_t)allocator_calls);
    printf("   %zu texts: JSON and typed results equal bertq run's; allocator calls: %zu\n",
           n_texts, (size_t)allocator_calls);
    free(memory);
    free(repack);
    free(out);
    return 0;
}

static int errors(int argc, char **argv) {
    size_t model_len, need, need16, len, i, text_len, flips;
    unsigned char *model, *copy;
    const char *text, *expected_json;
    char out[65536];
    void *memory = NULL, *memory16 = NULL;
    bertq_session *s = NULL, *s16 = NULL;
    bertq_options o;
    bertq_result r;
    bertq_info info;
    const char *label;
    size_t label_len;
    char kernels[32];
    int status;

    if (argc < 5) return 2;
    model = read_file(argv[2], &model_len);
    text = argv[3];
    text_len = strlen(text);
    expected_json = argv[4];
    flips = argc > 5 ? strtoul(argv[5], NULL, 10) : 97;
    if (flips == 0) flips = 1;
    copy = malloc(model_len + 64);
    need = bertq_session_bytes(model, model_len, 128);
    CHECK(need > 0, "bertq_session_bytes is 0");
    if (posix_memalign(&memory, 64, need + 64) != 0) return 2;

    /* Model bytes: sizes are 0, opening fails with the matching status, *session is NULL. */
    CHECK(COUNTED(bertq_session_bytes(NULL, 0, 128) == 0), "NULL model");
    CHECK(COUNTED(bertq_session_bytes(model, model_len - 1, 128) == 0), "truncated");
    CHECK(COUNTED(bertq_session_bytes(model, model_len, 1) == 0), "max_seq 1");
    CHECK(COUNTED(bertq_session_bytes(model, model_len, 100000) == 0), "max_seq 100000");
    CHECK(COUNTED(bertq_session_bytes(model, 10, 128) == 0), "10 bytes");
    CHECK_STATUS(COUNTED(bertq_open(model, model_len, 128, memory, need, NULL)), BERTQ_ERR_NULL);
    s = (bertq_session *)1;
    CHECK_STATUS(COUNTED(bertq_open(NULL, model_len, 128, memory, need, &s)), BERTQ_ERR_NULL);
    CHECK(s == NULL, "*session not NULL after a failure");
    CHECK_STATUS(COUNTED(bertq_open(model, model_len, 128, NULL, need, &s)), BERTQ_ERR_NULL);
    CHECK_STATUS(COUNTED(bertq_open(model, 10, 128, memory, need, &s)), BERTQ_ERR_NOT_A_MODEL);
    for (len = model_len - 1; len >= 32; len = len * 7 / 8) { /* 32: the fixed preamble */
        CHECK_STATUS(COUNTED(bertq_open(model, len, 128, memory, need, &s)),
                     BERTQ_ERR_MODEL_TRUNCATED);
    }
    CHECK_STATUS(COUNTED(bertq_open(model, 31, 128, memory, need, &s)), BERTQ_ERR_NOT_A_MODEL);
    memcpy(copy, model, model_len);
    copy[0] ^= 0x20;
    CHECK_STATUS(COUNTED(bertq_open(copy, model_len, 128, memory, need, &s)), BERTQ_ERR_NOT_A_MODEL);
    memcpy(copy, model, model_len);
    copy[8] ^= 1;
    CHECK_STATUS(COUNTED(bertq_open(copy, model_len, 128, memory, need, &s)),
                 BERTQ_ERR_MODEL_VERSION);
    /* Flipped bits everywhere after the preamble's fixed fields: the checksum catches them. */
    for (i = 24; i < model_len; i += 1 + model_len / flips) {
        memcpy(copy, model, model_len);
        copy[i] ^= (unsigned char)(1u << (i % 8));
        s = (bertq_session *)1;
        status = COUNTED(bertq_open(copy, model_len, 128, memory, need, &s));
        CHECK(status == BERTQ_ERR_MODEL_CHECKSUM && s == NULL, "flip at %zu: status %d (%s)", i,
              status, bertq_status_str(status));
        if (i < 64) CHECK(COUNTED(bertq_session_bytes(copy, model_len, 128) == 0), "flip: size");
    }
    memcpy(copy + 1, model, model_len);
    CHECK_STATUS(COUNTED(bertq_open(copy + 1, model_len, 128, memory, need, &s)),
                 BERTQ_ERR_MODEL_ALIGNMENT);

    /* Memory and lengths. */
    CHECK_STATUS(COUNTED(bertq_open(model, model_len, 128, (char *)memory + 8, need, &s)),
                 BERTQ_ERR_MEMORY_ALIGNMENT);
    CHECK_STATUS(COUNTED(bertq_open(model, model_len, 128, memory, need - 1, &s)),
                 BERTQ_ERR_MEMORY_TOO_SMALL);
    CHECK_STATUS(COUNTED(bertq_open(model, model_len, 1, memory, need, &s)), BERTQ_ERR_MAX_SEQ);
    CHECK_STATUS(COUNTED(bertq_open(model, model_len, 100000, memory, need, &s)), BERTQ_ERR_MAX_SEQ);
    CHECK(COUNTED(bertq_session_bytes_input(model, model_len, 128, (size_t)-1) == 0), "max_input");
    CHECK_STATUS(COUNTED(bertq_open_input(model, model_len, 128, (size_t)-1, memory, need, &s)),
                 BERTQ_ERR_ARGUMENT);
    CHECK_STATUS(COUNTED(bertq_open(model, model_len, 128, model, need, &s)), /* overlap */
                 BERTQ_ERR_ARGUMENT);
    CHECK_STATUS(COUNTED(bertq_open(model, model_len, 128, memory, need, &s)), BERTQ_OK);
    CHECK(s == (bertq_session *)memory, "the session lives at the start of the memory");
    /* The output must not overlap the model or the session's memory. */
    CHECK_STATUS(COUNTED(bertq_run_json(s, text, text_len, (char *)model + 64, 100, &len)),
                 BERTQ_ERR_ARGUMENT);
    CHECK_STATUS(COUNTED(bertq_run_json(s, text, text_len, (char *)memory + need - 8, 100, &len)),
                 BERTQ_ERR_ARGUMENT);

    /* Texts, buffers, options. */
    CHECK_STATUS(COUNTED(bertq_run_json(s, "\xff\xfe", 2, out, sizeof out, &len)), BERTQ_ERR_UTF8);
    CHECK_STATUS(COUNTED(bertq_run_json(s, "caf\xc3", 4, out, sizeof out, &len)), BERTQ_ERR_UTF8);
    CHECK_STATUS(COUNTED(bertq_run_json(s, "a\xed\xa0\x80z", 5, out, sizeof out, &len)),
                 BERTQ_ERR_UTF8); /* a UTF-16 surrogate */
    CHECK_STATUS(COUNTED(bertq_run(s, "\xc0\xafok", 4, NULL, &r)), BERTQ_ERR_UTF8); /* overlong */
    CHECK_STATUS(COUNTED(bertq_run_json(s, NULL, 5, out, sizeof out, &len)), BERTQ_ERR_NULL);
    CHECK_STATUS(COUNTED(bertq_run_json(s, NULL, 0, out, sizeof out, &len)), BERTQ_OK);
    CHECK(len == 2 && !strcmp(out, "[]"), "empty text: %s", out);
    CHECK_STATUS(COUNTED(bertq_run_json(s, text, text_len, out, sizeof out, NULL)), BERTQ_ERR_NULL);
    CHECK_STATUS(COUNTED(bertq_run_json(s, text, text_len, NULL, 10, &len)), BERTQ_ERR_NULL);
    memcpy(out, text, text_len);
    CHECK_STATUS(COUNTED(bertq_run_json(s, out, text_len, out + 4, 100, &len)), BERTQ_ERR_ARGUMENT);
    CHECK_STATUS(COUNTED(bertq_run(s, text, text_len, NULL, NULL)), BERTQ_ERR_NULL);
    CHECK_STATUS(COUNTED(bertq_run(NULL, text, text_len, NULL, &r)), BERTQ_ERR_NULL);
    CHECK_STATUS(COUNTED(bertq_run((bertq_session *)((char *)memory + 8), text, text_len, NULL, &r)),
                 BERTQ_ERR_SESSION);
    memset(&o, 0, sizeof o);
    o.aggregation = 99;
    CHECK_STATUS(COUNTED(bertq_run(s, text, text_len, &o, &r)), BERTQ_ERR_OPTION);
    memset(&o, 0, sizeof o);
    o.function_to_apply = -1;
    CHECK_STATUS(COUNTED(bertq_run(s, text, text_len, &o, &r)), BERTQ_ERR_OPTION);
    memset(&o, 0, sizeof o);
    o.truncate = 1;
    o.stride = 8;
    CHECK_STATUS(COUNTED(bertq_run(s, text, text_len, &o, &r)), BERTQ_ERR_OPTION);
    memset(&o, 0, sizeof o);
    o.stride = 128; /* at least the window */
    CHECK_STATUS(COUNTED(bertq_run(s, text, text_len, &o, &r)), BERTQ_ERR_OPTION);
    o.stride = 8;
    CHECK_STATUS(COUNTED(bertq_run(s, text, text_len, &o, &r)), BERTQ_OK);
    o.stride = 0;
    o.pair = "\xff";
    o.pair_len = 1;
    CHECK_STATUS(COUNTED(bertq_run(s, text, text_len, &o, &r)), BERTQ_ERR_UTF8);
    CHECK_STATUS(COUNTED(bertq_run_qa(s, "Who?", 4, text, text_len, NULL, &r)),
                 BERTQ_ERR_WRONG_TASK);
    CHECK_STATUS(COUNTED(bertq_run_qa_json(s, "Who?", 4, text, text_len, NULL, out, sizeof out,
                                           &len)),
                 BERTQ_ERR_WRONG_TASK);
    CHECK_STATUS(COUNTED(bertq_label(s, 100000, &label, &label_len)), BERTQ_ERR_ARGUMENT);
    CHECK_STATUS(COUNTED(bertq_label(s, 0, &label, &label_len)), BERTQ_OK);
    CHECK_STATUS(COUNTED(bertq_label(s, 0, NULL, &label_len)), BERTQ_ERR_NULL);
    CHECK_STATUS(COUNTED(bertq_session_info(s, NULL)), BERTQ_ERR_NULL);
    CHECK_STATUS(COUNTED(bertq_session_info(s, &info)), BERTQ_OK);
    CHECK(info.task == BERTQ_TASK_TOKEN_CLASSIFICATION && info.max_seq == 128 &&
              info.max_input == 126 && info.num_labels > 0 && info.hidden_size > 0,
          "info: task %d max_seq %zu max_input %zu", info.task, info.max_seq, info.max_input);
    snprintf(kernels, sizeof kernels, "%s", info.kernels);
    CHECK_STATUS(COUNTED(bertq_set_kernels(s, "no-such-kernels")), BERTQ_ERR_UNSUPPORTED);
    CHECK_STATUS(COUNTED(bertq_set_kernels(s, "reference")), BERTQ_OK);
    CHECK_STATUS(COUNTED(bertq_run(s, text, text_len, NULL, &r)), BERTQ_OK);
    CHECK(r.entity_count > 0, "reference kernels: no entities");
    CHECK_STATUS(COUNTED(bertq_set_kernels(s, kernels)), BERTQ_OK);

    /* After all that, the session answers as bertq run does. */
    CHECK_STATUS(COUNTED(bertq_run_json(s, text, text_len, out, sizeof out, &len)), BERTQ_OK);
    CHECK(!strcmp(out, expected_json), "after the errors:\n  %s\n  %s", out, expected_json);

    /* A session of 16 tokens: token classification of a longer text is refused (never cut),
     * unless truncation is asked for. */
    need16 = bertq_session_bytes(model, model_len, 16);
    CHECK(need16 > 0 && need16 < need, "sizes %zu (16), %zu (128)", need16, need);
    if (posix_memalign(&memory16, 64, need16) != 0) return 2;
    CHECK_STATUS(COUNTED(bertq_open(model, model_len, 16, memory16, need16, &s16)), BERTQ_OK);
    CHECK_STATUS(COUNTED(bertq_run(s16, text, text_len, NULL, &r)), BERTQ_ERR_TOO_LONG);
    memset(&o, 0, sizeof o);
    o.truncate = 1;
    CHECK_STATUS(COUNTED(bertq_run(s16, text, text_len, &o, &r)), BERTQ_OK);
    CHECK(r.truncated && r.tokens == 16 && r.total_tokens > 16, "truncated %d, %zu of %zu tokens",
          r.truncated, r.tokens, r.total_tokens);
    /* Two sessions side by side: the first is unaffected. */
    CHECK_STATUS(COUNTED(bertq_run_json(s, text, text_len, out, sizeof out, &len)), BERTQ_OK);
    CHECK(!strcmp(out, expected_json), "second session: %s", out);

    /* Closing. */
    CHECK_STATUS(COUNTED(bertq_close(s)), BERTQ_OK);
    CHECK_STATUS(COUNTED(bertq_run_json(s, text, text_len, out, sizeof out, &len)),
                 BERTQ_ERR_SESSION);
    CHECK_STATUS(COUNTED(bertq_close(s)), BERTQ_ERR_SESSION);
    CHECK_STATUS(COUNTED(bertq_close(s16)), BERTQ_OK);
    CHECK_STATUS(COUNTED(bertq_close(NULL)), BERTQ_ERR_NULL);
    for (status = -2; status < 40; status++) {
        const char *m = bertq_status_str(status);
        CHECK(m && *m, "status %d has no message", status);
    }
    CHECK(!strcmp(bertq_status_str(BERTQ_OK), "ok"), "BERTQ_OK");
    CHECK(allocator_calls == 0, "the allocator was called %zu times", (size_t)allocator_calls);
    printf("   error statuses as specified; allocator calls: %zu\n", (size_t)allocator_calls);
    free(memory);
    free(memory16);
    free(copy);
    return 0;
}

int main(int argc, char **argv) {
    int status = 2;
    if (argc >= 2 && !strcmp(argv[1], "compare")) status = compare(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "errors")) status = errors(argc, argv);
    if (status == 2) {
        fprintf(stderr, "usage: test_capi compare|errors ... (see the source)\n");
        return 2;
    }
    printf("   %d checks, %d failed (libbertq %s)\n", checks, failures, bertq_version());
    return failures || status ? 1 : 0;
}
