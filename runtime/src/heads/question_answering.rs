//! Extractive question answering with the semantics of Hugging Face's `question-answering`
//! pipeline (transformers 4.x `pipelines/question_answering.py`, fast tokenizer,
//! `align_to_words=True`): per window, start and end logits of tokens that are neither context
//! nor `[CLS]` are set to -10000, both are softmaxed, `[CLS]`'s start x end product is the null
//! score, then `[CLS]` is zeroed and the best `2 * top_k + 10` spans (`start <= end`,
//! `end - start < max_answer_len`, both in the context) are kept. Each span widens to the words
//! of its first and last token (within the window); answers with the same text (case-insensitive)
//! add their scores, across windows too. With `handle_impossible_answer`, the empty answer scores
//! the smallest null score over the windows. The best `top_k` answers win (stable on ties).
//!
//! `max_question_len` is not offered: the pipeline only applies it with slow tokenizers (a fast
//! tokenizer, which bertq reproduces, keeps the whole question; a question that leaves no room
//! for the context is an error there and [`crate::RunError::QuestionTooLong`] here).
//!
//! One difference, on purpose: the pipeline can pad its candidate list with zero-score spans
//! (including `end < start`) when a window has fewer valid spans than `2 * top_k + 10`; those
//! never reach the top unless there are no real answers, and are not reproduced here.
//!
//! Allocation-free: candidates live in a fixed array on the stack, answers in session memory.

use super::Entity;
use crate::tokenizer::Token;

/// The most answers one run returns (`top_k` is clamped to it).
pub const MAX_TOP_K: usize = 32;
/// Candidate spans kept per window: the pipeline's `top_k * 2 + 10` at [`MAX_TOP_K`].
pub const MAX_CANDIDATES: usize = 2 * MAX_TOP_K + 10;

/// The pipeline's options (its defaults in [`QaOptions::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QaOptions {
    /// Answers to return (default 1, at most [`MAX_TOP_K`]).
    pub top_k: usize,
    /// Context tokens shared by consecutive windows; `None` = the pipeline's default,
    /// `min(max_seq / 2, 128)`.
    pub doc_stride: Option<usize>,
    /// Longest answer in tokens (default 15).
    pub max_answer_len: usize,
    /// Also offer the empty answer, scored by `[CLS]` (default false).
    pub handle_impossible_answer: bool,
}

impl Default for QaOptions {
    fn default() -> Self {
        QaOptions {
            top_k: 1,
            doc_stride: None,
            max_answer_len: 15,
            handle_impossible_answer: false,
        }
    }
}

impl QaOptions {
    /// Candidates kept per window (the pipeline's `pre_topk`).
    pub fn candidates(&self) -> usize {
        2 * self.top_k.clamp(1, MAX_TOP_K) + 10
    }
}

/// The pipeline's default `doc_stride` for windows of `max_seq` tokens.
pub fn default_doc_stride(max_seq: usize) -> usize {
    (max_seq / 2).min(128)
}

/// `(start, stop)` content ranges of `len` tokens cut into windows of `window` tokens that
/// overlap by `stride`, as `tokenizers`' `Encoding::truncate` with overflow cuts them: starts
/// step by `window - stride` until a window reaches the end. Needs `stride < window`.
pub fn windows(len: usize, window: usize, stride: usize) -> impl Iterator<Item = (usize, usize)> {
    let step = window.saturating_sub(stride).max(1);
    let mut start = 0;
    let mut done = false;
    core::iter::from_fn(move || {
        if done {
            return None;
        }
        let stop = (start + window).min(len);
        let range = (start, stop);
        done = stop == len;
        start += step;
        Some(range)
    })
}

/// Softmax over `x` with numpy's formula (`exp(x - max) / sum`).
fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = libm::expf(*v - max);
        sum += *v;
    }
    x.iter_mut().for_each(|v| *v /= sum);
}

/// One window's candidate spans (token indices in the window) and its null score.
#[derive(Debug, Clone, Copy)]
pub struct Candidates {
    pub spans: [(f32, u16, u16); MAX_CANDIDATES],
    pub len: usize,
    /// `[CLS]` start x end probability (before `[CLS]` is masked).
    pub null_score: f32,
}

/// Scores the spans of one window. `logits` is `[seq, 2]` (start, end per token); `probs` needs
/// `2 * seq` floats; the context is the window's tokens `context.0..context.1`.
pub fn window_candidates(
    logits: &[f32],
    probs: &mut [f32],
    seq: usize,
    context: (usize, usize),
    max_answer_len: usize,
    keep: usize,
) -> Candidates {
    let (start, rest) = probs.split_at_mut(seq);
    let end = &mut rest[..seq];
    let allowed = |t: usize| t == 0 || (context.0..context.1).contains(&t);
    for t in 0..seq {
        let (s, e) = if allowed(t) {
            (logits[2 * t], logits[2 * t + 1])
        } else {
            (-10000.0, -10000.0)
        };
        start[t] = s;
        end[t] = e;
    }
    softmax(start);
    softmax(end);
    let null_score = start[0] * end[0];
    let keep = keep.min(MAX_CANDIDATES);
    let mut c = Candidates {
        spans: [(0.0, 0, 0); MAX_CANDIDATES],
        len: 0,
        null_score,
    };
    for (s, &p_start) in start.iter().enumerate().take(context.1).skip(context.0) {
        let last = (s + max_answer_len).min(context.1);
        for (e, &p_end) in end.iter().enumerate().take(last).skip(s) {
            let score = p_start * p_end;
            // Sorted insert, best first; an equal score stays behind the earlier span.
            let mut i = c.len;
            while i > 0 && c.spans[i - 1].0 < score {
                i -= 1;
            }
            if i >= keep {
                continue;
            }
            let n = c.len.min(keep - 1);
            c.spans.copy_within(i..n, i + 1);
            c.spans[i] = (score, s as u16, e as u16);
            c.len = (c.len + 1).min(keep);
        }
    }
    c
}

/// The character and byte span of the words of window tokens `s` and `e` (`word_to_chars` of
/// their words, only counting tokens of the window's context).
pub fn word_span(window: &[Token], context: (usize, usize), s: usize, e: usize) -> Entity {
    let mut first = s;
    while first > context.0 && window[first - 1].word == window[s].word {
        first -= 1;
    }
    let mut last = e;
    while last + 1 < context.1 && window[last + 1].word == window[e].word {
        last += 1;
    }
    let (a, b) = (&window[first], &window[last]);
    Entity {
        label: 0,
        score: 0.0,
        start: a.start,
        end: b.end,
        byte_start: a.byte_start,
        byte_end: b.byte_end,
        index: s as u32,
    }
}

/// Python's `a.lower() == b.lower()`, without allocating.
fn same_lowercase(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// Adds `span` (text `context[byte_start..byte_end]`) to `answers[..count]`: its score joins
/// an answer with the same text, else it is appended. Returns the new count (unchanged when
/// `answers` is full; the session sizes it so that it never is).
pub fn add_answer(context: &str, answers: &mut [Entity], count: usize, span: Entity) -> usize {
    let text = |e: &Entity| context.get(e.byte_start as usize..e.byte_end as usize);
    let new = text(&span).unwrap_or("");
    if let Some(a) = answers[..count]
        .iter_mut()
        .find(|a| same_lowercase(text(a).unwrap_or(""), new))
    {
        a.score += span.score;
        return count;
    }
    match answers.get_mut(count) {
        Some(slot) => {
            *slot = span;
            count + 1
        }
        None => count,
    }
}

/// Orders answers by descending score, keeping insertion order on ties (Python's stable sort).
pub fn sort_answers(answers: &mut [Entity]) {
    for i in 1..answers.len() {
        let mut j = i;
        while j > 0 && answers[j].score > answers[j - 1].score {
            answers.swap(j, j - 1);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_tokenizers_overflow() {
        let w: heapless::Vec<(usize, usize), 8> = windows(10, 4, 1).collect();
        assert_eq!(&w[..], &[(0, 4), (3, 7), (6, 10)]);
        let w: heapless::Vec<(usize, usize), 8> = windows(3, 4, 1).collect();
        assert_eq!(&w[..], &[(0, 3)]);
        let w: heapless::Vec<(usize, usize), 8> = windows(9, 4, 0).collect();
        assert_eq!(&w[..], &[(0, 4), (4, 8), (8, 9)]);
    }

    #[test]
    fn lowercase_comparison() {
        assert!(same_lowercase("Zoë Paris", "zoË paris"));
        assert!(!same_lowercase("Zoe", "Zoë"));
    }
}
