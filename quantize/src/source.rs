//! Where the weights come from: a safetensors file or an ONNX graph. Both answer the same
//! question, "the f32 values and PyTorch shape of the tensor Hugging Face calls `name`"
//! (without the `bert.` prefix), so one builder serves both.

use crate::QuantizeError;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub trait WeightSource: std::fmt::Debug {
    /// The tensor `name` (canonical Hugging Face name without `bert.`): values and shape.
    fn tensor(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), QuantizeError>;
}

/// `model.safetensors` (f32, f16 or bf16; names with or without `bert.`, old `gamma`/`beta`).
pub struct SafetensorsSource {
    path: PathBuf,
    map: memmap2::Mmap,
}

impl std::fmt::Debug for SafetensorsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsSource")
            .field("path", &self.path)
            .finish()
    }
}

impl SafetensorsSource {
    pub fn open(path: &Path) -> Result<Self, QuantizeError> {
        let file = std::fs::File::open(path).map_err(|e| QuantizeError::io(path, e))?;
        // SAFETY: the file is opened read-only and only read during conversion; like every
        // memory map it assumes no other process truncates the file meanwhile.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| QuantizeError::io(path, e))?;
        let source = SafetensorsSource {
            path: path.to_path_buf(),
            map,
        };
        source.tensors()?;
        Ok(source)
    }

    fn tensors(&self) -> Result<SafeTensors<'_>, QuantizeError> {
        SafeTensors::deserialize(&self.map)
            .map_err(|e| QuantizeError::Invalid(format!("{}: {e}", self.path.display())))
    }
}

impl WeightSource for SafetensorsSource {
    fn tensor(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), QuantizeError> {
        let st = self.tensors()?;
        let mut candidates = vec![format!("bert.{name}"), name.to_string()];
        if let Some(stem) = name.strip_suffix("LayerNorm.weight") {
            candidates.push(format!("bert.{stem}LayerNorm.gamma"));
            candidates.push(format!("{stem}LayerNorm.gamma"));
        }
        if let Some(stem) = name.strip_suffix("LayerNorm.bias") {
            candidates.push(format!("bert.{stem}LayerNorm.beta"));
            candidates.push(format!("{stem}LayerNorm.beta"));
        }
        for c in &candidates {
            if let Ok(t) = st.tensor(c) {
                let data = t.data();
                let values: Vec<f32> = match t.dtype() {
                    Dtype::F32 => data
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                    Dtype::F16 => data
                        .chunks_exact(2)
                        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                        .collect(),
                    Dtype::BF16 => data
                        .chunks_exact(2)
                        .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                        .collect(),
                    other => {
                        return Err(QuantizeError::Invalid(format!(
                            "tensor `{c}` has dtype {other:?} (expected F32, F16 or BF16)"
                        )))
                    }
                };
                return Ok((values, t.shape().to_vec()));
            }
        }
        Err(QuantizeError::MissingTensor(name.to_string()))
    }
}

/// Tensors already in memory under their canonical names (what the ONNX importer recovers).
#[derive(Default)]
pub struct MemorySource {
    pub tensors: BTreeMap<String, (Vec<f32>, Vec<usize>)>,
}

impl std::fmt::Debug for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySource")
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl WeightSource for MemorySource {
    fn tensor(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), QuantizeError> {
        self.tensors
            .get(name)
            .cloned()
            .ok_or_else(|| QuantizeError::MissingTensor(name.to_string()))
    }
}
