//! Hugging Face BERT checkpoint -> self-contained int8 `.bertq` model file.
//!
//! - [`hf`]: reading `config.json`, the tokenizer files and sentence-transformers' pooling.
//! - [`quant`]: symmetric per-channel weight quantization.
//! - [`source`]: where the weights come from (safetensors or ONNX), one interface for both.
//! - [`onnx`]: ONNX import (f32 exports and onnxruntime-quantized models), matched by the graph.
//! - [`convert`]: building the model file from any input.
//! - [`calibrate`]: static activation scales (minmax, percentile, mse observers).
//! - [`plan`]: calibration and the sensitivity analysis behind mixed precision.
//! - [`check`]: measuring what quantization cost, by running the int8 and f32 paths side by side.
//! - [`report`]: the accuracy report (int8 against the f32 reference on labelled data).
//! - [`train`]: `train-head`, a linear classifier trained on frozen sentence embeddings.

pub mod calibrate;
pub mod check;
pub mod convert;
pub mod hf;
pub mod onnx;
pub mod plan;
pub mod quant;
pub mod report;
pub mod source;
pub mod train;

pub use convert::{
    convert_dir, convert_path, load_input, ConvertOptions, Converted, FloatDType, Input, ModelSpec,
    WeightPrecision,
};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("missing file {0}")]
    MissingFile(PathBuf),
    #[error("tensor `{0}` (with or without the `bert.` prefix) is missing from the weights")]
    MissingTensor(String),
    /// The ONNX file could not be read, or its graph is not BERT-shaped (names the node).
    #[error("{path}: {source}")]
    Onnx {
        path: PathBuf,
        source: onnx::OnnxError,
    },
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A weight is NaN or infinite: the checkpoint is damaged (a model made from it would
    /// answer `null` scores).
    #[error("tensor `{name}` has a non-finite value ({value}) at element {index}: the checkpoint is damaged")]
    NonFinite {
        name: String,
        index: usize,
        value: f32,
    },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl QuantizeError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        QuantizeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes `bytes` to `path` atomically: into a temporary file in the same directory, flushed to
/// disk, then renamed over `path`. A reader (a running `bertq serve`, a memory map) sees the old
/// file or the new one, never a partly written or truncated one; on failure `path` is untouched
/// and the temporary file removed.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced (best effort).
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
