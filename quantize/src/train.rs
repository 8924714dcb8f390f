//! `bertq-quantize train-head`: a linear softmax classifier (multinomial logistic regression with
//! L2) on frozen sentence embeddings, written as a [`TaskHead::PooledClassification`] model.
//!
//! - [`parse_tsv`]: `text<TAB>label` lines.
//! - [`embed`]: the encoder's pooled embeddings, computed by bertq's own int8 runtime (the
//!   classifier then sees exactly what it will see on the device).
//! - [`fit`]: accelerated gradient descent (FISTA with gradient restart) on the standardised
//!   features; the standardisation is folded into the written weights. Early stopping on the
//!   held-out loss; [`train`] picks the L2 strength by held-out accuracy.
//! - [`write_model`]: the encoder converted as usual plus the classifier.
//!
//! Everything is deterministic for a seed (single-threaded f64 arithmetic in a fixed order).

use crate::convert::{ConvertOptions, Input};
use crate::source::WeightSource;
use crate::QuantizeError;
use bertq_runtime::format::{names, TaskHead};
use bertq_runtime::{Model, Session, TaskOutput};
use std::collections::BTreeMap;

/// Labelled texts read from a TSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledTexts {
    pub texts: Vec<String>,
    /// Index into `labels` per text.
    pub targets: Vec<u32>,
    /// Label names in output order.
    pub labels: Vec<String>,
}

/// Parses `text<TAB>label` lines. The label is after the last tab (texts may contain tabs).
/// A first line `text<TAB>label` is a header and skipped; blank lines are skipped. Labels are
/// ordered as `label_order` gives them (every label found must be listed), else sorted by name.
pub fn parse_tsv(data: &str, label_order: Option<&[String]>) -> Result<LabelledTexts, String> {
    let mut rows: Vec<(String, String)> = Vec::new();
    for (i, line) in data.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        if i == 0 && line.trim().eq_ignore_ascii_case("text\tlabel") {
            continue;
        }
        let Some((text, label)) = line.rsplit_once('\t') else {
            return Err(format!(
                "line {}: expected `text<TAB>label`, found no tab",
                i + 1
            ));
        };
        let (text, label) = (text.trim(), label.trim());
        if text.is_empty() {
            return Err(format!("line {}: empty text", i + 1));
        }
        if label.is_empty() {
            return Err(format!("line {}: empty label", i + 1));
        }
        rows.push((text.to_string(), label.to_string()));
    }
    if rows.is_empty() {
        return Err("no examples".into());
    }
    let labels: Vec<String> = match label_order {
        Some(order) => {
            let mut seen = std::collections::BTreeSet::new();
            for l in order {
                if !seen.insert(l.as_str()) {
                    return Err(format!("label `{l}` is listed twice"));
                }
            }
            if let Some((_, l)) = rows.iter().find(|(_, l)| !seen.contains(l.as_str())) {
                return Err(format!("label `{l}` is in the data but not in --labels"));
            }
            order.to_vec()
        }
        None => {
            let set: std::collections::BTreeSet<&str> =
                rows.iter().map(|(_, l)| l.as_str()).collect();
            set.into_iter().map(String::from).collect()
        }
    };
    if labels.len() < 2 {
        return Err(format!(
            "need at least two labels, found {} ({})",
            labels.len(),
            labels.join(", ")
        ));
    }
    let index: BTreeMap<&str, u32> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i as u32))
        .collect();
    let targets = rows.iter().map(|(_, l)| index[l.as_str()]).collect();
    Ok(LabelledTexts {
        texts: rows.into_iter().map(|(t, _)| t).collect(),
        targets,
        labels,
    })
}

/// SplitMix64: a small, well-mixed, seedable generator (no dependency, same on every platform).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A seeded split of `0..n` into (train, held-out) indices; the held-out part has
/// `round(n * fraction)` examples, at least 1 and at most `n - 1`.
pub fn split(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(seed);
    for i in (1..n).rev() {
        idx.swap(i, rng.below(i + 1));
    }
    let held = ((n as f64 * fraction).round() as usize).clamp(1, n.saturating_sub(1));
    let train = idx.split_off(held);
    (train, idx)
}

/// Dense features `[n, d]`, row-major.
#[derive(Debug, Clone)]
pub struct Features {
    pub x: Vec<f32>,
    pub d: usize,
}

impl Features {
    pub fn n(&self) -> usize {
        self.x.len() / self.d.max(1)
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.d..(i + 1) * self.d]
    }
    pub fn select(&self, rows: &[usize]) -> Features {
        let mut x = Vec::with_capacity(rows.len() * self.d);
        for &r in rows {
            x.extend_from_slice(self.row(r));
        }
        Features { x, d: self.d }
    }
}

/// Embeds `texts` with the model's pooled-embedding head (truncating to `max_seq` tokens).
/// `progress` is called after each text.
pub fn embed(
    model: &Model<'_>,
    texts: &[String],
    max_seq: usize,
    threads: usize,
    progress: &dyn Fn(usize),
) -> Result<Features, QuantizeError> {
    let max_seq = max_seq.clamp(2, model.max_sequence_length());
    let mut session = Session::with_threads(model, max_seq, threads)
        .map_err(|e| QuantizeError::Invalid(e.to_string()))?;
    let d = model.config().hidden_size as usize;
    let mut x = Vec::with_capacity(texts.len() * d);
    for (i, t) in texts.iter().enumerate() {
        let out = session
            .run(t)
            .map_err(|e| QuantizeError::Invalid(format!("text {}: {e}", i + 1)))?;
        let TaskOutput::Embedding(e) = out.task else {
            return Err(QuantizeError::Invalid(
                "the encoder does not produce sentence embeddings".into(),
            ));
        };
        x.extend_from_slice(e);
        progress(i + 1);
    }
    Ok(Features { x, d })
}

/// Options of one fit.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// L2 strength λ of the objective `mean(cross-entropy) + λ/2 ||W||²` (bias unpenalised),
    /// on standardised features if `standardize`. scikit-learn's `C` is `1 / (λ n)`.
    pub l2: f64,
    pub max_iter: usize,
    /// Stop when the gradient's L2 norm is below this.
    pub tol: f64,
    /// Scale features to zero mean and unit variance (folded into the written weights).
    pub standardize: bool,
    /// Early stopping: evaluate the held-out loss every `check_every` iterations and stop after
    /// `patience` evaluations without improvement (0: no early stopping), keeping the best.
    pub patience: usize,
    pub check_every: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            l2: 1e-3,
            max_iter: 3000,
            tol: 1e-6,
            standardize: true,
            patience: 10,
            check_every: 10,
        }
    }
}

/// A linear classifier on raw (unstandardised) features: `logits = W x + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearHead {
    /// `[k, d]` row-major.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub d: usize,
    pub k: usize,
}

impl LinearHead {
    pub fn logits(&self, x: &[f32], out: &mut [f64]) {
        for (c, o) in out.iter_mut().enumerate().take(self.k) {
            let w = &self.weight[c * self.d..(c + 1) * self.d];
            *o = self.bias[c] as f64
                + w.iter()
                    .zip(x)
                    .map(|(&a, &b)| a as f64 * b as f64)
                    .sum::<f64>();
        }
    }
    pub fn predict(&self, x: &[f32]) -> u32 {
        let mut z = vec![0.0; self.k];
        self.logits(x, &mut z);
        argmax(&z) as u32
    }
    pub fn accuracy(&self, f: &Features, y: &[u32]) -> f64 {
        if y.is_empty() {
            return 0.0;
        }
        let right = (0..f.n())
            .filter(|&i| self.predict(f.row(i)) == y[i])
            .count();
        right as f64 / y.len() as f64
    }
}

/// A dot product with four accumulators (vectorises; the order is fixed, so still deterministic).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..4 {
            acc[i] += x[i] * y[i];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

fn argmax(z: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = i;
        }
    }
    best
}

/// What a fit reached.
#[derive(Debug, Clone)]
pub struct FitResult {
    pub head: LinearHead,
    pub iterations: usize,
    /// Whether the gradient norm reached `tol` (else: early stop or `max_iter`).
    pub converged: bool,
    pub early_stopped: bool,
    pub train_loss: f64,
    pub valid_loss: Option<f64>,
    pub valid_accuracy: Option<f64>,
}

/// Standardised features in f64 (`(x - mean) / std`, std 0 -> 1 as scikit-learn's scaler).
struct Design {
    x: Vec<f64>,
    n: usize,
    d: usize,
}

fn standardizer(f: &Features, on: bool) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (f.n(), f.d);
    if !on || n == 0 {
        return (vec![0.0; d], vec![1.0; d]);
    }
    let mut mean = vec![0.0f64; d];
    for i in 0..n {
        for (m, &v) in mean.iter_mut().zip(f.row(i)) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0.0f64; d];
    for i in 0..n {
        for ((s, &v), m) in var.iter_mut().zip(f.row(i)).zip(&mean) {
            *s += (v as f64 - m) * (v as f64 - m);
        }
    }
    let scale = var
        .iter()
        .map(|s| {
            let sd = (s / n as f64).sqrt();
            if sd > 1e-12 {
                sd
            } else {
                1.0
            }
        })
        .collect();
    (mean, scale)
}

fn design(f: &Features, mean: &[f64], scale: &[f64]) -> Design {
    let (n, d) = (f.n(), f.d);
    let mut x = Vec::with_capacity(n * d);
    for i in 0..n {
        for ((&v, m), s) in f.row(i).iter().zip(mean).zip(scale) {
            x.push((v as f64 - m) / s);
        }
    }
    Design { x, n, d }
}

/// Parameters: `W` `[k, d]` then `b` `[k]`.
struct Problem<'a> {
    data: &'a Design,
    y: &'a [u32],
    k: usize,
    l2: f64,
}

impl Problem<'_> {
    fn len(&self) -> usize {
        self.k * self.data.d + self.k
    }

    /// Mean cross-entropy (+ L2 term if `penalised`); writes the gradient when given.
    fn loss(&self, theta: &[f64], mut grad: Option<&mut [f64]>, penalised: bool) -> f64 {
        let (n, d, k) = (self.data.n, self.data.d, self.k);
        let (w, b) = theta.split_at(k * d);
        if let Some(g) = grad.as_deref_mut() {
            g.fill(0.0);
        }
        let mut z = vec![0.0f64; k];
        let mut total = 0.0;
        for i in 0..n {
            let x = &self.data.x[i * d..(i + 1) * d];
            for c in 0..k {
                z[c] = b[c] + dot(&w[c * d..(c + 1) * d], x);
            }
            let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
            let lse = max + sum.ln();
            let t = self.y[i] as usize;
            total += lse - z[t];
            if let Some(g) = grad.as_deref_mut() {
                let (gw, gb) = g.split_at_mut(k * d);
                for c in 0..k {
                    let p = (z[c] - lse).exp() - if c == t { 1.0 } else { 0.0 };
                    gb[c] += p;
                    for (gv, xv) in gw[c * d..(c + 1) * d].iter_mut().zip(x) {
                        *gv += p * xv;
                    }
                }
            }
        }
        let inv = 1.0 / n.max(1) as f64;
        let mut loss = total * inv;
        if let Some(g) = grad {
            g.iter_mut().for_each(|v| *v *= inv);
            if penalised {
                for (gv, wv) in g[..k * d].iter_mut().zip(w) {
                    *gv += self.l2 * wv;
                }
            }
        }
        if penalised {
            loss += 0.5 * self.l2 * w.iter().map(|v| v * v).sum::<f64>();
        }
        loss
    }

    fn accuracy(&self, theta: &[f64]) -> f64 {
        let (n, d, k) = (self.data.n, self.data.d, self.k);
        let (w, b) = theta.split_at(k * d);
        let mut z = vec![0.0f64; k];
        let mut right = 0usize;
        for i in 0..n {
            let x = &self.data.x[i * d..(i + 1) * d];
            for c in 0..k {
                z[c] = b[c] + dot(&w[c * d..(c + 1) * d], x);
            }
            if argmax(&z) == self.y[i] as usize {
                right += 1;
            }
        }
        right as f64 / n.max(1) as f64
    }

    /// A Lipschitz bound of the gradient: softmax's Hessian is at most 1/2 times the second
    /// moment of `[x, 1]`, whose top eigenvalue power iteration estimates (with a margin).
    fn lipschitz(&self) -> f64 {
        let (n, d) = (self.data.n, self.data.d);
        let mut v: Vec<f64> = (0..=d).map(|i| 1.0 + (i % 7) as f64 * 0.1).collect();
        let mut lambda = 1.0;
        for _ in 0..60 {
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-300);
            v.iter_mut().for_each(|a| *a /= norm);
            let mut out = vec![0.0f64; d + 1];
            for i in 0..n {
                let x = &self.data.x[i * d..(i + 1) * d];
                let p = dot(x, &v[..d]) + v[d];
                for (o, xv) in out.iter_mut().zip(x) {
                    *o += p * xv;
                }
                out[d] += p;
            }
            out.iter_mut().for_each(|a| *a /= n.max(1) as f64);
            lambda = out.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>();
            v = out;
        }
        0.5 * lambda * 1.25 + self.l2
    }
}

/// Fits the classifier on `train` (targets `y` in `0..k`); `valid` drives early stopping.
pub fn fit(
    train: &Features,
    y: &[u32],
    k: usize,
    valid: Option<(&Features, &[u32])>,
    opts: &FitOptions,
) -> FitResult {
    let (mean, scale) = standardizer(train, opts.standardize);
    let data = design(train, &mean, &scale);
    let problem = Problem {
        data: &data,
        y,
        k,
        l2: opts.l2,
    };
    let vdata = valid.map(|(f, _)| design(f, &mean, &scale));
    let vproblem = vdata.as_ref().zip(valid).map(|(data, (_, y))| Problem {
        data,
        y,
        k,
        l2: 0.0,
    });
    let len = problem.len();
    let step = 1.0 / problem.lipschitz();
    let mut x = vec![0.0f64; len];
    let mut yk = x.clone();
    let mut t = 1.0f64;
    let mut g = vec![0.0f64; len];
    let mut best = (f64::INFINITY, x.clone());
    let mut since_best = 0;
    let (mut iterations, mut converged, mut early_stopped) = (0, false, false);
    for it in 0..opts.max_iter {
        iterations = it + 1;
        problem.loss(&yk, Some(&mut g), true);
        let gnorm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        if gnorm < opts.tol {
            x.clone_from(&yk);
            converged = true;
            break;
        }
        let next: Vec<f64> = yk.iter().zip(&g).map(|(a, b)| a - step * b).collect();
        // Gradient restart: drop the momentum when it points uphill.
        let uphill = g
            .iter()
            .zip(next.iter().zip(&x))
            .map(|(gv, (n, o))| gv * (n - o))
            .sum::<f64>()
            > 0.0;
        if uphill {
            t = 1.0;
            yk.clone_from(&next);
        } else {
            let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
            let beta = (t - 1.0) / t_next;
            for ((y, n), o) in yk.iter_mut().zip(&next).zip(&x) {
                *y = n + beta * (n - o);
            }
            t = t_next;
        }
        x = next;
        if let (Some(vp), true) = (&vproblem, opts.patience > 0) {
            if iterations % opts.check_every.max(1) == 0 {
                let vl = vp.loss(&x, None, false);
                if vl < best.0 - 1e-9 {
                    best = (vl, x.clone());
                    since_best = 0;
                } else {
                    since_best += 1;
                    if since_best >= opts.patience {
                        early_stopped = true;
                        break;
                    }
                }
            }
        }
    }
    if let (Some(vp), true) = (&vproblem, opts.patience > 0) {
        // Keep the best held-out point seen (or the last one if it is better).
        if vp.loss(&x, None, false) > best.0 {
            x = best.1;
        }
    }
    let train_loss = problem.loss(&x, None, true);
    let valid_loss = vproblem.as_ref().map(|p| p.loss(&x, None, false));
    let valid_accuracy = vproblem.as_ref().map(|p| p.accuracy(&x));
    // Fold the standardisation into W and b: W' = W / s, b' = b - W' · mean.
    let d = train.d;
    let (w, b) = x.split_at(k * d);
    let mut weight = vec![0.0f32; k * d];
    let mut bias = vec![0.0f32; k];
    for c in 0..k {
        let mut shift = 0.0;
        for j in 0..d {
            let wj = w[c * d + j] / scale[j];
            weight[c * d + j] = wj as f32;
            shift += wj * mean[j];
        }
        bias[c] = (b[c] - shift) as f32;
    }
    FitResult {
        head: LinearHead { weight, bias, d, k },
        iterations,
        converged,
        early_stopped,
        train_loss,
        valid_loss,
        valid_accuracy,
    }
}

/// One L2 strength tried by [`train`].
#[derive(Debug, Clone)]
pub struct Trial {
    pub l2: f64,
    pub result: FitResult,
}

/// Fits one head per L2 strength and keeps the best on the held-out set (accuracy, then loss).
/// `report` is called after each fit. With no strengths given, `base.l2` is used.
pub fn train(
    train: &Features,
    y: &[u32],
    k: usize,
    valid: (&Features, &[u32]),
    l2s: &[f64],
    base: &FitOptions,
    report: &dyn Fn(&Trial),
) -> (Trial, Vec<Trial>) {
    let mut trials = Vec::new();
    let default = [base.l2];
    let l2s = if l2s.is_empty() { &default[..] } else { l2s };
    for &l2 in l2s {
        let opts = FitOptions { l2, ..base.clone() };
        let trial = Trial {
            l2,
            result: fit(train, y, k, Some(valid), &opts),
        };
        report(&trial);
        trials.push(trial);
    }
    let key = |t: &Trial| {
        (
            t.result.valid_accuracy.unwrap_or(0.0),
            -t.result.valid_loss.unwrap_or(f64::INFINITY),
        )
    };
    let mut best = 0;
    for (i, t) in trials.iter().enumerate() {
        if key(t) > key(&trials[best]) {
            best = i;
        }
    }
    (trials[best].clone(), trials)
}

/// The encoder's weights plus the trained classifier.
#[derive(Debug)]
struct WithClassifier<'a> {
    base: &'a dyn WeightSource,
    head: &'a LinearHead,
}

impl WeightSource for WithClassifier<'_> {
    fn tensor(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), QuantizeError> {
        let h = self.head;
        if name == format!("{}.weight", names::CLASSIFIER) {
            Ok((h.weight.clone(), vec![h.k, h.d]))
        } else if name == format!("{}.bias", names::CLASSIFIER) {
            Ok((h.bias.clone(), vec![h.k]))
        } else {
            self.base.tensor(name)
        }
    }
}

/// The `.bertq` bytes of the encoder `input` with `head` as a pooled classifier.
pub fn write_model(
    input: &Input,
    head: &LinearHead,
    labels: &[String],
    opts: &ConvertOptions,
) -> Result<Vec<u8>, QuantizeError> {
    let TaskHead::Embedding { pooling, normalize } = input.spec.task else {
        return Err(QuantizeError::Unsupported(
            "train-head needs a sentence encoder (BertModel) as --encoder".into(),
        ));
    };
    let mut spec = input.spec.clone();
    spec.task = TaskHead::PooledClassification { pooling, normalize };
    spec.labels = labels.to_vec();
    spec.origin = format!(
        "{} + a linear classifier trained by bertq-quantize train-head",
        spec.origin
    );
    let with = Input {
        spec,
        weights: Box::new(crate::source::MemorySource::default()),
        notes: Vec::new(),
        weights_path: input.weights_path.clone(),
    };
    let source = WithClassifier {
        base: input.weights.as_ref(),
        head,
    };
    Ok(with.convert_with(&source, opts)?.bytes)
}
