//! Build-time configuration of a firmware image (`scripts/firmware.sh build` sets these):
//!
//! - `BERTQ_BOARD`: `virt` (default), `raspi3b`, `rpi4` or `rpi5`; becomes `cfg(board = "...")`
//!   and picks the load address of the linker script;
//! - `BERTQ_MODEL`: the model file linked into the image (default: the built-in Rampart PII model);
//! - `BERTQ_MAX_SEQ`: the longest input in tokens the static session arena is sized for (128);
//! - `BERTQ_BAUD`: the UART's line speed (115200);
//! - `BERTQ_FAULT_TEST`: (tests only) an image that takes an undefined-instruction exception as
//!   soon as its UART is up, to check the exception report.
//!
//! The model is loaded here (with `std`, on the build machine) to size the arena and the reply
//! buffer exactly, so the image's memory is fixed and known before it boots.

use bertq_runtime::{MemorySizes, Model, ModelBytes};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Load address of the image per board (the entry point is the first byte).
fn load_address(board: &str) -> u64 {
    match board {
        // QEMU `virt` puts its device tree at the start of RAM (0x4000_0000, 1 MiB) and drops it
        // silently if an image sits at 0x4008_0000: start 2 MiB in.
        "virt" => 0x4020_0000,
        // The Raspberry Pi firmware loads `kernel8.img` at `kernel_address=0x80000`.
        "raspi3b" | "rpi4" | "rpi5" => 0x8_0000,
        other => panic!("BERTQ_BOARD={other}: expected virt, raspi3b, rpi4 or rpi5"),
    }
}

/// The frame or JSON line the firmware accepts (the Linux server's default).
const MAX_FRAME: usize = bertq_protocol::DEFAULT_MAX_FRAME;

/// Stack of the boot core (which runs everything but the parts of inference jobs).
const STACK_BYTES: u64 = 1 << 20;
/// Stack of each secondary core (it runs parts of GEMMs and attention, nothing deep).
const SECONDARY_STACK_BYTES: u64 = 512 << 10;
/// Cores used for inference at most.
const MAX_CORES: usize = 4;

/// A build setting from the environment; unset and empty are the same.
fn setting(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for var in [
        "BERTQ_BOARD",
        "BERTQ_MODEL",
        "BERTQ_MAX_SEQ",
        "BERTQ_BAUD",
        "BERTQ_FAULT_TEST",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let board = setting("BERTQ_BOARD").unwrap_or_else(|| "virt".into());
    let base = load_address(&board);
    let model_path = setting("BERTQ_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../models/rampart-pii.bertq"));
    let model_path = model_path
        .canonicalize()
        .unwrap_or_else(|e| panic!("BERTQ_MODEL {}: {e}", model_path.display()));
    println!("cargo:rerun-if-changed={}", model_path.display());
    let requested_seq: usize = setting("BERTQ_MAX_SEQ")
        .map(|s| s.parse().expect("BERTQ_MAX_SEQ must be a number"))
        .unwrap_or(128);

    let baud: u32 = setting("BERTQ_BAUD")
        .map(|s| s.parse().expect("BERTQ_BAUD must be a number"))
        .unwrap_or(115_200);
    assert!(
        (300..=4_000_000).contains(&baud),
        "BERTQ_BAUD {baud} is out of range"
    );

    let bytes = ModelBytes::read(&model_path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", model_path.display()));
    let model = Model::load(&bytes)
        .unwrap_or_else(|e| panic!("{} is not a valid model: {e}", model_path.display()));
    let max_seq = requested_seq.clamp(2, model.max_sequence_length());
    // One attention buffer per core.
    let sizes = MemorySizes::for_model_threads(&model, max_seq, MAX_CORES);
    let arena = sizes
        .bytes_in_block()
        .expect("arena size overflows")
        .next_multiple_of(4096);
    let reply = bertq_server::reply::reply_capacity(&model, max_seq, MAX_FRAME).max(16 * 1024);

    let mut config = String::new();
    writeln!(config, "pub const BOARD: &str = {board:?};").unwrap();
    writeln!(config, "pub const MAX_SEQ: usize = {max_seq};").unwrap();
    writeln!(config, "pub const MAX_FRAME: usize = {MAX_FRAME};").unwrap();
    writeln!(config, "pub const BAUD: u32 = {baud};").unwrap();
    writeln!(config, "pub const MAX_CORES: usize = {MAX_CORES};").unwrap();
    writeln!(
        config,
        "pub const SECONDARY_STACK_BYTES: usize = {SECONDARY_STACK_BYTES};"
    )
    .unwrap();
    writeln!(config, "pub const ARENA_BYTES: usize = {arena};").unwrap();
    writeln!(config, "pub const REPLY_BYTES: usize = {reply};").unwrap();
    writeln!(
        config,
        "pub static LINKED_MODEL: &crate::Aligned<[u8]> = \
         &crate::Aligned(*include_bytes!({:?}));",
        model_path.display().to_string()
    )
    .unwrap();
    std::fs::write(out.join("build_config.rs"), config).unwrap();

    // The memory layout: code, read-only data (with the linked model, 64-byte aligned by its
    // type) and data are loaded; .bss is zeroed by the boot code; the arena (placed before .bss
    // so that the boot code leaves it alone: it is zeroed once the caches are on) and the stack
    // are not part of the file.
    let secondary_stacks = SECONDARY_STACK_BYTES * (MAX_CORES as u64 - 1);
    let script = format!(
        "ENTRY(_start)
SECTIONS
{{
  . = {base:#x};
  __image_start = .;
  .text : {{ KEEP(*(.text.boot)) *(.text.vectors) *(.text .text.*) }}
  .rodata : ALIGN(64) {{ *(.rodata .rodata.*) }}
  .data : ALIGN(64) {{ *(.data .data.*) }}
  .arena (NOLOAD) : ALIGN(4096) {{ __arena_start = .; KEEP(*(.bss.bertq_arena)) __arena_end = .; }}
  .bss (NOLOAD) : ALIGN(16) {{ __bss_start = .; *(.bss .bss.*) *(COMMON) . = ALIGN(16); __bss_end = .; }}
  .stack (NOLOAD) : ALIGN(4096) {{
    __secondary_stacks_bottom = .; . += {secondary_stacks:#x}; __secondary_stacks_top = .;
    __stack_bottom = .; . += {STACK_BYTES:#x}; __stack_top = .;
  }}
  __image_end = .;
  /DISCARD/ : {{ *(.comment) *(.note .note.*) *(.eh_frame .eh_frame_hdr) }}
}}
"
    );
    std::fs::write(out.join("link.x"), script).unwrap();
    println!(
        "cargo:rustc-link-arg-bins=-T{}",
        out.join("link.x").display()
    );
    println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
    println!(
        "cargo:rustc-link-arg-bins=-Map={}",
        out.join("firmware.map").display()
    );
    println!("cargo:rustc-cfg=board=\"{board}\"");
    // A test image that faults on purpose right after the UART is up (scripts/test_firmware.sh
    // checks the exception report and the exit status with it).
    if setting("BERTQ_FAULT_TEST").is_some() {
        println!("cargo:rustc-cfg=fault_test");
    }
}
