#!/usr/bin/env bash
# Runs every libFuzzer target (fuzz/, cargo-fuzz) for a bounded time each; fails on any crash.
#
#   scripts/fuzz.sh [--time SECONDS] [--jobs N] [TARGET...]
#
# --time: seconds per target (default 60). Targets: model_load, frame, jsonl, tokenizer
# (default: these four) and quantize_input (the quantizer's readers; fuzz/quantize, builds
# tract, so only when named). Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain
# (`rustup toolchain install nightly`): libFuzzer's instrumentation and AddressSanitizer use
# unstable compiler flags. The corpora grow in fuzz/corpus/TARGET (committed seeds; new inputs
# stay local unless added on purpose); crashes land in fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."

time=60
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --time) time="$2"; shift 2 ;;
        --time=*) time="${1#--time=}"; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(model_load frame jsonl tokenizer)

toolchain=${BERTQ_FUZZ_TOOLCHAIN:-nightly}
if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz.sh: cargo-fuzz is not installed (cargo install cargo-fuzz)" >&2
    exit 2
fi
cd fuzz
# Release build with debug assertions (overflow checks included), ASan, libFuzzer. The
# quantizer's target lives in its own fuzz directory (it builds tract).
light=0
for t in "${targets[@]}"; do [ "$t" = quantize_input ] || light=1; done
[ "$light" = 0 ] || cargo +"$toolchain" fuzz build -O --debug-assertions >&2
status=0
for t in "${targets[@]}"; do
    if [ "$t" = quantize_input ]; then
        dir=quantize
        cargo +"$toolchain" fuzz build --fuzz-dir quantize -O -s none "$t" >&2
    else
        dir=.
    fi
    mkdir -p "$dir/corpus/$t" "$dir/artifacts/$t"
    # A scratch copy of the corpus: new inputs do not touch the committed seeds.
    work=$(mktemp -d)
    cp -r "$dir/corpus/$t/." "$work/"
    log=$(mktemp)
    echo "== fuzz $t for ${time}s" >&2
    if [ "$dir" = quantize ]; then
        flags=(--fuzz-dir quantize -O -s none)
    else
        flags=(-O --debug-assertions)
    fi
    if cargo +"$toolchain" fuzz run "${flags[@]}" "$t" "$work" -- \
        -max_total_time="$time" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
        -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
        echo "   $t: $runs executions, no crash" >&2
    else
        status=1
        echo "   $t: FAILED (artifacts in fuzz/$dir/artifacts/$t)" >&2
        tail -n 40 "$log" >&2
    fi
    rm -rf "$work" "$log"
done
exit $status
