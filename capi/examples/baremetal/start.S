/* Minimal AArch64 boot for QEMU `virt` (see ../shared/docs/firmware.md): core 0 only, drop from
 * EL2 to EL1 if needed, stack, .bss, FP/SIMD on, exception vectors, identity-mapped MMU with
 * caches (device memory below 1 GiB, normal write-back RAM above), then main(). */
    .section .text.boot, "ax"
    .global _start
_start:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xffffff
    cbnz    x0, park
    mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #2
    b.ne    el1
    mov     x0, #(1 << 31)              /* HCR_EL2.RW: EL1 is AArch64 */
    msr     hcr_el2, x0
    mov     x0, #3
    msr     cnthctl_el2, x0
    msr     cntvoff_el2, xzr
    mov     x0, #0x33ff
    msr     cptr_el2, x0
    mov     x0, #0x3c5                  /* EL1h, interrupts masked */
    msr     spsr_el2, x0
    adr     x0, el1
    msr     elr_el2, x0
    eret
el1:
    ldr     x0, =__stack_top
    mov     sp, x0
    ldr     x0, =vectors
    msr     vbar_el1, x0
    mov     x0, #(3 << 20)              /* CPACR_EL1.FPEN: FP/SIMD at EL1 */
    msr     cpacr_el1, x0
    isb
    /* Page table: four 1 GiB blocks; [0] device (UART at 0x0900_0000), [1..3] normal RAM. */
    ldr     x1, =l1_table
    ldr     x0, =((1 << 10) | 1)                        /* AF, block, AttrIndx 0 */
    str     x0, [x1]
    ldr     x2, =((1 << 10) | (3 << 8) | (1 << 2) | 1)  /* AF, inner shareable, AttrIndx 1 */
    mov     x3, #1
1:  lsl     x4, x3, #30
    orr     x4, x4, x2
    str     x4, [x1, x3, lsl #3]
    add     x3, x3, #1
    cmp     x3, #4
    b.ne    1b
    ldr     x0, =0xff00                 /* MAIR: Attr0 device nGnRnE, Attr1 normal WB */
    msr     mair_el1, x0
    mrs     x0, id_aa64mmfr0_el1
    and     x0, x0, #7                  /* PARange -> TCR.IPS */
    lsl     x0, x0, #32
    ldr     x2, =((1 << 23) | (3 << 12) | (1 << 10) | (1 << 8) | 32)  /* EPD1 SH0 ORGN0 IRGN0 T0SZ */
    orr     x0, x0, x2
    msr     tcr_el1, x0
    msr     ttbr0_el1, x1
    isb
    tlbi    vmalle1
    dsb     ish
    isb
    mrs     x0, sctlr_el1
    orr     x0, x0, #1                  /* M */
    orr     x0, x0, #(1 << 2)           /* C */
    orr     x0, x0, #(1 << 12)          /* I */
    bic     x0, x0, #2                  /* A: no alignment checks */
    msr     sctlr_el1, x0
    isb
    ldr     x0, =__bss_start
    ldr     x1, =__bss_end
2:  cmp     x0, x1
    b.hs    3f
    str     xzr, [x0], #8
    b       2b
3:  bl      main
    bl      semihosting_exit
park:
    wfe
    b       park

/* Every exception: report and exit with status 3. */
    .balign 2048
vectors:
    .rept   16
    .balign 128
    b       exception
    .endr
exception:
    mrs     x0, esr_el1
    mrs     x1, elr_el1
    mrs     x2, far_el1
    bl      on_exception
    mov     x0, #3
    bl      semihosting_exit

    .global semihosting_exit
semihosting_exit:                       /* x0: exit status (SYS_EXIT with ADP_Stopped_ApplicationExit) */
    ldr     x1, =exit_block
    str     x0, [x1, #8]
    mov     x0, #0x18
    hlt     #0xf000
    b       park

    .section .noinit.tables, "aw", %nobits
    .balign 4096
l1_table:
    .space  4096

    .data
    .balign 8
exit_block:
    .quad   0x20026
    .quad   0
