//! The bertq wire protocol: one definition shared by the device (`bertq serve`) and the host
//! (`bertq client`), `no_std` and allocation-free on the device side.
//!
//! # Binary frames (serial lines and sockets)
//!
//! ```text
//! wire:     0x00 | COBS(payload) | 0x00
//! payload:  0x00 (marker) | VERSION u8 | postcard(Request or Response) | CRC-32 (LE u32)
//! ```
//!
//! - COBS removes every `0x00` from the payload, so `0x00` only ever delimits frames: a receiver
//!   that lost bytes resynchronises at the next `0x00` ([`Accumulator`]). Senders write a leading
//!   `0x00` as well, so garbage on the line before a frame cannot corrupt it.
//! - The marker byte makes the first encoded byte of every frame [`FRAME_START`] (`0x01`), which is
//!   how a receiver tells frames from JSON lines (which start with `{`) by their first byte.
//! - The CRC-32 (IEEE, as `crc32fast` and zlib compute it) covers the marker, the version and the
//!   message; a frame whose CRC does not match is answered with [`ErrorCode::CrcMismatch`].
//! - Every [`Request`] carries an id, echoed by its [`Response`]; replies may arrive out of order,
//!   so clients match them by id. Id 0 is reserved for replies to frames whose id could not be
//!   read (a corrupted frame, garbage, an over-long frame).
//!
//! # JSON Lines (sockets, for people and scripts)
//!
//! One JSON object per line (`{"id": 1, "text": "..."}`), answered by one JSON object per line
//! (`{"id": 1, "result": ...}` or `{"id": 1, "error": "...", "error_type": "..."}`). A line starts
//! with `{` (after optional whitespace); see the server's documentation for the fields.
//!
//! # Limits
//!
//! Receivers bound frames and lines ([`Accumulator`] with a buffer of the maximum size) and refuse
//! longer ones before buffering them ([`Item::TooLong`]), then skip to the next delimiter.
#![cfg_attr(not(test), no_std)]

#[cfg(feature = "alloc")]
extern crate alloc;

mod accumulator;
mod error;
mod frame;
mod message;
mod seq;

pub use accumulator::{Accumulator, Item, MessageKind};
pub use error::ErrorCode;
#[cfg(feature = "alloc")]
pub use frame::decode_response;
pub use frame::{
    decode_frame, decode_request, encode_frame, max_encoded_len, DecodeFailure, FrameError,
};
pub use message::{
    histogram_bucket_upper_us, Aggregation, Answer, AnswerOptions, AnswerRequest, DeviceInfo,
    Entity, EntityOptions, EntityRequest, ErrorCount, ErrorReply, HealthReply, InferOptions,
    InferReply, InferRequest, InfoReply, LabelScore, MaskCandidate, MetricsReply, Request,
    RequestBody, Response, ResponseBody, StrideRequest, Task, TaskResult, Text, HISTOGRAM_BUCKETS,
};
pub use seq::Seq;

/// The protocol version carried in every frame. A receiver answers a frame of another version
/// with [`ErrorCode::UnsupportedVersion`].
pub const VERSION: u8 = 1;

/// The frame delimiter.
pub const DELIMITER: u8 = 0x00;

/// The first byte of every COBS-encoded frame (see the module documentation).
pub const FRAME_START: u8 = 0x01;

/// Bytes the payload carries around the message: marker, version, CRC-32.
pub const PAYLOAD_OVERHEAD: usize = 1 + 1 + 4;

/// A reasonable default for the largest frame or line a receiver accepts (encoded bytes).
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024;
