#!/usr/bin/env bash
# Cross-tests the aarch64 kernels on this x86-64 machine (see docs/aarch64.md): builds the
# runtime's unit tests once for aarch64-unknown-linux-gnu (static, Debian's rustc + aarch64 std),
# runs that binary under qemu-user once per CPU model (every kernel table's dispatch path), then
# builds the runtime without std for bare-metal aarch64 (with and without dotprod/i8mm enabled at
# compile time). Installs nothing: scripts/install_aarch64_toolchain.sh does (as root).
#
# Usage: scripts/test_aarch64.sh [test-binary args, e.g. a test name filter]
# Env:   CPUS="cortex-a53 max" to change the CPU list; SKIP_BARE_METAL=1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

RUSTC_BIN=/usr/bin/rustc
missing=()
[ -x "$RUSTC_BIN" ] || missing+=("$RUSTC_BIN (Debian package rustc-web)")
if [ -x "$RUSTC_BIN" ]; then
    sysroot="$("$RUSTC_BIN" --print sysroot)"
    [ -d "$sysroot/lib/rustlib/aarch64-unknown-linux-gnu/lib" ] ||
        missing+=("the aarch64 std for $RUSTC_BIN (libstd-rust-web-dev:arm64)")
    [ "${SKIP_BARE_METAL:-0}" = 1 ] || [ -d "$sysroot/lib/rustlib/src/rust/library/core" ] ||
        missing+=("Rust sources for -Zbuild-std (rust-web-src), or set SKIP_BARE_METAL=1")
fi
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=("aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross)")
command -v qemu-aarch64-static >/dev/null || missing+=("qemu-aarch64-static (qemu-user-static)")
command -v cargo >/dev/null || missing+=("cargo")
if [ ${#missing[@]} -gt 0 ]; then
    echo "test_aarch64: missing prerequisites:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    echo "Install them with: sudo scripts/install_aarch64_toolchain.sh" >&2
    exit 2
fi

export RUSTC="$RUSTC_BIN" RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# Static: dynamically linked programs hang under qemu-user once they start threads.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
export CARGO_TERM_COLOR=never

echo "== building the bertq-runtime unit tests for aarch64-unknown-linux-gnu"
bin="$(CARGO_TARGET_DIR=target/aarch64 cargo test -p bertq-runtime --lib --release \
    --target aarch64-unknown-linux-gnu --no-run --message-format=json |
    grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//' | tail -n 1)"
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "test_aarch64: could not find the test binary" >&2
    exit 1
fi

failed=()
for cpu in ${CPUS:-cortex-a53 cortex-a72 cortex-a76 max}; do
    echo "== qemu-aarch64 -cpu $cpu"
    if qemu-aarch64-static -cpu "$cpu" "$bin" "$@"; then
        echo "-- $cpu: ok"
    else
        echo "-- $cpu: FAILED"
        failed+=("$cpu")
    fi
done

if [ "${SKIP_BARE_METAL:-0}" != 1 ]; then
    for features in "" "+dotprod,+i8mm"; do
        echo "== bare metal: aarch64-unknown-none, no std, target features '${features:-baseline}'"
        flags=()
        [ -n "$features" ] && flags=(-C "target-feature=$features")
        if ! RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="target/aarch64-none${features:+-features}" \
            CARGO_TARGET_AARCH64_UNKNOWN_NONE_RUSTFLAGS="${flags[*]:-}" \
            cargo build -Zbuild-std=core --target aarch64-unknown-none -p bertq-runtime \
            --no-default-features --release; then
            failed+=("bare-metal${features:+ $features}")
        fi
    done
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "test_aarch64: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "test_aarch64: all passed"
