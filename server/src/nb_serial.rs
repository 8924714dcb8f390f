//! A serial port driver behind the `embedded-hal-nb` traits (a bare-metal UART, a mock in
//! tests) as the `embedded-io` stream the server loop reads and writes.

use embedded_hal_nb::nb;
use embedded_io::ErrorKind;

/// An `embedded-hal-nb` serial port (e.g. a bare-metal UART driver) as `embedded-io`.
///
/// Reads block (spinning on `WouldBlock`) until a first byte arrives, or report `TimedOut` after
/// `idle_polls` empty polls so the server loop can check its deadlines; then they take what is
/// already there. Line errors (overrun, noise, parity, framing) drop the byte: the frame it
/// belonged to fails its CRC and is answered with an error, and framing recovers at the next
/// delimiter.
#[derive(Debug)]
pub struct NbSerial<S> {
    serial: S,
    idle_polls: u32,
    line_errors: u64,
}

impl<S> NbSerial<S> {
    pub fn new(serial: S, idle_polls: u32) -> Self {
        NbSerial {
            serial,
            idle_polls: idle_polls.max(1),
            line_errors: 0,
        }
    }
    /// Bytes dropped because of line errors.
    pub fn line_errors(&self) -> u64 {
        self.line_errors
    }
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.serial
    }
}

/// A serial port error as `embedded-io` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NbError {
    TimedOut,
    Port(embedded_hal_nb::serial::ErrorKind),
}

impl core::fmt::Display for NbError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl core::error::Error for NbError {}
impl embedded_io::Error for NbError {
    fn kind(&self) -> ErrorKind {
        match self {
            NbError::TimedOut => ErrorKind::TimedOut,
            NbError::Port(_) => ErrorKind::Other,
        }
    }
}

impl<S: embedded_hal_nb::serial::ErrorType> embedded_io::ErrorType for NbSerial<S> {
    type Error = NbError;
}

impl<S: embedded_hal_nb::serial::Read<u8>> embedded_io::Read for NbSerial<S> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, NbError> {
        use embedded_hal_nb::serial::Error as _;
        let mut n = 0;
        let mut idle = 0u32;
        while n < buf.len() {
            match self.serial.read() {
                Ok(b) => {
                    buf[n] = b;
                    n += 1;
                }
                Err(nb::Error::WouldBlock) => {
                    if n > 0 {
                        break;
                    }
                    idle += 1;
                    if idle >= self.idle_polls {
                        return Err(NbError::TimedOut);
                    }
                    core::hint::spin_loop();
                }
                Err(nb::Error::Other(e)) => {
                    use embedded_hal_nb::serial::ErrorKind as K;
                    match e.kind() {
                        K::Overrun | K::Noise | K::Parity | K::FrameFormat => self.line_errors += 1,
                        other => return Err(NbError::Port(other)),
                    }
                }
            }
        }
        Ok(n)
    }
}

impl<S: embedded_hal_nb::serial::Write<u8>> embedded_io::Write for NbSerial<S> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, NbError> {
        use embedded_hal_nb::serial::Error as _;
        for &b in buf {
            nb::block!(self.serial.write(b)).map_err(|e| NbError::Port(e.kind()))?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), NbError> {
        use embedded_hal_nb::serial::Error as _;
        nb::block!(self.serial.flush()).map_err(|e| NbError::Port(e.kind()))
    }
}
