//! Zero-copy, fully validated reading of a `.bertq` file from a `&[u8]`.
//!
//! File layout (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0  | 8 | magic `BERTQ\r\n\x1a` (the CR LF catches text-mode transfers, like PNG's) |
//! | 8  | 4 | format version |
//! | 12 | 4 | header length H (postcard [`Header`] + its tensor table) |
//! | 16 | 8 | total file length (catches truncation before anything else is read) |
//! | 24 | 4 | CRC-32 of bytes `32..file length` |
//! | 28 | 4 | reserved, zero |
//! | 32 | H | postcard `Header`, then `tensor_count` postcard `TensorEntry`s |
//! | .. |   | tensor data, every tensor at a 64-byte aligned offset |

use super::header::{DType, Header, TensorEntry};
use core::fmt;

pub const MAGIC: [u8; 8] = *b"BERTQ\r\n\x1a";
pub const FORMAT_VERSION: u32 = 1;
pub const PREAMBLE_LEN: usize = 32;
/// Alignment of every tensor's data, relative to the start of the file.
pub const TENSOR_ALIGN: usize = 64;

/// A tensor name as carried in errors (names are built at run time, e.g. per layer).
pub type TensorName = heapless::String<64>;

/// Every way a model file can be wrong. Loading never panics.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadError {
    /// Shorter than the fixed preamble.
    TooShort {
        len: usize,
    },
    BadMagic,
    UnsupportedVersion {
        found: u32,
        supported: u32,
    },
    /// The preamble announces `expected` bytes but the buffer has `actual`.
    Truncated {
        expected: u64,
        actual: usize,
    },
    ChecksumMismatch {
        stored: u32,
        computed: u32,
    },
    /// The header or tensor table does not decode.
    HeaderCorrupt,
    /// The buffer does not start at a 4-byte aligned address (f32 tensors are read in place).
    UnalignedBuffer,
    /// A tensor's data lies outside the file, overlaps the header, or is not 64-byte aligned.
    TensorOutOfBounds {
        name: TensorName,
    },
    /// A tensor's byte length disagrees with its dtype and shape.
    TensorSizeMismatch {
        name: TensorName,
    },
    DuplicateTensor {
        name: TensorName,
    },
    MissingTensor {
        name: TensorName,
    },
    /// A tensor has the wrong dtype or shape for its role in the model.
    WrongTensor {
        name: TensorName,
        expected: &'static str,
    },
    /// The model configuration is inconsistent (e.g. hidden size not divisible by heads).
    InvalidConfig(&'static str),
    TooManyLayers {
        layers: u32,
        max: usize,
    },
    /// Vocabulary or tokenizer settings are invalid.
    Tokenizer(&'static str),
    /// Label names are not valid (count or encoding).
    InvalidLabels,
    /// The buffer given to [`crate::Model::repacked`] is shorter than its plan.
    RepackBuffer {
        needed: usize,
        got: usize,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::TooShort { len } => write!(f, "not a bertq model: only {len} bytes"),
            LoadError::BadMagic => write!(f, "not a bertq model (bad magic bytes)"),
            LoadError::UnsupportedVersion { found, supported } => write!(
                f,
                "model format version {found} is not supported (this build reads version {supported}); re-run bertq-quantize"
            ),
            LoadError::Truncated { expected, actual } => write!(
                f,
                "model file is truncated: header says {expected} bytes, got {actual}"
            ),
            LoadError::ChecksumMismatch { stored, computed } => write!(
                f,
                "model file is corrupted: checksum {computed:08x} does not match stored {stored:08x}"
            ),
            LoadError::HeaderCorrupt => write!(f, "model header is corrupted"),
            LoadError::UnalignedBuffer => {
                write!(f, "model bytes must start at a 4-byte aligned address")
            }
            LoadError::TensorOutOfBounds { name } => {
                write!(f, "tensor {name} lies outside the file or is misaligned")
            }
            LoadError::TensorSizeMismatch { name } => {
                write!(f, "tensor {name}: byte length does not match dtype and shape")
            }
            LoadError::DuplicateTensor { name } => write!(f, "tensor {name} appears twice"),
            LoadError::MissingTensor { name } => write!(f, "tensor {name} is missing"),
            LoadError::WrongTensor { name, expected } => {
                write!(f, "tensor {name} has the wrong dtype or shape (expected {expected})")
            }
            LoadError::InvalidConfig(why) => write!(f, "invalid model configuration: {why}"),
            LoadError::TooManyLayers { layers, max } => {
                write!(f, "model has {layers} layers; this build supports at most {max}")
            }
            LoadError::Tokenizer(why) => write!(f, "invalid tokenizer data: {why}"),
            LoadError::InvalidLabels => write!(f, "invalid label table"),
            LoadError::RepackBuffer { needed, got } => write!(
                f,
                "repack buffer of {got} bytes is too small: the plan needs {needed}"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LoadError {}

pub(crate) fn tensor_name(s: &str) -> TensorName {
    let mut name = TensorName::new();
    for c in s.chars() {
        if name.push(c).is_err() {
            break;
        }
    }
    name
}

/// A validated model file borrowed from its bytes.
#[derive(Debug, Clone)]
pub struct ModelFile<'a> {
    bytes: &'a [u8],
    pub header: Header<'a>,
    /// The postcard-encoded tensor entries, already validated.
    table: &'a [u8],
}

/// One tensor: its table entry and its bytes.
#[derive(Debug, Clone)]
pub struct TensorView<'a> {
    pub entry: TensorEntry<'a>,
    pub data: &'a [u8],
}

impl<'a> TensorView<'a> {
    pub fn shape(&self) -> &[u32] {
        &self.entry.shape
    }

    fn cast<T: bytemuck::AnyBitPattern>(&self, dtype: DType) -> Result<&'a [T], LoadError> {
        if self.entry.dtype != dtype {
            return Err(LoadError::WrongTensor {
                name: tensor_name(self.entry.name),
                expected: dtype_name(dtype),
            });
        }
        // Alignment was checked at parse time (64-byte offsets in a 4-byte aligned buffer).
        bytemuck::try_cast_slice(self.data).map_err(|_| LoadError::TensorOutOfBounds {
            name: tensor_name(self.entry.name),
        })
    }
    pub fn f32s(&self) -> Result<&'a [f32], LoadError> {
        self.cast(DType::F32)
    }
    pub fn i8s(&self) -> Result<&'a [i8], LoadError> {
        self.cast(DType::I8)
    }
    pub fn u8s(&self) -> Result<&'a [u8], LoadError> {
        self.cast(DType::U8)
    }
    pub fn u32s(&self) -> Result<&'a [u32], LoadError> {
        self.cast(DType::U32)
    }
    pub fn f16_bits(&self) -> Result<&'a [u16], LoadError> {
        self.cast(DType::F16)
    }
    pub fn i32s(&self) -> Result<&'a [i32], LoadError> {
        self.cast(DType::I32)
    }
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::I8 => "i8",
        DType::U8 => "u8",
        DType::U32 => "u32",
        DType::F16 => "f16",
        DType::I32 => "i32",
    }
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

impl<'a> ModelFile<'a> {
    /// Validates the whole file (magic, version, length, checksum, header, every tensor's bounds,
    /// alignment, size and name uniqueness) and borrows it.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, LoadError> {
        if bytes.len() < PREAMBLE_LEN {
            return Err(LoadError::TooShort { len: bytes.len() });
        }
        if bytes[..8] != MAGIC {
            return Err(LoadError::BadMagic);
        }
        let version = read_u32(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(LoadError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let header_len = read_u32(bytes, 12) as usize;
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(&bytes[16..24]);
        let file_len = u64::from_le_bytes(len8);
        if file_len != bytes.len() as u64 {
            return Err(LoadError::Truncated {
                expected: file_len,
                actual: bytes.len(),
            });
        }
        let stored = read_u32(bytes, 24);
        let computed = crc32fast::hash(&bytes[PREAMBLE_LEN..]);
        if stored != computed {
            return Err(LoadError::ChecksumMismatch { stored, computed });
        }
        if !(bytes.as_ptr() as usize).is_multiple_of(4) {
            return Err(LoadError::UnalignedBuffer);
        }
        let header_end = PREAMBLE_LEN
            .checked_add(header_len)
            .filter(|&e| e <= bytes.len())
            .ok_or(LoadError::HeaderCorrupt)?;
        let header_bytes = &bytes[PREAMBLE_LEN..header_end];
        let (header, table): (Header<'a>, &'a [u8]) =
            postcard::take_from_bytes(header_bytes).map_err(|_| LoadError::HeaderCorrupt)?;

        let file = ModelFile {
            bytes,
            header,
            table,
        };
        // Validate every entry once so later lookups cannot fail on bounds.
        let mut count = 0u32;
        let mut rest = table;
        while count < file.header.tensor_count {
            let (entry, tail): (TensorEntry<'a>, &'a [u8]) =
                postcard::take_from_bytes(rest).map_err(|_| LoadError::HeaderCorrupt)?;
            rest = tail;
            count += 1;
            file.check_entry(&entry, header_end)?;
        }
        if !rest.is_empty() {
            return Err(LoadError::HeaderCorrupt);
        }
        // Names must be unique: a quadratic scan is fine for a few hundred tensors, at load only.
        for (i, a) in file.entries().enumerate() {
            if file.entries().skip(i + 1).any(|b| b.name == a.name) {
                return Err(LoadError::DuplicateTensor {
                    name: tensor_name(a.name),
                });
            }
        }
        Ok(file)
    }

    fn check_entry(&self, e: &TensorEntry<'a>, header_end: usize) -> Result<(), LoadError> {
        let oob = || LoadError::TensorOutOfBounds {
            name: tensor_name(e.name),
        };
        let start = usize::try_from(e.offset).map_err(|_| oob())?;
        let len = usize::try_from(e.len).map_err(|_| oob())?;
        let end = start.checked_add(len).ok_or_else(oob)?;
        if start < header_end || end > self.bytes.len() || start % TENSOR_ALIGN != 0 {
            return Err(oob());
        }
        let bytes = match (e.layout, e.shape.as_slice()) {
            (crate::format::Layout::RowMajor, shape) => shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
                .and_then(|n| n.checked_mul(e.dtype.size())),
            // Packed layouts are int8 matrices, padded to whole tiles.
            (layout, &[n, k]) if e.dtype == DType::I8 => layout.packed_len(n as usize, k as usize),
            _ => None,
        };
        if bytes != Some(len) {
            return Err(LoadError::TensorSizeMismatch {
                name: tensor_name(e.name),
            });
        }
        Ok(())
    }

    /// The whole file's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Iterates the (already validated) tensor table.
    pub fn entries(&self) -> impl Iterator<Item = TensorEntry<'a>> + 'a {
        let mut rest = self.table;
        let mut left = self.header.tensor_count;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let (entry, tail) = postcard::take_from_bytes::<TensorEntry<'a>>(rest).ok()?;
            rest = tail;
            Some(entry)
        })
    }

    /// Finds a tensor by name.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'a>, LoadError> {
        let entry =
            self.entries()
                .find(|e| e.name == name)
                .ok_or_else(|| LoadError::MissingTensor {
                    name: tensor_name(name),
                })?;
        // Bounds were validated in `parse`.
        let data = &self.bytes[entry.offset as usize..(entry.offset + entry.len) as usize];
        Ok(TensorView { entry, data })
    }

    /// Finds a tensor by name if present.
    pub fn find(&self, name: &str) -> Option<TensorView<'a>> {
        self.tensor(name).ok()
    }
}
