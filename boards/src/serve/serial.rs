//! Serial lines on Linux: a tty opened in raw mode (8N1, no flow control, no echo, no line
//! discipline) at a chosen baud rate, non-blocking (read with `poll(2)` by [`super::io::FdIo`]).

use nix::sys::termios::{
    self, BaudRate, ControlFlags, FlushArg, InputFlags, SetArg, SpecialCharacterIndices,
};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The termios constant for a baud rate.
pub fn baud_rate(baud: u32) -> Option<BaudRate> {
    use BaudRate::*;
    Some(match baud {
        1200 => B1200,
        2400 => B2400,
        4800 => B4800,
        9600 => B9600,
        19200 => B19200,
        38400 => B38400,
        57600 => B57600,
        115200 => B115200,
        230400 => B230400,
        460800 => B460800,
        500000 => B500000,
        576000 => B576000,
        921600 => B921600,
        1000000 => B1000000,
        1152000 => B1152000,
        1500000 => B1500000,
        2000000 => B2000000,
        2500000 => B2500000,
        3000000 => B3000000,
        3500000 => B3500000,
        4000000 => B4000000,
        _ => return None,
    })
}

/// Puts an open tty into raw mode at `baud`.
pub fn make_raw(file: &File, baud: u32) -> Result<(), String> {
    let rate = baud_rate(baud).ok_or_else(|| format!("unsupported baud rate {baud}"))?;
    let mut t = termios::tcgetattr(file).map_err(|e| format!("not a tty? {e}"))?;
    termios::cfmakeraw(&mut t);
    // The speed goes into the CBAUD bits of c_cflag (what Linux's tcsetattr reads) rather than
    // through cfsetspeed: the libc crate binds that by glibc symbol version, which a static
    // glibc cannot resolve.
    t.control_flags.remove(ControlFlags::CBAUD);
    t.control_flags
        .insert(ControlFlags::from_bits_retain(rate as nix::libc::tcflag_t));
    t.control_flags |= ControlFlags::CLOCAL | ControlFlags::CREAD;
    t.control_flags &= !(ControlFlags::CRTSCTS | ControlFlags::CSTOPB | ControlFlags::PARENB);
    t.input_flags &= !(InputFlags::IXON | InputFlags::IXOFF | InputFlags::IXANY);
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    termios::tcsetattr(file, SetArg::TCSANOW, &t).map_err(|e| format!("tcsetattr: {e}"))?;
    termios::tcflush(file, FlushArg::TCIOFLUSH).map_err(|e| format!("tcflush: {e}"))?;
    Ok(())
}

/// Opens `path` (e.g. `/dev/ttyAMA0`) read-write, non-blocking, without becoming its
/// controlling terminal, in raw mode at `baud`.
pub fn open(path: &Path, baud: u32) -> Result<File, String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    make_raw(&file, baud).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(file)
}
