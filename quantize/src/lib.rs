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
