#!/usr/bin/env bash
# The bare-metal firmware's tests (CI): builds the images (scripts/firmware.sh), checks that the
# firmware links no allocator and that every SDOT/SMMLA instruction sits in a kernel gated on
# the ID registers, then boots the images under qemu-system-aarch64 (virt on cortex-a53, a72,
# a76 and max; raspi3b) and queries them over their UART (boards/tests/firmware.rs): replies
# equal the aarch64 Linux `bertq run` on the same CPU model (scripts/cross_build.sh, under
# qemu-user) and the x86 one within 1e-2 (see boards/tests/firmware.rs).
# Installs nothing: scripts/install_aarch64_toolchain.sh does (as root).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
fw=scripts/firmware.sh

for board in virt raspi3b rpi4 rpi5; do
    "$fw" build --board "$board"
done
# A second virt image around the sentiment classifier: a linked classifier, and an arena too
# small for the PII model.
"$fw" build --board virt --model models/sentiment-minilm.bertq --out target/firmware/virt-sentiment
# An image that faults on purpose once its UART is up: the exception report and exit status 3.
BERTQ_FAULT_TEST=1 "$fw" build --board virt --out target/firmware/virt-fault

echo "== no allocator in the firmware's dependency graph"
if (cd firmware && RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 cargo tree --locked -e normal,features \
        --target aarch64-unknown-none 2>/dev/null) | grep -E '"alloc"|alloc feature|\balloc\b'; then
    echo "test_firmware: a dependency of the firmware enables alloc" >&2
    exit 1
fi

echo "== SDOT and SMMLA only in the dotprod and i8mm kernels"
outside="$(aarch64-linux-gnu-objdump -d --no-show-raw-insn target/firmware/virt/bertq-firmware.elf |
    awk '/^[0-9a-f]+ <.*>:$/ { fn = $2 }
         /\t(sdot|udot|usdot|smmla|ummla|usmmla)\t/ { print fn }' | sort -u |
    grep -Ev 'dotprod|i8mm' || true)"
if [ -n "$outside" ]; then
    echo "test_firmware: dot-product instructions outside the gated kernels:" >&2
    echo "$outside" >&2
    exit 1
fi
count="$(aarch64-linux-gnu-objdump -d --no-show-raw-insn target/firmware/virt/bertq-firmware.elf |
    grep -Ec $'\t(sdot|smmla)\t' || true)"
[ "$count" -gt 0 ] || { echo "test_firmware: no SDOT/SMMLA kernels in the image" >&2; exit 1; }
echo "   $count SDOT/SMMLA instructions, all in gated kernels"

echo "== the aarch64 Linux bertq, whose answers the firmware's must equal (same kernels)"
BERTQ_AARCH64_BIN="$(realpath "$(scripts/cross_build.sh generic | tail -n 1)")"
export BERTQ_AARCH64_BIN

echo "== booting the images under qemu-system-aarch64"
# Each test boots QEMU (one host thread each): two at a time on two cores.
cargo test --release -p bertq-boards --test firmware -- --ignored --test-threads=2 "$@"
