//! The MMU: an identity map with caches on. Without it every access is to Device memory:
//! unaligned or vector accesses fault and nothing is cached (see docs/firmware.md).
//!
//! 4 KiB granule, 39-bit addresses (`T0SZ = 25`), so translation starts at level 1: each of the
//! 512 level-1 entries covers 1 GiB. A gibibyte that the board's [`Region`]s cover uniformly is
//! one 1 GiB block; one that mixes kinds (RAM and peripherals, flash and the UART) gets a
//! level-2 table of 2 MiB blocks. Memory attributes (`MAIR_EL1`): index 0 Device-nGnRnE,
//! index 1 Normal write-back read/write-allocate.

use crate::board::{Memory, Region};

const ENTRIES: usize = 512;
const GIB: u64 = 1 << 30;
const MIB2: u64 = 2 << 20;
/// Level-2 tables available for mixed gibibytes.
const L2_TABLES: usize = 4;

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

static mut L1: Table = Table([0; ENTRIES]);
static mut L2: [Table; L2_TABLES] = [const { Table([0; ENTRIES]) }; L2_TABLES];

/// Descriptor bits.
const VALID_BLOCK: u64 = 0b01;
const TABLE: u64 = 0b11;
const ACCESS_FLAG: u64 = 1 << 10;
const INNER_SHAREABLE: u64 = 0b11 << 8;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;

fn block(address: u64, memory: Memory) -> u64 {
    let attributes = match memory {
        Memory::Normal => ATTR_NORMAL | INNER_SHAREABLE | UXN,
        // Never executed, not even speculatively.
        Memory::Device => ATTR_DEVICE | PXN | UXN,
    };
    address | attributes | ACCESS_FLAG | VALID_BLOCK
}

/// What covers `[start, start + len)`: one kind throughout, or `None` when it is mixed or
/// partly unmapped (`Some(None)`: nothing at all).
fn kind_of(regions: &[Region], start: u64, len: u64) -> Option<Option<Memory>> {
    let end = start + len;
    let mut kind = None;
    let mut covered = 0;
    for r in regions {
        let (s, e) = (r.start.max(start), r.end.min(end));
        if s >= e {
            continue;
        }
        if kind.is_some_and(|k| k != r.memory) {
            return None;
        }
        kind = Some(r.memory);
        covered += e - s;
    }
    match covered {
        0 => Some(None),
        c if c == len => Some(kind),
        _ => None,
    }
}

/// Builds the tables for `regions` and turns the MMU and caches on (the boot core).
///
/// # Safety
/// Called once, on the boot core, before anything else uses the tables; `regions` must map the
/// image, its stacks and every device the firmware touches.
pub unsafe fn enable(regions: &[Region]) {
    // SAFETY: forwarded from the caller.
    unsafe {
        build(regions);
        turn_on();
    }
}

/// Writes the tables (with the caches off: straight to memory, where the secondary cores'
/// walkers also find them).
///
/// # Safety
/// As [`enable`].
unsafe fn build(regions: &[Region]) {
    // SAFETY: the caller guarantees exclusive access to the tables (single core, once).
    let (l1, l2) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(L1),
            &mut *core::ptr::addr_of_mut!(L2),
        )
    };
    let mut next_l2 = 0;
    for (i, entry) in l1.0.iter_mut().enumerate() {
        let base = i as u64 * GIB;
        *entry = match kind_of(regions, base, GIB) {
            Some(None) => 0,
            Some(Some(memory)) => block(base, memory),
            None => {
                // Mixed: 2 MiB blocks (a board with more mixed gibibytes than tables is a
                // build-time mistake in board.rs; the extra ones stay unmapped).
                let Some(table) = l2.get_mut(next_l2) else {
                    continue;
                };
                next_l2 += 1;
                for (j, e) in table.0.iter_mut().enumerate() {
                    let b = base + j as u64 * MIB2;
                    // Regions are 2 MiB aligned, so a 2 MiB block is never mixed.
                    *e = match kind_of(regions, b, MIB2).flatten() {
                        Some(memory) => block(b, memory),
                        None => 0,
                    };
                }
                table.0.as_ptr() as u64 | TABLE
            }
        };
    }

    // The tables were written with the caches off: make sure no stale line for them survives in
    // a cache that the table walker (which reads through the caches once they are on) could hit.
    for table in core::iter::once(&*l1).chain(l2.iter()) {
        for line in table.0.chunks(8) {
            // SAFETY: invalidates (cleaning first) one cache line of our own table.
            unsafe {
                core::arch::asm!("dc civac, {}", in(reg) line.as_ptr(), options(nostack, preserves_flags))
            };
        }
    }
}

/// Turns the MMU and caches on with the tables [`build`] wrote: the boot core, then each
/// secondary core as it starts.
///
/// # Safety
/// The tables must have been built; called with the MMU off.
pub unsafe fn turn_on() {
    let mmfr0: u64;
    // SAFETY: reads an ID register.
    unsafe {
        core::arch::asm!("mrs {}, id_aa64mmfr0_el1", out(reg) mmfr0, options(nomem, nostack))
    };
    let ips = (mmfr0 & 0xf).min(5);
    // Every field written out, the zero ones too, as the architecture manual lists them.
    #[allow(clippy::identity_op)]
    // MAIR attribute 0: Device-nGnRnE; attribute 1: Normal, write-back.
    let mair: u64 = 0x00 | (0xff << 8);
    #[allow(clippy::identity_op)]
    let tcr: u64 = 25 // T0SZ: 39-bit addresses
        | (0b01 << 8) // IRGN0: write-back, write-allocate
        | (0b01 << 10) // ORGN0
        | (0b11 << 12) // SH0: inner shareable
        | (0b00 << 14) // TG0: 4 KiB
        | (1 << 23) // EPD1: no TTBR1 walks
        | (ips << 32);
    let ttbr0 = core::ptr::addr_of!(L1) as u64;
    // SAFETY: the tables identity-map the code that runs across the switch (the caller's
    // contract), so execution continues at the same addresses with the MMU on.
    unsafe {
        core::arch::asm!(
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {ttbr0}",
            "dsb ish",
            "isb",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            "mrs {tmp}, sctlr_el1",
            "orr {tmp}, {tmp}, #(1 << 0)",  // M: MMU on
            "orr {tmp}, {tmp}, #(1 << 2)",  // C: data cache
            "orr {tmp}, {tmp}, #(1 << 12)", // I: instruction cache
            "bic {tmp}, {tmp}, #(1 << 1)",  // A: no alignment checks on normal memory
            "msr sctlr_el1, {tmp}",
            "isb",
            mair = in(reg) mair,
            tcr = in(reg) tcr,
            ttbr0 = in(reg) ttbr0,
            tmp = out(reg) _,
            options(nostack)
        );
    }
}
