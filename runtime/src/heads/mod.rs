//! Task heads on top of the encoder and the decoding of their outputs, in Hugging Face pipeline
//! semantics. Nothing here allocates: outputs are written into session memory.

pub mod fill_mask;
pub mod json;
pub mod question_answering;
pub mod token_classification;

pub use token_classification::Aggregation;

use crate::format::{names, LoadError, ModelConfig, ModelFile, Pooling, TaskHead};
use crate::kernels::reference::softmax;
use crate::kernels::{GemmF32, Kernels};
use crate::model::bert::{load_vector, load_weights, LayerNorm, Linear};
use fill_mask::MaskedLmHead;

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
    FillMask(MaskedLmHead<'a>),
    PooledClassification {
        pooling: Pooling,
        normalize: bool,
        classifier: Linear<'a>,
    },
    /// `qa_outputs`: start and end logits per token.
    QuestionAnswering {
        qa_outputs: Linear<'a>,
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
            TaskHead::FillMask => {
                let vocab = c.vocab_size as usize;
                Head::FillMask(MaskedLmHead {
                    transform: Linear::load(file, names::MLM_TRANSFORM, h, h)?,
                    norm: LayerNorm::load(file, names::MLM_LAYER_NORM, h, c.layer_norm_eps)?,
                    // The decoder is tied to the word embeddings: the same table, stored once.
                    decoder: load_weights(file, names::WORD_EMBEDDINGS, vocab, h)?,
                    bias: load_vector(file, names::MLM_BIAS, vocab)?,
                    vocab,
                })
            }
            TaskHead::PooledClassification { pooling, normalize } => {
                need_labels()?;
                Head::PooledClassification {
                    pooling,
                    normalize,
                    classifier: Linear::load(file, names::CLASSIFIER, num_labels, h)?,
                }
            }
            TaskHead::QuestionAnswering => Head::QuestionAnswering {
                qa_outputs: Linear::load(file, names::QA_OUTPUTS, 2, h)?,
            },
        })
    }

    /// f32 values the head writes per sequence of `seq` tokens (logits / scores / embedding).
    pub fn output_len(&self, c: &ModelConfig, seq: usize) -> usize {
        let h = c.hidden_size as usize;
        match self {
            Head::Embedding { .. } => h,
            // Pooled [CLS] state, then the label scores.
            Head::SequenceClassification { classifier, .. } => h + classifier.n,
            // The embedding, then the label scores.
            Head::PooledClassification { classifier, .. } => h + classifier.n,
            // Logits, then one row of scratch for `average` aggregation.
            Head::TokenClassification { classifier } => {
                (seq.saturating_add(1)).saturating_mul(classifier.n)
            }
            // The transformed row, one logits row reused per mask, the top-k scores.
            Head::FillMask(m) => m.f32_len(),
            // Interleaved start/end logits, then the start and the end probabilities.
            Head::QuestionAnswering { .. } => seq.saturating_mul(4),
        }
    }

    /// u32 values the head writes (label ranking, or fill-mask token ids and mask positions).
    pub fn index_len(&self, labels: usize) -> usize {
        match self {
            Head::FillMask(m) => m.index_len(),
            _ => labels.max(1),
        }
    }

    pub fn parameter_count(&self) -> usize {
        let lin = |l: &Linear<'_>| l.n * l.k + l.n;
        match self {
            Head::Embedding { .. } => 0,
            Head::SequenceClassification {
                pooler, classifier, ..
            } => lin(pooler) + lin(classifier),
            Head::TokenClassification { classifier }
            | Head::PooledClassification { classifier, .. } => lin(classifier),
            Head::QuestionAnswering { qa_outputs } => lin(qa_outputs),
            // The decoder is the word embedding table, counted with the encoder.
            Head::FillMask(m) => m.parameter_count(),
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
/// Hugging Face's `function_to_apply` for classification scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreFunction {
    Softmax,
    /// Independent per-label probabilities (multi-label models).
    Sigmoid,
    /// The raw logits.
    None,
}

impl ScoreFunction {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "softmax" => ScoreFunction::Softmax,
            "sigmoid" => ScoreFunction::Sigmoid,
            "none" => ScoreFunction::None,
            _ => return None,
        })
    }

    /// The pipeline's default: sigmoid for multi-label or single-output models, else softmax.
    pub fn default_for(multi_label: bool, num_labels: usize) -> Self {
        if multi_label || num_labels == 1 {
            ScoreFunction::Sigmoid
        } else {
            ScoreFunction::Softmax
        }
    }
}

pub fn classify<'o>(
    kernels: &Kernels,
    pooler: &Linear<'_>,
    classifier: &Linear<'_>,
    function: ScoreFunction,
    hidden: &[f32],
    out: &'o mut [f32],
) -> &'o mut [f32] {
    let h = pooler.k;
    let (pooled, scores) = out.split_at_mut(h);
    linear_f32(kernels, pooler, &hidden[..h], 1, pooled);
    pooled.iter_mut().for_each(|v| *v = libm::tanhf(*v));
    let scores = &mut scores[..classifier.n];
    linear_f32(kernels, classifier, pooled, 1, scores);
    apply_score_function(function, scores);
    scores
}

/// Applies `function` to logits in place.
fn apply_score_function(function: ScoreFunction, scores: &mut [f32]) {
    match function {
        ScoreFunction::Sigmoid => scores
            .iter_mut()
            .for_each(|v| *v = 1.0 / (1.0 + libm::expf(-*v))),
        ScoreFunction::Softmax => softmax(scores),
        ScoreFunction::None => {}
    }
}

/// Pooled classification: mean or `[CLS]` pooling (+ L2 norm), classifier, scores.
/// `out` = `[embedding (h) | scores (labels)]`; returns the scores.
pub fn classify_pooled<'o>(
    kernels: &Kernels,
    pooling: Pooling,
    normalize: bool,
    classifier: &Linear<'_>,
    function: ScoreFunction,
    hidden: &[f32],
    out: &'o mut [f32],
) -> &'o mut [f32] {
    let h = classifier.k;
    let (pooled, scores) = out.split_at_mut(h);
    pool_embedding(hidden, h, pooling, normalize, pooled);
    let scores = &mut scores[..classifier.n];
    linear_f32(kernels, classifier, pooled, 1, scores);
    apply_score_function(function, scores);
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

/// One entity found by token classification (see [`token_classification::decode`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C)]
pub struct Entity {
    /// The label id of the entity's first token (or word); [`crate::model::Labels::entity_group`]
    /// names its group, [`crate::model::Labels::get`] the full tag (`aggregation = none`).
    pub label: u32,
    /// Mean of the member tokens' scores.
    pub score: f32,
    /// Character offsets into the original text (end exclusive).
    pub start: u32,
    pub end: u32,
    /// Byte offsets into the original text: `word = &text[byte_start..byte_end]`.
    pub byte_start: u32,
    pub byte_end: u32,
    /// Index of the (first) token in the encoded sequence (Hugging Face's `index`).
    pub index: u32,
}

// SAFETY: `Entity` is `repr(C)` with seven 4-byte fields (`u32`, `f32`): no padding, every bit
// pattern valid.
unsafe impl bytemuck::Zeroable for Entity {}
// SAFETY: as above.
unsafe impl bytemuck::Pod for Entity {}

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
