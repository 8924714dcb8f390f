//! Leaving QEMU with a status: semihosting `SYS_EXIT` (QEMU runs with `-semihosting`). On a
//! board the `hlt` traps as an undefined instruction and the exception handler halts instead.

/// The image answered a `shutdown` request.
pub const EXIT_OK: u32 = 0;
/// A CPU exception (see `exceptions.rs`).
pub const EXIT_FAULT: u32 = 3;
/// A Rust panic (a bug: nothing reachable from input panics).
pub const EXIT_PANIC: u32 = 4;

core::arch::global_asm!(
    r#"
    .section .text, "ax"
    .global semihosting_call
    .balign 4
semihosting_call:
    hlt     #0xf000
    ret
"#
);

extern "C" {
    /// `x0` = operation, `x1` = parameter block; returns `x0`.
    fn semihosting_call(op: u64, param: *const u64) -> u64;
}

/// The address of the `hlt` instruction (the exception handler recognises it).
pub fn call_address() -> u64 {
    semihosting_call as *const () as usize as u64
}

/// Exits QEMU with `code`; halts on hardware.
pub fn exit(code: u32) -> ! {
    const SYS_EXIT: u64 = 0x18;
    const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;
    let block = [ADP_STOPPED_APPLICATION_EXIT, u64::from(code)];
    // SAFETY: SYS_EXIT reads the two-word block, which lives until the call (it does not
    // return under QEMU; on hardware the trap is handled by halting).
    unsafe {
        semihosting_call(SYS_EXIT, block.as_ptr());
    }
    halt()
}

/// Stops this core for good.
pub fn halt() -> ! {
    loop {
        // SAFETY: waits for an event; no memory or register effects.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
    }
}
