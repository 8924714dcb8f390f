//! `bertq-quantize --input DIR --output FILE.bertq`
use bertq_quantize::{check, convert_dir, ConvertOptions, WeightPrecision};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
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

/// Convert a Hugging Face BERT checkpoint into a self-contained int8 .bertq model file.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Hugging Face model directory (config.json, model.safetensors, vocab.txt or tokenizer.json).
    #[arg(long, short)]
    input: PathBuf,
    /// Output model file.
    #[arg(long, short)]
    output: PathBuf,
    /// Weight precision.
    #[arg(long, value_enum, default_value = "int8")]
    precision: Precision,
    /// Weight layout for the target CPU's kernels (any layout runs anywhere, fastest on its own).
    #[arg(long, value_enum, default_value = "k4n16")]
    pack: Pack,
    /// Model name stored in the file (default: the input directory's name).
    #[arg(long)]
    name: Option<String>,
    /// Print only errors.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bertq-quantize: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let opts = ConvertOptions {
        precision: match args.precision {
            Precision::Int8 => WeightPrecision::Int8,
            Precision::F32 => WeightPrecision::F32,
        },
        layout: match args.pack {
            Pack::K4n16 => bertq_runtime::format::Layout::K4N16,
            Pack::K8n8 => bertq_runtime::format::Layout::K8N8,
            Pack::RowMajor => bertq_runtime::format::Layout::RowMajor,
        },
        name: args.name.clone(),
    };
    let converted = convert_dir(&args.input, &opts)?;
    std::fs::write(&args.output, &converted.bytes)
        .map_err(|e| format!("{}: {e}", args.output.display()))?;
    if args.quiet {
        return Ok(());
    }
    let model = bertq_runtime::Model::load(&converted.bytes)?;
    let c = model.config();
    println!(
        "wrote {} ({:.1} MB): {:?}, {} layers x {} hidden, {} heads, FFN {}, vocab {}, {} labels, in {:.1} s",
        args.output.display(),
        converted.bytes.len() as f64 / 1e6,
        converted.architecture,
        c.num_layers,
        c.hidden_size,
        c.num_heads,
        c.intermediate_size,
        model.tokenizer.vocab().len(),
        model.labels.len(),
        start.elapsed().as_secs_f64()
    );
    if let Some(worst) = converted
        .tensors
        .iter()
        .max_by(|a, b| a.relative_error.total_cmp(&b.relative_error))
    {
        let mean = converted
            .tensors
            .iter()
            .map(|t| t.relative_error)
            .sum::<f64>()
            / converted.tensors.len() as f64;
        println!(
            "weight quantization error (relative L2): mean {mean:.4}, worst {:.4} ({})",
            worst.relative_error, worst.name
        );
        let report = check::compare_precisions(&model, check::SAMPLE_TEXTS)?;
        println!(
            "int8 vs f32 reference on {} sample texts: hidden-state cosine mean {:.5}, min {:.5}; \
             task outputs agree on {:.0}%",
            report.texts,
            report.mean_cosine,
            report.min_cosine,
            report.task_agreement * 100.0
        );
    }
    Ok(())
}
