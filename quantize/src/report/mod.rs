//! The accuracy report: the int8 model and the f32 reference (bertq's `Precision::F32` path on
//! an f32 conversion of the same weights) on the same data, scored against the data's labels
//! and against each other.
//!
//! - sequence classification: accuracy of each, top-1 agreement, expected calibration error;
//! - token classification: entity-level precision / recall / F1 with seqeval semantics (exact
//!   type, start and end) of each against the gold entities, and of int8 against f32;
//! - embeddings: the distribution of the cosine similarity int8 vs f32 (and vs reference
//!   vectors given in the data).

pub mod data;
pub mod metrics;
pub mod sensitivity;

use bertq_runtime::heads::token_classification::Aggregation;
use bertq_runtime::{Model, Precision, RunOptions, Session, TaskOutput};
use data::{DataTask, Example, Gold, Label};
use metrics::{Chunk, Distribution, EntityCounts, Prf};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Longest input in tokens (longer texts are truncated and counted).
    pub max_length: usize,
    /// How token predictions become entities for span data (Hugging Face pipeline strategies;
    /// word-level data always uses the first token of each word).
    pub aggregation: Aggregation,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            max_length: 512,
            aggregation: Aggregation::Simple,
            progress: false,
        }
    }
}

/// Scores of one model (int8 or f32) on classification data.
#[derive(Debug, Clone, Serialize)]
pub struct ClassScores {
    /// Top-1 accuracy against the data's labels (`None` without labels).
    pub accuracy: Option<f64>,
    /// Expected calibration error of the top-1 score (15 bins).
    pub ece: Option<f64>,
    pub mean_confidence: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassificationReport {
    pub int8: ClassScores,
    pub fp32: ClassScores,
    /// Share of examples where int8 and f32 pick the same label.
    pub top1_agreement: f64,
    /// |score int8 - score f32| of every label: mean and max.
    pub score_abs_diff_mean: f64,
    pub score_abs_diff_max: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntityScores {
    pub overall: Prf,
    pub per_type: BTreeMap<String, Prf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenReport {
    /// `simple`, `first`, ... for span data; `word-first` for word-level (CoNLL) data.
    pub aggregation: String,
    /// Against the data's entities (`None` without labels).
    pub int8: Option<EntityScores>,
    pub fp32: Option<EntityScores>,
    /// int8 against f32's predictions (f32 taken as the reference).
    pub agreement: EntityScores,
    /// Examples whose int8 and f32 entities are identical.
    pub identical_examples: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingReport {
    pub cosine_int8_vs_fp32: Distribution,
    /// Against reference vectors given in the data.
    pub cosine_int8_vs_data: Option<Distribution>,
    pub cosine_fp32_vs_data: Option<Distribution>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskReport {
    SequenceClassification(ClassificationReport),
    TokenClassification(TokenReport),
    Embedding(EmbeddingReport),
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub examples: usize,
    /// Examples longer than `max_length` tokens (truncated for both models).
    pub truncated: usize,
    pub labelled: bool,
    pub max_length: usize,
    pub kernels: String,
    pub seconds: f64,
    #[serde(flatten)]
    pub task: TaskReport,
}

/// The evaluation data format of the model's task (fill-mask models have none).
pub fn data_task(model: &Model<'_>) -> Result<DataTask, String> {
    Ok(match model.task() {
        bertq_runtime::format::TaskHead::Embedding { .. } => DataTask::Embedding,
        bertq_runtime::format::TaskHead::SequenceClassification { .. }
        | bertq_runtime::format::TaskHead::PooledClassification { .. } => {
            DataTask::SequenceClassification
        }
        bertq_runtime::format::TaskHead::TokenClassification => DataTask::TokenClassification,
        bertq_runtime::format::TaskHead::FillMask => {
            return Err("accuracy evaluation on data is not supported for fill-mask models".into())
        }
        bertq_runtime::format::TaskHead::QuestionAnswering => {
            return Err(
                "accuracy evaluation on data is not supported for question-answering models".into(),
            )
        }
    })
}

/// The int8 model and the reference must answer the same question.
fn check_compatible(int8: &Model<'_>, reference: &Model<'_>) -> Result<(), String> {
    if int8.task() != reference.task() {
        return Err(format!(
            "the model's task {:?} differs from the reference's {:?}",
            int8.task(),
            reference.task()
        ));
    }
    let a: Vec<&str> = int8.labels.iter().collect();
    let b: Vec<&str> = reference.labels.iter().collect();
    if a != b {
        return Err("the model and the reference have different labels".into());
    }
    if int8.tokenizer.vocab().len() != reference.tokenizer.vocab().len() {
        return Err("the model and the reference have different vocabularies".into());
    }
    Ok(())
}

pub(crate) fn progress_bar(n: usize, on: bool) -> indicatif::ProgressBar {
    if !on {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(n as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}]",
    ) {
        bar.set_style(style);
    }
    bar.set_message("evaluating");
    bar
}

/// One model's view of an example.
pub(crate) enum Pred {
    Class { scores: Vec<f32>, top: usize },
    Entities(Vec<Chunk>),
    Embedding(Vec<f32>),
}

/// Runs both models over the data.
pub fn evaluate(
    int8: &Model<'_>,
    reference: &Model<'_>,
    examples: &[Example],
    opts: &EvalOptions,
) -> Result<Report, String> {
    check_compatible(int8, reference)?;
    let start = Instant::now();
    let max_seq = int8
        .max_sequence_length()
        .min(reference.max_sequence_length())
        .min(opts.max_length)
        .max(2);
    let mut s8 = Session::with_owned_memory(int8, max_seq).map_err(|e| e.to_string())?;
    let mut s32 = Session::with_owned_memory(reference, max_seq).map_err(|e| e.to_string())?;
    s8.set_precision(Precision::Int8);
    s32.set_precision(Precision::F32);
    let kernels = s8.kernels().name.to_string();
    let task = data_task(int8)?;
    let bar = progress_bar(examples.len(), opts.progress);
    let mut truncated = 0usize;
    let mut preds: Vec<(Pred, Pred)> = Vec::with_capacity(examples.len());
    for ex in examples {
        let (p8, t) = predict(&mut s8, ex, task, opts.aggregation)?;
        let (p32, _) = predict(&mut s32, ex, task, opts.aggregation)?;
        truncated += usize::from(t);
        preds.push((p8, p32));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let labelled = examples.iter().any(|e| !matches!(e.gold, Gold::None));
    let task_report = match task {
        DataTask::SequenceClassification => {
            TaskReport::SequenceClassification(classification(int8, examples, &preds)?)
        }
        DataTask::TokenClassification => {
            TaskReport::TokenClassification(token_report(examples, &preds, opts))
        }
        DataTask::Embedding => TaskReport::Embedding(embedding_report(examples, &preds)),
    };
    Ok(Report {
        examples: examples.len(),
        truncated,
        labelled,
        max_length: max_seq,
        kernels,
        seconds: start.elapsed().as_secs_f64(),
        task: task_report,
    })
}

pub(crate) fn predict<S: bertq_runtime::session::Storage>(
    session: &mut Session<'_, '_, S>,
    ex: &Example,
    task: DataTask,
    aggregation: Aggregation,
) -> Result<(Pred, bool), String> {
    let model = session.model();
    let words = matches!(ex.gold, Gold::Words { .. });
    let options = RunOptions {
        aggregation: if words {
            Aggregation::None
        } else {
            aggregation
        },
        ignore_labels: if words { &[] } else { &["O"] },
        ..RunOptions::default()
    };
    let out = session
        .run_with(&ex.text, &options)
        .map_err(|e| format!("{:?}: {e}", ex.text))?;
    let truncated = out.encoded.truncated;
    let pred = match (&out.task, task) {
        (TaskOutput::Classification { scores, ranking }, _) => Pred::Class {
            scores: scores.to_vec(),
            top: ranking.first().copied().unwrap_or(0) as usize,
        },
        (TaskOutput::Entities(es), _) => {
            if let Gold::Words { words, .. } = &ex.gold {
                // First token of each word carries the word's tag (Hugging Face's run_ner).
                let offsets = data::word_offsets(words);
                let mut tags = vec!["O".to_string(); words.len()];
                let mut w = 0;
                for e in es.iter() {
                    let s = e.start as usize;
                    while w < offsets.len() && offsets[w].1 <= s {
                        w += 1;
                    }
                    if w < offsets.len() && offsets[w].0 == s {
                        tags[w] = model
                            .labels
                            .get(e.label as usize)
                            .unwrap_or("O")
                            .to_string();
                    }
                }
                Pred::Entities(metrics::chunks(&tags))
            } else {
                Pred::Entities(
                    es.iter()
                        .map(|e| {
                            (
                                model.labels.entity_group(e.label as usize).to_string(),
                                e.start as usize,
                                e.end as usize,
                            )
                        })
                        .collect(),
                )
            }
        }
        (TaskOutput::Embedding(v), _) => Pred::Embedding(v.to_vec()),
        (TaskOutput::FillMask { .. } | TaskOutput::Answers(_), _) => {
            return Err(
                "fill-mask and question-answering models have no evaluation data format".into(),
            )
        }
    };
    Ok((pred, truncated))
}

fn gold_label(model: &Model<'_>, l: &Label) -> Result<usize, String> {
    match l {
        Label::Id(i) if *i < model.labels.len() => Ok(*i),
        Label::Id(i) => Err(format!(
            "label id {i} but the model has {}",
            model.labels.len()
        )),
        Label::Name(n) => model
            .labels
            .iter()
            .position(|l| l == n)
            .ok_or_else(|| format!("label `{n}` is not one of the model's labels")),
    }
}

fn classification(
    model: &Model<'_>,
    examples: &[Example],
    preds: &[(Pred, Pred)],
) -> Result<ClassificationReport, String> {
    let mut gold = Vec::new();
    for ex in examples {
        gold.push(match &ex.gold {
            Gold::Label(l) => Some(gold_label(model, l)?),
            _ => None,
        });
    }
    let (mut agree, mut diff_sum, mut diff_max, mut diff_n) = (0usize, 0f64, 0f64, 0usize);
    let mut conf = [Vec::new(), Vec::new()];
    let mut correct = [Vec::new(), Vec::new()];
    let mut all_conf = [0f64, 0f64];
    for ((p8, p32), g) in preds.iter().zip(&gold) {
        let (Pred::Class { scores: a, top: ta }, Pred::Class { scores: b, top: tb }) = (p8, p32)
        else {
            continue;
        };
        agree += usize::from(ta == tb);
        for (x, y) in a.iter().zip(b) {
            let d = (x - y).abs() as f64;
            diff_sum += d;
            diff_max = diff_max.max(d);
            diff_n += 1;
        }
        for (i, (scores, top)) in [(a, *ta), (b, *tb)].into_iter().enumerate() {
            let c = scores.get(top).copied().unwrap_or(0.0) as f64;
            all_conf[i] += c;
            if let Some(g) = g {
                conf[i].push(c);
                correct[i].push(top == *g);
            }
        }
    }
    let n = preds.len().max(1) as f64;
    let scores = |i: usize| ClassScores {
        accuracy: (!correct[i].is_empty())
            .then(|| correct[i].iter().filter(|&&c| c).count() as f64 / correct[i].len() as f64),
        ece: (!correct[i].is_empty())
            .then(|| metrics::expected_calibration_error(&conf[i], &correct[i], 15)),
        mean_confidence: all_conf[i] / n,
    };
    Ok(ClassificationReport {
        int8: scores(0),
        fp32: scores(1),
        top1_agreement: agree as f64 / n,
        score_abs_diff_mean: diff_sum / diff_n.max(1) as f64,
        score_abs_diff_max: diff_max,
    })
}

fn gold_chunks(ex: &Example) -> Option<Vec<Chunk>> {
    match &ex.gold {
        Gold::Spans(s) => Some(
            s.iter()
                .map(|s| (s.label.clone(), s.start, s.end))
                .collect(),
        ),
        Gold::Words { tags, .. } => Some(metrics::chunks(tags)),
        _ => None,
    }
}

fn token_report(examples: &[Example], preds: &[(Pred, Pred)], opts: &EvalOptions) -> TokenReport {
    let (mut g8, mut g32, mut agree) = (
        EntityCounts::default(),
        EntityCounts::default(),
        EntityCounts::default(),
    );
    let (mut labelled, mut identical, mut words) = (false, 0usize, false);
    for (ex, (p8, p32)) in examples.iter().zip(preds) {
        let (Pred::Entities(a), Pred::Entities(b)) = (p8, p32) else {
            continue;
        };
        words |= matches!(ex.gold, Gold::Words { .. });
        agree.add(b, a);
        identical += usize::from(a == b);
        if let Some(gold) = gold_chunks(ex) {
            labelled = true;
            g8.add(&gold, a);
            g32.add(&gold, b);
        }
    }
    let scores = |c: &EntityCounts| EntityScores {
        overall: c.overall(),
        per_type: c.per_type(),
    };
    TokenReport {
        aggregation: if words {
            "word-first".into()
        } else {
            opts.aggregation.name().into()
        },
        int8: labelled.then(|| scores(&g8)),
        fp32: labelled.then(|| scores(&g32)),
        agreement: scores(&agree),
        identical_examples: identical as f64 / preds.len().max(1) as f64,
    }
}

fn embedding_report(examples: &[Example], preds: &[(Pred, Pred)]) -> EmbeddingReport {
    let (mut both, mut d8, mut d32) = (Vec::new(), Vec::new(), Vec::new());
    for (ex, (p8, p32)) in examples.iter().zip(preds) {
        let (Pred::Embedding(a), Pred::Embedding(b)) = (p8, p32) else {
            continue;
        };
        both.push(metrics::cosine(a, b));
        if let Gold::Embedding(r) = &ex.gold {
            if r.len() == a.len() {
                d8.push(metrics::cosine(a, r));
                d32.push(metrics::cosine(b, r));
            }
        }
    }
    EmbeddingReport {
        cosine_int8_vs_fp32: metrics::distribution(&both),
        cosine_int8_vs_data: (!d8.is_empty()).then(|| metrics::distribution(&d8)),
        cosine_fp32_vs_data: (!d32.is_empty()).then(|| metrics::distribution(&d32)),
    }
}

/// A human-readable summary of a report.
pub fn summary(r: &Report) -> String {
    let mut s = format!(
        "{} examples ({} truncated to {} tokens), {:.1} s, kernels {}\n",
        r.examples, r.truncated, r.max_length, r.seconds, r.kernels
    );
    let prf = |p: &Prf| {
        format!(
            "P {:.4} R {:.4} F1 {:.4} ({} reference, {} predicted, {} exact)",
            p.precision, p.recall, p.f1, p.reference, p.predicted, p.correct
        )
    };
    match &r.task {
        TaskReport::TokenClassification(t) => {
            if let (Some(a), Some(b)) = (&t.int8, &t.fp32) {
                s += &format!(
                    "entities vs data ({}): int8 {}\n",
                    t.aggregation,
                    prf(&a.overall)
                );
                s += &format!(
                    "entities vs data ({}): f32  {}\n",
                    t.aggregation,
                    prf(&b.overall)
                );
            }
            s += &format!(
                "int8 vs f32 entities: {}; identical on {:.1}% of examples",
                prf(&t.agreement.overall),
                t.identical_examples * 100.0
            );
        }
        TaskReport::SequenceClassification(c) => {
            let acc = |x: Option<f64>| x.map_or("n/a".into(), |v| format!("{v:.4}"));
            s += &format!(
                "accuracy int8 {} f32 {}; ECE int8 {} f32 {}; top-1 agreement {:.4}; \
                 |score diff| mean {:.2e} max {:.2e}",
                acc(c.int8.accuracy),
                acc(c.fp32.accuracy),
                acc(c.int8.ece),
                acc(c.fp32.ece),
                c.top1_agreement,
                c.score_abs_diff_mean,
                c.score_abs_diff_max
            );
        }
        TaskReport::Embedding(e) => {
            let d = |x: &Distribution| {
                format!(
                    "mean {:.5} min {:.5} p1 {:.5} p5 {:.5} median {:.5}",
                    x.mean, x.min, x.p1, x.p5, x.p50
                )
            };
            s += &format!("cosine int8 vs f32: {}", d(&e.cosine_int8_vs_fp32));
            if let (Some(a), Some(b)) = (&e.cosine_int8_vs_data, &e.cosine_fp32_vs_data) {
                s += &format!(
                    "\ncosine vs data: int8 {}\ncosine vs data: f32  {}",
                    d(a),
                    d(b)
                );
            }
        }
    }
    s
}
