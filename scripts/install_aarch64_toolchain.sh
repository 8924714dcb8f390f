#!/usr/bin/env bash
# Installs the aarch64 cross toolchain of docs/aarch64.md on Debian 12 (x86-64), for
# scripts/test_aarch64.sh and scripts/count_instructions.sh (CI). Idempotent; needs root.
#   - rustc-web: Debian's rustc 1.96 as /usr/bin/rustc (+ rustdoc), used for the cross build only
#   - libstd-rust-web-dev:arm64: its aarch64-unknown-linux-gnu standard library
#   - gcc-aarch64-linux-gnu, libc6-dev-arm64-cross: linker and libc for static linking
#   - qemu-user-static: qemu-aarch64-static, the test runner and instruction counter
#   - rust-web-src: the library sources for -Zbuild-std (bare-metal aarch64-unknown-none)
#   - qemu-system-arm: qemu-system-aarch64, which boots the firmware (scripts/firmware.sh run)
#     and the C API's bare-metal example (scripts/test_capi.sh)
#   - valgrind: the memory checker of scripts/test_capi.sh
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
        exec sudo "$0" "$@"
    fi
    echo "install_aarch64_toolchain: run as root" >&2
    exit 1
fi

packages=(rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    qemu-user-static rust-web-src qemu-system-arm valgrind)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install_aarch64_toolchain: everything is installed"
    exit 0
fi

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y "${missing[@]}"
echo "install_aarch64_toolchain: installed ${missing[*]}"
