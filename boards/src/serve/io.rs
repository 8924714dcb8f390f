//! Byte streams as `embedded-io` `Read`/`Write`, so one server loop ([`super::link`]) serves
//! sockets and ttys on Linux and a UART driver on bare metal:
//!
//! - [`FdIo`]: a non-blocking file descriptor (Unix or TCP socket, tty) with `poll(2)`: reads
//!   wait at most one tick and then report `TimedOut` (the loop's chance to check deadlines and
//!   shutdown); writes give up after a timeout (a client that stops reading cannot hold a
//!   thread forever).
//! - [`NbSerial`]: any `embedded-hal-nb` serial port (a bare-metal UART driver).

use embedded_hal_nb::nb;
use embedded_io::ErrorKind;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// An I/O error as the server loop sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoError(pub ErrorKind);

impl core::fmt::Display for IoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
impl core::error::Error for IoError {}
impl embedded_io::Error for IoError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

fn kind_of_io(e: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::WouldBlock | K::TimedOut => ErrorKind::TimedOut,
        K::Interrupted => ErrorKind::Interrupted,
        K::BrokenPipe => ErrorKind::BrokenPipe,
        K::ConnectionReset => ErrorKind::ConnectionReset,
        K::ConnectionAborted => ErrorKind::ConnectionAborted,
        K::NotConnected => ErrorKind::NotConnected,
        K::InvalidInput => ErrorKind::InvalidInput,
        K::InvalidData => ErrorKind::InvalidData,
        K::PermissionDenied => ErrorKind::PermissionDenied,
        K::NotFound => ErrorKind::NotFound,
        _ => ErrorKind::Other,
    }
}

fn kind_of_errno(e: Errno) -> ErrorKind {
    kind_of_io(&std::io::Error::from(e))
}

/// A non-blocking descriptor read and written with `poll(2)` (set it non-blocking first).
#[derive(Debug)]
pub struct FdIo<T> {
    inner: T,
    tick: PollTimeout,
    write_timeout: Duration,
}

impl<T> FdIo<T> {
    /// `tick`: the longest a read waits before reporting `TimedOut`.
    pub fn new(inner: T, tick: Duration, write_timeout: Duration) -> Self {
        let ms = tick.as_millis().clamp(1, u16::MAX as u128) as u16;
        FdIo {
            inner,
            tick: PollTimeout::from(ms),
            write_timeout,
        }
    }
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T> embedded_io::ErrorType for FdIo<T> {
    type Error = IoError;
}

/// Waits until `fd` is ready for `flags` or `timeout` passes; `Ok(false)` on timeout.
fn wait<F: AsFd>(fd: &F, flags: PollFlags, timeout: PollTimeout) -> Result<bool, IoError> {
    let mut fds = [PollFd::new(fd.as_fd(), flags)];
    match poll(&mut fds, timeout) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(Errno::EINTR) => Ok(false),
        Err(e) => Err(IoError(kind_of_errno(e))),
    }
}

impl<T: AsFd + std::io::Read> embedded_io::Read for FdIo<T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !wait(&self.inner, PollFlags::POLLIN, self.tick)? {
            return Err(IoError(ErrorKind::TimedOut));
        }
        self.inner.read(buf).map_err(|e| IoError(kind_of_io(&e)))
    }
}

impl<T: AsFd + std::io::Write> embedded_io::Write for FdIo<T> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = Instant::now() + self.write_timeout;
        loop {
            match self.inner.write(buf) {
                Ok(0) => return Err(IoError(ErrorKind::WriteZero)),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(IoError(ErrorKind::TimedOut));
                    }
                    let ms = left.as_millis().clamp(1, 1000) as u16;
                    wait(&self.inner, PollFlags::POLLOUT, PollTimeout::from(ms))?;
                }
                Err(e) => return Err(IoError(kind_of_io(&e))),
            }
        }
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

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
