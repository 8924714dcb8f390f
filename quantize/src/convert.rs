//! Hugging Face directory -> `.bertq` bytes.

use crate::hf::{self, Architecture, HfConfig};
use crate::quant::quantize_rows_symmetric;
use crate::QuantizeError;
use bertq_runtime::format::{names, HeaderInfo, Layout, ModelWriter, TaskHead};
use bertq_runtime::kernels::pack;
use bertq_runtime::tokenizer::VocabTables;
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// Storage precision of the encoder's matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightPrecision {
    /// Symmetric per-output-channel int8 (embeddings: per row).
    #[default]
    Int8,
    /// Unquantized f32: a reference model file for verification.
    F32,
}

#[derive(Debug, Clone)]
pub struct ConvertOptions {
    pub precision: WeightPrecision,
    /// Layout of the encoder's int8 matrices: the native order of the target's kernels
    /// (K4N16: SDOT, VNNI, AVX2, NEON; K8N8: i8mm). Any layout runs on any CPU.
    pub layout: Layout,
    /// Model name recorded in the header (default: the directory name).
    pub name: Option<String>,
}

/// Weight-quantization error of one matrix, reported after conversion.
#[derive(Debug, Clone)]
pub struct TensorReport {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    /// ||W - dequant(quant(W))|| / ||W||.
    pub relative_error: f64,
}

#[derive(Debug)]
pub struct Converted {
    pub bytes: Vec<u8>,
    pub architecture: Architecture,
    pub tensors: Vec<TensorReport>,
}

/// Reads the safetensors weights, accepting names with or without the `bert.` prefix and the old
/// `gamma`/`beta` LayerNorm names.
struct Weights<'a> {
    st: SafeTensors<'a>,
}

impl Weights<'_> {
    fn get(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), QuantizeError> {
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
            if let Ok(t) = self.st.tensor(c) {
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

    fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, QuantizeError> {
        let (v, s) = self.get(name)?;
        if s != shape {
            return Err(QuantizeError::ShapeMismatch {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: s,
            });
        }
        Ok(v)
    }
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            precision: WeightPrecision::Int8,
            layout: Layout::K4N16,
            name: None,
        }
    }
}

struct Builder<'a> {
    w: Weights<'a>,
    out: ModelWriter,
    precision: WeightPrecision,
    layout: Layout,
    reports: Vec<TensorReport>,
}

impl Builder<'_> {
    /// An encoder matrix `[rows, cols]` (Linear weight or embedding table): int8 per row or f32.
    /// Linear weights (`packed`) are laid out for the target's kernels; embedding tables stay
    /// row-major (they are gathered by row).
    fn matrix(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        packed: bool,
    ) -> Result<(), QuantizeError> {
        let w = self
            .w
            .get_shaped(&format!("{name}.weight"), &[rows, cols])?;
        match self.precision {
            WeightPrecision::F32 => {
                self.out
                    .add_f32(&format!("{name}{}", names::WEIGHT), &[rows, cols], &w)
            }
            WeightPrecision::Int8 => {
                let (q, scales) = quantize_rows_symmetric(&w, cols);
                let (mut err, mut norm) = (0.0f64, 0.0f64);
                for ((&x, &qv), r) in w
                    .iter()
                    .zip(&q)
                    .zip((0..rows).flat_map(|r| std::iter::repeat_n(r, cols)))
                {
                    let d = x as f64 - qv as f64 * scales[r] as f64;
                    err += d * d;
                    norm += x as f64 * x as f64;
                }
                self.reports.push(TensorReport {
                    name: name.to_string(),
                    rows,
                    cols,
                    relative_error: if norm > 0.0 { (err / norm).sqrt() } else { 0.0 },
                });
                let weight = format!("{name}{}", names::WEIGHT);
                if packed && self.layout != Layout::RowMajor {
                    let data = pack::pack(self.layout, &q, rows, cols);
                    self.out
                        .add_i8_packed(&weight, self.layout, rows, cols, &data);
                    let sums = pack::row_sums(&q, rows, cols);
                    self.out
                        .add_i32(&format!("{name}{}", names::ROW_SUMS), &[rows], &sums);
                } else {
                    self.out.add_i8(&weight, &[rows, cols], &q);
                }
                self.out
                    .add_f32(&format!("{name}{}", names::SCALE), &[rows], &scales);
            }
        }
        Ok(())
    }

    fn vector(&mut self, name: &str, n: usize) -> Result<(), QuantizeError> {
        let v = self.w.get_shaped(name, &[n])?;
        self.out.add_f32(name, &[n], &v);
        Ok(())
    }

    fn linear(&mut self, name: &str, out: usize, inp: usize) -> Result<(), QuantizeError> {
        self.matrix(name, out, inp, true)?;
        self.vector(&format!("{name}{}", names::BIAS), out)
    }

    /// Head layers stay f32: they run on one or a few rows, and their precision is the output's.
    fn linear_f32(&mut self, name: &str, out: usize, inp: usize) -> Result<(), QuantizeError> {
        let w = self.w.get_shaped(&format!("{name}.weight"), &[out, inp])?;
        self.out
            .add_f32(&format!("{name}{}", names::WEIGHT), &[out, inp], &w);
        self.vector(&format!("{name}{}", names::BIAS), out)
    }

    fn layer_norm(&mut self, name: &str, n: usize) -> Result<(), QuantizeError> {
        self.vector(&format!("{name}.weight"), n)?;
        self.vector(&format!("{name}.bias"), n)
    }
}

/// Converts a Hugging Face directory.
pub fn convert_dir(dir: &Path, opts: &ConvertOptions) -> Result<Converted, QuantizeError> {
    let cfg: HfConfig = hf::read_json(&dir.join("config.json"))?;
    let arch = Architecture::from_config(&cfg)?;
    let config = cfg.model_config()?;
    let tok = hf::read_tokenizer(dir, config.max_position_embeddings)?;
    if tok.vocab.len() > config.vocab_size as usize {
        return Err(QuantizeError::Invalid(format!(
            "the vocabulary has {} tokens but the embedding table {} rows",
            tok.vocab.len(),
            config.vocab_size
        )));
    }
    let st_path = hf::safetensors_path(dir)?;
    let file = std::fs::File::open(&st_path).map_err(|e| QuantizeError::io(&st_path, e))?;
    // SAFETY: the file is opened read-only and only read during conversion; like every memory
    // map it assumes no other process truncates the file meanwhile.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| QuantizeError::io(&st_path, e))?;
    let st = SafeTensors::deserialize(&mmap)
        .map_err(|e| QuantizeError::Invalid(format!("{}: {e}", st_path.display())))?;
    let mut b = Builder {
        w: Weights { st },
        out: ModelWriter::new(),
        precision: opts.precision,
        layout: opts.layout,
        reports: Vec::new(),
    };
    let (h, i) = (
        config.hidden_size as usize,
        config.intermediate_size as usize,
    );
    b.matrix(names::WORD_EMBEDDINGS, config.vocab_size as usize, h, false)?;
    b.matrix(
        names::POSITION_EMBEDDINGS,
        config.max_position_embeddings as usize,
        h,
        false,
    )?;
    b.matrix(
        names::TOKEN_TYPE_EMBEDDINGS,
        config.type_vocab_size as usize,
        h,
        false,
    )?;
    b.layer_norm(names::EMBEDDINGS_LAYER_NORM, h)?;
    for l in 0..config.num_layers as usize {
        let p = |m: &str| format!("encoder.layer.{l}.{m}");
        let [q, k, v, ao, inter, out] = names::LAYER_LINEARS;
        b.linear(&p(q), h, h)?;
        b.linear(&p(k), h, h)?;
        b.linear(&p(v), h, h)?;
        b.linear(&p(ao), h, h)?;
        b.layer_norm(&p(names::LAYER_NORMS[0]), h)?;
        b.linear(&p(inter), i, h)?;
        b.linear(&p(out), h, i)?;
        b.layer_norm(&p(names::LAYER_NORMS[1]), h)?;
    }
    let (task, labels) = match arch {
        Architecture::Encoder => (hf::embedding_head(dir)?, Vec::new()),
        Architecture::SequenceClassification | Architecture::TokenClassification => {
            let (_, shape) = b.w.get("classifier.weight")?;
            let num_labels = *shape.first().unwrap_or(&0);
            if shape.len() != 2 || shape[1] != h || num_labels == 0 {
                return Err(QuantizeError::ShapeMismatch {
                    name: "classifier.weight".into(),
                    expected: vec![num_labels.max(1), h],
                    found: shape,
                });
            }
            let labels = cfg.labels(num_labels)?;
            if arch == Architecture::SequenceClassification {
                b.linear_f32(names::POOLER, h, h)?;
                b.linear_f32(names::CLASSIFIER, num_labels, h)?;
                let multi = cfg.problem_type.as_deref() == Some("multi_label_classification");
                (
                    TaskHead::SequenceClassification { multi_label: multi },
                    labels,
                )
            } else {
                b.linear_f32(names::CLASSIFIER, num_labels, h)?;
                (TaskHead::TokenClassification, labels)
            }
        }
    };
    let vocab_refs: Vec<&str> = tok.vocab.iter().map(String::as_str).collect();
    let vt = VocabTables::build(&vocab_refs);
    b.out
        .add_u8(names::VOCAB_STRINGS, &[vt.strings.len()], &vt.strings);
    b.out
        .add_u32(names::VOCAB_OFFSETS, &[vt.offsets.len()], &vt.offsets);
    b.out
        .add_u32(names::VOCAB_INDEX, &[vt.index.len()], &vt.index);
    if !labels.is_empty() {
        let mut strings = Vec::new();
        let mut offsets = vec![0u32];
        for l in &labels {
            strings.extend_from_slice(l.as_bytes());
            offsets.push(strings.len() as u32);
        }
        b.out
            .add_u8(names::LABEL_STRINGS, &[strings.len()], &strings);
        b.out
            .add_u32(names::LABEL_OFFSETS, &[offsets.len()], &offsets);
    }
    let name = opts.name.clone().unwrap_or_else(|| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    });
    let precision = match opts.precision {
        WeightPrecision::Int8 => format!(
            "int8 symmetric per-channel weights packed {:?}, f32 head",
            opts.layout
        ),
        WeightPrecision::F32 => "f32 weights".to_string(),
    };
    let info = HeaderInfo {
        name,
        source: format!(
            "bertq-quantize {} from a Hugging Face {} directory; {precision}",
            env!("CARGO_PKG_VERSION"),
            cfg.architectures
                .first()
                .map(String::as_str)
                .unwrap_or("BertModel")
        ),
        config,
        tokenizer: tok.settings,
        task,
    };
    Ok(Converted {
        bytes: b.out.to_bytes(&info),
        architecture: arch,
        tensors: b.reports,
    })
}
