#!/usr/bin/env bash
# Executed aarch64 instructions of tract's int8 matrix product on the same GEMM shape as
# scripts/count_instructions.sh, under qemu-user, for the side-by-side kernel comparison in
# BENCHMARKS.md. tract picks its SMLAL 8x8 kernel on ARMv8.0 (cortex-a72) and its SDOT 8x8 kernel
# with FEAT_DotProd (cortex-a76); it has no SMMLA (i8mm) kernel. Per run = (trace of 2N runs -
# trace of N) / N: model building, optimisation and weight packing cancel out; activation packing
# and the kernel remain (tract takes i8 activations, so there is no quantization step to count).
#
# Usage: scripts/count_instructions_tract.sh [M N K] [N_ITERS]   (default 32 384 384, 1)
# Env:   CPUS="cortex-a72 cortex-a76"
# Not in CI: tract builds for aarch64 in ~10 minutes (tools/tract-count, outside the workspace).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

m=${1:-32} n=${2:-384} k=${3:-384} iters=${4:-1}
# shellcheck source=scripts/qemu_count.sh
. scripts/qemu_count.sh
if ! log=$(cargo build --release --manifest-path tools/tract-count/Cargo.toml \
    --target aarch64-unknown-linux-gnu 2>&1); then
    echo "$log" >&2
    exit 1
fi
bin=tools/tract-count/target/aarch64-unknown-linux-gnu/release/tract-count

count() { # cpu iterations -> executed instructions
    executed_instructions "$1" "$bin" "$m" "$n" "$k" "$2"
}
kernel() { # cpu -> the matrix-multiply kernel tract chose
    qemu-aarch64-static -cpu "$1" "$bin" "$m" "$n" "$k" 1 2>&1 >/dev/null |
        grep -o 'mmm: \[[a-z0-9_]*\]' | tr -d '[]' | sed 's/mmm: //'
}

macs=$((m * n * k))
echo "tract (tract-core 0.23.9) m=$m n=$n k=$k: $macs MACs per run"
printf '%-11s %-26s %16s %12s\n' cpu kernel "instr/run" "MACs/instr"
for cpu in ${CPUS:-cortex-a72 cortex-a76}; do
    c1=$(count "$cpu" "$iters")
    c2=$(count "$cpu" $((2 * iters)))
    per=$(((c2 - c1) / iters))
    printf '%-11s %-26s %16d %12s\n' "$cpu" "$(kernel "$cpu")" "$per" \
        "$(ratio "$macs" "$per")"
done
echo "(instr/run: one plan run = activation packing + int8 kernel, i32 output; compare with the"
echo " 'gemm only' column of scripts/count_instructions.sh)"
