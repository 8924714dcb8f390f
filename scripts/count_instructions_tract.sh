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
for tool in /usr/bin/rustc aarch64-linux-gnu-gcc qemu-aarch64-static; do
    command -v "$tool" >/dev/null || {
        echo "count_instructions_tract: $tool missing; run sudo scripts/install_aarch64_toolchain.sh" >&2
        exit 2
    }
done

export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
if ! log=$(cargo build --release --manifest-path tools/tract-count/Cargo.toml \
    --target aarch64-unknown-linux-gnu 2>&1); then
    echo "$log" >&2
    exit 1
fi
bin=tools/tract-count/target/aarch64-unknown-linux-gnu/release/tract-count

if qemu-aarch64-static -h | grep -q -- '-one-insn-per-tb'; then step=-one-insn-per-tb; else step=-singlestep; fi

count() { # cpu iterations -> executed instructions
    qemu-aarch64-static -cpu "$1" "$step" -d nochain,exec -D /dev/stderr "$bin" "$m" "$n" "$k" "$2" \
        2>&1 >/dev/null | grep -c '^Trace'
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
        "$(awk -v a="$macs" -v b="$per" 'BEGIN { printf "%.2f", a / b }')"
done
echo "(instr/run: one plan run = activation packing + int8 kernel, i32 output; compare with the"
echo " 'gemm only' column of scripts/count_instructions.sh)"
