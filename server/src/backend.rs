//! Running a request on a session and writing its reply: what every backend does, and the
//! single-session backend of the firmware (one UART, no threads) and of single serial lines.

use crate::link::Backend;
use crate::reply::{self, Failure, Out};
use crate::request::{InferJob, JobExtra};
use bertq_protocol::{ErrorCode, InferOptions};
use bertq_runtime::session::Storage;
use bertq_runtime::{Model, QaOptions, RunError, RunOptions, Session};

/// Runs one job on `session` and writes its reply.
pub fn execute<S: Storage>(
    session: &mut Session<'_, '_, S>,
    job: &InferJob<'_>,
    out: &mut Out<'_>,
) -> Result<(), Failure> {
    let model: &Model<'_> = session.model();
    let max_seq = session.max_seq();
    let base = RunOptions {
        aggregation: reply::aggregation_for(model, job.options.aggregation),
        threshold: job.entities.threshold,
        ..run_options(&job.options)
    };
    let output = match job.extra {
        JobExtra::None => session.run_with(job.text, &base),
        JobExtra::Stride(stride) => {
            let options = RunOptions {
                stride: Some(stride as usize),
                ..base
            };
            session.run_with(job.text, &options)
        }
        JobExtra::Answer { question, options } => {
            let options = QaOptions {
                top_k: options.top_k as usize,
                doc_stride: options.doc_stride.map(usize::from),
                max_answer_len: options.max_answer_len as usize,
                handle_impossible_answer: options.handle_impossible_answer,
            };
            session.run_qa(question, job.text, &options)
        }
    }
    .map_err(run_failure)?;
    reply::write_infer(
        model,
        max_seq,
        job.text,
        &output,
        job.to,
        &job.options,
        &job.entities,
        out,
    )
}

/// A run's error as a reply: the client's mistakes are `bad_request` / `text_too_long`.
fn run_failure(e: RunError) -> Failure {
    let code = match e {
        RunError::TooLong { .. } | RunError::QuestionTooLong { .. } => ErrorCode::TextTooLong,
        RunError::BadStride { .. }
        | RunError::StrideNeedsAggregation
        | RunError::TooManyWindows { .. }
        | RunError::BadQuestion
        | RunError::Masks { .. }
        | RunError::WindowTooSmall { .. }
        | RunError::TooManySpans { .. } => ErrorCode::BadRequest,
        RunError::WrongTask | RunError::TokenTypes { .. } | RunError::NoPiiProfile => {
            ErrorCode::Unsupported
        }
        RunError::Tokenizer(_) | RunError::InvalidInput => ErrorCode::Internal,
    };
    Failure::new(code, format_args!("inference failed: {e}"))
}

/// The runtime's options for a request's (`ModelDefault` is `simple` here: see
/// [`reply::aggregation_for`] for the model's own default).
pub fn run_options(o: &InferOptions) -> RunOptions<'static> {
    use bertq_protocol::Aggregation as A;
    use bertq_runtime::Aggregation as R;
    RunOptions {
        aggregation: match o.aggregation {
            A::None => R::None,
            A::Simple => R::Simple,
            A::First => R::First,
            A::Average => R::Average,
            A::Max => R::Max,
            A::Span => R::Span,
            A::Pii => R::Pii,
            A::Compat => R::Compat,
            A::ModelDefault => R::Simple,
        },
        // Fill-mask candidates per mask; 0 (classification's "all") is the pipeline's 5.
        top_k: match o.top_k {
            0 => 5,
            k => k as usize,
        },
        ..RunOptions::default()
    }
}

/// Inference on the link's own thread with its own session: the bare-metal configuration (one
/// UART, no threads), also usable for a single serial line.
#[derive(Debug)]
pub struct DirectBackend<'r, 'm, 'a, S: Storage> {
    pub session: &'r mut Session<'m, 'a, S>,
}

impl<S: Storage> Backend for DirectBackend<'_, '_, '_, S> {
    fn infer(&mut self, job: &InferJob<'_>, out: &mut Out<'_>) -> Result<(), Failure> {
        execute(self.session, job, out)
    }
    fn queue_depth(&self) -> u32 {
        0
    }
    fn in_flight(&self) -> u32 {
        0
    }
}

/// Runs the session once at full length and once on a short text, so that every page of its
/// memory is touched and the first request is as fast as the rest.
pub fn warm_up<S: Storage>(session: &mut Session<'_, '_, S>) -> Result<(), RunError> {
    let model = session.model();
    let t = &model.file.header.tokenizer;
    let vocab = model.tokenizer.vocab().len() as u32;
    let seq = session.max_seq();
    let mut ids = [0u32; 2048];
    let n = seq.min(ids.len());
    for (i, id) in ids[..n].iter_mut().enumerate() {
        *id = (1000 + i as u32 * 37) % vocab.max(1);
    }
    ids[0] = t.cls_id;
    ids[n - 1] = t.sep_id;
    let fill_mask = model.task() == bertq_runtime::format::TaskHead::FillMask;
    if fill_mask && n > 2 {
        ids[1] = t.mask_id;
    }
    if model.task() == bertq_runtime::format::TaskHead::QuestionAnswering {
        // About one full window: at most 5 tokens per 6 bytes.
        let mut context = [0u8; 2048];
        let len = seq.clamp(6, context.len());
        for (i, b) in context.iter_mut().enumerate() {
            *b = if i % 6 == 5 {
                b' '
            } else {
                b'a' + (i % 26) as u8
            };
        }
        let context = core::str::from_utf8(&context[..len]).unwrap_or("");
        for _ in 0..2 {
            session.run_qa("Who is Maria Gonzalez?", context, &QaOptions::default())?;
        }
        return Ok(());
    }
    for _ in 0..2 {
        session.run_token_ids(&ids[..n])?;
        let text = if fill_mask {
            "Warm-up: Maria [MASK], maria@example.com, 555-867-5309."
        } else {
            "Warm-up: Maria Gonzalez, maria@example.com, 555-867-5309."
        };
        session.run(text)?;
    }
    Ok(())
}
