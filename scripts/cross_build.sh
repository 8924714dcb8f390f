#!/usr/bin/env bash
# Cross-builds a static aarch64 `bertq` (with the default model inside) for a board profile on
# this x86-64 machine, strips it, and reports its size. The toolchain is Debian's (see
# ../shared/docs/aarch64.md; scripts/install_aarch64_toolchain.sh installs it as root).
#
# Usage: scripts/cross_build.sh [BOARD]     BOARD: a profile id (default: generic), see
#                                           `bertq doctor --list-boards`
# Prints the path of the stripped binary on the last line of stdout:
#   target/cross/BOARD/aarch64-unknown-linux-gnu/release/bertq-stripped
# Copy it to the board as /usr/local/bin/bertq (see README: "Serve on a board").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
board="${1:-generic}"
target=aarch64-unknown-linux-gnu

missing=()
[ -x /usr/bin/rustc ] || missing+=("/usr/bin/rustc (Debian package rustc-web)")
if [ -x /usr/bin/rustc ]; then
    [ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/$target/lib" ] ||
        missing+=("the aarch64 std for /usr/bin/rustc (libstd-rust-web-dev:arm64)")
fi
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=("aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu)")
command -v aarch64-linux-gnu-strip >/dev/null || missing+=("aarch64-linux-gnu-strip (binutils-aarch64-linux-gnu)")
if [ ${#missing[@]} -gt 0 ]; then
    echo "cross_build: missing prerequisites:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 2
fi

# The profile's -C target-cpu, from the profiles compiled into bertq (one source of truth).
cargo build --release -p bertq-boards --quiet
cpu="$(target/release/bertq doctor --board "$board" --print target-cpu)"
flags="-C target-feature=+crt-static"
[ "$cpu" != generic ] && flags="$flags -C target-cpu=$cpu"
echo "cross_build: board $board, target $target, $flags" >&2

export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# Static: one file to copy, no libc version to match (and dynamic binaries hang under qemu-user).
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="$flags"
export CARGO_TARGET_DIR="target/cross/$board"
cargo build --release -p bertq-boards --target "$target" --bin bertq

out="$CARGO_TARGET_DIR/$target/release"
aarch64-linux-gnu-strip -o "$out/bertq-stripped" "$out/bertq"
size=$(stat -c %s "$out/bertq-stripped")
full=$(stat -c %s "$out/bertq")
echo "cross_build: $(file -b "$out/bertq-stripped" 2>/dev/null | cut -d, -f1-2 || true)" >&2
printf 'cross_build: stripped %.1f MB (%d bytes; unstripped %.1f MB), of which the built-in model %.1f MB\n' \
    "$(echo "$size / 1000000" | bc -l)" "$size" "$(echo "$full / 1000000" | bc -l)" \
    "$(echo "$(stat -c %s models/rampart-pii.bertq) / 1000000" | bc -l)" >&2
echo "$out/bertq-stripped"
