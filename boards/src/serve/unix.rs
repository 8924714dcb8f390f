//! Unix domain socket listener: created with a chosen mode (0660 by default), a stale socket
//! file left by a crashed server replaced, a live one refused, the file removed at shutdown.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Binds `path` with permissions `mode` (e.g. `0o660`), non-blocking.
pub fn bind(path: &Path, mode: u32) -> Result<UnixListener, String> {
    let show = path.display();
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!("{show} exists and is not a socket"));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(format!("{show}: another server is listening on it"));
        }
        // A socket nobody listens on: left by a server that did not shut down cleanly.
        std::fs::remove_file(path)
            .map_err(|e| format!("{show}: removing the stale socket: {e}"))?;
    }
    // The umask makes the socket's mode right from its creation (no window with wider access).
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(!mode & 0o777));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| format!("{show}: {e}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{show}: setting mode {mode:o}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{show}: {e}"))?;
    Ok(listener)
}

/// Removes the socket file (at shutdown).
pub fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
