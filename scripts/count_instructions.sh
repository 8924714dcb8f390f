#!/usr/bin/env bash
# Counts executed aarch64 instructions of one activation quantization + int8 GEMM per kernel
# table under qemu-user (a deterministic speed proxy; see docs/aarch64.md) and prints MACs per
# instruction, with the quantization (the figure of merit) and for the GEMM alone. Each table runs on a CPU model that has it: neon on cortex-a72, dotprod on
# cortex-a76, i8mm on max. Per call = (trace of 2N iterations - trace of N) / N, so start-up and
# set-up cancel out. The trace is counted through a pipe (nothing large is written to disk).
#
# Usage: scripts/count_instructions.sh [M N K] [N_ITERS]   (default 32 384 384, 1)
# Env:   TABLES="neon:cortex-a72 dotprod:cortex-a76 i8mm/k4n16:max i8mm:max" (TABLE[/LAYOUT]:CPU;
#        the default layout is the table's native one: K4N16, K8N8 for i8mm)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

m=${1:-32} n=${2:-384} k=${3:-384} iters=${4:-1}
# shellcheck source=scripts/qemu_count.sh
. scripts/qemu_count.sh
if ! log=$(CARGO_TARGET_DIR=target/aarch64 cargo build -p bertq-runtime --example gemm_count \
    --release --target aarch64-unknown-linux-gnu 2>&1); then
    echo "$log" >&2
    exit 1
fi
bin=target/aarch64/aarch64-unknown-linux-gnu/release/examples/gemm_count

count() { # cpu table iterations [gemm] -> executed instructions
    executed_instructions "$1" "$bin" "$2" "$m" "$n" "$k" "$3" ${4:-}
}
per_call() { # cpu table [gemm] -> instructions per call
    local c1 c2
    c1=$(count "$1" "$2" "$iters" ${3:-})
    c2=$(count "$1" "$2" $((2 * iters)) ${3:-})
    echo $(((c2 - c1) / iters))
}

macs=$((m * n * k))
echo "m=$m n=$n k=$k: $macs MACs per call"
printf '%-12s %-11s %16s %12s %16s %12s\n' table cpu "instr/call" "MACs/instr" "gemm instr" "gemm only"
for entry in ${TABLES:-neon:cortex-a72 dotprod:cortex-a76 i8mm/k4n16:max i8mm:max}; do
    table=${entry%%:*} cpu=${entry#*:}
    all=$(per_call "$cpu" "$table")
    gemm=$(per_call "$cpu" "$table" gemm)
    printf '%-12s %-11s %16d %12s %16d %12s\n' "$table" "$cpu" "$all" "$(ratio "$macs" "$all")" \
        "$gemm" "$(ratio "$macs" "$gemm")"
done
echo "(instr/call: quantize_rows of the [m, k] activations + gemm_i8; gemm only: gemm_i8 alone)"
