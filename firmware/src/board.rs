//! What differs between boards: the UART, its clock, the memory map and where a replaceable
//! model is looked for. One image per board (`cfg(board = ...)`, set by `build.rs`).
//!
//! QEMU `virt` and `raspi3b` are run in CI; the Raspberry Pi 4 and 5 values come from the
//! BCM2711 / BCM2712 documentation and device trees and have not been run on hardware yet.

/// What a range of physical addresses holds, for the MMU's identity map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// RAM or flash: cached, normal memory (unaligned and vector accesses allowed).
    Normal,
    /// Peripherals: device memory (no caching, no reordering, never executed).
    Device,
}

/// `[start, end)` of physical memory and what it holds; everything else is unmapped.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub memory: Memory,
}

const fn region(start: u64, end: u64, memory: Memory) -> Region {
    Region { start, end, memory }
}

#[cfg(board = "virt")]
mod this {
    use super::{region, Memory::*, Region};
    pub const UART_BASE: usize = 0x0900_0000;
    /// QEMU's PL011 ignores the divisor; 24 MHz is the `apb-pclk` of its device tree.
    pub const UART_CLOCK_HZ: u32 = 24_000_000;
    /// Flash bank 1 (`-drive if=pflash,unit=1`): 64 MiB.
    pub const MODEL_REGION: (usize, usize) = (0x0400_0000, 64 << 20);
    pub const REGIONS: &[Region] = &[
        region(0x0000_0000, 0x0800_0000, Normal), // flash banks 0 and 1
        region(0x0800_0000, 0x4000_0000, Device), // GIC, UART, RTC, virtio, ...
        region(0x4000_0000, 0x1_4000_0000, Normal), // RAM (up to 4 GiB)
    ];
    pub const GPIO_BASE: Option<usize> = None;
}

#[cfg(board = "raspi3b")]
mod this {
    use super::{region, Memory::*, Region};
    /// UART0, the PL011 (on GPIO 14/15 with `dtoverlay=disable-bt`).
    pub const UART_BASE: usize = 0x3F20_1000;
    /// The firmware's default `init_uart_clock`.
    pub const UART_CLOCK_HZ: u32 = 48_000_000;
    /// Where `config.txt`'s `initramfs model.bertq 0x10000000` puts a model (256 MiB at most).
    pub const MODEL_REGION: (usize, usize) = (0x1000_0000, 256 << 20);
    pub const REGIONS: &[Region] = &[
        region(0x0000_0000, 0x3F00_0000, Normal), // RAM below the peripherals
        region(0x3F00_0000, 0x4020_0000, Device), // peripherals + local interrupt controller
    ];
    pub const GPIO_BASE: Option<usize> = Some(0x3F20_0000);
}

#[cfg(board = "rpi4")]
mod this {
    use super::{region, Memory::*, Region};
    /// UART0 (PL011) in the low-peripheral map (`arm_peri_high=0`, the default).
    pub const UART_BASE: usize = 0xFE20_1000;
    pub const UART_CLOCK_HZ: u32 = 48_000_000;
    pub const MODEL_REGION: (usize, usize) = (0x1000_0000, 256 << 20);
    pub const REGIONS: &[Region] = &[
        region(0x0000_0000, 0xFC00_0000, Normal), // RAM below the peripherals
        region(0xFC00_0000, 0x1_0000_0000, Device), // peripherals (low map)
        region(0x1_0000_0000, 0x2_0000_0000, Normal), // RAM above 4 GiB (4 and 8 GB boards)
    ];
    pub const GPIO_BASE: Option<usize> = Some(0xFE20_0000);
}

#[cfg(board = "rpi5")]
mod this {
    use super::{region, Memory::*, Region};
    /// The BCM2712's own PL011 debug UART (the 3-pin "UART" connector between the HDMI ports);
    /// GPIO 14/15 belong to the RP1 south bridge behind PCIe, which this firmware does not drive.
    pub const UART_BASE: usize = 0x10_7D00_1000;
    /// 44.2368 MHz, the `uart` clock of the BCM2712 device tree.
    pub const UART_CLOCK_HZ: u32 = 44_236_800;
    pub const MODEL_REGION: (usize, usize) = (0x1000_0000, 256 << 20);
    pub const REGIONS: &[Region] = &[
        region(0x0000_0000, 0x2_0000_0000, Normal), // RAM (up to 8 GiB)
        region(0x10_0000_0000, 0x10_8000_0000, Device), // BCM2712 peripherals
    ];
    pub const GPIO_BASE: Option<usize> = None;
}

pub use this::*;

/// The board id of `scripts/firmware.sh build --board` (as reported by `info`).
pub const ID: &str = crate::config::BOARD;

/// Routes UART0 to GPIO 14 (TXD) and 15 (RXD) on the boards whose firmware may leave them to
/// the Bluetooth UART: function ALT0 in `GPFSEL1` (3 bits per pin from bit 12).
pub fn route_uart_pins() {
    if let Some(gpio) = GPIO_BASE {
        let gpfsel1 = (gpio + 0x04) as *mut u32;
        // SAFETY: GPFSEL1 of this board's GPIO block, mapped as device memory; a read-modify-
        // write of the two pins' function bits only.
        unsafe {
            let v = gpfsel1.read_volatile();
            let v = (v & !(0o77 << 12)) | (0o44 << 12);
            gpfsel1.write_volatile(v);
        }
    }
}
