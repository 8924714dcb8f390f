#!/usr/bin/env bash
# Counts executed aarch64 instructions of one activation quantization + int8 GEMM per kernel
# table under qemu-user (a deterministic speed proxy; see docs/aarch64.md) and prints MACs per
# instruction, with the quantization (the figure of merit) and for the GEMM alone. Each table runs on a CPU model that has it: neon on cortex-a72, dotprod on
# cortex-a76, i8mm on max. Per call = (trace of 2N iterations - trace of N) / N, so start-up and
# set-up cancel out. The trace is counted through a pipe (nothing large is written to disk).
#
# Usage: scripts/count_instructions.sh [M N K] [N_ITERS]   (default 32 384 384, 1)
# Env:   TABLES="neon:cortex-a72 dotprod:cortex-a76 i8mm:max"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

m=${1:-32} n=${2:-384} k=${3:-384} iters=${4:-1}
for tool in /usr/bin/rustc aarch64-linux-gnu-gcc qemu-aarch64-static; do
    command -v "$tool" >/dev/null || {
        echo "count_instructions: $tool missing; run sudo scripts/install_aarch64_toolchain.sh" >&2
        exit 2
    }
done

export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
if ! log=$(CARGO_TARGET_DIR=target/aarch64 cargo build -p bertq-runtime --example gemm_count \
    --release --target aarch64-unknown-linux-gnu 2>&1); then
    echo "$log" >&2
    exit 1
fi
bin=target/aarch64/aarch64-unknown-linux-gnu/release/examples/gemm_count

# qemu 7.2 (Debian 12) spells it -singlestep, qemu >= 8.1 -one-insn-per-tb.
if qemu-aarch64-static -h | grep -q -- '-one-insn-per-tb'; then step=-one-insn-per-tb; else step=-singlestep; fi

count() { # cpu table iterations [gemm] -> executed instructions
    qemu-aarch64-static -cpu "$1" "$step" -d nochain,exec -D /dev/stderr "$bin" "$2" "$m" "$n" "$k" "$3" ${4:-} \
        2>&1 >/dev/null | grep -c '^Trace'
}
per_call() { # cpu table [gemm] -> instructions per call
    local c1 c2
    c1=$(count "$1" "$2" "$iters" ${3:-})
    c2=$(count "$1" "$2" $((2 * iters)) ${3:-})
    echo $(((c2 - c1) / iters))
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

macs=$((m * n * k))
echo "m=$m n=$n k=$k: $macs MACs per call"
printf '%-8s %-11s %16s %12s %16s %12s\n' table cpu "instr/call" "MACs/instr" "gemm instr" "gemm only"
for entry in ${TABLES:-neon:cortex-a72 dotprod:cortex-a76 i8mm:max}; do
    table=${entry%%:*} cpu=${entry#*:}
    all=$(per_call "$cpu" "$table")
    gemm=$(per_call "$cpu" "$table" gemm)
    printf '%-8s %-11s %16d %12s %16d %12s\n' "$table" "$cpu" "$all" "$(ratio "$macs" "$all")" \
        "$gemm" "$(ratio "$macs" "$gemm")"
done
echo "(instr/call: quantize_rows of the [m, k] activations + gemm_i8; gemm only: gemm_i8 alone)"
