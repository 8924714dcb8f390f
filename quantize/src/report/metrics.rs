//! The accuracy metrics, as the reference tools define them: seqeval's entity chunking and
//! micro-averaged precision/recall/F1 (exact match of type, start and end), expected
//! calibration error, and order statistics of cosine similarities.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// An entity: type and half-open span (token, word or character positions).
pub type Chunk = (String, usize, usize);

/// seqeval's reading of one tag: (prefix, type). `B-PER` -> ('B', "PER"), `O` -> ('O', "_").
fn split_tag(tag: &str) -> (char, String) {
    let mut chars = tag.chars();
    let prefix = chars.next().unwrap_or('O');
    let rest = chars.as_str();
    let ty = rest.split_once('-').map_or(rest, |(_, t)| t);
    (
        prefix,
        if ty.is_empty() {
            "_".into()
        } else {
            ty.to_string()
        },
    )
}

fn end_of_chunk(prev: char, tag: char, prev_type: &str, ty: &str) -> bool {
    matches!(prev, 'E' | 'S')
        || (prev == 'B' && matches!(tag, 'B' | 'S' | 'O'))
        || (prev == 'I' && matches!(tag, 'B' | 'S' | 'O'))
        || (prev != 'O' && prev != '.' && prev_type != ty)
}

fn start_of_chunk(prev: char, tag: char, prev_type: &str, ty: &str) -> bool {
    matches!(tag, 'B' | 'S')
        || (prev == 'E' && matches!(tag, 'E' | 'I'))
        || (prev == 'S' && matches!(tag, 'E' | 'I'))
        || (prev == 'O' && matches!(tag, 'E' | 'I'))
        || (tag != 'O' && tag != '.' && prev_type != ty)
}

/// Entities of a tag sequence with `seqeval.metrics.sequence_labeling.get_entities` semantics
/// (IOB1/IOB2/IOBES, default non-strict mode: an `I-` after `O` or another type starts an
/// entity). Spans are half-open: `(type, first, last + 1)`.
pub fn chunks<S: AsRef<str>>(tags: &[S]) -> Vec<Chunk> {
    let mut out = Vec::new();
    let (mut prev, mut prev_type) = ('O', String::new());
    let mut begin = 0usize;
    for (i, t) in tags
        .iter()
        .map(|t| t.as_ref())
        .chain(std::iter::once("O"))
        .enumerate()
    {
        let (tag, ty) = split_tag(t);
        if end_of_chunk(prev, tag, &prev_type, &ty) {
            out.push((prev_type.clone(), begin, i));
        }
        if start_of_chunk(prev, tag, &prev_type, &ty) {
            begin = i;
        }
        prev = tag;
        prev_type = ty;
    }
    out
}

/// Micro-averaged entity scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Reference entities, predicted entities, exact matches.
    pub reference: usize,
    pub predicted: usize,
    pub correct: usize,
}

impl Prf {
    pub fn from_counts(reference: usize, predicted: usize, correct: usize) -> Self {
        let div = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (p, r) = (div(correct, predicted), div(correct, reference));
        Prf {
            precision: p,
            recall: r,
            f1: if p + r == 0.0 {
                0.0
            } else {
                2.0 * p * r / (p + r)
            },
            reference,
            predicted,
            correct,
        }
    }
}

/// Accumulates exact-match entity counts over many sentences, overall and per type.
#[derive(Debug, Clone, Default)]
pub struct EntityCounts {
    total: [usize; 3],
    by_type: BTreeMap<String, [usize; 3]>,
}

impl EntityCounts {
    /// Adds one sentence: `reference` and `predicted` entities (duplicates count once, as the
    /// sets seqeval compares).
    pub fn add(&mut self, reference: &[Chunk], predicted: &[Chunk]) {
        let r: BTreeSet<&Chunk> = reference.iter().collect();
        let p: BTreeSet<&Chunk> = predicted.iter().collect();
        for (set, slot) in [(&r, 0), (&p, 1)] {
            for c in set.iter() {
                self.total[slot] += 1;
                self.by_type.entry(c.0.clone()).or_default()[slot] += 1;
            }
        }
        for c in r.intersection(&p) {
            self.total[2] += 1;
            self.by_type.entry(c.0.clone()).or_default()[2] += 1;
        }
    }

    pub fn overall(&self) -> Prf {
        Prf::from_counts(self.total[0], self.total[1], self.total[2])
    }

    pub fn per_type(&self) -> BTreeMap<String, Prf> {
        self.by_type
            .iter()
            .map(|(k, c)| (k.clone(), Prf::from_counts(c[0], c[1], c[2])))
            .collect()
    }
}

/// Expected calibration error of top-1 confidences (`bins` equal-width bins over (0, 1],
/// weighted by their share of the examples), Guo et al. 2017.
pub fn expected_calibration_error(confidence: &[f64], correct: &[bool], bins: usize) -> f64 {
    let n = confidence.len().min(correct.len());
    if n == 0 || bins == 0 {
        return 0.0;
    }
    let mut sum_conf = vec![0f64; bins];
    let mut sum_acc = vec![0f64; bins];
    let mut count = vec![0usize; bins];
    for (&c, &ok) in confidence.iter().zip(correct) {
        let b = ((c * bins as f64).ceil() as usize).clamp(1, bins) - 1;
        sum_conf[b] += c;
        sum_acc[b] += if ok { 1.0 } else { 0.0 };
        count[b] += 1;
    }
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| (sum_acc[b] - sum_conf[b]).abs() / n as f64)
        .sum()
}

/// Distribution of a sample: mean, extremes and percentiles (linear interpolation between
/// order statistics, as numpy's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Distribution {
    pub count: usize,
    pub mean: f64,
    pub min: f64,
    pub p1: f64,
    pub p5: f64,
    pub p50: f64,
    pub max: f64,
}

pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

pub fn distribution(values: &[f64]) -> Distribution {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return Distribution::default();
    }
    Distribution {
        count: v.len(),
        mean: v.iter().sum::<f64>() / v.len() as f64,
        min: v[0],
        p1: percentile(&v, 1.0),
        p5: percentile(&v, 5.0),
        p50: percentile(&v, 50.0),
        max: v[v.len() - 1],
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += x as f64 * y as f64;
        aa += x as f64 * x as f64;
        bb += y as f64 * y as f64;
    }
    ab / (aa.sqrt() * bb.sqrt()).max(1e-30)
}
