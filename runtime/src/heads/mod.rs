//! Task heads on top of the encoder and the decoding of their outputs, in Hugging Face pipeline
//! semantics. Nothing here allocates: outputs are written into session memory.

pub mod json;

use crate::format::{names, LoadError, ModelConfig, ModelFile, Pooling, TaskHead};
use crate::kernels::reference::softmax;
use crate::kernels::{GemmF32, Kernels};
use crate::model::bert::Linear;
use crate::tokenizer::{Token, NO_WORD};

/// The head's weights.
#[derive(Debug, Clone, Copy)]
pub enum Head<'a> {
    Embedding {
        pooling: Pooling,
        normalize: bool,
    },
    SequenceClassification {
        pooler: Linear<'a>,
        classifier: Linear<'a>,
        multi_label: bool,
    },
    TokenClassification {
        classifier: Linear<'a>,
    },
}

impl<'a> Head<'a> {
    pub fn load(
        file: &ModelFile<'a>,
        c: &ModelConfig,
        num_labels: usize,
    ) -> Result<Self, LoadError> {
        let h = c.hidden_size as usize;
        let need_labels = || {
            if num_labels == 0 {
                Err(LoadError::InvalidLabels)
            } else {
                Ok(())
            }
        };
        Ok(match file.header.task {
            TaskHead::Embedding { pooling, normalize } => Head::Embedding { pooling, normalize },
            TaskHead::SequenceClassification { multi_label } => {
                need_labels()?;
                Head::SequenceClassification {
                    pooler: Linear::load(file, names::POOLER, h, h)?,
                    classifier: Linear::load(file, names::CLASSIFIER, num_labels, h)?,
                    multi_label,
                }
            }
            TaskHead::TokenClassification => {
                need_labels()?;
                Head::TokenClassification {
                    classifier: Linear::load(file, names::CLASSIFIER, num_labels, h)?,
                }
            }
        })
    }

    /// f32 values the head writes per sequence of `seq` tokens (logits / scores / embedding).
    pub fn output_len(&self, c: &ModelConfig, seq: usize) -> usize {
        let h = c.hidden_size as usize;
        match self {
            Head::Embedding { .. } => h,
            // Pooled [CLS] state, then the label scores.
            Head::SequenceClassification { classifier, .. } => h + classifier.n,
            Head::TokenClassification { classifier } => seq * classifier.n,
        }
    }

    pub fn parameter_count(&self) -> usize {
        let lin = |l: &Linear<'_>| l.n * l.k + l.n;
        match self {
            Head::Embedding { .. } => 0,
            Head::SequenceClassification {
                pooler, classifier, ..
            } => lin(pooler) + lin(classifier),
            Head::TokenClassification { classifier } => lin(classifier),
        }
    }
}

/// f32 head layers on a few rows (the head is tiny next to the encoder; keep it exact).
fn linear_f32(kernels: &Kernels, l: &Linear<'_>, x: &[f32], m: usize, out: &mut [f32]) {
    let p = GemmF32 {
        m,
        n: l.n,
        k: l.k,
        a: &x[..m * l.k],
        w: l.weight,
        bias: Some(l.bias),
    };
    (kernels.gemm_f32)(&p, &mut out[..m * l.n]);
}

/// Mean or `[CLS]` pooling of `hidden` (`[seq, h]`) into `out`, optionally L2-normalised
/// (sentence-transformers: `x / max(||x||, 1e-12)`).
pub fn pool_embedding(
    hidden: &[f32],
    h: usize,
    pooling: Pooling,
    normalize: bool,
    out: &mut [f32],
) {
    let seq = hidden.len() / h.max(1);
    let out = &mut out[..h];
    match pooling {
        Pooling::Cls => out.copy_from_slice(&hidden[..h]),
        Pooling::Mean => {
            out.fill(0.0);
            for row in hidden.chunks_exact(h) {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o += v;
                }
            }
            let inv = 1.0 / seq.max(1) as f32;
            out.iter_mut().for_each(|o| *o *= inv);
        }
    }
    if normalize {
        let norm = libm::sqrtf(out.iter().map(|v| v * v).sum::<f32>()).max(1e-12);
        out.iter_mut().for_each(|o| *o /= norm);
    }
}

/// Sequence classification: pooler (dense + tanh on `[CLS]`), classifier, softmax or sigmoid.
/// `out` = `[pooled (h) | scores (labels)]`; returns the scores.
pub fn classify<'o>(
    kernels: &Kernels,
    pooler: &Linear<'_>,
    classifier: &Linear<'_>,
    multi_label: bool,
    hidden: &[f32],
    out: &'o mut [f32],
) -> &'o mut [f32] {
    let h = pooler.k;
    let (pooled, scores) = out.split_at_mut(h);
    linear_f32(kernels, pooler, &hidden[..h], 1, pooled);
    pooled.iter_mut().for_each(|v| *v = libm::tanhf(*v));
    let scores = &mut scores[..classifier.n];
    linear_f32(kernels, classifier, pooled, 1, scores);
    if multi_label {
        scores
            .iter_mut()
            .for_each(|v| *v = 1.0 / (1.0 + libm::expf(-*v)));
    } else {
        softmax(scores);
    }
    scores
}

/// Orders label indices by descending score (ties keep the lower index first), without allocating.
pub fn rank(scores: &[f32], ranking: &mut [u32]) {
    let n = scores.len().min(ranking.len());
    for (i, r) in ranking[..n].iter_mut().enumerate() {
        *r = i as u32;
    }
    // Insertion sort: label counts are small and this keeps the order stable.
    for i in 1..n {
        let mut j = i;
        while j > 0 && scores[ranking[j] as usize] > scores[ranking[j - 1] as usize] {
            ranking.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// One entity found by token classification (Hugging Face `aggregation_strategy="simple"`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Entity {
    /// The label id of the entity's first token; [`crate::model::Labels::entity_group`] names it.
    pub label: u32,
    /// Mean of the member tokens' scores.
    pub score: f32,
    /// Character offsets into the original text (end exclusive).
    pub start: u32,
    pub end: u32,
    /// Byte offsets into the original text: `word = &text[byte_start..byte_end]`.
    pub byte_start: u32,
    pub byte_end: u32,
}

/// Token logits `[seq, labels]` -> per-token probabilities (in place) -> entities grouped with
/// Hugging Face's `simple` strategy: consecutive tokens of the same type join unless a token is
/// tagged `B-`; labels without a B-/I- prefix act as `I-`; entities of `ignore` (e.g. `O`) are
/// dropped. Special tokens are skipped. Returns how many entities were written.
pub fn group_entities(
    labels: &crate::model::Labels<'_>,
    tokens: &[Token],
    probs: &mut [f32],
    num_labels: usize,
    ignore: &[&str],
    out: &mut [Entity],
) -> usize {
    let mut count = 0;
    // The open group: (entity, number of member tokens, sum of scores).
    let mut open: Option<(Entity, u32, f32)> = None;
    let mut flush = |g: (Entity, u32, f32), count: &mut usize| {
        let (mut e, n, sum) = g;
        e.score = sum / n as f32;
        let group = labels.entity_group(e.label as usize);
        if !ignore.contains(&group) && *count < out.len() {
            out[*count] = e;
            *count += 1;
        }
    };
    for (t, tok) in tokens.iter().enumerate() {
        let row = &mut probs[t * num_labels..(t + 1) * num_labels];
        if tok.word == NO_WORD {
            continue;
        }
        softmax(row);
        let (best, score) =
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bs), (i, &s)| {
                    if s > bs {
                        (i, s)
                    } else {
                        (bi, bs)
                    }
                });
        let (is_begin, tag) = labels.bio_tag(best);
        let entity = Entity {
            label: best as u32,
            score,
            start: tok.start,
            end: tok.end,
            byte_start: tok.byte_start,
            byte_end: tok.byte_end,
        };
        match open.as_mut() {
            Some((e, n, sum)) if !is_begin && labels.bio_tag(e.label as usize).1 == tag => {
                e.end = tok.end;
                e.byte_end = tok.byte_end;
                *n += 1;
                *sum += score;
            }
            _ => {
                if let Some(g) = open.take() {
                    flush(g, &mut count);
                }
                open = Some((entity, 1, score));
            }
        }
    }
    if let Some(g) = open.take() {
        flush(g, &mut count);
    }
    count
}

/// Token classification logits for every token.
pub fn token_logits(
    kernels: &Kernels,
    classifier: &Linear<'_>,
    hidden: &[f32],
    seq: usize,
    out: &mut [f32],
) {
    linear_f32(kernels, classifier, hidden, seq, out);
}
