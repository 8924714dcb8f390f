//! JSON Lines requests, parsed without allocating: the text is unescaped in place in the line's
//! own buffer (an unescaped string is never longer than its escaped form).
//!
//! A request is one JSON object on one line:
//!
//! | field | value | default |
//! |---|---|---|
//! | `id` | a number or a string (at most 64 bytes of JSON), echoed in the reply | `null` |
//! | `type` | `"infer"`, `"info"`, `"health"`, `"metrics"`, `"auth"` or `"shutdown"` (firmware) | `"infer"` |
//! | `text` | the text (infer) | required for infer |
//! | `top_k` | labels to return (classification); `null` or `0` for all | 1 |
//! | `aggregation_strategy` | `"none"`, `"simple"`, `"first"`, `"average"`, `"max"` (Hugging Face's), `"span"`, `"pii"`, `"compat"` (bertq's) | the model's: `"pii"` with a PII profile, else `"simple"` |
//! | `threshold` | token classification: the lowest entity score kept | the aggregation's |
//! | `redact` | token classification: answer with the text, entities replaced by `[TYPE]` | `false` |
//! | `truncate` | `false` rejects texts longer than the server's maximum length | `true` |
//! | `stride` | token classification: run the whole text in windows sharing this many tokens | none |
//! | `question`, `context` | question answering (instead of `text`) | |
//! | `doc_stride` | question answering: context tokens shared by windows | `min(max_seq / 2, 128)` |
//! | `max_answer_len` | question answering: the longest answer in tokens | 15 |
//! | `handle_impossible_answer` | question answering: also consider no answer | `false` |
//! | `token` | the server's shared secret (`--token-file`), on the first request or in a `"type": "auth"` line | |
//!
//! Unknown fields are ignored.

use crate::request::JobExtra;
pub use crate::request::{Kind, RawId};
use bertq_protocol::{Aggregation, AnswerOptions, EntityOptions, ErrorCode, InferOptions};

pub use crate::request::MAX_ID_LEN;

#[derive(Debug)]
pub struct JsonRequest<'a> {
    pub id: RawId,
    pub kind: Kind,
    /// The unescaped text (infer requests; the context of a question).
    pub text: &'a str,
    pub options: InferOptions,
    /// A stride, or the question and its options.
    pub extra: JobExtra<'a>,
    /// Token classification: `threshold` and `redact`.
    pub entities: EntityOptions,
    /// The `token` field as it appears between its quotes (tokens are compared verbatim, so
    /// they contain no `"` or `\`).
    pub token: Option<&'a [u8]>,
}

/// Why a line is not a valid request, with the request's id if it was read.
#[derive(Debug, Clone, Copy)]
pub struct JsonError {
    pub id: RawId,
    pub code: ErrorCode,
    pub message: &'static str,
}

/// Objects and arrays nested deeper than this (in ignored fields) are refused.
const MAX_DEPTH: usize = 32;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

type Span = (usize, usize);

impl Parser<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.s.get(self.i) {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// A string at the cursor; returns the span between the quotes (escapes validated).
    fn string(&mut self) -> Result<Span, &'static str> {
        if !self.eat(b'"') {
            return Err("expected a string");
        }
        let start = self.i;
        loop {
            match self.peek() {
                None => return Err("unterminated string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok((start, self.i - 1));
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            let hex = self.s.get(self.i + 1..self.i + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err("invalid \\u escape");
                            }
                            self.i += 5;
                        }
                        _ => return Err("invalid escape in a string"),
                    }
                }
                Some(c) if c < 0x20 => return Err("control character in a string"),
                Some(_) => self.i += 1,
            }
        }
    }
    /// A number at the cursor (JSON grammar); returns its span.
    fn number(&mut self) -> Result<Span, &'static str> {
        let start = self.i;
        self.eat(b'-');
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.i += 1;
            }
            p.i - s
        };
        let int_start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.s[int_start] == b'0') {
            return Err("invalid number");
        }
        if self.eat(b'.') && digits(self) == 0 {
            return Err("invalid number");
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            if digits(self) == 0 {
                return Err("invalid number");
            }
        }
        Ok((start, self.i))
    }
    fn literal(&mut self, word: &[u8]) -> bool {
        if self.s.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }
    /// Skips any value (for ignored fields), nesting bounded by [`MAX_DEPTH`].
    fn skip_value(&mut self) -> Result<(), &'static str> {
        // Bit `d` of `objects`: whether the container at depth `d + 1` is an object.
        let mut objects = 0u64;
        let mut depth = 0usize;
        loop {
            self.ws();
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    if depth == MAX_DEPTH {
                        return Err("nested too deeply");
                    }
                    let object = open == b'{';
                    objects = (objects & !(1 << depth)) | ((object as u64) << depth);
                    depth += 1;
                    self.i += 1;
                    self.ws();
                    if !self.eat(if object { b'}' } else { b']' }) {
                        if object {
                            self.key()?;
                        }
                        continue; // the first value
                    }
                    depth -= 1;
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                _ => {
                    if !(self.literal(b"true") || self.literal(b"false") || self.literal(b"null")) {
                        return Err("invalid value");
                    }
                }
            }
            // After a value: close containers, or go on to the next member or element.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let object = objects >> (depth - 1) & 1 == 1;
                self.ws();
                if self.eat(b',') {
                    if object {
                        self.ws();
                        self.key()?;
                    }
                    break;
                }
                if !self.eat(if object { b'}' } else { b']' }) {
                    return Err("expected ',' or a closing bracket");
                }
                depth -= 1;
            }
        }
    }
    /// A member's key and its ':'.
    fn key(&mut self) -> Result<(), &'static str> {
        self.string()?;
        self.ws();
        if self.eat(b':') {
            Ok(())
        } else {
            Err("expected ':'")
        }
    }
}

fn parse_u16(s: &[u8]) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter()
        .try_fold(0u32, |a, &d| Some(a * 10 + (d - b'0') as u32))
        .and_then(|v| u16::try_from(v).ok())
}

/// Parses one request line. The line is modified (the text is unescaped in place).
pub fn parse(line: &mut [u8]) -> Result<JsonRequest<'_>, JsonError> {
    let fail = |id: RawId, code: ErrorCode, message: &'static str| JsonError { id, code, message };
    if core::str::from_utf8(line).is_err() {
        return Err(fail(
            RawId::NULL,
            ErrorCode::InvalidUtf8,
            "the line is not valid UTF-8",
        ));
    }
    let mut id = RawId::NULL;
    let mut kind = Kind::Infer;
    let mut text: Option<Span> = None;
    let mut question: Option<Span> = None;
    let mut context: Option<Span> = None;
    let mut stride: Option<u16> = None;
    let mut answer = AnswerOptions::default();
    let mut options = InferOptions::default();
    let mut entities = EntityOptions::default();
    let mut token: Option<Span> = None;
    {
        let mut p = Parser { s: line, i: 0 };
        let bad = |id: RawId, m: &'static str| fail(id, ErrorCode::BadFrame, m);
        p.ws();
        if !p.eat(b'{') {
            return Err(bad(id, "a request is a JSON object"));
        }
        p.ws();
        if !p.eat(b'}') {
            loop {
                p.ws();
                let key = p.string().map_err(|m| bad(id, m))?;
                let key = &line[key.0..key.1];
                p.ws();
                if !p.eat(b':') {
                    return Err(bad(id, "expected ':' after a key"));
                }
                p.ws();
                let request = |m: &'static str| fail(id, ErrorCode::BadRequest, m);
                match key {
                    b"id" => {
                        let span = match p.peek() {
                            Some(b'"') => p.string().map(|(a, b)| (a - 1, b + 1)),
                            Some(b'-' | b'0'..=b'9') => p.number(),
                            _ if p.literal(b"null") => Ok((p.i - 4, p.i)),
                            _ => return Err(request("id must be a number, a string or null")),
                        }
                        .map_err(|m| bad(id, m))?;
                        id = RawId::new(&line[span.0..span.1])
                            .ok_or_else(|| request("id is longer than 64 bytes"))?;
                    }
                    b"text" | b"question" | b"context" => {
                        if p.peek() != Some(b'"') {
                            return Err(request("text, question and context must be strings"));
                        }
                        let span = Some(p.string().map_err(|m| bad(id, m))?);
                        match key {
                            b"text" => text = span,
                            b"question" => question = span,
                            _ => context = span,
                        }
                    }
                    b"token" => {
                        if p.peek() != Some(b'"') {
                            return Err(request("token must be a string"));
                        }
                        token = Some(p.string().map_err(|m| bad(id, m))?);
                    }
                    b"stride" | b"doc_stride" | b"max_answer_len" => {
                        let (a, b) = p
                            .number()
                            .map_err(|_| request("strides and lengths must be integers"))?;
                        let n = parse_u16(&line[a..b]).ok_or_else(|| {
                            request("strides and lengths must be integers from 0 to 65535")
                        })?;
                        match key {
                            b"stride" => stride = Some(n),
                            b"doc_stride" => answer.doc_stride = Some(n),
                            _ => answer.max_answer_len = n,
                        }
                    }
                    b"handle_impossible_answer" => {
                        answer.handle_impossible_answer = if p.literal(b"true") {
                            true
                        } else if p.literal(b"false") {
                            false
                        } else {
                            return Err(request("handle_impossible_answer must be true or false"));
                        };
                    }
                    b"type" => {
                        if p.peek() != Some(b'"') {
                            return Err(request("type must be a string"));
                        }
                        let (a, b) = p.string().map_err(|m| bad(id, m))?;
                        kind =
                            match &line[a..b] {
                                b"infer" => Kind::Infer,
                                b"info" => Kind::Info,
                                b"health" => Kind::Health,
                                b"metrics" => Kind::Metrics,
                                b"shutdown" => Kind::Shutdown,
                                b"auth" => Kind::Auth,
                                _ => return Err(fail(
                                    id,
                                    ErrorCode::UnknownMessage,
                                    "unknown type (expected infer, info, health, metrics, auth \
                                     or shutdown)",
                                )),
                            };
                    }
                    b"top_k" => {
                        if p.literal(b"null") {
                            options.top_k = 0;
                        } else {
                            let (a, b) = p.number().map_err(|_| {
                                request("top_k must be a non-negative integer or null")
                            })?;
                            options.top_k = parse_u16(&line[a..b]).ok_or_else(|| {
                                request("top_k must be an integer from 0 to 65535")
                            })?;
                        }
                    }
                    b"aggregation_strategy" => {
                        if p.peek() != Some(b'"') {
                            return Err(request("aggregation_strategy must be a string"));
                        }
                        let (a, b) = p.string().map_err(|m| bad(id, m))?;
                        options.aggregation = core::str::from_utf8(&line[a..b])
                            .ok()
                            .and_then(Aggregation::from_name)
                            .ok_or_else(|| {
                                request(
                                    "aggregation_strategy must be none, simple, first, average, \
                                     max, span, pii, compat or default",
                                )
                            })?;
                    }
                    b"threshold" => {
                        let (a, b) = p
                            .number()
                            .map_err(|_| request("threshold must be a number from 0 to 1"))?;
                        let x = core::str::from_utf8(&line[a..b])
                            .ok()
                            .and_then(|t| t.parse::<f32>().ok())
                            .filter(|x| (0.0..=1.0).contains(x))
                            .ok_or_else(|| request("threshold must be a number from 0 to 1"))?;
                        entities.threshold = Some(x);
                    }
                    b"redact" => {
                        entities.redact = if p.literal(b"true") {
                            true
                        } else if p.literal(b"false") {
                            false
                        } else {
                            return Err(request("redact must be true or false"));
                        };
                    }
                    b"truncate" => {
                        options.truncate = if p.literal(b"true") {
                            true
                        } else if p.literal(b"false") {
                            false
                        } else {
                            return Err(request("truncate must be true or false"));
                        };
                    }
                    _ => p.skip_value().map_err(|m| bad(id, m))?,
                }
                p.ws();
                if p.eat(b'}') {
                    break;
                }
                if !p.eat(b',') {
                    return Err(bad(id, "expected ',' or '}' in the object"));
                }
            }
        }
        p.ws();
        if p.i != line.len() {
            return Err(bad(id, "unexpected characters after the object"));
        }
    }
    let is_question = question.is_some() || context.is_some();
    if is_question && (question.is_none() || context.is_none() || text.is_some()) {
        return Err(fail(
            id,
            ErrorCode::BadRequest,
            "a question needs both question and context (and no text)",
        ));
    }
    if is_question && stride.is_some() {
        return Err(fail(
            id,
            ErrorCode::BadRequest,
            "stride is for texts; questions take doc_stride",
        ));
    }
    answer.top_k = options.top_k;
    let text = if is_question { context } else { text };
    // Unescape every string in place first (their spans do not overlap), then borrow them.
    let mut unescape = |span: Option<Span>| -> Result<Option<Span>, JsonError> {
        let Some((a, b)) = span else { return Ok(None) };
        let n = unescape_in_place(&mut line[a..b]).ok_or(JsonError {
            id,
            code: ErrorCode::BadRequest,
            message: "the text has an unpaired UTF-16 surrogate escape",
        })?;
        Ok(Some((a, a + n)))
    };
    let text = unescape(text)?;
    let question = unescape(question)?;
    let line = &*line;
    let as_str = |span: Option<Span>| -> Result<&str, JsonError> {
        let Some((a, b)) = span else { return Ok("") };
        core::str::from_utf8(&line[a..b]).map_err(|_| JsonError {
            id,
            code: ErrorCode::InvalidUtf8,
            message: "the text is not valid UTF-8",
        })
    };
    if kind == Kind::Infer && text.is_none() {
        return Err(fail(
            id,
            ErrorCode::BadRequest,
            "an infer request needs a text",
        ));
    }
    let extra = match (is_question, stride) {
        (true, _) => JobExtra::Answer {
            question: as_str(question)?,
            options: answer,
        },
        (false, Some(s)) => JobExtra::Stride(s),
        (false, None) => JobExtra::None,
    };
    Ok(JsonRequest {
        id,
        kind,
        text: as_str(text)?,
        options,
        extra,
        entities,
        token: token.map(|(a, b)| &line[a..b]),
    })
}

fn hex4(s: &[u8]) -> Option<u32> {
    let s = s.get(..4)?;
    s.iter().try_fold(0u32, |a, &c| {
        let d = (c as char).to_digit(16)?;
        Some(a * 16 + d)
    })
}

/// Unescapes a validated JSON string body in place; returns the new length, or `None` for an
/// unpaired surrogate.
fn unescape_in_place(s: &mut [u8]) -> Option<usize> {
    let (mut r, mut w) = (0usize, 0usize);
    while r < s.len() {
        let c = s[r];
        if c != b'\\' {
            s[w] = c;
            r += 1;
            w += 1;
            continue;
        }
        let e = *s.get(r + 1)?;
        r += 2;
        let ch = match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(&s[r..])?;
                r += 4;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if s.get(r..r + 2) != Some(b"\\u") {
                        return None;
                    }
                    let lo = hex4(&s[r + 2..])?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    r += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                char::from_u32(code)?
            }
            _ => return None,
        };
        let mut utf8 = [0u8; 4];
        let enc = ch.encode_utf8(&mut utf8).as_bytes();
        // Every escape is at least as long as its UTF-8 encoding, so `w + enc.len() <= r`.
        s[w..w + enc.len()].copy_from_slice(enc);
        w += enc.len();
    }
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::{String, ToString};

    fn ok(line: &str) -> (String, Kind, String, InferOptions) {
        let mut buf = line.as_bytes().to_vec();
        let r = parse(&mut buf).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        (
            r.id.as_str().to_string(),
            r.kind,
            r.text.to_string(),
            r.options,
        )
    }
    fn err(line: &[u8]) -> (String, ErrorCode) {
        let mut buf = line.to_vec();
        let e = parse(&mut buf).expect_err(&String::from_utf8_lossy(line));
        (e.id.as_str().to_string(), e.code)
    }

    #[test]
    fn parses_requests_like_serde_json() {
        let cases = [
            r#"{"id": 1, "text": "hello"}"#,
            r#"{"text":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00","id":"req-7","top_k":3}"#,
            r#" { "id" : -2.5e3 , "type" : "info" } "#,
            r#"{"id":null,"text":"x","extra":{"a":[1,{"b":[true,false,null,"s"]}],"c":"]"},"truncate":false}"#,
            r#"{"text":"","aggregation_strategy":"max","top_k":null}"#,
            r#"{"text":"日本語 🙂","type":"infer","ignored":[],"also":{}}"#,
        ];
        for line in cases {
            let (id, _kind, text, _opts) = ok(line);
            // The reference: serde_json's reading of the same line.
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(text, v["text"].as_str().unwrap_or(""), "{line}");
            let id_v: serde_json::Value = serde_json::from_str(&id).unwrap();
            assert_eq!(id_v, v["id"], "{line}");
        }
        let (_, kind, _, opts) = ok(cases[3]);
        assert_eq!(kind, Kind::Infer);
        assert!(!opts.truncate);
        let (_, _, _, opts) = ok(cases[4]);
        assert_eq!((opts.top_k, opts.aggregation), (0, Aggregation::Max));
        let (_, kind, _, _) = ok(cases[2]);
        assert_eq!(kind, Kind::Info);
        assert_eq!(ok(cases[1]).3.top_k, 3);
    }

    #[test]
    fn bad_lines_get_codes_and_keep_their_id() {
        assert_eq!(err(b"{\"id\":5}").1, ErrorCode::BadRequest); // no text
        assert_eq!(err(b"{\"id\":5}"), ("5".into(), ErrorCode::BadRequest));
        assert_eq!(
            err(b"{\"id\":5,\"text\":\"\xff\"}").1,
            ErrorCode::InvalidUtf8
        );
        assert_eq!(
            err(b"{\"id\":6,\"text\":1}"),
            ("6".into(), ErrorCode::BadRequest)
        );
        assert_eq!(
            err(b"{\"id\":\"a\",\"type\":\"reboot\"}"),
            ("\"a\"".into(), ErrorCode::UnknownMessage)
        );
        assert_eq!(err(b"{\"id\":7,\"text\":\"x\",}").1, ErrorCode::BadFrame);
        assert_eq!(err(b"{\"id\":7,\"text\":\"x\"} x").1, ErrorCode::BadFrame);
        assert_eq!(err(b"[1,2]").1, ErrorCode::BadFrame);
        assert_eq!(err(b"{\"text\":\"\\ud800\"}").1, ErrorCode::BadRequest);
        assert_eq!(err(b"{\"text\":\"\\x\"}").1, ErrorCode::BadFrame);
        assert_eq!(err(b"{\"text\":\"a\x01b\"}").1, ErrorCode::BadFrame);
        assert_eq!(err(b"{\"id\":01,\"text\":\"a\"}").1, ErrorCode::BadFrame);
        assert_eq!(
            err(b"{\"text\":\"a\",\"top_k\":-1}").1,
            ErrorCode::BadRequest
        );
        assert_eq!(
            err(b"{\"text\":\"a\",\"top_k\":70000}").1,
            ErrorCode::BadRequest
        );
        assert_eq!(
            err(b"{\"text\":\"a\",\"aggregation_strategy\":\"mean\"}").1,
            ErrorCode::BadRequest
        );
        let long_id = format!("{{\"id\":\"{}\",\"text\":\"a\"}}", "x".repeat(70));
        assert_eq!(err(long_id.as_bytes()).1, ErrorCode::BadRequest);
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(err(deep.as_bytes()).1, ErrorCode::BadFrame);
    }

    #[test]
    fn random_lines_never_panic() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"{}[]\":,\\u0123456789abcdefnulltrx -.eE\xc3\xa9";
        let base = br#"{"id":1,"text":"a\u00e9\n","top_k":2,"x":[{"y":null}]}"#;
        for round in 0..50_000 {
            let mut line = base.to_vec();
            let edits = 1 + round % 4;
            for _ in 0..edits {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let i = (s as usize >> 8) % (line.len() + 1);
                let c = alphabet[(s as usize >> 32) % alphabet.len()];
                match s % 3 {
                    0 if i < line.len() => line[i] = c,
                    1 if i < line.len() => {
                        line.remove(i);
                    }
                    _ => line.insert(i, c),
                }
            }
            let reference = serde_json::from_slice::<serde_json::Value>(&line);
            let mut buf = line.clone();
            if let Ok(r) = parse(&mut buf) {
                // Whatever we accept, serde_json reads the same text.
                let v = reference.unwrap_or_else(|e| {
                    panic!(
                        "accepted invalid JSON {:?}: {e}",
                        String::from_utf8_lossy(&line)
                    )
                });
                if r.kind == Kind::Infer {
                    assert_eq!(Some(r.text), v["text"].as_str());
                }
            }
        }
    }
}
