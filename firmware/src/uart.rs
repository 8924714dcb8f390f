//! A driver for the ARM PL011 UART (QEMU `virt`, Raspberry Pi UART0) behind the
//! `embedded-hal-nb` serial traits: 8 data bits, no parity, 1 stop bit, FIFOs on, polled.
//!
//! Receive errors (overrun, break, parity, framing) come back as `nb::Error::Other` and the
//! byte is dropped: the server loop counts them, the frame they hit fails its CRC and is
//! answered with an error, and framing recovers at the next delimiter.

use embedded_hal_nb::nb;
use embedded_hal_nb::serial::{self, ErrorKind};

/// Register offsets.
const DR: usize = 0x00;
const RSR_ECR: usize = 0x04;
const FR: usize = 0x18;
const IBRD: usize = 0x24;
const FBRD: usize = 0x28;
const LCR_H: usize = 0x2c;
const CR: usize = 0x30;
const IMSC: usize = 0x38;
const ICR: usize = 0x44;

/// Flag register bits.
const FR_BUSY: u32 = 1 << 3;
const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
/// Error bits of a received data word.
const DR_FE: u32 = 1 << 8;
const DR_PE: u32 = 1 << 9;
const DR_BE: u32 = 1 << 10;
const DR_OE: u32 = 1 << 11;

#[derive(Debug)]
pub struct Pl011 {
    base: usize,
    /// Bytes that were already in the receive FIFO when the driver took over: reprogramming the
    /// line control register empties the FIFO, and a host that starts talking as the board
    /// boots (QEMU starts the guest when the client connects) must not lose its first bytes.
    early: heapless::Deque<u8, 32>,
}

fn read(base: usize, reg: usize) -> u32 {
    // SAFETY: `base` is the board's PL011 (see `board.rs`), mapped as device memory; its
    // registers are 32-bit and reading them has no effect beyond the UART.
    unsafe { ((base + reg) as *const u32).read_volatile() }
}

fn write(base: usize, reg: usize, value: u32) {
    // SAFETY: as in `read`.
    unsafe { ((base + reg) as *mut u32).write_volatile(value) }
}

/// `(IBRD, FBRD)` for `baud` from a `clock_hz` reference: the divisor `clock / (16 * baud)` in
/// 1/64ths, rounded to nearest.
pub fn divisors(clock_hz: u32, baud: u32) -> (u32, u32) {
    let sixty_fourths = (u64::from(clock_hz) * 4 + u64::from(baud) / 2) / u64::from(baud.max(1));
    let ibrd = (sixty_fourths >> 6).clamp(1, 0xffff) as u32;
    (ibrd, (sixty_fourths & 63) as u32)
}

impl Pl011 {
    /// Takes over the UART at `base` and programs it for `baud` (8N1, FIFOs, no interrupts).
    pub fn new(base: usize, clock_hz: u32, baud: u32) -> Self {
        // Disable, wait for the last character to leave.
        write(base, CR, 0);
        while read(base, FR) & FR_BUSY != 0 {}
        write(base, ICR, 0x7ff);
        write(base, IMSC, 0);
        let (ibrd, fbrd) = divisors(clock_hz, baud);
        write(base, IBRD, ibrd);
        write(base, FBRD, fbrd);
        // What already arrived, kept: switching the FIFO on (the LCR_H write below, which also
        // latches the divisors) empties it. Read last, right before that write, so that the
        // window in which a byte could still arrive and be lost is one register access wide.
        let mut early = heapless::Deque::new();
        while read(base, FR) & FR_RXFE == 0 && !early.is_full() {
            let word = read(base, DR);
            if word & (DR_OE | DR_BE | DR_PE | DR_FE) == 0 {
                let _ = early.push_back(word as u8);
            }
        }
        // 8 bits, FIFOs enabled.
        write(base, LCR_H, (0b11 << 5) | (1 << 4));
        // UART, transmitter and receiver on.
        write(base, CR, (1 << 0) | (1 << 8) | (1 << 9));
        Pl011 { base, early }
    }
}

/// A receive error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineError(ErrorKind);

impl serial::Error for LineError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

impl serial::ErrorType for Pl011 {
    type Error = LineError;
}

impl serial::Read<u8> for Pl011 {
    fn read(&mut self) -> nb::Result<u8, LineError> {
        if let Some(b) = self.early.pop_front() {
            return Ok(b);
        }
        if read(self.base, FR) & FR_RXFE != 0 {
            return Err(nb::Error::WouldBlock);
        }
        let word = read(self.base, DR);
        let kind = if word & DR_OE != 0 {
            Some(ErrorKind::Overrun)
        } else if word & DR_FE != 0 || word & DR_BE != 0 {
            Some(ErrorKind::FrameFormat)
        } else if word & DR_PE != 0 {
            Some(ErrorKind::Parity)
        } else {
            None
        };
        match kind {
            Some(k) => {
                write(self.base, RSR_ECR, 0);
                Err(nb::Error::Other(LineError(k)))
            }
            None => Ok(word as u8),
        }
    }
}

impl serial::Write<u8> for Pl011 {
    fn write(&mut self, byte: u8) -> nb::Result<(), LineError> {
        if read(self.base, FR) & FR_TXFF != 0 {
            return Err(nb::Error::WouldBlock);
        }
        write(self.base, DR, u32::from(byte));
        Ok(())
    }

    fn flush(&mut self) -> nb::Result<(), LineError> {
        if read(self.base, FR) & FR_BUSY != 0 {
            return Err(nb::Error::WouldBlock);
        }
        Ok(())
    }
}

/// Writes straight to the board's UART, for fault reports (the driver may be borrowed by the
/// server loop when a fault happens).
#[derive(Debug)]
pub struct RawWriter;

impl core::fmt::Write for RawWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let base = crate::board::UART_BASE;
        for b in s.bytes() {
            while read(base, FR) & FR_TXFF != 0 {}
            write(base, DR, u32::from(b));
        }
        Ok(())
    }
}
