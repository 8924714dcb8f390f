#!/usr/bin/env bash
# The C API (capi/, libbertq + include/bertq.h) end to end:
#  1. builds libbertq (x86-64) and `bertq`; the header is current (cbindgen test, also in
#     `cargo test --workspace`) and compiles as C99 (-std=c99 -Wall -Werror -pedantic) and C++;
#  2. x86-64: capi/tests/test_capi.c against libbertq.a, with malloc/calloc/realloc/free/
#     posix_memalign/aligned_alloc wrapped at link time and counted (must stay 0 from
#     bertq_session_bytes and bertq_open on): bertq_run_json's output byte-identical to
#     `bertq run` and the typed results equal to it (token classification with the built-in
#     Rampart model, long texts in windows included; the sentiment classifier, with --top-k and
#     --pair; MiniLM sentence embeddings, derived from the sentiment model by
#     `cargo run -p bertq-capi --example embedding_model`, which also gives MiniLM random
#     question-answering and fill-mask heads for those tasks), error statuses (bad model bytes, bad
#     UTF-8, NULLs, memory, options); the same under valgrind and AddressSanitizer; the
#     capi/examples/linux_stdin.c example against `bertq run`;
#  3. aarch64: libbertq.a cross-built for aarch64-unknown-linux-gnu, the same tests linked
#     statically with aarch64-linux-gnu-gcc and run under qemu-aarch64 on cortex-a72 (NEON) and
#     cortex-a76 (dot product), compared with the aarch64 `bertq run` (scripts/cross_build.sh)
#     under the same CPU: byte-identical (long texts in windows of 64 tokens: emulation is slow);
#     and on `max` (i8mm), where the session runs on weights converted to K8N8 in a buffer of
#     the test's (bertq_repack_bytes, bertq_open_repacked: sizes and overlaps refused);
#  4. bare metal: libbertq.a for aarch64-unknown-none (no std) linked into the C firmware of
#     capi/examples/baremetal/ (own boot code, model linked in), booted on qemu-system-aarch64
#     `virt` (cortex-a72), its UART output checked against the aarch64 `bertq run` (same
#     entities, same scores: with or without std the NEON float steps fuse multiply-adds).
# Installs nothing (scripts/install_aarch64_toolchain.sh does, valgrind and qemu-system-arm too).
#
# Usage: scripts/test_capi.sh      Env: CPUS="cortex-a72 cortex-a76", SKIP_AARCH64=1,
#                                  SKIP_BARE_METAL=1
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TERM_COLOR=never

missing=()
for tool in cc c++ valgrind; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${SKIP_AARCH64:-0}" != 1 ]; then
    [ -x /usr/bin/rustc ] || missing+=("/usr/bin/rustc (rustc-web)")
    for tool in aarch64-linux-gnu-gcc qemu-aarch64-static; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if [ "${SKIP_BARE_METAL:-0}" != 1 ]; then
        [ -d /usr/lib/rustlib/src/rust/library/core ] || missing+=("rust-web-src (or SKIP_BARE_METAL=1)")
        command -v qemu-system-aarch64 >/dev/null || missing+=("qemu-system-aarch64 (qemu-system-arm, or SKIP_BARE_METAL=1)")
    fi
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "test_capi: missing prerequisites:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    echo "Install them with: sudo scripts/install_aarch64_toolchain.sh" >&2
    exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
step() { echo "== $*"; }
ok() { echo "-- $1: ok"; }
fail() { echo "-- $1: FAILED"; failed+=("$1"); }

wrap="-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=posix_memalign,--wrap=aligned_alloc"
cflags=(-std=c99 -O1 -g -Wall -Wextra -Werror -pedantic -D_POSIX_C_SOURCE=200809L -Icapi/include)

# ---- 1. build, header
step "building libbertq and bertq (x86-64)"
cargo build --release -p bertq-capi -p bertq-boards --quiet
bertq=target/release/bertq
lib=target/release/libbertq.a

step "header: current (cbindgen), C99 and C++"
if cargo test --release -p bertq-capi --quiet 2>&1 | tail -n 4; then ok header-current; else fail header-current; fi
printf '#include "bertq.h"\nint main(void) { bertq_options o = {0}; (void)o; return bertq_status_str(0) == 0; }\n' > "$work/h.c"
printf '#include "bertq.h"\nint main() { bertq_options o{}; bertq_result r{}; (void)o; (void)r; return bertq_status_str(0) == nullptr; }\n' > "$work/h.cpp"
if cc -std=c99 -Wall -Wextra -Werror -pedantic -Icapi/include -c "$work/h.c" -o "$work/h.o" &&
    c++ -std=c++11 -Wall -Wextra -Werror -pedantic -Icapi/include -c "$work/h.cpp" -o "$work/hpp.o"; then
    ok header-compiles
else
    fail header-compiles
fi

# ---- fixtures: texts, models, and `bertq run`'s output
step "fixtures"
for task in embedding qa fill-mask; do
    cargo run --release -p bertq-capi --example embedding_model --quiet -- \
        models/sentiment-minilm.bertq "$work/minilm-$task.bertq" "$task"
done
ner=models/rampart-pii.bertq
sentiment=models/sentiment-minilm.bertq
embedding="$work/minilm-embedding.bertq"
qa="$work/minilm-qa.bertq"               # random qa_outputs: arbitrary answers
fill_mask="$work/minilm-fill-mask.bertq" # random MLM transform, decoder tied to the embeddings
cat > "$work/ner.txt" <<'TEXTS'
Hi, I'm Maria Gonzalez, email maria.gonzalez@example.com, call 555-867-5309.
John Smith lives at 221B Baker Street, London.
Send it to Zoë Müller, Hauptstraße 5, 10115 Berlin.
Zoë Ångström lives in Zürich; her "nickname" is \Zo\ and her phone is +41 44 123 45 67.

日本語のテキスト and an emoji 🙂 for Anna.
TEXTS
# One text of about 1000 tokens: three windows of 512 at the default stride (128).
python3 -c '
s = "Hi, I am Maria Gonzalez from Springfield, my email is maria.gonzalez@example.com and my phone is 555-867-5309. "
print((s * 33).strip())' > "$work/ner_long.txt"
cat "$work/ner.txt" "$work/ner_long.txt" > "$work/ner_all.txt"
# For emulation (where a window of 512 tokens takes tens of seconds): about 120 tokens, three
# windows of 64.
python3 -c '
s = "Hi, I am Maria Gonzalez from Springfield, my email is maria.gonzalez@example.com and my phone is 555-867-5309. "
print((s * 4).strip())' | cat "$work/ner.txt" - > "$work/ner_medium.txt"
cat > "$work/sentiment.txt" <<'TEXTS'
A moving, beautifully acted film that stays with you.
Two hours of my life I will never get back.
The plot is thin, but the actors carry it.
Ein wunderschöner Film über Freundschaft. 🎬
TEXTS
cat > "$work/embedding.txt" <<'TEXTS'
The cat sits on the mat.
A man is playing a guitar on stage.
Zoë Ångström lives in Zürich.

TEXTS
cat > "$work/fill_mask.txt" <<'TEXTS'
The capital of France is [MASK].
I [MASK] to the [MASK] yesterday, said Zoë.
TEXTS
{ printf '%s\n' "Zoë Ångström lives in Zürich, near the river. She studied in Paris." \
    "Maria Gonzalez works in Berlin as a nurse since 2019."; cat "$work/ner_long.txt"; } > "$work/contexts.txt"
pair="An honest review, written after the second viewing."
question="Where does Zoë live?"
# name | model | texts | max_seq max_input | test_capi options | bertq run options
cases=(
    "ner|$ner|ner_all.txt|512 4096||"
    "ner-none|$ner|ner.txt|512 4096|aggregation=1|--aggregation none"
    "ner-simple|$ner|ner.txt|512 4096|aggregation=5|--aggregation simple"
    "ner-compat|$ner|ner_all.txt|512 4096|aggregation=8|--aggregation compat"
    "ner-threshold|$ner|ner_all.txt|512 4096|threshold=0.9|--threshold 0.9"
    "ner-redact|$ner|ner_all.txt|512 4096|redact=1|--redact"
    "ner-first-128|$ner|ner.txt|128 4096|aggregation=2|--aggregation first --max-length 128"
    "ner-64|$ner|ner_medium.txt|64 4096||--max-length 64"
    "sentiment|$sentiment|sentiment.txt|512 0||"
    "sentiment-top2-pair|$sentiment|sentiment.txt|512 0|top_k=2 pair=$pair|--top-k 2 --pair"
    "embedding|$embedding|embedding.txt|512 0||"
    "qa|$qa|contexts.txt|384 4096|question=$question|--question"
    "qa-top3-impossible|$qa|contexts.txt|384 4096|question=$question top_k=3 handle_impossible_answer=1|--top-k 3 --handle-impossible-answer --question"
    "fill-mask|$fill_mask|fill_mask.txt|128 0||"
    "fill-mask-top3|$fill_mask|fill_mask.txt|128 0|top_k=3|--top-k 3"
)
expected() { # runner bertq-binary name model texts bertq-options -> expected file
    local runner="$1" bin="$2" name="$3" model="$4" texts="$5" opts="$6"
    local args=()
    read -r -a args <<< "$opts"
    if [ "${args[*]: -1}" = "--pair" ]; then args+=("$pair"); fi
    if [ "${args[*]: -1}" = "--question" ]; then args+=("$question"); fi
    $runner "$bin" run --model "$model" "${args[@]}" < "$work/$texts" > "$work/$name.$7.expected"
}
run_cases() { # runner test-binary bertq-binary tag flips case-names...
    local runner="$1" test="$2" bin="$3" tag="$4" flips="$5" c name model texts sizes topts bopts
    shift 5
    for c in "${cases[@]}"; do
        IFS='|' read -r name model texts sizes topts bopts <<< "$c"
        [[ " $* " == *" $name "* ]] || continue
        expected "$runner" "$bin" "$name" "$model" "$texts" "$bopts" "$tag"
        local targs=()
        if [ -n "$topts" ]; then
            # "pair=TEXT" keeps its spaces: split on the option names only.
            while IFS= read -r a; do targs+=("$a"); done < <(
                python3 -c 'import re,sys; [print(x) for x in re.split(r" (?=\w+=)", sys.argv[1])]' "$topts")
        fi
        echo "   $tag $name"
        # shellcheck disable=SC2086
        if $runner "$test" compare "$model" "$work/$texts" "$work/$name.$tag.expected" $sizes "${targs[@]}"; then
            ok "$tag $name"
        else
            fail "$tag $name"
        fi
    done
    local text expected_json
    text="$(head -n 1 "$work/ner.txt")"
    expected_json="$(head -n 1 "$work/ner-64.$tag.expected")"
    echo "   $tag errors"
    if $runner "$test" errors "$ner" "$text" "$expected_json" "$flips"; then ok "$tag errors"; else fail "$tag errors"; fi
}

# ---- 2. x86-64
step "x86-64: C tests against libbertq.a"
cc "${cflags[@]}" capi/tests/test_capi.c "$lib" $wrap -lpthread -ldl -lm -o "$work/test_capi"
all_cases=(ner ner-none ner-simple ner-compat ner-threshold ner-redact ner-first-128 ner-64 sentiment
    sentiment-top2-pair embedding qa
    qa-top3-impossible fill-mask fill-mask-top3)
run_cases "" "$work/test_capi" "$bertq" x86 97 "${all_cases[@]}"

step "x86-64: valgrind (memcheck) on the error tests and the short NER texts"
vg=(valgrind --quiet --error-exitcode=99 --leak-check=no)
if "${vg[@]}" "$work/test_capi" errors "$ner" "$(head -n 1 "$work/ner.txt")" "$(head -n 1 "$work/ner.x86.expected")" &&
    "${vg[@]}" "$work/test_capi" compare "$ner" "$work/ner.txt" "$work/ner-none.x86.expected" 512 4096 aggregation=1; then
    ok valgrind
else
    fail valgrind
fi

step "x86-64: AddressSanitizer + UBSan build of the C tests"
cc "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer capi/tests/test_capi.c "$lib" \
    $wrap -lpthread -ldl -lm -o "$work/test_capi_asan"
if ASAN_OPTIONS=detect_leaks=0 "$work/test_capi_asan" errors "$ner" "$(head -n 1 "$work/ner.txt")" \
        "$(head -n 1 "$work/ner.x86.expected")" &&
    ASAN_OPTIONS=detect_leaks=0 "$work/test_capi_asan" compare "$sentiment" "$work/sentiment.txt" \
        "$work/sentiment.x86.expected" 512 0; then
    ok asan
else
    fail asan
fi

step "x86-64: capi/examples/linux_stdin.c"
cc -std=c99 -O2 -Wall -Werror -Icapi/include capi/examples/linux_stdin.c "$lib" -lpthread -ldl -lm \
    -o "$work/linux_stdin"
# (ner.txt's texts fit one window of 512 tokens: the example's session has no windows.)
if "$work/linux_stdin" "$ner" 512 < "$work/ner.txt" > "$work/stdin.out" &&
    cmp "$work/stdin.out" <(head -n 6 "$work/ner.x86.expected") &&
    "$work/linux_stdin" "$embedding" < "$work/embedding.txt" > "$work/stdin_emb.out" &&
    cmp "$work/stdin_emb.out" "$work/embedding.x86.expected"; then
    ok linux_stdin
else
    fail linux_stdin
fi

step "x86-64: the README's example (section \"From C\")"
python3 - "$work/readme.c" <<'PY'
import sys
s = open("README.md").read()
s = s[s.index("## From C"):]
s = s[s.index("```c\n") + 5:]
open(sys.argv[1], "w").write(s[:s.index("```")] + r"""
#include <string.h>
int main(int argc, char **argv) {
    static _Alignas(64) unsigned char model[64 << 20];
    FILE *f = fopen(argv[1], "rb");
    size_t n = f ? fread(model, 1, sizeof model, f) : 0;
    (void)argc;
    return classify(model, n, argv[2], strlen(argv[2]));
}
""")
PY
cc -std=c11 -Wall -Wextra -Werror -pedantic -Icapi/include "$work/readme.c" "$lib" -lpthread -ldl -lm -o "$work/readme"
if [ "$("$work/readme" "$ner" "$(sed -n 2p "$work/ner.txt")")" = "$(sed -n 2p "$work/ner.x86.expected")" ]; then
    ok readme-example
else
    fail readme-example
fi

# ---- 3. aarch64 Linux under qemu-user
if [ "${SKIP_AARCH64:-0}" != 1 ]; then
    step "aarch64: cross-building bertq (scripts/cross_build.sh generic) and libbertq.a"
    arm_bertq="$(scripts/cross_build.sh generic 2>/dev/null | tail -n 1)"
    arm_target_dir=target/cross/generic # shared with cross_build.sh: same flags, one build
    RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
        CARGO_TARGET_DIR="$arm_target_dir" \
        cargo build --release -p bertq-capi --target aarch64-unknown-linux-gnu --quiet 2>&1 |
        { grep -v -e "dropping unsupported crate type" -e "generated 1 warning" -e '^$' || true; }
    arm_lib="$arm_target_dir/aarch64-unknown-linux-gnu/release/libbertq.a"
    # (ld warns that std's unused getaddrinfo/getpwuid_r need glibc's shared libraries at run time.)
    aarch64-linux-gnu-gcc "${cflags[@]}" -static capi/tests/test_capi.c "$arm_lib" $wrap -lpthread -ldl -lm \
        -o "$work/test_capi_arm" 2>&1 | { grep -v -e "requires at runtime the shared libraries" -e "in function .std::" || true; }
    for cpu in ${CPUS:-cortex-a72 cortex-a76}; do
        step "aarch64: qemu-aarch64 -cpu $cpu"
        # Emulation is slow: one case per task (the options are the same code on both ISAs),
        # long texts in windows of 64 tokens.
        run_cases "qemu-aarch64-static -cpu $cpu" "$work/test_capi_arm" "$arm_bertq" "$cpu" 8 \
            ner-64 sentiment-top2-pair embedding
    done
    # An i8mm core: the session runs on weights converted to K8N8 in a buffer of the caller's
    # (bertq_repack_bytes / bertq_open_repacked), against `bertq run`, which converts them too.
    step "aarch64: qemu-aarch64 -cpu max (i8mm, converted weights)"
    run_cases "env BERTQ_EXPECT_REPACK=1 qemu-aarch64-static -cpu max" "$work/test_capi_arm" \
        "$arm_bertq" max 8 ner-64

    # ---- 4. bare metal
    if [ "${SKIP_BARE_METAL:-0}" != 1 ]; then
        step "bare metal: libbertq.a for aarch64-unknown-none (no std), C firmware, qemu-system-aarch64 virt"
        # target/aarch64-none and these flags are scripts/test_aarch64.sh's bare-metal build:
        # core and the runtime are reused from it.
        RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc CARGO_TARGET_DIR=target/aarch64-none \
            CARGO_TARGET_AARCH64_UNKNOWN_NONE_RUSTFLAGS="" \
            cargo build -Zbuild-std=core --target aarch64-unknown-none -p bertq-capi \
            --no-default-features --release --quiet 2>&1 | { grep -v -e "dropping unsupported crate type" -e "generated 1 warning" || true; }
        none_lib=target/aarch64-none/aarch64-unknown-none/release/libbertq.a
        fw=capi/examples/baremetal
        if aarch64-linux-gnu-gcc -std=c99 -O2 -Wall -Werror -ffreestanding -fno-builtin \
            -fno-tree-loop-distribute-patterns -nostdlib -static -fno-pic -no-pie \
            -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
            -Icapi/include -DBERTQ_MODEL="\"$root/$ner\"" -T "$fw/link.ld" \
            "$fw/start.S" "$fw/model.S" "$fw/main.c" "$fw/mem.c" "$none_lib" -lgcc -o "$work/firmware.elf"; then
            ok bare-metal-link
            timeout 600 qemu-system-aarch64 -M virt -cpu cortex-a72 -m 512M -display none -monitor none \
                -serial stdio -semihosting -kernel "$work/firmware.elf" > "$work/firmware.out" 2>&1 &&
                status=0 || status=$?
            sed 's/^/   | /' "$work/firmware.out"
            # Its two texts are the first and third of ner.txt. The runtime without std computes
            # exactly what it does with std (fused multiply-adds in both), so the entities
            # (group, word, offsets) and their scores equal the aarch64 Linux `bertq run`'s.
            sed -n '1p;3p' "$work/ner.txt" > "$work/firmware.txt"
            qemu-aarch64-static -cpu cortex-a72 "$arm_bertq" run --max-length 128 \
                < "$work/firmware.txt" > "$work/firmware.expected"
            if [ "$status" = 0 ] && grep -q "bertq bare metal: ok" "$work/firmware.out" &&
                python3 - "$work/firmware.expected" "$work/firmware.out" <<'PY'
import json, sys
exp = [json.loads(l) for l in open(sys.argv[1])]
got = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("[")]
assert len(exp) == len(got) == 2, f"{len(got)} results"
span = lambda r: [(e["entity_group"], e["word"], e["start"], e["end"]) for e in r]
worst = 0.0
for e, g in zip(exp, got):
    assert span(e) == span(g), f"entities differ:\n linux: {span(e)}\n bare metal: {span(g)}"
    worst = max([worst] + [abs(a["score"] - b["score"]) for a, b in zip(e, g)])
assert worst <= 1e-6, f"score difference {worst}"
print(f"   bare metal = aarch64 bertq run: same {sum(map(len, exp))} entities, largest score difference {worst:.1e}")
PY
            then
                ok bare-metal-run
            else
                echo "   exit status $status"
                fail bare-metal-run
            fi
        else
            fail bare-metal-link
        fi
    fi
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "test_capi: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "test_capi: all passed"
