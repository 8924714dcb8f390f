#!/usr/bin/env bash
# The bare-metal firmware (firmware/, see ../shared/docs/firmware.md): build an image for a board,
# or boot one under qemu-system-aarch64 with its UART on a socket.
#
#   scripts/firmware.sh build --board virt|raspi3b|rpi4|rpi5 [--model FILE] [--max-seq N]
#                             [--baud N] [--out DIR]
#       Builds target/firmware/BOARD/ (or DIR): bertq-firmware.elf, kernel8.img (the raw image a
#       Raspberry Pi boots; QEMU virt boots the ELF), firmware.map, and prints the image's sizes.
#       --model: the model linked into the image (default: the built-in Rampart PII model);
#       --max-seq: the longest input the static session arena is sized for (default 128).
#
#   scripts/firmware.sh run --board virt|raspi3b [--cpu cortex-a53|cortex-a72|cortex-a76|max]
#                           --uart unix:PATH|tcp:PORT|stdio [--model FILE] [--image FILE]
#                           [--smp N]
#       Boots the image in the foreground; QEMU listens on the UART socket and starts the guest
#       when a client connects (`bertq client --unix PATH "text"`). --model puts FILE in the
#       board's model region (virt: flash bank 1; raspi3b: RAM at 0x10000000), where the
#       firmware prefers it to the linked model. --smp N: cores of the virt machine (default 1;
#       raspi3b always has 4); the firmware runs inference on all of them. Exits with QEMU's
#       status: 0 after a `shutdown`
#       request (`bertq client --shutdown`), 3 after a CPU fault, 4 after a panic.
#
# Installs nothing: a missing tool is an error naming the package (scripts/install_aarch64_toolchain.sh
# installs the cross toolchain; qemu-system-aarch64 is Debian's qemu-system-arm).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

die() { echo "firmware.sh: $*" >&2; exit 2; }
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null || die "$1 not found (Debian package $2)"
}
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
command="$1"; shift
board="" model="" max_seq="" baud="" out="" cpu="" uart="" image="" smp=""
while [ $# -gt 0 ]; do
    case "$1" in
        --board) board="${2:?--board needs a value}"; shift 2 ;;
        --model) model="${2:?--model needs a file}"; shift 2 ;;
        --max-seq) max_seq="${2:?--max-seq needs a number}"; shift 2 ;;
        --baud) baud="${2:?--baud needs a number}"; shift 2 ;;
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --cpu) cpu="${2:?--cpu needs a model}"; shift 2 ;;
        --uart) uart="${2:?--uart needs unix:PATH, tcp:PORT or stdio}"; shift 2 ;;
        --image) image="${2:?--image needs a file}"; shift 2 ;;
        --smp) smp="${2:?--smp needs a number}"; shift 2 ;;
        -h|--help) usage ;;
        *) die "unknown argument '$1' (--help)" ;;
    esac
done
[ -n "$board" ] || die "--board is required"
if [ -n "$model" ]; then
    [ -f "$model" ] || die "model file '$model' not found"
    model="$(cd "$(dirname "$model")" && pwd)/$(basename "$model")"
fi

build() {
    case "$board" in virt|raspi3b|rpi4|rpi5) ;; *) die "--board must be virt, raspi3b, rpi4 or rpi5" ;; esac
    if [ -n "$max_seq" ] && ! [[ "$max_seq" =~ ^[0-9]+$ && "$max_seq" -ge 2 && "$max_seq" -le 4096 ]]; then
        die "--max-seq must be a number from 2 to 4096"
    fi
    if [ -n "$baud" ] && ! [[ "$baud" =~ ^[0-9]+$ && "$baud" -ge 300 && "$baud" -le 4000000 ]]; then
        die "--baud must be a number from 300 to 4000000"
    fi
    [ -x /usr/bin/rustc ] || die "/usr/bin/rustc not found (Debian package rustc-web)"
    [ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/src/rust/library/core" ] ||
        die "Rust sources for -Zbuild-std not found (Debian package rust-web-src)"
    need aarch64-linux-gnu-ld binutils-aarch64-linux-gnu
    need aarch64-linux-gnu-objcopy binutils-aarch64-linux-gnu
    need aarch64-linux-gnu-size binutils-aarch64-linux-gnu
    need cargo cargo
    local dest="${out:-$root/target/firmware/$board}"
    mkdir -p "$dest"
    # One target directory for every board: the runtime and `core` are built once, only the
    # firmware crate (board constants, linked model) is rebuilt per image.
    local target_dir="$root/target/firmware-build"
    echo "== building the firmware for $board${model:+ with $model}${max_seq:+, max_seq $max_seq}"
    (cd "$root/firmware" &&
        RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 CARGO_TERM_COLOR=never \
        CARGO_TARGET_DIR="$target_dir" BERTQ_BOARD="$board" BERTQ_MODEL="$model" \
        BERTQ_MAX_SEQ="$max_seq" BERTQ_BAUD="$baud" BERTQ_FAULT_TEST="${BERTQ_FAULT_TEST:-}" \
        cargo build --release --locked)
    local elf="$target_dir/aarch64-unknown-none/release/bertq-firmware"
    cp "$elf" "$dest/bertq-firmware.elf"
    aarch64-linux-gnu-objcopy -O binary "$elf" "$dest/kernel8.img"
    local map
    map="$(ls -t "$target_dir"/aarch64-unknown-none/release/build/bertq-firmware-*/out/firmware.map | head -n 1)"
    cp "$map" "$dest/firmware.map"
    # The firmware must not link an allocator: no __rust_alloc / __rg_alloc symbol.
    if aarch64-linux-gnu-nm "$dest/bertq-firmware.elf" | grep -Eq '__rust_alloc|__rg_alloc|__rdl_alloc'; then
        die "the firmware image links an allocator"
    fi
    echo "== $dest"
    aarch64-linux-gnu-size -A "$dest/bertq-firmware.elf" | awk '$1 ~ /^\.(text|rodata|data|arena|bss|stack)$/ {
        printf "  %-8s %10d bytes (%6.2f MiB)\n", $1, $2, $2 / 1048576; total += $2 }
        END { printf "  %-8s %10d bytes (%6.2f MiB) of RAM from the load address\n", "total", total, total / 1048576 }'
    printf '  kernel8.img %d bytes\n' "$(stat -c %s "$dest/kernel8.img")"
}

run() {
    need qemu-system-aarch64 qemu-system-arm
    [ -n "$uart" ] || die "--uart unix:PATH, tcp:PORT or stdio is required"
    local serial
    case "$uart" in
        unix:?*) serial="unix:${uart#unix:},server=on,wait=on" ;;
        tcp:?*) serial="tcp:127.0.0.1:${uart#tcp:},server=on,wait=on" ;;
        stdio) serial="stdio" ;;
        *) die "--uart must be unix:PATH, tcp:PORT or stdio" ;;
    esac
    local dir="$root/target/firmware/$board" args=() tmp=""
    case "$board" in
        virt)
            image="${image:-$dir/bertq-firmware.elf}"
            if [ -n "$smp" ] && ! [[ "$smp" =~ ^[1-8]$ ]]; then
                die "--smp must be a number from 1 to 8"
            fi
            args=(-M virt -cpu "${cpu:-cortex-a72}" -smp "${smp:-1}" -m 1G -kernel "$image")
            if [ -n "$model" ]; then
                # Flash bank 1 is exactly 64 MiB: the model, then erased flash.
                local size
                size="$(stat -c %s "$model")"
                [ "$size" -le $((64 << 20)) ] || die "the model is larger than the 64 MiB flash bank"
                tmp="$(mktemp --suffix=.flash)"
                cp "$model" "$tmp"
                truncate -s 64M "$tmp"
                args+=(-drive "if=pflash,unit=1,format=raw,file=$tmp")
            fi
            ;;
        raspi3b)
            [ -z "$cpu" ] || [ "$cpu" = cortex-a53 ] || die "raspi3b has Cortex-A53 cores only"
            [ -z "$smp" ] || [ "$smp" = 4 ] || die "raspi3b has 4 cores"
            image="${image:-$dir/kernel8.img}"
            args=(-M raspi3b -m 1G -kernel "$image")
            if [ -n "$model" ]; then
                args+=(-device "loader,file=$model,addr=0x10000000,force-raw=on")
            fi
            ;;
        *) die "run: --board must be virt or raspi3b (QEMU 7.2 has no Raspberry Pi 4 or 5)" ;;
    esac
    [ -f "$image" ] || die "no image at $image: run 'scripts/firmware.sh build --board $board' first"
    case "${cpu:-}" in ""|cortex-a53|cortex-a72|cortex-a76|max) ;; *) die "--cpu must be cortex-a53, cortex-a72, cortex-a76 or max" ;; esac
    local status=0
    # -semihosting: the firmware's exit status (shutdown, fault) becomes QEMU's.
    qemu-system-aarch64 "${args[@]}" -display none -monitor none -semihosting \
        -serial "$serial" || status=$?
    [ -z "$tmp" ] || rm -f "$tmp"
    return "$status"
}

case "$command" in
    build) build ;;
    run) run ;;
    *) die "the command must be build or run (--help)" ;;
esac
