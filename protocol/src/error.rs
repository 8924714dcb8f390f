//! Error codes: one for every way a request can fail, stable on the wire.

use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a request failed. Encoded as a `u16` so that a client decodes codes added by newer
/// servers (as [`ErrorCode::Other`]) instead of rejecting the whole reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The frame is not valid COBS, too short, lacks the marker, or is not a JSON object line.
    BadFrame,
    /// The frame's CRC-32 does not match its contents.
    CrcMismatch,
    /// The message type is not known to this server.
    UnknownMessage,
    /// The text has more tokens than the server's maximum sequence length and the request asked
    /// to reject rather than truncate.
    TextTooLong,
    /// The text (or a JSON line) is not valid UTF-8.
    InvalidUtf8,
    /// The request queue is full: retry later.
    Busy,
    /// The server failed to process a valid request.
    Internal,
    /// The frame or line is longer than the server accepts; the rest of it was skipped.
    FrameTooLarge,
    /// The frame carries another protocol version.
    UnsupportedVersion,
    /// The message is well framed but malformed (missing or invalid fields).
    BadRequest,
    /// A valid option this server does not implement (e.g. an aggregation strategy).
    Unsupported,
    /// Half a message arrived and the rest did not come in time; the part was discarded.
    Timeout,
    /// The server is shutting down and takes no new requests.
    ShuttingDown,
    /// The device has no usable model (the one in its model region is corrupt or does not fit
    /// its memory); the `info` reply says why.
    ModelUnavailable,
    /// The server requires a token (`bertq serve --token-file`) and the connection did not
    /// present the right one before its first request; the connection is closed.
    Unauthorized,
    /// A code this version of the protocol does not know.
    Other(u16),
}

impl ErrorCode {
    /// Every known code, in wire order.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::BadFrame,
        ErrorCode::CrcMismatch,
        ErrorCode::UnknownMessage,
        ErrorCode::TextTooLong,
        ErrorCode::InvalidUtf8,
        ErrorCode::Busy,
        ErrorCode::Internal,
        ErrorCode::FrameTooLarge,
        ErrorCode::UnsupportedVersion,
        ErrorCode::BadRequest,
        ErrorCode::Unsupported,
        ErrorCode::Timeout,
        ErrorCode::ShuttingDown,
        ErrorCode::ModelUnavailable,
        ErrorCode::Unauthorized,
    ];

    /// The wire value (1-based; 0 is never sent).
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::Other(n) => n,
            known => {
                // `ALL` holds every variant but `Other`, so the search always succeeds.
                ErrorCode::ALL
                    .iter()
                    .position(|&c| c == known)
                    .map_or(0, |i| i as u16 + 1)
            }
        }
    }

    pub fn from_u16(n: u16) -> ErrorCode {
        match n {
            1..=15 => ErrorCode::ALL[n as usize - 1],
            other => ErrorCode::Other(other),
        }
    }

    /// Index into per-code counters: `0..ALL.len()` for known codes, `ALL.len()` for others.
    pub fn index(self) -> usize {
        match self {
            ErrorCode::Other(_) => ErrorCode::ALL.len(),
            known => known.to_u16() as usize - 1,
        }
    }

    /// The `error_type` of JSON replies (`snake_case`, as text-embeddings-inference spells its
    /// error types).
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::CrcMismatch => "crc_mismatch",
            ErrorCode::UnknownMessage => "unknown_message",
            ErrorCode::TextTooLong => "text_too_long",
            ErrorCode::InvalidUtf8 => "invalid_utf8",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::ModelUnavailable => "model_unavailable",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Other(_) => "other",
        }
    }

    /// The code named `name` (as [`ErrorCode::name`] spells it).
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.name() == name)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Other(n) => write!(f, "error {n}"),
            c => f.write_str(c.name()),
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.to_u16())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u16::deserialize(d).map(ErrorCode::from_u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_stable() {
        // The wire values are part of the protocol: changing them breaks deployed clients.
        assert_eq!(ErrorCode::BadFrame.to_u16(), 1);
        assert_eq!(ErrorCode::Busy.to_u16(), 6);
        assert_eq!(ErrorCode::ShuttingDown.to_u16(), 13);
        assert_eq!(ErrorCode::ModelUnavailable.to_u16(), 14);
        assert_eq!(ErrorCode::Unauthorized.to_u16(), 15);
        for (i, c) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(c.to_u16() as usize, i + 1);
            assert_eq!(ErrorCode::from_u16(c.to_u16()), *c);
            assert_eq!(c.index(), i);
            assert_eq!(ErrorCode::from_name(c.name()), Some(*c));
        }
        assert_eq!(ErrorCode::from_u16(0), ErrorCode::Other(0));
        assert_eq!(ErrorCode::from_u16(99), ErrorCode::Other(99));
        assert_eq!(ErrorCode::Other(99).to_u16(), 99);
        assert_eq!(ErrorCode::Other(99).index(), ErrorCode::ALL.len());
    }
}
