//! Exception vectors: any exception is a fault (the firmware takes no interrupts). It is
//! reported over the UART (kind, `ESR_EL1`, `ELR_EL1`, `FAR_EL1`) and the image stops: under
//! QEMU it exits with status [`crate::semihosting::EXIT_FAULT`], on a board it halts.
//!
//! One exception is expected: the semihosting call itself on hardware without a debugger
//! (`hlt` is then an undefined instruction), which simply halts.

use crate::{semihosting, uart};
use core::fmt::Write;

core::arch::global_asm!(
    r#"
    .section .text.vectors, "ax"
    .balign 2048
    .global exception_vectors
exception_vectors:
    .set kind, 0
    .rept 16
    .balign 128
    mov     x0, #kind
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    b       exception_report
    .set kind, kind + 1
    .endr
"#
);

/// Entered from the vectors: `kind` is the vector's index (0..16: current EL with SP0, with
/// SPx, lower EL AArch64, AArch32; each sync / IRQ / FIQ / SError).
#[no_mangle]
extern "C" fn exception_report(kind: u64, esr: u64, elr: u64, far: u64) -> ! {
    if elr == semihosting::call_address() {
        // No debugger or emulator behind `hlt`: there is no one to exit to.
        semihosting::halt();
    }
    const KINDS: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];
    let mut w = uart::RawWriter;
    let _ = write!(
        w,
        "\r\nbertq firmware: fatal {} exception (vector {kind}): ESR_EL1={esr:#x} (class {:#x}) \
         ELR_EL1={elr:#x} FAR_EL1={far:#x}\r\n",
        KINDS[(kind % 4) as usize],
        esr >> 26
    );
    semihosting::exit(semihosting::EXIT_FAULT)
}
