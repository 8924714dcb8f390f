//! Fill-mask (`BertForMaskedLM`): the prediction head on every `[MASK]` token, top-k over the
//! vocabulary, and WordPiece decoding of the results as Hugging Face's `fill-mask` pipeline
//! prints them (`token_str`, `sequence`).
//!
//! Session memory holds one vocabulary-sized logits row, reused for each mask, and the results of
//! at most [`MAX_MASKS`] masks x [`MAX_TOP_K`] candidates.

use crate::format::{Activation, TokenizerSettings};
use crate::kernels::reference::softmax;
use crate::kernels::{GemmF32, Kernels, Weights};
use crate::model::bert::{LayerNorm, Linear};
use crate::tokenizer::{Token, Vocab};

/// The most `[MASK]` tokens one text may hold (more is [`crate::session::RunError::Masks`]).
pub const MAX_MASKS: usize = 16;
/// The most candidates returned per mask (`top_k` is clamped to it and to the vocabulary).
pub const MAX_TOP_K: usize = 32;

/// The masked-LM head: `LayerNorm(act(dense(h)))`, then `embeddings^T x + bias`.
#[derive(Debug, Clone, Copy)]
pub struct MaskedLmHead<'a> {
    pub transform: Linear<'a>,
    pub norm: LayerNorm<'a>,
    /// The word embedding table `[vocab, hidden]` (tied decoder), int8 row-major or f32.
    pub decoder: Weights<'a>,
    /// `[vocab]`.
    pub bias: &'a [f32],
    pub vocab: usize,
}

impl MaskedLmHead<'_> {
    /// f32 values the head needs: the transformed row, the logits row, the result scores.
    pub fn f32_len(&self) -> usize {
        self.transform.n + self.vocab + MAX_MASKS * MAX_TOP_K
    }
    /// u32 values: the result token ids, then the mask positions.
    pub fn index_len(&self) -> usize {
        MAX_MASKS * MAX_TOP_K + MAX_MASKS
    }
    pub fn parameter_count(&self) -> usize {
        let h = self.transform.n;
        h * h + h + 2 * h + self.vocab
    }
}

/// Where [`predict`] put its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Predicted {
    pub masks: usize,
    pub top_k: usize,
}

/// The number of `mask_id` tokens in `tokens`.
pub fn count_masks(tokens: &[Token], mask_id: u32) -> usize {
    tokens.iter().filter(|t| t.id == mask_id).count()
}

/// Runs the head on every mask of `tokens` (at most [`MAX_MASKS`], checked by the caller).
/// `out` is at least [`MaskedLmHead::f32_len`], `indices` at least [`MaskedLmHead::index_len`].
/// Result `m`, rank `r`: id `indices[m * top_k + r]`, probability `out[h + vocab + m * top_k + r]`;
/// the mask's token position is `indices[MAX_MASKS * MAX_TOP_K + m]`.
#[allow(clippy::too_many_arguments)]
pub fn predict(
    kernels: &Kernels,
    head: &MaskedLmHead<'_>,
    activation: Activation,
    hidden: &[f32],
    tokens: &[Token],
    mask_id: u32,
    top_k: usize,
    out: &mut [f32],
    indices: &mut [u32],
) -> Predicted {
    let h = head.transform.k;
    let v = head.vocab;
    let k = top_k.clamp(1, MAX_TOP_K.min(v));
    let (row, rest) = out.split_at_mut(h);
    let (logits, results) = rest.split_at_mut(v);
    let (ids, positions) = indices.split_at_mut(MAX_MASKS * MAX_TOP_K);
    let mut masks = 0;
    for (t, token) in tokens.iter().enumerate() {
        if token.id != mask_id || masks == MAX_MASKS {
            continue;
        }
        let x = &hidden[t * h..(t + 1) * h];
        let dense = GemmF32 {
            m: 1,
            n: h,
            k: h,
            a: x,
            w: head.transform.weight,
            bias: Some(head.transform.bias),
        };
        (kernels.gemm_f32)(&dense, row);
        (kernels.activate)(activation, row, h, None);
        head.norm.forward(kernels, row, None);
        let decode = GemmF32 {
            m: 1,
            n: v,
            k: h,
            a: row,
            w: head.decoder,
            bias: Some(head.bias),
        };
        (kernels.gemm_f32)(&decode, logits);
        softmax(logits);
        let base = masks * k;
        select_top_k(
            logits,
            &mut ids[base..base + k],
            &mut results[base..base + k],
        );
        positions[masks] = t as u32;
        masks += 1;
    }
    Predicted { masks, top_k: k }
}

/// The `ids.len()` largest values of `probs`, descending (ties: lower id first).
pub fn select_top_k(probs: &[f32], ids: &mut [u32], scores: &mut [f32]) {
    let k = ids.len().min(scores.len()).min(probs.len());
    if k == 0 {
        return;
    }
    let mut n = 0;
    for (i, &p) in probs.iter().enumerate() {
        let mut j = if n < k {
            n += 1;
            n - 1
        } else if p > scores[k - 1] {
            k - 1
        } else {
            continue;
        };
        while j > 0 && p > scores[j - 1] {
            scores[j] = scores[j - 1];
            ids[j] = ids[j - 1];
            j -= 1;
        }
        scores[j] = p;
        ids[j] = i as u32;
    }
}

/// Whether `id` is one of the tokenizer's special tokens (`all_special_ids`).
pub fn is_special(s: &TokenizerSettings, id: u32) -> bool {
    id == s.cls_id || id == s.sep_id || id == s.pad_id || id == s.unk_id || id == s.mask_id
}

/// The ids the pipeline decodes into `sequence` for candidate `id` at token `position`: the input
/// with that mask replaced, `[PAD]` dropped, and (for a single mask) all special tokens dropped.
pub fn sequence_ids<'t>(
    tokens: &'t [Token],
    settings: &'t TokenizerSettings,
    position: usize,
    id: u32,
    single_mask: bool,
) -> impl Iterator<Item = u32> + 't {
    tokens
        .iter()
        .enumerate()
        .map(move |(t, tok)| if t == position { id } else { tok.id })
        .filter(move |&i| i != settings.pad_id && !(single_mask && is_special(settings, i)))
}

/// The clean-up of `tokenizers`' WordPiece decoder, applied to each token as it is appended
/// (with its leading space): spaces before punctuation and English contractions.
const CLEAN_UP: [(&str, &str); 11] = [
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" do not", " don't"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
];

/// `tokenizer.decode(ids)` of a `BertTokenizerFast` (pass the ids already filtered, e.g. by
/// [`sequence_ids`]): `tokenizers`' WordPiece decoder with its clean-up. Tokens are joined with
/// spaces, a `##` continuation is glued to the previous token (not as the first token), and each
/// appended piece is cleaned up. Python's extra `clean_up_tokenization_spaces` pass (off for
/// tokenizers built as in the fixtures, on in some checkpoints) is not applied: it only differs
/// for contractions split over several tokens. Printing-side only: it allocates.
#[cfg(feature = "std")]
pub fn decode(vocab: &Vocab<'_>, ids: impl Iterator<Item = u32>) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write_decoded(&mut s, vocab, ids, false);
    s
}

/// The fill-mask pipeline's JSON, allocation-free: `[{"score","token","token_str","sequence"}]`
/// for one mask, a list of such lists for several (`ids`/`scores`: `top_k` per mask, as
/// [`crate::TaskOutput::FillMask`] holds them). `token_str` is `tokenizer.decode([token])`,
/// `sequence` the decoded input with that mask filled (special tokens dropped only when there
/// is one mask).
#[allow(clippy::too_many_arguments)]
pub fn write_json<W: core::fmt::Write>(
    w: &mut W,
    vocab: &Vocab<'_>,
    settings: &TokenizerSettings,
    tokens: &[Token],
    top_k: usize,
    positions: &[u32],
    ids: &[u32],
    scores: &[f32],
) -> core::fmt::Result {
    let single = positions.len() == 1;
    if !single {
        w.write_char('[')?;
    }
    for (m, &position) in positions.iter().enumerate() {
        if m > 0 {
            w.write_char(',')?;
        }
        w.write_char('[')?;
        let row = m * top_k..(m + 1) * top_k;
        let candidates = ids.get(row.clone()).unwrap_or(&[]);
        let probs = scores.get(row).unwrap_or(&[]);
        for (r, (&id, &score)) in candidates.iter().zip(probs).enumerate() {
            if r > 0 {
                w.write_char(',')?;
            }
            w.write_str("{\"score\":")?;
            super::json::write_f32(w, score)?;
            write!(w, ",\"token\":{id},\"token_str\":\"")?;
            write_decoded(w, vocab, core::iter::once(id), true)?;
            w.write_str("\",\"sequence\":\"")?;
            let seq = sequence_ids(tokens, settings, position as usize, id, single);
            write_decoded(w, vocab, seq, true)?;
            w.write_str("\"}")?;
        }
        w.write_char(']')?;
    }
    if !single {
        w.write_char(']')?;
    }
    Ok(())
}

/// The longest piece (a token and its leading space) that [`write_decoded`] cleans up; longer
/// vocabulary entries (none in BERT vocabularies) are written as they are.
const MAX_PIECE: usize = 256;

/// [`decode`] without allocating, written to `w`; `json`: escaped for the inside of a JSON
/// string. Each piece is cleaned up in a stack buffer.
pub fn write_decoded<W: core::fmt::Write + ?Sized>(
    w: &mut W,
    vocab: &Vocab<'_>,
    ids: impl Iterator<Item = u32>,
    json: bool,
) -> core::fmt::Result {
    let mut out = |s: &str| {
        if json {
            super::json::write_str_content(w, s)
        } else {
            w.write_str(s)
        }
    };
    for (i, id) in ids.enumerate() {
        let token = vocab.token(id).unwrap_or("");
        let (space, text) = if i == 0 {
            ("", token)
        } else if let Some(rest) = token.strip_prefix("##") {
            ("", rest)
        } else {
            (" ", token)
        };
        let mut a = [0u8; MAX_PIECE];
        let mut b = [0u8; MAX_PIECE];
        let Some(len) = space
            .len()
            .checked_add(text.len())
            .filter(|&n| n <= MAX_PIECE)
        else {
            out(space)?;
            out(text)?;
            continue;
        };
        a[..space.len()].copy_from_slice(space.as_bytes());
        a[space.len()..len].copy_from_slice(text.as_bytes());
        let mut len = len;
        for (from, to) in CLEAN_UP {
            len = replace_all(&a[..len], from.as_bytes(), to.as_bytes(), &mut b);
            a[..len].copy_from_slice(&b[..len]);
        }
        // Replacing whole ASCII substrings of UTF-8 keeps it UTF-8.
        out(core::str::from_utf8(&a[..len]).unwrap_or(""))?;
    }
    Ok(())
}

/// `src` with every non-overlapping `from` replaced by `to` (never longer: every `to` is at
/// most as long as its `from`), written to `dst`; returns the length.
fn replace_all(src: &[u8], from: &[u8], to: &[u8], dst: &mut [u8]) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < src.len() {
        if src[i..].starts_with(from) {
            dst[n..n + to.len()].copy_from_slice(to);
            n += to.len();
            i += from.len();
        } else {
            dst[n] = src[i];
            n += 1;
            i += 1;
        }
    }
    n
}
