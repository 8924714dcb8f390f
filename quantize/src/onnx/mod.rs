//! ONNX import: BERT exports (`torch.onnx.export`, Hugging Face Optimum) in f32 or f16, and
//! models quantized by onnxruntime (QDQ, `quantize_dynamic`'s `MatMulInteger`, 4-bit
//! `com.microsoft.MatMulNBits`).
//!
//! The file is read with tract-onnx's protobuf types (`tract_onnx::pb`) without running the
//! graph (tract does not know the `com.microsoft` ops, and nothing needs to run). Weights are
//! dequantized exactly as onnxruntime defines each op ([`linear`]), then found by following the
//! data from the embeddings to the head ([`bert`]), never by their names.

pub mod bert;
pub mod eval;
pub mod graph;
pub mod linear;
pub mod tensor;

use crate::QuantizeError;
use std::path::Path;
use tract_onnx::prelude::Framework;

pub use bert::{HeadKind, Matched};
pub use linear::WeightKinds;

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("{0}")]
    Read(String),
    #[error("tensor `{name}`: {message}")]
    Tensor { name: String, message: String },
    /// The graph is not BERT-shaped at this node.
    #[error("node {node}: {message}")]
    Node { node: String, message: String },
    #[error("{0}")]
    Structure(String),
}

impl OnnxError {
    /// An error at a node (`described` as [`graph::Node::describe`] prints it).
    pub fn at(described: &str, message: String) -> Self {
        OnnxError::Node {
            node: described.to_string(),
            message,
        }
    }
}

/// What the importer found in a graph.
#[derive(Debug)]
pub struct OnnxModel {
    pub bert: Matched,
    /// How the Linear weights were stored, and how many of each.
    pub kinds: WeightKinds,
    pub producer: String,
}

/// Reads and matches an ONNX file. `heads_hint` is config.json's `num_attention_heads`, used
/// only when the graph does not spell out the head count.
pub fn read(path: &Path, heads_hint: Option<usize>) -> Result<OnnxModel, QuantizeError> {
    let wrap = |e: OnnxError| QuantizeError::Onnx {
        path: path.to_path_buf(),
        source: e,
    };
    let proto = tract_onnx::onnx()
        .proto_model_for_path(path)
        .map_err(|e| wrap(OnnxError::Read(format!("not a readable ONNX model: {e}"))))?;
    let producer = format!("{} {}", proto.producer_name, proto.producer_version)
        .trim()
        .to_string();
    let mut g = graph::Graph::from_model(proto, path.parent()).map_err(wrap)?;
    let kinds = linear::normalize(&mut g).map_err(wrap)?;
    let bert = bert::match_bert(&g, heads_hint).map_err(wrap)?;
    Ok(OnnxModel {
        bert,
        kinds,
        producer,
    })
}

/// The ONNX file of a directory: `model.onnx`, or the only (or `model.onnx`) file in `onnx/`.
pub fn find_in_dir(dir: &Path) -> Result<Option<std::path::PathBuf>, QuantizeError> {
    let direct = dir.join("model.onnx");
    if direct.is_file() {
        return Ok(Some(direct));
    }
    let sub = dir.join("onnx");
    if !sub.is_dir() {
        return Ok(None);
    }
    let mut files: Vec<_> = std::fs::read_dir(&sub)
        .map_err(|e| QuantizeError::io(&sub, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "onnx") && p.is_file())
        .collect();
    files.sort();
    match files.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => {
            if let Some(m) = many.iter().find(|p| p.ends_with("model.onnx")) {
                return Ok(Some(m.clone()));
            }
            Err(QuantizeError::Invalid(format!(
                "{} holds several ONNX files ({}): pass one with --input",
                sub.display(),
                many.iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }
}
