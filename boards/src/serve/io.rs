//! Linux byte streams as `embedded-io` `Read`/`Write`, so the shared server loop
//! ([`super::link`]) serves sockets and ttys (a bare-metal UART goes through
//! `bertq_server::nb_serial` instead):
//!
//! [`FdIo`]: a non-blocking file descriptor (Unix or TCP socket, tty) with `poll(2)`: reads
//!   wait at most one tick and then report `TimedOut` (the loop's chance to check deadlines and
//!   shutdown); writes give up after a timeout (a client that stops reading cannot hold a
//!   thread forever).

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
