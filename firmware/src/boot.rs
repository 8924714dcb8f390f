//! The first instructions: park every core but the first, drop to EL1 from EL3 or EL2, set the
//! stack, enable FP/SIMD (the compiler uses NEON registers everywhere), install the exception
//! vectors, zero `.bss`, and call [`crate::firmware_main`].
//!
//! QEMU `virt` enters at EL1 (EL2 with `virtualization=on`, EL3 with `secure=on`); a Raspberry
//! Pi's firmware enters `kernel8.img` at EL2 (QEMU `raspi3b` too), and at EL3 when QEMU is given
//! an ELF. The MMU is still off here: this code touches only aligned words.
//!
//! Secondary cores, once started by the boot core (`smp.rs`), enter at `_secondary_entry` and
//! take the same path to EL1, with a stack of their own, then `secondary_main`.

core::arch::global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    // Only core 0 boots the firmware (MPIDR affinity 0); the others wait until it starts them
    // at _secondary_entry (PSCI or the spin table) or for ever.
    mrs     x0, mpidr_el1
    and     x0, x0, #0xffffff
    cbnz    x0, park
    mov     x19, xzr                // x19 = 0: the boot core
    mrs     x0, CurrentEL
    lsr     x0, x0, #2
    ldr     x1, =boot_el            // which conduit PSCI calls take depends on it
    str     x0, [x1]
    b       0f

    .global _secondary_entry
_secondary_entry:
    mov     x19, #1

0:  mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #3
    b.ne    1f
    // EL3 -> EL2: lower levels non-secure and AArch64, HVC enabled, SMC disabled.
    mov     x0, #0x5b1
    msr     scr_el3, x0
    mov     x0, #0x3c9              // EL2h, interrupts masked
    msr     spsr_el3, x0
    adr     x0, 1f
    msr     elr_el3, x0
    eret

1:  mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #2
    b.ne    2f
    // EL2 -> EL1.
    mov     x0, #(1 << 31)          // HCR_EL2.RW: EL1 runs AArch64
    msr     hcr_el2, x0
    mov     x0, #3                  // EL1 may read the physical counter and timer
    msr     cnthctl_el2, x0
    msr     cntvoff_el2, xzr        // virtual counter = physical counter
    mov     x0, #0x33ff             // no FP/SIMD (or other) traps to EL2
    msr     cptr_el2, x0
    msr     hstr_el2, xzr
    ldr     x0, =0x30d00800         // SCTLR_EL1: MMU and caches off, RES1 bits set
    msr     sctlr_el1, x0
    mov     x0, #0x3c5              // EL1h, interrupts masked
    msr     spsr_el2, x0
    adr     x0, 2f
    msr     elr_el2, x0
    eret

2:  // EL1: a stack, FP/SIMD, the vectors.
    cbnz    x19, 3f
    ldr     x0, =__stack_top
    b       4f
3:  // Secondary core n (1 <= n < MAX_CORES, from affinity 0 or 1): the n-th secondary stack.
    mrs     x0, mpidr_el1
    and     x1, x0, #0xff
    ubfx    x2, x0, #8, #8
    add     x1, x1, x2
    cbz     x1, park
    cmp     x1, #{max_cores}
    b.hs    park
    sub     x1, x1, #1
    ldr     x0, =__secondary_stacks_top
    mov     x2, #{secondary_stack}
    msub    x0, x1, x2, x0
4:  mov     sp, x0
    mov     x0, #(3 << 20)          // CPACR_EL1.FPEN: no FP/SIMD traps
    msr     cpacr_el1, x0
    ldr     x0, =exception_vectors
    msr     vbar_el1, x0
    isb
    cbnz    x19, 6f
    ldr     x0, =__bss_start
    ldr     x1, =__bss_end
5:  cmp     x0, x1
    b.hs    7f
    str     xzr, [x0], #8
    b       5b
6:  bl      secondary_main
    b       park
7:  bl      firmware_main
    .global park
park:
    wfe
    b       park

    .section .data
    .balign 8
    .global boot_el
boot_el:
    .quad   0
"#,
    max_cores = const crate::config::MAX_CORES,
    secondary_stack = const crate::config::SECONDARY_STACK_BYTES,
);

extern "C" {
    /// The exception level the boot core entered at (1, 2 or 3), written before `.bss` exists.
    static boot_el: u64;
}

/// The exception level the firmware was entered at.
pub fn entry_level() -> u64 {
    // SAFETY: written once by the boot code before any Rust code ran, read-only since.
    unsafe { core::ptr::addr_of!(boot_el).read_volatile() }
}
