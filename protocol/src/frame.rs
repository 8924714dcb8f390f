//! Encoding and decoding frames: `0x00 | COBS(0x00 | VERSION | postcard | CRC-32 LE) | 0x00`.

use crate::{ErrorCode, Request, RequestBody, PAYLOAD_OVERHEAD, VERSION};
use core::fmt;
use postcard::ser_flavors::{Cobs, Flavor, Slice};
use serde::Serialize;

/// A postcard flavor that appends the CRC-32 of everything pushed through it.
struct Crc<B> {
    inner: B,
    hasher: crc32fast::Hasher,
}

impl<B: Flavor> Flavor for Crc<B> {
    type Output = B::Output;

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.hasher.update(&[data]);
        self.inner.try_push(data)
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.hasher.update(data);
        self.inner.try_extend(data)
    }

    fn finalize(self) -> postcard::Result<Self::Output> {
        let Crc { mut inner, hasher } = self;
        inner.try_extend(&hasher.finalize().to_le_bytes())?;
        inner.finalize()
    }
}

/// Encodes `msg` as one frame into `out`, leading and trailing delimiters included; returns the
/// number of bytes written. Fails (with `SerializeBufferFull`) when `out` is too small: size it
/// with [`max_encoded_len`]. Allocates nothing.
pub fn encode_frame<T: Serialize + ?Sized>(msg: &T, out: &mut [u8]) -> postcard::Result<usize> {
    let (first, rest) = out
        .split_first_mut()
        .ok_or(postcard::Error::SerializeBufferFull)?;
    *first = crate::DELIMITER;
    let mut flavor = Crc {
        inner: Cobs::try_new(Slice::new(rest))?,
        hasher: crc32fast::Hasher::new(),
    };
    flavor.try_push(0)?; // the marker: makes the first encoded byte FRAME_START
    flavor.try_push(VERSION)?;
    let written = postcard::serialize_with_flavor(msg, flavor)?;
    Ok(1 + written.len())
}

/// The largest encoded frame (delimiters included) for a postcard message of `message_len`
/// bytes.
pub const fn max_encoded_len(message_len: usize) -> usize {
    let payload = message_len + PAYLOAD_OVERHEAD;
    // COBS adds one byte per started run of 254 bytes, plus the final code byte.
    1 + payload + payload / 254 + 1 + 1
}

/// Why a frame could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Not valid COBS.
    Cobs,
    /// Shorter than marker + version + CRC.
    TooShort,
    /// The marker byte is not 0 (not a bertq frame).
    Marker,
    /// The CRC-32 does not match.
    Crc,
    /// Another protocol version.
    Version(u8),
}

impl FrameError {
    pub fn code(self) -> ErrorCode {
        match self {
            FrameError::Cobs | FrameError::TooShort | FrameError::Marker => ErrorCode::BadFrame,
            FrameError::Crc => ErrorCode::CrcMismatch,
            FrameError::Version(_) => ErrorCode::UnsupportedVersion,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Cobs => f.write_str("the frame is not valid COBS"),
            FrameError::TooShort => f.write_str("the frame is too short"),
            FrameError::Marker => f.write_str("the frame does not start with the bertq marker"),
            FrameError::Crc => f.write_str("the frame's CRC-32 does not match its contents"),
            FrameError::Version(v) => write!(
                f,
                "protocol version {v} is not supported (this side speaks version {VERSION})"
            ),
        }
    }
}

/// Decodes a frame in place (`frame` is the encoded bytes between two delimiters), checks its
/// marker, CRC and version, and returns the postcard message bytes.
pub fn decode_frame(frame: &mut [u8]) -> Result<&[u8], FrameError> {
    let n = cobs::decode_in_place(frame).map_err(|_| FrameError::Cobs)?;
    let payload = frame.get(..n).ok_or(FrameError::Cobs)?;
    if n < PAYLOAD_OVERHEAD {
        return Err(FrameError::TooShort);
    }
    let (body, crc) = payload.split_at(n - 4);
    let expected = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != expected {
        return Err(FrameError::Crc);
    }
    if body[0] != 0 {
        return Err(FrameError::Marker);
    }
    if body[1] != VERSION {
        return Err(FrameError::Version(body[1]));
    }
    Ok(&body[2..])
}

/// Why a (correctly framed) request could not be decoded, with the request id when it could be
/// read (0 otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeFailure {
    pub code: ErrorCode,
    pub id: u32,
    pub detail: &'static str,
}

/// Decodes a request from a frame's message bytes (from [`decode_frame`]), borrowing its text.
pub fn decode_request(message: &[u8]) -> Result<Request<'_>, DecodeFailure> {
    let err = postcard::take_from_bytes::<Request<'_>>(message);
    let e = match err {
        Ok((req, [])) => return Ok(req),
        Ok((req, _)) => {
            return Err(DecodeFailure {
                code: ErrorCode::BadRequest,
                id: req.id,
                detail: "unexpected bytes after the message",
            })
        }
        Err(e) => e,
    };
    let id = postcard::take_from_bytes::<u32>(message).map_or(0, |(id, _)| id);
    let (code, detail) = match e {
        postcard::Error::DeserializeBadUtf8 => (ErrorCode::InvalidUtf8, "the text is not UTF-8"),
        _ => match postcard::take_from_bytes::<(u32, u32)>(message) {
            Ok(((_, kind), _)) if kind >= RequestBody::VARIANTS => (
                ErrorCode::UnknownMessage,
                "unknown message type (newer client?)",
            ),
            _ => (ErrorCode::BadRequest, "malformed message"),
        },
    };
    Err(DecodeFailure { code, id, detail })
}

/// Decodes a reply from a frame's message bytes (host side).
#[cfg(feature = "alloc")]
pub fn decode_response(message: &[u8]) -> postcard::Result<crate::Response<'_>> {
    postcard::from_bytes(message)
}
