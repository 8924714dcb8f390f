//! Model bytes from a path (std): memory-mapped, or read into an aligned buffer.

use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::path::Path;

/// Owned or mapped model bytes, aligned for zero-copy loading.
#[derive(Debug)]
pub enum ModelBytes {
    Mapped(memmap2::Mmap),
    /// Read into `u64`s so the bytes are 8-byte aligned.
    Owned {
        words: Vec<u64>,
        len: usize,
    },
}

impl ModelBytes {
    /// Memory-maps the file: pages load on demand and are shared between processes.
    pub fn map(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        // SAFETY: the map is read-only. As with any file map, the file must not be truncated or
        // rewritten while mapped; the loader validates the bytes (checksum) once, at load.
        let map = unsafe { memmap2::Mmap::map(&file) }?;
        Ok(ModelBytes::Mapped(map))
    }

    /// Copies bytes into aligned owned storage.
    pub fn copy_from(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        buf[..bytes.len()].copy_from_slice(bytes);
        ModelBytes::Owned {
            words,
            len: bytes.len(),
        }
    }

    /// Reads the whole file into memory.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len() as usize;
        let mut words = vec![0u64; len.div_ceil(8)];
        let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        file.read_exact(&mut buf[..len])?;
        Ok(ModelBytes::Owned { words, len })
    }
}

impl Deref for ModelBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ModelBytes::Mapped(m) => m,
            ModelBytes::Owned { words, len } => &bytemuck::cast_slice(words)[..*len],
        }
    }
}
