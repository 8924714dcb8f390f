# Shared by scripts/count_instructions.sh and scripts/count_instructions_tract.sh (sourced, not
# run): the cross toolchain check and environment of ../shared/docs/aarch64.md, and counting the
# instructions a program executes under qemu-user (a trace line per instruction, counted through
# a pipe, so nothing large is written to disk).

for tool in /usr/bin/rustc aarch64-linux-gnu-gcc qemu-aarch64-static; do
    command -v "$tool" >/dev/null || {
        echo "$(basename "$0"): $tool missing; run sudo scripts/install_aarch64_toolchain.sh" >&2
        exit 2
    }
done

export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc

# qemu 7.2 (Debian 12) spells it -singlestep, qemu >= 8.1 -one-insn-per-tb.
if qemu-aarch64-static -h | grep -q -- '-one-insn-per-tb'; then
    qemu_step=-one-insn-per-tb
else
    qemu_step=-singlestep
fi

executed_instructions() { # CPU PROGRAM ARGS... -> instructions one run of PROGRAM executes
    local cpu="$1"
    shift
    qemu-aarch64-static -cpu "$cpu" "$qemu_step" -d nochain,exec -D /dev/stderr "$@" \
        2>&1 >/dev/null | grep -c '^Trace'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
