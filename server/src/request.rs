//! What a request is once it has been read, whatever its wire format: the types the JSON
//! parser, the frame decoder, the server loop and the reply writers all share (kept here so
//! none of those modules depends on another for them).

use bertq_protocol::{AnswerOptions, EntityOptions, InferOptions};

/// The longest `id` accepted, in bytes of JSON.
pub const MAX_ID_LEN: usize = 64;

/// The `id` of a request as it appeared (a JSON number or string), to echo verbatim.
#[derive(Clone, Copy)]
pub struct RawId {
    buf: [u8; MAX_ID_LEN],
    len: u8,
}

impl RawId {
    pub const NULL: RawId = RawId::from_static(b"null");

    const fn from_static(s: &[u8]) -> RawId {
        let mut buf = [0u8; MAX_ID_LEN];
        let mut i = 0;
        while i < s.len() {
            buf[i] = s[i];
            i += 1;
        }
        RawId {
            buf,
            len: s.len() as u8,
        }
    }

    /// `raw` must be valid JSON (checked by the parser); `None` if it is too long.
    pub(crate) fn new(raw: &[u8]) -> Option<RawId> {
        let mut id = RawId::NULL;
        id.buf.get_mut(..raw.len())?.copy_from_slice(raw);
        id.len = raw.len() as u8;
        Some(id)
    }

    pub fn as_str(&self) -> &str {
        // Copied from a line that was checked to be UTF-8, whole tokens only.
        core::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("null")
    }
}

impl core::fmt::Debug for RawId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Infer,
    Info,
    Health,
    Metrics,
    /// Stop the device (firmware only; see [`crate::link::Env::accepts_shutdown`]).
    Shutdown,
    /// Presents the server's token (answered like `health`).
    Auth,
}

/// One inference to run.
#[derive(Debug)]
pub struct InferJob<'a> {
    pub to: ReplyTo,
    /// The text (the context, for a question).
    pub text: &'a str,
    pub options: InferOptions,
    pub extra: JobExtra<'a>,
    /// Token classification: minimum score and redaction.
    pub entities: EntityOptions,
}

/// What an inference needs beyond a text and its options.
#[derive(Debug, Clone, Copy, Default)]
pub enum JobExtra<'a> {
    /// A text in one window (truncated or rejected when longer).
    #[default]
    None,
    /// Token classification of the whole text in windows sharing this many tokens.
    Stride(u16),
    /// Question answering about `text`.
    Answer {
        question: &'a str,
        options: AnswerOptions,
    },
}

/// Where a reply goes and in which form.
#[derive(Debug, Clone, Copy)]
pub enum ReplyTo {
    Binary(u32),
    Json(RawId),
}
