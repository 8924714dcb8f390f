//! Rebuilding frames and JSON lines from a byte stream that arrives in arbitrary chunks (a UART,
//! a socket), with the maximum size enforced before buffering and resynchronisation at the next
//! delimiter after anything damaged. Like postcard's `CobsAccumulator`, but the buffer is the
//! caller's (a static array, or a boxed slice allocated once) and JSON lines are told apart from
//! frames by their first byte.

use crate::FRAME_START;

/// Which kind of message an [`Item::TooLong`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Frame,
    Line,
}

/// What [`Accumulator::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'b> {
    /// A complete binary frame: the COBS-encoded bytes between two delimiters (open it with
    /// [`crate::decode_frame`], in place).
    Frame(&'b mut [u8]),
    /// A complete JSON line, without its `\n` (and a `\r` before it).
    Line(&'b mut [u8]),
    /// A frame or line longer than the buffer. Reported as soon as it is detected, before
    /// anything past the limit is buffered; its remaining bytes are skipped up to the next
    /// delimiter.
    TooLong(MessageKind),
    /// Bytes that start neither a frame nor a JSON line (noise on a line, a line cut by a
    /// `0x00`); skipped up to the next delimiter. Reported once per run.
    Garbage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between messages: delimiters and whitespace are skipped.
    Boundary,
    Frame,
    Line,
    /// Discarding up to the next `0x00` (and, if `line_ends`, up to the next `\n`).
    Skip {
        line_ends: bool,
    },
}

/// Rebuilds messages from chunks of a byte stream. The buffer's length is the largest message
/// accepted.
///
/// Message boundaries: `0x00` always ends a message (frames never contain it, JSON text cannot);
/// `\n` ends a JSON line. Between messages, `0x00` and ASCII whitespace are skipped; a message
/// starting with [`FRAME_START`] right after a `0x00` is a frame, one starting with `{` a JSON
/// line, anything else (a `0x01` after a `\n` or at the start of the stream included) is
/// [`Item::Garbage`], skipped up to the next `\n` or `0x00`.
#[derive(Debug)]
pub struct Accumulator<B> {
    buf: B,
    len: usize,
    state: State,
    /// The last delimiter consumed was `0x00` (not `\n`, nor the start of the stream): only
    /// then does [`FRAME_START`] open a frame. Senders always write `0x00` before a frame, and
    /// JSON text never contains `0x00`, so a JSON line that happens to start with `0x01` is
    /// garbage up to its `\n`, never a frame that swallows the lines after it.
    after_zero: bool,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Accumulator<B> {
    pub fn new(buf: B) -> Self {
        Accumulator {
            buf,
            len: 0,
            state: State::Boundary,
            after_zero: false,
        }
    }

    /// The largest message accepted, in bytes.
    pub fn capacity(&self) -> usize {
        self.buf.as_ref().len()
    }

    /// Whether part of a message has been received (or is being skipped): a stream that stops
    /// here has stalled mid-message.
    pub fn in_message(&self) -> bool {
        self.state != State::Boundary
    }

    /// The kind of the message being received, if one is partly here.
    pub fn partial(&self) -> Option<MessageKind> {
        match self.state {
            State::Frame => Some(MessageKind::Frame),
            State::Line => Some(MessageKind::Line),
            State::Boundary | State::Skip { .. } => None,
        }
    }

    /// Drops any partial message and waits for the next one.
    pub fn reset(&mut self) {
        self.len = 0;
        self.state = State::Boundary;
        self.after_zero = false;
    }

    /// The frame just returned did not decode (bad CRC, bad COBS): its end may have been cut
    /// off, so the `0x00` that closed it may really have been the next frame's leading one.
    /// A frame that starts right after it is then taken as a frame, so that a truncated frame
    /// costs only itself on a noisy serial line (after a good frame that `0x00` is its own and
    /// a `0x01` after it is junk).
    pub fn after_damaged_frame(&mut self) {
        if self.state == State::Boundary && self.len == 0 {
            self.after_zero = true;
        }
    }

    /// Consumes bytes from `input` until a message is complete (or something must be reported)
    /// and returns it with the input not yet consumed. Call again with the rest until it is
    /// empty. Never panics, whatever the input.
    pub fn feed<'s, 'i>(&'s mut self, input: &'i [u8]) -> (Option<Item<'s>>, &'i [u8]) {
        let cap = self.capacity();
        let mut i = 0;
        while i < input.len() {
            let rest = &input[i..];
            match self.state {
                State::Boundary => match rest[0] {
                    0 => {
                        self.after_zero = true;
                        i += 1;
                    }
                    b'\n' => {
                        self.after_zero = false;
                        i += 1;
                    }
                    b' ' | b'\t' | b'\r' => i += 1,
                    FRAME_START if self.after_zero => {
                        self.state = State::Frame;
                        self.len = 0;
                    }
                    b'{' => {
                        self.state = State::Line;
                        self.len = 0;
                    }
                    _ => {
                        self.state = State::Skip { line_ends: true };
                        return (Some(Item::Garbage), &input[i + 1..]);
                    }
                },
                State::Frame | State::Line => {
                    let line = self.state == State::Line;
                    let end = rest.iter().position(|&b| b == 0 || (line && b == b'\n'));
                    let take = end.unwrap_or(rest.len());
                    if take > cap - self.len {
                        self.len = 0;
                        self.state = State::Skip { line_ends: line };
                        let kind = if line {
                            MessageKind::Line
                        } else {
                            MessageKind::Frame
                        };
                        // The delimiter (if any) is left for the skipping state to consume.
                        return (Some(Item::TooLong(kind)), &input[i + take..]);
                    }
                    self.buf.as_mut()[self.len..self.len + take].copy_from_slice(&rest[..take]);
                    self.len += take;
                    i += take;
                    let Some(end) = end else { continue };
                    let delimiter = rest[end];
                    // A frame's closing 0x00 does not open the next frame: senders write a
                    // leading 0x00 before every frame, so a `0x01` line after a frame is junk.
                    self.after_zero = delimiter == 0 && line;
                    i += 1;
                    let n = core::mem::replace(&mut self.len, 0);
                    self.state = State::Boundary;
                    let msg = &mut self.buf.as_mut()[..n];
                    let item = if !line {
                        Item::Frame(msg)
                    } else if delimiter == 0 {
                        Item::Garbage // a line cut short by a frame delimiter
                    } else {
                        let n = if msg.last() == Some(&b'\r') { n - 1 } else { n };
                        Item::Line(&mut msg[..n])
                    };
                    return (Some(item), &input[i..]);
                }
                State::Skip { line_ends } => {
                    match rest
                        .iter()
                        .position(|&b| b == 0 || (line_ends && b == b'\n'))
                    {
                        Some(p) => {
                            self.after_zero = rest[p] == 0;
                            i += p + 1;
                            self.state = State::Boundary;
                        }
                        None => i = input.len(),
                    }
                }
            }
        }
        (None, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Feeds `input` in chunks of `chunk` bytes and collects a description of every item.
    fn items(acc: &mut Accumulator<Vec<u8>>, input: &[u8], chunk: usize) -> Vec<String> {
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (item, r) = acc.feed(rest);
                rest = r;
                match item {
                    Some(Item::Frame(f)) => out.push(format!("F{:?}", f)),
                    Some(Item::Line(l)) => out.push(format!("L{}", String::from_utf8_lossy(l))),
                    Some(Item::TooLong(k)) => out.push(format!("TooLong({k:?})")),
                    Some(Item::Garbage) => out.push("Garbage".into()),
                    None => {}
                }
            }
        }
        out
    }

    #[test]
    fn a_frame_after_a_damaged_one_is_a_frame() {
        // A frame cut short (no closing 0x00) swallows the next frame's leading 0x00 as its
        // end. If it fails to decode, the frame after it is still read as a frame.
        let input: &[u8] = b"\x00\x01\x05\x00\x01\x06\x00";
        for damaged in [false, true] {
            let mut acc = Accumulator::new(vec![0u8; 64]);
            let mut got = Vec::new();
            let mut rest = input;
            while !rest.is_empty() {
                let (item, r) = acc.feed(rest);
                rest = r;
                match item {
                    Some(Item::Frame(f)) => {
                        got.push(format!("F{f:?}"));
                        if damaged {
                            acc.after_damaged_frame();
                        }
                    }
                    Some(Item::Garbage) => got.push("Garbage".into()),
                    Some(other) => got.push(format!("{other:?}")),
                    None => {}
                }
            }
            let second = if damaged { "F[1, 6]" } else { "Garbage" };
            assert_eq!(got, vec!["F[1, 5]", second], "damaged: {damaged}");
        }
    }

    #[test]
    fn splits_frames_and_lines_in_any_chunking() {
        let stream: &[u8] =
            b"\x00\x01\x02\x03\x00\x00{\"id\":1}\r\n\n  {\"a\":2}\n\x00\x01\x0a\x0a\x00";
        let expected = vec![
            "F[1, 2, 3]".to_string(),
            "L{\"id\":1}".into(),
            "L{\"a\":2}".into(),
            "F[1, 10, 10]".into(),
        ];
        for chunk in 1..=stream.len() {
            let mut acc = Accumulator::new(vec![0u8; 64]);
            assert_eq!(items(&mut acc, stream, chunk), expected, "chunk {chunk}");
            assert!(!acc.in_message());
        }
    }

    #[test]
    fn too_long_is_reported_before_buffering_and_the_stream_resyncs() {
        for chunk in [1, 3, 7, 100] {
            let mut acc = Accumulator::new(vec![0u8; 4]);
            let mut stream = Vec::new();
            stream.extend_from_slice(b"\x00\x01\x02\x03\x04\x05\x06\x0a\x07\x00"); // 8 bytes: too long
            stream.extend_from_slice(b"\x01\x09\x00"); // fits
            stream.extend_from_slice(b"{\"x\":12345}\n{}\n"); // too long, then fits
            stream.extend_from_slice(b"\x00\x01\x02\x03\x04\x00"); // exactly 4: fits
            assert_eq!(
                items(&mut acc, &stream, chunk),
                vec![
                    "TooLong(Frame)",
                    "F[1, 9]",
                    "TooLong(Line)",
                    "L{}",
                    "F[1, 2, 3, 4]"
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn garbage_is_reported_once_and_skipped() {
        let mut acc = Accumulator::new(vec![0u8; 16]);
        let stream = b"xyz\xff\x00\x01\x05\x00garbage\n{}\n{\"cut\x00\x01\x06\x00";
        assert_eq!(
            items(&mut acc, stream, 5),
            vec!["Garbage", "F[1, 5]", "Garbage", "L{}", "Garbage", "F[1, 6]"]
        );
    }

    #[test]
    fn a_json_line_starting_with_0x01_never_swallows_the_next_lines() {
        // D3: a junk line whose first byte is FRAME_START, then requests. Before the fix the
        // junk opened a frame that ran to the next 0x00, swallowing every line after it.
        let mut stream = b"\x01junk\n".to_vec();
        for i in 0..5 {
            stream.extend_from_slice(format!("{{\"id\":{i}}}\n").as_bytes());
        }
        stream.extend_from_slice(b"\x01more junk\r\n{\"id\":9}\n");
        for chunk in [1, 4, 100] {
            let mut acc = Accumulator::new(vec![0u8; 64]);
            let got = items(&mut acc, &stream, chunk);
            let want: Vec<String> = core::iter::once("Garbage".to_string())
                .chain((0..5).map(|i| format!("L{{\"id\":{i}}}")))
                .chain(["Garbage".to_string(), "L{\"id\":9}".to_string()])
                .collect();
            assert_eq!(got, want, "chunk {chunk}");
        }
        // A frame still needs (and gets, from every sender) its leading 0x00, also after lines
        // and after another frame; a 0x01 line right after a frame is junk, not a frame.
        let mut acc = Accumulator::new(vec![0u8; 64]);
        assert_eq!(
            items(
                &mut acc,
                b"{}\n\x00\x01\x05\x00\x00\x01\x06\x00\x01junk\n{}\n",
                3
            ),
            vec!["L{}", "F[1, 5]", "F[1, 6]", "Garbage", "L{}"]
        );
    }

    #[test]
    fn partial_messages_are_visible_and_reset_drops_them() {
        let mut acc = Accumulator::new(vec![0u8; 16]);
        assert!(items(&mut acc, b"\x00\x01\x02", 10).is_empty());
        assert!(acc.in_message());
        assert_eq!(acc.partial(), Some(MessageKind::Frame));
        acc.reset();
        assert!(!acc.in_message());
        assert_eq!(
            items(&mut acc, b"\x03\x00\x01\x04\x00", 10),
            vec!["Garbage", "F[1, 4]"]
        );
    }

    #[test]
    fn random_bytes_never_panic_and_buffer_stays_bounded() {
        // xorshift: deterministic noise.
        let mut s = 0x1234_5678_9abc_def0u64;
        let mut acc = Accumulator::new(vec![0u8; 32]);
        for _ in 0..2000 {
            let mut chunk = [0u8; 37];
            for b in chunk.iter_mut() {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *b = (s % 7) as u8; // many delimiters, FRAME_STARTs and small bytes
            }
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let (item, r) = acc.feed(rest);
                assert!(r.len() < rest.len() || item.is_some());
                if let Some(Item::Frame(f) | Item::Line(f)) = item {
                    assert!(f.len() <= 32);
                }
                rest = r;
            }
        }
    }
}
