/* bertq in bare-metal C firmware (QEMU `virt`, PL011 UART at 0x0900_0000): the model is linked
 * into the image, the session lives in a static arena, and texts are answered with JSON on the
 * UART. No libc, no heap: libbertq.a built for aarch64-unknown-none (scripts/test_capi.sh). */
#include <stddef.h>
#include <stdint.h>

#include "bertq.h"

extern const uint8_t bertq_model[], bertq_model_end[];
void semihosting_exit(int status);

#define UART_DR ((volatile uint32_t *)0x09000000)
#define UART_FR ((volatile uint32_t *)0x09000018)

static void putc_uart(char c) {
    while (*UART_FR & (1u << 5)) { /* TX FIFO full */
    }
    *UART_DR = (uint32_t)(unsigned char)c;
}

static void print_n(const char *s, size_t n) {
    while (n--) putc_uart(*s++);
}

static void print(const char *s) {
    while (*s) putc_uart(*s++);
}

static void print_u(unsigned long long x) {
    char b[24];
    int i = 0;
    do b[i++] = (char)('0' + x % 10); while ((x /= 10) != 0);
    while (i) putc_uart(b[--i]);
}

static void print_hex(unsigned long long x) {
    int i;
    print("0x");
    for (i = 60; i >= 0; i -= 4) putc_uart("0123456789abcdef"[(x >> i) & 15]);
}

void on_exception(unsigned long long esr, unsigned long long elr, unsigned long long far) {
    print("exception: esr ");
    print_hex(esr);
    print(" elr ");
    print_hex(elr);
    print(" far ");
    print_hex(far);
    print("\n");
}

static size_t length(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/* Session memory: a static arena, 64-byte aligned, not zeroed at boot. */
#define ARENA_BYTES (16u << 20)
static uint8_t arena[ARENA_BYTES] __attribute__((aligned(64), section(".noinit.arena")));
static char out[8192];

static const char *const texts[] = {
    "Hi, I'm Maria Gonzalez, email maria.gonzalez@example.com, call 555-867-5309.",
    "Send it to Zo\xc3\xab M\xc3\xbcller, Hauptstra\xc3\x9f" "e 5, 10115 Berlin.",
};

static int fail(const char *what, int status) {
    print(what);
    print(": ");
    print(bertq_status_str(status));
    print("\n");
    return 1;
}

int main(void) {
    size_t model_len = (size_t)(bertq_model_end - bertq_model), need, len, i;
    bertq_session *session;
    bertq_info info;
    bertq_result result;
    int status;

    print("bertq bare metal: libbertq ");
    print(bertq_version());
    print(", model ");
    print_u(model_len);
    print(" bytes\n");
    need = bertq_session_bytes(bertq_model, model_len, 128);
    if (need == 0 || need > ARENA_BYTES) return fail("bertq_session_bytes", BERTQ_ERR_MEMORY_TOO_SMALL);
    status = bertq_open(bertq_model, model_len, 128, arena, ARENA_BYTES, &session);
    if (status != BERTQ_OK) return fail("bertq_open", status);
    bertq_session_info(session, &info);
    print("session: ");
    print_u(need);
    print(" bytes, kernels ");
    print(info.kernels);
    print("\n");
    for (i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        status = bertq_run_json(session, texts[i], length(texts[i]), out, sizeof out, &len);
        if (status != BERTQ_OK) return fail("bertq_run_json", status);
        print_n(out, len);
        print("\n");
        status = bertq_run(session, texts[i], length(texts[i]), NULL, &result);
        if (status != BERTQ_OK) return fail("bertq_run", status);
        print("entities: ");
        print_u(result.entity_count);
        print("\n");
    }
    status = bertq_run_json(session, "\xff", 1, out, sizeof out, &len);
    print("invalid UTF-8: ");
    print(bertq_status_str(status));
    print("\n");
    if (status != BERTQ_ERR_UTF8) return 1;
    print("bertq bare metal: ok\n");
    return 0;
}
