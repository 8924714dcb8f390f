//! A model input (Hugging Face directory with safetensors, or ONNX) -> `.bertq` bytes.
//!
//! [`load_input`] reads the description of the model (architecture, sizes, labels, tokenizer)
//! and opens its weights as a [`WeightSource`]; [`Input::convert`] is the one builder both
//! sources share.

use crate::hf::{self, Architecture, HfConfig, HfTokenizer};
use crate::onnx::{self, HeadKind};
use crate::quant::quantize_rows_symmetric;
use crate::source::{MemorySource, SafetensorsSource, WeightSource};
use crate::QuantizeError;
use bertq_runtime::format::{
    names, HeaderInfo, Layout, ModelConfig, ModelWriter, Pooling, TaskHead,
};
use bertq_runtime::kernels::pack;
use bertq_runtime::tokenizer::VocabTables;
use std::path::{Path, PathBuf};

/// Storage precision of the encoder's matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightPrecision {
    /// Symmetric per-output-channel int8 (embeddings: per row).
    #[default]
    Int8,
    /// Unquantized f32: a reference model file for verification.
    F32,
}

/// Storage of the Linear layers kept in floating point in a mixed model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FloatDType {
    /// IEEE half precision (via `half`): half the bytes of f32, widened to f32 on the fly.
    #[default]
    F16,
    F32,
}

#[derive(Debug, Clone)]
pub struct ConvertOptions {
    pub precision: WeightPrecision,
    /// Mixed precision: encoder Linear layers (`encoder.layer.{i}.{module}`) and embedding
    /// tables (`embeddings.*_embeddings`) stored in `float_dtype` instead of int8 (Linears then
    /// run through the f32 GEMM).
    pub keep_float: Vec<String>,
    pub float_dtype: FloatDType,
    /// Static activation scales (from calibration) per int8 Linear name; Linears without one
    /// quantize their input dynamically per row.
    pub input_scales: std::collections::BTreeMap<String, f32>,
    /// Layout of the encoder's int8 matrices: the native order of the target's kernels
    /// (K4N16: SDOT, VNNI, AVX2, NEON; K8N8: i8mm). Any layout runs on any CPU.
    pub layout: Layout,
    /// Model name recorded in the header (default: the input's name).
    pub name: Option<String>,
    /// A PII profile (token classification; see `bertq_runtime::pii`), stored as the
    /// `pii.profile` tensor: the model then answers with whole PII spans by default.
    pub pii_profile: Option<String>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            precision: WeightPrecision::Int8,
            keep_float: Vec::new(),
            float_dtype: FloatDType::F16,
            input_scales: Default::default(),
            layout: Layout::K4N16,
            name: None,
            pii_profile: None,
        }
    }
}

/// Weight-quantization error of one matrix, reported after conversion.
#[derive(Debug, Clone)]
pub struct TensorReport {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    /// Storage: `i8`, `f16` or `f32`.
    pub dtype: &'static str,
    /// ||W - dequant(quant(W))|| / ||W||.
    pub relative_error: f64,
}

#[derive(Debug)]
pub struct Converted {
    pub bytes: Vec<u8>,
    pub architecture: Architecture,
    pub tensors: Vec<TensorReport>,
}

/// Everything about a model except its weights.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub architecture: Architecture,
    pub config: ModelConfig,
    pub labels: Vec<String>,
    pub tokenizer: HfTokenizer,
    pub task: TaskHead,
    /// Default model name (the input's directory or file name).
    pub default_name: String,
    /// Where the weights came from, for the header's `source` text.
    pub origin: String,
}

/// A model ready to convert: its description and its weights.
#[derive(Debug)]
pub struct Input {
    pub spec: ModelSpec,
    pub weights: Box<dyn WeightSource>,
    /// What the reader found worth telling (ONNX: weight storage kinds, producer).
    pub notes: Vec<String>,
    /// The file the weights were read from.
    pub weights_path: PathBuf,
}

fn hf_arch_name(a: Architecture) -> &'static str {
    match a {
        Architecture::Encoder => "BertModel",
        Architecture::SequenceClassification => "BertForSequenceClassification",
        Architecture::TokenClassification => "BertForTokenClassification",
        Architecture::MaskedLm => "BertForMaskedLM",
        Architecture::NextSentencePrediction => "BertForNextSentencePrediction",
        Architecture::QuestionAnswering => "BertForQuestionAnswering",
    }
}

/// Opens a model input: a Hugging Face directory (`model.safetensors`, or `model.onnx` /
/// `onnx/*.onnx`, with config.json, vocab.txt or tokenizer.json), or an `.onnx` file whose
/// directory (or, for `onnx/x.onnx`, the parent directory) holds the tokenizer files.
pub fn load_input(path: &Path) -> Result<Input, QuantizeError> {
    if path.is_dir() {
        if path.join("model.safetensors").exists() {
            return load_safetensors_dir(path);
        }
        if let Some(onnx) = onnx::find_in_dir(path)? {
            return load_onnx(&onnx, path, true);
        }
        return Err(QuantizeError::MissingFile(
            path.join("model.safetensors (or model.onnx, onnx/*.onnx)"),
        ));
    }
    if path.extension().is_some_and(|e| e == "onnx") {
        let parent = path.parent().unwrap_or(Path::new("."));
        let has_tokenizer =
            |d: &Path| d.join("vocab.txt").exists() || d.join("tokenizer.json").exists();
        let meta = if !has_tokenizer(parent)
            && parent.file_name().is_some_and(|n| n == "onnx")
            && parent.parent().is_some_and(has_tokenizer)
        {
            parent.parent().unwrap_or(parent)
        } else {
            parent
        };
        return load_onnx(path, meta, false);
    }
    if !path.exists() {
        return Err(QuantizeError::MissingFile(path.to_path_buf()));
    }
    Err(QuantizeError::Unsupported(format!(
        "{}: expected a model directory or an .onnx file",
        path.display()
    )))
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}

fn load_safetensors_dir(dir: &Path) -> Result<Input, QuantizeError> {
    let cfg: HfConfig = hf::read_json(&dir.join("config.json"))?;
    let arch = Architecture::from_config(&cfg)?;
    let config = cfg.model_config()?;
    let tokenizer = hf::read_tokenizer(dir, config.max_position_embeddings)?;
    let st_path = hf::safetensors_path(dir)?;
    let weights = SafetensorsSource::open(&st_path)?;
    let (task, labels) = match arch {
        Architecture::Encoder => (hf::embedding_head(dir)?, Vec::new()),
        Architecture::MaskedLm => (TaskHead::FillMask, Vec::new()),
        Architecture::QuestionAnswering => (TaskHead::QuestionAnswering, Vec::new()),
        Architecture::NextSentencePrediction => (
            classifier_task(arch, &cfg),
            hf::NSP_LABELS.iter().map(|l| l.to_string()).collect(),
        ),
        _ => {
            let (_, shape) = weights.tensor("classifier.weight")?;
            let h = config.hidden_size as usize;
            let num_labels = *shape.first().unwrap_or(&0);
            if shape.len() != 2 || shape[1] != h || num_labels == 0 {
                return Err(QuantizeError::ShapeMismatch {
                    name: "classifier.weight".into(),
                    expected: vec![num_labels.max(1), h],
                    found: shape,
                });
            }
            (classifier_task(arch, &cfg), cfg.labels(num_labels)?)
        }
    };
    Ok(Input {
        spec: ModelSpec {
            architecture: arch,
            config,
            labels,
            tokenizer,
            task,
            default_name: dir_name(dir),
            origin: format!("a Hugging Face {} directory", hf_architecture(&cfg)),
        },
        weights: Box::new(weights),
        notes: Vec::new(),
        weights_path: st_path,
    })
}

fn hf_architecture(cfg: &HfConfig) -> &str {
    cfg.architectures
        .first()
        .map(String::as_str)
        .unwrap_or("BertModel")
}

fn classifier_task(arch: Architecture, cfg: &HfConfig) -> TaskHead {
    match arch {
        Architecture::SequenceClassification => TaskHead::SequenceClassification {
            multi_label: cfg.problem_type.as_deref() == Some("multi_label_classification"),
        },
        Architecture::TokenClassification => TaskHead::TokenClassification,
        Architecture::NextSentencePrediction => {
            TaskHead::SequenceClassification { multi_label: false }
        }
        Architecture::MaskedLm => TaskHead::FillMask,
        Architecture::QuestionAnswering => TaskHead::QuestionAnswering,
        Architecture::Encoder => TaskHead::Embedding {
            pooling: Pooling::Mean,
            normalize: true,
        },
    }
}

/// Reads an ONNX graph; `meta` is the directory with config.json (optional) and the tokenizer.
fn load_onnx(path: &Path, meta: &Path, is_dir_input: bool) -> Result<Input, QuantizeError> {
    let cfg_path = meta.join("config.json");
    let cfg: Option<HfConfig> = if cfg_path.exists() {
        Some(hf::read_json(&cfg_path)?)
    } else {
        None
    };
    let model = onnx::read(path, cfg.as_ref().map(|c| c.num_attention_heads as usize))?;
    let m = &model.bert;
    let arch = match m.head {
        HeadKind::Encoder => Architecture::Encoder,
        HeadKind::TokenClassification { .. } => Architecture::TokenClassification,
        HeadKind::SequenceClassification { .. } => Architecture::SequenceClassification,
    };
    let num_labels = match m.head {
        HeadKind::Encoder => 0,
        HeadKind::TokenClassification { labels } | HeadKind::SequenceClassification { labels } => {
            labels
        }
    };
    let graph_config = ModelConfig {
        num_layers: m.num_layers as u32,
        hidden_size: m.hidden as u32,
        num_heads: m.heads as u32,
        intermediate_size: m.intermediate as u32,
        vocab_size: m.vocab as u32,
        max_position_embeddings: m.max_positions as u32,
        type_vocab_size: m.type_vocab as u32,
        layer_norm_eps: m.eps,
        activation: m.activation,
    };
    let (config, labels, task, hf_arch) = match &cfg {
        Some(cfg) => {
            let cfg_arch = Architecture::from_config(cfg)?;
            let config = cfg.model_config()?;
            check_config(&graph_config, &config, cfg_arch, arch, path)?;
            let labels = if num_labels > 0 {
                cfg.labels(num_labels)?
            } else {
                Vec::new()
            };
            let task = match arch {
                Architecture::Encoder => hf::embedding_head(meta)?,
                _ => classifier_task(arch, cfg),
            };
            (config, labels, task, hf_architecture(cfg).to_string())
        }
        None => {
            let labels = (0..num_labels).map(|i| format!("LABEL_{i}")).collect();
            let task = match arch {
                Architecture::Encoder => hf::embedding_head(meta)?,
                _ => TaskHead::TokenClassification,
            };
            let task = match arch {
                Architecture::SequenceClassification => {
                    TaskHead::SequenceClassification { multi_label: false }
                }
                _ => task,
            };
            (graph_config, labels, task, hf_arch_name(arch).to_string())
        }
    };
    let tokenizer = hf::read_tokenizer(meta, config.max_position_embeddings)?;
    let mut kinds: Vec<String> = model
        .kinds
        .iter()
        .map(|(k, n)| format!("{n} x {k}"))
        .collect();
    kinds.sort();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let origin = if is_dir_input {
        // A Hugging Face (Optimum / transformers.js) model directory: config.json, tokenizer
        // and the ONNX weights.
        format!("a Hugging Face {hf_arch} directory")
    } else {
        format!("ONNX {file_name} ({hf_arch})")
    };
    let default_name = if is_dir_input {
        dir_name(meta)
    } else {
        path.file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    };
    let notes = vec![format!(
        "ONNX {} (producer {}): {} layers x {} hidden, {} heads, {:?}; Linear weights: {}",
        path.display(),
        if model.producer.is_empty() {
            "unknown"
        } else {
            &model.producer
        },
        m.num_layers,
        m.hidden,
        m.heads,
        m.activation,
        kinds.join(", ")
    )];
    Ok(Input {
        spec: ModelSpec {
            architecture: arch,
            config,
            labels,
            tokenizer,
            task,
            default_name,
            origin,
        },
        weights: Box::new(MemorySource {
            tensors: model.bert.weights,
        }),
        notes,
        weights_path: path.to_path_buf(),
    })
}

/// config.json and the graph must describe the same network.
fn check_config(
    graph: &ModelConfig,
    cfg: &ModelConfig,
    cfg_arch: Architecture,
    arch: Architecture,
    path: &Path,
) -> Result<(), QuantizeError> {
    let mut diffs = Vec::new();
    let mut cmp = |what: &str, g: u32, c: u32| {
        if g != c {
            diffs.push(format!("{what}: graph {g}, config.json {c}"));
        }
    };
    cmp("layers", graph.num_layers, cfg.num_layers);
    cmp("hidden size", graph.hidden_size, cfg.hidden_size);
    cmp("attention heads", graph.num_heads, cfg.num_heads);
    cmp(
        "intermediate size",
        graph.intermediate_size,
        cfg.intermediate_size,
    );
    cmp("vocabulary", graph.vocab_size, cfg.vocab_size);
    cmp(
        "max positions",
        graph.max_position_embeddings,
        cfg.max_position_embeddings,
    );
    cmp("token types", graph.type_vocab_size, cfg.type_vocab_size);
    let (ge, ce) = (graph.layer_norm_eps, cfg.layer_norm_eps);
    if ((ge - ce) / ce.max(f32::MIN_POSITIVE)).abs() > 1e-3 {
        diffs.push(format!("LayerNorm epsilon: graph {ge}, config.json {ce}"));
    }
    if graph.activation != cfg.activation {
        diffs.push(format!(
            "activation: graph {:?}, config.json {:?}",
            graph.activation, cfg.activation
        ));
    }
    if arch != cfg_arch {
        diffs.push(format!(
            "architecture: graph {}, config.json {}",
            hf_arch_name(arch),
            hf_arch_name(cfg_arch)
        ));
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(QuantizeError::Invalid(format!(
            "{} and its config.json disagree: {}",
            path.display(),
            diffs.join("; ")
        )))
    }
}

struct Builder<'a> {
    w: &'a dyn WeightSource,
    out: ModelWriter,
    precision: WeightPrecision,
    opts: &'a ConvertOptions,
    layout: Layout,
    reports: Vec<TensorReport>,
}

impl Builder<'_> {
    fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, QuantizeError> {
        let (v, s) = self.w.tensor(name)?;
        if s != shape {
            return Err(QuantizeError::ShapeMismatch {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: s,
            });
        }
        if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(QuantizeError::NonFinite {
                name: name.to_string(),
                index,
                value,
            });
        }
        Ok(v)
    }

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
        let w = self.get_shaped(&format!("{name}.weight"), &[rows, cols])?;
        let keep = match self.precision {
            WeightPrecision::Int8 if self.opts.keep_float.iter().any(|k| k == name) => {
                Some(self.opts.float_dtype)
            }
            WeightPrecision::Int8 => None,
            WeightPrecision::F32 => Some(FloatDType::F32),
        };
        match keep {
            Some(FloatDType::F32) => {
                if self.precision == WeightPrecision::Int8 {
                    self.reports.push(TensorReport {
                        name: name.to_string(),
                        rows,
                        cols,
                        dtype: "f32",
                        relative_error: 0.0,
                    });
                }
                self.out
                    .add_f32(&format!("{name}{}", names::WEIGHT), &[rows, cols], &w)
            }
            Some(FloatDType::F16) => {
                let bits: Vec<u16> = w
                    .iter()
                    .map(|&x| half::f16::from_f32(x).to_bits())
                    .collect();
                let (mut err, mut norm) = (0.0f64, 0.0f64);
                for (&x, &b) in w.iter().zip(&bits) {
                    let d = x as f64 - half::f16::from_bits(b).to_f64();
                    err += d * d;
                    norm += x as f64 * x as f64;
                }
                self.reports.push(TensorReport {
                    name: name.to_string(),
                    rows,
                    cols,
                    dtype: "f16",
                    relative_error: if norm > 0.0 { (err / norm).sqrt() } else { 0.0 },
                });
                self.out
                    .add_f16_bits(&format!("{name}{}", names::WEIGHT), &[rows, cols], &bits)
            }
            None => {
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
                    dtype: "i8",
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
                if let Some(&s) = self.opts.input_scales.get(name).filter(|_| packed) {
                    self.out
                        .add_f32(&format!("{name}{}", names::INPUT_SCALE), &[1], &[s]);
                }
            }
        }
        Ok(())
    }

    fn vector(&mut self, name: &str, n: usize) -> Result<(), QuantizeError> {
        let v = self.get_shaped(name, &[n])?;
        self.out.add_f32(name, &[n], &v);
        Ok(())
    }

    fn linear(&mut self, name: &str, out: usize, inp: usize) -> Result<(), QuantizeError> {
        self.matrix(name, out, inp, true)?;
        self.vector(&format!("{name}{}", names::BIAS), out)
    }

    /// Head layers stay f32: they run on one or a few rows, and their precision is the output's.
    fn linear_f32(&mut self, name: &str, out: usize, inp: usize) -> Result<(), QuantizeError> {
        self.linear_f32_as(name, name, out, inp)
    }

    /// [`Self::linear_f32`] read from `src` and stored as `dst`.
    fn linear_f32_as(
        &mut self,
        src: &str,
        dst: &str,
        out: usize,
        inp: usize,
    ) -> Result<(), QuantizeError> {
        let w = self.get_shaped(&format!("{src}.weight"), &[out, inp])?;
        self.out
            .add_f32(&format!("{dst}{}", names::WEIGHT), &[out, inp], &w);
        let b = self.get_shaped(&format!("{src}.bias"), &[out])?;
        self.out
            .add_f32(&format!("{dst}{}", names::BIAS), &[out], &b);
        Ok(())
    }

    fn layer_norm(&mut self, name: &str, n: usize) -> Result<(), QuantizeError> {
        self.vector(&format!("{name}.weight"), n)?;
        self.vector(&format!("{name}.bias"), n)
    }
}

impl Input {
    /// Builds the `.bertq` file.
    pub fn convert(&self, opts: &ConvertOptions) -> Result<Converted, QuantizeError> {
        self.convert_with(self.weights.as_ref(), opts)
    }

    /// [`Self::convert`] with the weights read from `weights` (e.g. the encoder's plus a
    /// trained classifier).
    pub fn convert_with(
        &self,
        weights: &dyn WeightSource,
        opts: &ConvertOptions,
    ) -> Result<Converted, QuantizeError> {
        let spec = &self.spec;
        let config = spec.config;
        let tok = &spec.tokenizer;
        let sizes = [
            ("hidden_size", config.hidden_size),
            ("num_attention_heads", config.num_heads),
            ("intermediate_size", config.intermediate_size),
            ("vocab_size", config.vocab_size),
            ("max_position_embeddings", config.max_position_embeddings),
            ("type_vocab_size", config.type_vocab_size),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(QuantizeError::Invalid(format!("{name} is 0")));
        }
        let pooled_classifier = matches!(spec.task, TaskHead::PooledClassification { .. });
        let classifier = pooled_classifier
            || !matches!(
                spec.architecture,
                Architecture::Encoder | Architecture::MaskedLm | Architecture::QuestionAnswering
            );
        if classifier && spec.labels.is_empty() {
            return Err(QuantizeError::Invalid("a classifier without labels".into()));
        }
        if tok.vocab.len() > config.vocab_size as usize {
            return Err(QuantizeError::Invalid(format!(
                "the vocabulary has {} tokens but the embedding table {} rows",
                tok.vocab.len(),
                config.vocab_size
            )));
        }
        if opts.precision == WeightPrecision::Int8 {
            let is_linear = |n: &str| {
                n.strip_prefix("encoder.layer.")
                    .and_then(|r| r.split_once('.'))
                    .is_some_and(|(l, m)| {
                        l.parse::<u32>().is_ok_and(|l| l < config.num_layers)
                            && names::LAYER_LINEARS.contains(&m)
                    })
            };
            let embeddings = [
                names::WORD_EMBEDDINGS,
                names::POSITION_EMBEDDINGS,
                names::TOKEN_TYPE_EMBEDDINGS,
            ];
            if let Some(k) = opts
                .keep_float
                .iter()
                .find(|k| !is_linear(k) && !embeddings.contains(&k.as_str()))
            {
                return Err(QuantizeError::Invalid(format!(
                    "`{k}` is neither an encoder Linear of this model (encoder.layer.<0..{}>.<{}>) \
                     nor an embedding table ({})",
                    config.num_layers,
                    names::LAYER_LINEARS.join("|"),
                    embeddings.join(", ")
                )));
            }
            if let Some((k, v)) = opts
                .input_scales
                .iter()
                .find(|(k, v)| !(is_linear(k) && v.is_finite() && **v > 0.0))
            {
                return Err(QuantizeError::Invalid(format!(
                    "static input scale {v} for `{k}`: not a positive scale of an encoder Linear"
                )));
            }
        }
        let mut b = Builder {
            w: weights,
            out: ModelWriter::new(),
            precision: opts.precision,
            opts,
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
        let num_labels = spec.labels.len();
        match spec.architecture {
            Architecture::Encoder => {
                if pooled_classifier {
                    b.linear_f32(names::CLASSIFIER, num_labels, h)?;
                }
            }
            Architecture::SequenceClassification => {
                b.linear_f32(names::POOLER, h, h)?;
                b.linear_f32(names::CLASSIFIER, num_labels, h)?;
            }
            Architecture::TokenClassification => {
                b.linear_f32(names::CLASSIFIER, num_labels, h)?;
            }
            Architecture::NextSentencePrediction => {
                b.linear_f32(names::POOLER, h, h)?;
                b.linear_f32_as("cls.seq_relationship", names::CLASSIFIER, num_labels, h)?;
            }
            Architecture::MaskedLm => {
                // The decoder is the word embedding table above (tied): not stored again.
                b.linear_f32(names::MLM_TRANSFORM, h, h)?;
                b.layer_norm(names::MLM_LAYER_NORM, h)?;
                b.vector(names::MLM_BIAS, config.vocab_size as usize)?;
            }
            Architecture::QuestionAnswering => {
                b.linear_f32(names::QA_OUTPUTS, 2, h)?;
            }
        }
        let vocab_refs: Vec<&str> = tok.vocab.iter().map(String::as_str).collect();
        let vt = VocabTables::build(&vocab_refs);
        b.out
            .add_u8(names::VOCAB_STRINGS, &[vt.strings.len()], &vt.strings);
        b.out
            .add_u32(names::VOCAB_OFFSETS, &[vt.offsets.len()], &vt.offsets);
        b.out
            .add_u32(names::VOCAB_INDEX, &[vt.index.len()], &vt.index);
        if !spec.labels.is_empty() {
            let mut strings = Vec::new();
            let mut offsets = vec![0u32];
            for l in &spec.labels {
                strings.extend_from_slice(l.as_bytes());
                offsets.push(strings.len() as u32);
            }
            b.out
                .add_u8(names::LABEL_STRINGS, &[strings.len()], &strings);
            b.out
                .add_u32(names::LABEL_OFFSETS, &[offsets.len()], &offsets);
        }
        if let Some(profile) = &opts.pii_profile {
            if spec.architecture != Architecture::TokenClassification {
                return Err(QuantizeError::Unsupported(
                    "a PII profile needs a token-classification model".into(),
                ));
            }
            bertq_runtime::pii::PiiProfile::parse(profile, true)
                .map_err(|e| QuantizeError::Unsupported(format!("--pii-profile: {e}")))?;
            let bytes = profile.as_bytes();
            b.out
                .add_u8(bertq_runtime::pii::PROFILE_TENSOR, &[bytes.len()], bytes);
        }
        let name = opts
            .name
            .clone()
            .unwrap_or_else(|| spec.default_name.clone());
        let precision = match opts.precision {
            WeightPrecision::Int8 => format!(
                "int8 symmetric per-channel weights packed {:?}{}{}, f32 head",
                opts.layout,
                if opts.keep_float.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", {} Linear layers kept in {:?}",
                        opts.keep_float.len(),
                        opts.float_dtype
                    )
                },
                if opts.input_scales.is_empty() {
                    String::new()
                } else {
                    ", static activation scales".to_string()
                }
            ),
            WeightPrecision::F32 => "f32 weights".to_string(),
        };
        let info = HeaderInfo {
            name,
            source: format!(
                "bertq-quantize {} from {}; {precision}",
                env!("CARGO_PKG_VERSION"),
                spec.origin
            ),
            config,
            tokenizer: tok.settings,
            task: spec.task,
        };
        Ok(Converted {
            bytes: b.out.to_bytes(&info),
            architecture: spec.architecture,
            tensors: b.reports,
        })
    }
}

/// Converts a model input (directory or `.onnx` file).
pub fn convert_path(path: &Path, opts: &ConvertOptions) -> Result<Converted, QuantizeError> {
    load_input(path)?.convert(opts)
}

/// Converts a Hugging Face directory (safetensors or ONNX weights).
pub fn convert_dir(dir: &Path, opts: &ConvertOptions) -> Result<Converted, QuantizeError> {
    convert_path(dir, opts)
}
