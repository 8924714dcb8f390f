#!/usr/bin/env bash
# Counts executed aarch64 instructions of one activation quantization + int8 GEMM per kernel
# table under qemu-user (a deterministic speed proxy; see docs/aarch64.md) and prints MACs per
# instruction. Each table runs on a CPU model that has it: neon on cortex-a72, dotprod on
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
CARGO_TARGET_DIR=target/aarch64 cargo build -q -p bertq-runtime --example gemm_count --release \
    --target aarch64-unknown-linux-gnu
bin=target/aarch64/aarch64-unknown-linux-gnu/release/examples/gemm_count

# qemu 7.2 (Debian 12) spells it -singlestep, qemu >= 8.1 -one-insn-per-tb.
if qemu-aarch64-static -h | grep -q -- '-one-insn-per-tb'; then step=-one-insn-per-tb; else step=-singlestep; fi

count() { # cpu table iterations -> executed instructions
    qemu-aarch64-static -cpu "$1" "$step" -d nochain,exec -D /dev/stderr "$bin" "$2" "$m" "$n" "$k" "$3" \
        2>&1 >/dev/null | grep -c '^Trace'
}

macs=$((m * n * k))
printf '%-8s %-11s %14s %12s  (m=%d n=%d k=%d, quantize_rows + gemm_i8 per call)\n' \
    table cpu instr/call MACs/instr "$m" "$n" "$k"
for entry in ${TABLES:-neon:cortex-a72 dotprod:cortex-a76 i8mm:max}; do
    table=${entry%%:*} cpu=${entry#*:}
    c1=$(count "$cpu" "$table" "$iters")
    c2=$(count "$cpu" "$table" $((2 * iters)))
    per=$(((c2 - c1) / iters))
    printf '%-8s %-11s %14d %12s\n' "$table" "$cpu" "$per" "$(awk -v a="$macs" -v b="$per" 'BEGIN { printf "%.2f", a / b }')"
done
