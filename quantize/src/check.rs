//! What quantization cost: run the int8 model and its f32 reference path (same weights,
//! f32 activations and dequantised weights) on sample texts and compare the outputs.

use bertq_runtime::format::TaskHead;
use bertq_runtime::{Model, Precision, Session, TaskOutput};

/// Sample texts for the built-in check (the full accuracy report runs on the user's own data).
pub const SAMPLE_TEXTS: &[&str] = &[
    "My name is Sarah Jessica Parker and I live at 42 Wallaby Way, Sydney.",
    "Call me at (555) 123-4567 or e-mail john.doe@example.com before Friday.",
    "The quick brown fox jumps over the lazy dog.",
    "This movie was absolutely wonderful, I would watch it again!",
    "Das Essen war leider kalt und der Service unfreundlich.",
    "Payment to account 1234567890, routing number 021000021, is due on 2024-03-01.",
    "Visit https://www.example.org/docs?page=2 for the full documentation.",
    "I can't believe it's not butter.",
];

#[derive(Debug, Clone)]
pub struct CheckReport {
    pub texts: usize,
    /// Cosine similarity of the final hidden states, int8 vs f32 reference: mean and minimum.
    pub mean_cosine: f64,
    pub min_cosine: f64,
    /// Task-level agreement: same top label / same entity spans / embedding cosine >= 0.99.
    pub task_agreement: f64,
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += x as f64 * y as f64;
        aa += x as f64 * x as f64;
        bb += y as f64 * y as f64;
    }
    ab / (aa.sqrt() * bb.sqrt()).max(1e-30)
}

/// A comparable summary of a task output.
#[derive(PartialEq, Debug)]
enum Summary {
    Label(u32),
    Spans(Vec<(u32, u32, u32)>),
    Embedding(Vec<f32>),
    /// Fill-mask: the top token of every mask.
    Tokens(Vec<u32>),
}

fn summarize(out: &TaskOutput<'_>) -> Summary {
    match out {
        TaskOutput::Classification { ranking, .. } => Summary::Label(ranking[0]),
        TaskOutput::Entities(es) => {
            Summary::Spans(es.iter().map(|e| (e.label, e.start, e.end)).collect())
        }
        TaskOutput::Embedding(v) => Summary::Embedding(v.to_vec()),
        TaskOutput::FillMask { top_k, ids, .. } => {
            Summary::Tokens(ids.iter().step_by((*top_k).max(1)).copied().collect())
        }
        TaskOutput::Answers(a) => Summary::Spans(a.iter().map(|e| (0, e.start, e.end)).collect()),
    }
}

fn mask_a_word(text: &str) -> String {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    match words.get_mut(2) {
        Some(w) => *w = "[MASK]",
        None => words.push("[MASK]"),
    }
    words.join(" ")
}

/// Question-answering models answer a fixed question about the text; the others take it alone.
fn run<'s>(
    session: &'s mut Session<'_, '_, bertq_runtime::session::OwnedMemory>,
    text: &str,
) -> Result<bertq_runtime::Output<'s>, bertq_runtime::RunError> {
    if session.model().task() == TaskHead::QuestionAnswering {
        let options = bertq_runtime::QaOptions::default();
        return session.run_qa("What is it about?", text, &options);
    }
    session.run(text)
}

/// Runs both precisions over `texts`.
pub fn compare_precisions(model: &Model<'_>, texts: &[&str]) -> Result<CheckReport, String> {
    let max_seq = model.max_sequence_length().min(256);
    let qa = model.task() == TaskHead::QuestionAnswering;
    // Question answering runs the sample texts in windows, whatever the model's length.
    let max_input = if qa { 1024 } else { max_seq - 2 };
    let mut session =
        Session::with_input_limit(model, max_seq, max_input, 1).map_err(|e| e.to_string())?;
    let (mut sum, mut min, mut agree) = (0f64, f64::INFINITY, 0usize);
    let fill_mask = model.task() == TaskHead::FillMask;
    for text in texts {
        // Fill-mask models need a mask: the third word (or a last one) becomes `[MASK]`.
        let masked = fill_mask.then(|| mask_a_word(text));
        let text = masked.as_deref().unwrap_or(text);
        let (tokens, types): (Vec<u32>, Option<Vec<u32>>) = {
            let out = run(&mut session, text).map_err(|e| e.to_string())?;
            let ids: Vec<u32> = out.tokens.iter().map(|t| t.id).collect();
            if qa {
                // `[CLS] question [SEP]` then `[CLS] context [SEP]`: the first window is
                // `[CLS] question [SEP] context [SEP]` (token types 0, then 1), cut to the session.
                let q_end = ids
                    .iter()
                    .skip(1)
                    .position(|&i| i == ids[0])
                    .map_or(ids.len(), |p| p + 1);
                let (q, c) = ids.split_at(q_end);
                let mut w = q.to_vec();
                let room = max_seq.saturating_sub(w.len() + 1);
                let content = &c[1.min(c.len())..c.len().saturating_sub(1)];
                w.extend_from_slice(&content[..content.len().min(room)]);
                w.push(*q.last().unwrap_or(&0));
                let t = (0..w.len()).map(|i| u32::from(i >= q.len())).collect();
                (w, Some(t))
            } else {
                (ids, None)
            }
        };
        let mut results = Vec::new();
        let mut hidden = Vec::new();
        for p in [Precision::Int8, Precision::F32] {
            session.set_precision(p);
            hidden.push(
                session
                    .run_ids(&tokens, types.as_deref())
                    .map_err(|e| e.to_string())?
                    .to_vec(),
            );
            let out = run(&mut session, text).map_err(|e| e.to_string())?;
            results.push(summarize(&out.task));
        }
        session.set_precision(Precision::Int8);
        let c = cosine(&hidden[0], &hidden[1]);
        sum += c;
        min = min.min(c);
        agree += match (&results[0], &results[1]) {
            (Summary::Embedding(a), Summary::Embedding(b)) => usize::from(cosine(a, b) >= 0.99),
            (a, b) => usize::from(a == b),
        };
    }
    let n = texts.len().max(1) as f64;
    Ok(CheckReport {
        texts: texts.len(),
        mean_cosine: sum / n,
        min_cosine: min,
        task_agreement: agree as f64 / n,
    })
}
