//! Reading a Hugging Face BERT directory: `config.json`, `model.safetensors`, `vocab.txt` or
//! `tokenizer.json`, `tokenizer_config.json`, and sentence-transformers' pooling config.

use crate::QuantizeError;
use bertq_runtime::format::{Activation, ModelConfig, Pooling, TaskHead, TokenizerSettings};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The parts of `config.json` bertq uses (`BertConfig`).
#[derive(Debug, Clone, Deserialize)]
pub struct HfConfig {
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub model_type: Option<String>,
    pub hidden_size: u32,
    pub num_hidden_layers: u32,
    pub num_attention_heads: u32,
    pub intermediate_size: u32,
    pub vocab_size: u32,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: u32,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: u32,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    #[serde(default)]
    pub id2label: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub problem_type: Option<String>,
    #[serde(default)]
    pub num_labels: Option<u32>,
    /// Whether the masked-LM decoder shares the word embeddings (Hugging Face default: true).
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
}

fn default_max_positions() -> u32 {
    512
}
fn default_type_vocab() -> u32 {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

/// The architectures bertq converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `BertModel`: a sentence encoder.
    Encoder,
    SequenceClassification,
    TokenClassification,
    /// `BertForMaskedLM`: fill-mask, the decoder tied to the word embeddings.
    MaskedLm,
    /// `BertForNextSentencePrediction`: a two-label pair classifier (`isNext`, `notNext`).
    NextSentencePrediction,
    /// `BertForQuestionAnswering`: `qa_outputs` (start and end logits per token).
    QuestionAnswering,
}

/// Labels of `BertForNextSentencePrediction` in its output order (index 0: B continues A).
pub const NSP_LABELS: [&str; 2] = ["isNext", "notNext"];

impl Architecture {
    pub fn from_config(c: &HfConfig) -> Result<Self, QuantizeError> {
        if let Some(t) = &c.model_type {
            if t != "bert" {
                return Err(QuantizeError::Unsupported(format!(
                    "model_type `{t}` (only `bert` is supported)"
                )));
            }
        }
        let arch = c
            .architectures
            .first()
            .map(String::as_str)
            .unwrap_or("BertModel");
        match arch {
            "BertModel" => Ok(Architecture::Encoder),
            "BertForSequenceClassification" => Ok(Architecture::SequenceClassification),
            "BertForTokenClassification" => Ok(Architecture::TokenClassification),
            "BertForMaskedLM" if c.tie_word_embeddings == Some(false) => {
                Err(QuantizeError::Unsupported(
                    "BertForMaskedLM with tie_word_embeddings: false (the decoder must be the \
                     word embeddings)"
                        .into(),
                ))
            }
            "BertForMaskedLM" => Ok(Architecture::MaskedLm),
            "BertForNextSentencePrediction" => Ok(Architecture::NextSentencePrediction),
            "BertForQuestionAnswering" => Ok(Architecture::QuestionAnswering),
            other => Err(QuantizeError::Unsupported(format!(
                "architecture `{other}` (supported: BertModel, BertForSequenceClassification, \
                 BertForTokenClassification, BertForMaskedLM, BertForNextSentencePrediction, \
                 BertForQuestionAnswering)"
            ))),
        }
    }
}

impl HfConfig {
    pub fn model_config(&self) -> Result<ModelConfig, QuantizeError> {
        if let Some(p) = &self.position_embedding_type {
            if p != "absolute" {
                return Err(QuantizeError::Unsupported(format!(
                    "position_embedding_type `{p}` (only `absolute`)"
                )));
            }
        }
        let activation = match self.hidden_act.as_str() {
            "gelu" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => {
                return Err(QuantizeError::Unsupported(format!("hidden_act `{other}`")));
            }
        };
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(QuantizeError::Unsupported(
                "hidden_size is not a multiple of num_attention_heads".into(),
            ));
        }
        Ok(ModelConfig {
            num_layers: self.num_hidden_layers,
            hidden_size: self.hidden_size,
            num_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            vocab_size: self.vocab_size,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: self.type_vocab_size,
            layer_norm_eps: self.layer_norm_eps as f32,
            activation,
        })
    }

    /// Label names in id order (`id2label`), or `LABEL_i` when the config has none.
    pub fn labels(&self, count: usize) -> Result<Vec<String>, QuantizeError> {
        let Some(map) = &self.id2label else {
            return Ok((0..count).map(|i| format!("LABEL_{i}")).collect());
        };
        let mut labels = vec![None; count];
        for (k, v) in map {
            let i: usize = k.parse().map_err(|_| {
                QuantizeError::Invalid(format!("id2label key `{k}` is not a number"))
            })?;
            if i >= count {
                return Err(QuantizeError::Invalid(format!(
                    "id2label has id {i} but the classifier has {count} outputs"
                )));
            }
            labels[i] = Some(v.clone());
        }
        Ok(labels
            .into_iter()
            .enumerate()
            .map(|(i, l)| l.unwrap_or_else(|| format!("LABEL_{i}")))
            .collect())
    }
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, QuantizeError> {
    let text = std::fs::read_to_string(path).map_err(|e| QuantizeError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| QuantizeError::Json {
        path: path.to_path_buf(),
        source: e,
    })
}

/// The tokenizer as configured by `tokenizer.json` (preferred, it is what `BertTokenizerFast`
/// runs) or `tokenizer_config.json` + `vocab.txt`.
#[derive(Debug, Clone)]
pub struct HfTokenizer {
    /// Tokens in id order.
    pub vocab: Vec<String>,
    pub settings: TokenizerSettings,
}

#[derive(Deserialize, Default)]
struct TokenizerConfigJson {
    do_lower_case: Option<bool>,
    strip_accents: Option<bool>,
    tokenize_chinese_chars: Option<bool>,
    model_max_length: Option<f64>,
    cls_token: Option<serde_json::Value>,
    sep_token: Option<serde_json::Value>,
    pad_token: Option<serde_json::Value>,
    unk_token: Option<serde_json::Value>,
    mask_token: Option<serde_json::Value>,
}

fn token_name(v: &Option<serde_json::Value>, default: &str) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Object(o)) => o
            .get("content")
            .and_then(|c| c.as_str())
            .unwrap_or(default)
            .to_string(),
        _ => default.to_string(),
    }
}

pub fn read_tokenizer(dir: &Path, max_positions: u32) -> Result<HfTokenizer, QuantizeError> {
    let tc_path = dir.join("tokenizer_config.json");
    let tc: TokenizerConfigJson = if tc_path.exists() {
        read_json(&tc_path)?
    } else {
        TokenizerConfigJson::default()
    };
    let tj_path = dir.join("tokenizer.json");
    let tj: Option<serde_json::Value> = if tj_path.exists() {
        Some(read_json(&tj_path)?)
    } else {
        None
    };

    // Vocabulary: vocab.txt (one token per line, id = line number) or tokenizer.json's model.vocab.
    let vocab_path = dir.join("vocab.txt");
    let vocab: Vec<String> = if vocab_path.exists() {
        let text =
            std::fs::read_to_string(&vocab_path).map_err(|e| QuantizeError::io(&vocab_path, e))?;
        // `BertTokenizer.load_vocab` strips only the trailing newline of each line.
        text.lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect()
    } else if let Some(vocab) = tj
        .as_ref()
        .and_then(|t| t.pointer("/model/vocab"))
        .and_then(|v| v.as_object())
    {
        let mut pairs: Vec<(u64, &String)> = vocab
            .iter()
            .map(|(tok, id)| (id.as_u64().unwrap_or(u64::MAX), tok))
            .collect();
        pairs.sort();
        let mut out = Vec::with_capacity(pairs.len());
        for (i, (id, tok)) in pairs.into_iter().enumerate() {
            if id != i as u64 {
                return Err(QuantizeError::Invalid(
                    "tokenizer.json vocab ids are not 0..n".into(),
                ));
            }
            out.push(tok.clone());
        }
        out
    } else {
        return Err(QuantizeError::MissingFile(
            dir.join("vocab.txt (or tokenizer.json)"),
        ));
    };

    // Normaliser switches: tokenizer.json's BertNormalizer wins; else tokenizer_config.json.
    let norm = tj
        .as_ref()
        .and_then(|t| t.get("normalizer"))
        .filter(|n| !n.is_null());
    let (mut clean_text, mut chinese, mut lowercase, mut strip) = (
        true,
        tc.tokenize_chinese_chars.unwrap_or(true),
        tc.do_lower_case.unwrap_or(true),
        tc.strip_accents,
    );
    if let Some(n) = norm {
        if n.get("type").and_then(|t| t.as_str()) != Some("BertNormalizer") {
            return Err(QuantizeError::Unsupported(format!(
                "tokenizer.json normalizer {} (only BertNormalizer)",
                n.get("type").unwrap_or(&serde_json::Value::Null)
            )));
        }
        let flag = |k: &str| n.get(k).and_then(|v| v.as_bool());
        clean_text = flag("clean_text").unwrap_or(true);
        chinese = flag("handle_chinese_chars").unwrap_or(true);
        lowercase = flag("lowercase").unwrap_or(true);
        strip = flag("strip_accents");
    }
    let max_chars = tj
        .as_ref()
        .and_then(|t| t.pointer("/model/max_input_chars_per_word"))
        .and_then(|v| v.as_u64())
        .unwrap_or(100) as u32;

    let id_of = |name: &str| -> Result<u32, QuantizeError> {
        // The last occurrence wins, as in Hugging Face's vocabulary map.
        vocab
            .iter()
            .rposition(|t| t == name)
            .map(|i| i as u32)
            .ok_or_else(|| {
                QuantizeError::Invalid(format!("special token `{name}` is not in the vocabulary"))
            })
    };
    let model_max_length = tc
        .model_max_length
        .filter(|&m| m >= 2.0 && m <= max_positions as f64)
        .map(|m| m as u32)
        .unwrap_or(max_positions);
    let settings = TokenizerSettings {
        clean_text,
        handle_chinese_chars: chinese,
        strip_accents: strip.unwrap_or(lowercase),
        lowercase,
        max_input_chars_per_word: max_chars,
        cls_id: id_of(&token_name(&tc.cls_token, "[CLS]"))?,
        sep_id: id_of(&token_name(&tc.sep_token, "[SEP]"))?,
        pad_id: id_of(&token_name(&tc.pad_token, "[PAD]"))?,
        unk_id: id_of(&token_name(&tc.unk_token, "[UNK]"))?,
        mask_id: id_of(&token_name(&tc.mask_token, "[MASK]"))?,
        model_max_length,
    };
    Ok(HfTokenizer { vocab, settings })
}

/// The task head of a `BertModel` directory: sentence-transformers' pooling if configured,
/// else mean pooling with normalisation (as `all-MiniLM-L6-v2` and most sentence encoders).
pub fn embedding_head(dir: &Path) -> Result<TaskHead, QuantizeError> {
    let mut pooling = Pooling::Mean;
    let mut normalize = true;
    let modules_path = dir.join("modules.json");
    if modules_path.exists() {
        let modules: Vec<serde_json::Value> = read_json(&modules_path)?;
        normalize = modules.iter().any(|m| {
            m.get("type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.ends_with("Normalize"))
        });
        for m in &modules {
            let is_pooling = m
                .get("type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.ends_with("Pooling"));
            if let (true, Some(path)) = (is_pooling, m.get("path").and_then(|p| p.as_str())) {
                let cfg: serde_json::Value = read_json(&dir.join(path).join("config.json"))?;
                let on = |k: &str| cfg.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
                pooling = if on("pooling_mode_cls_token") {
                    Pooling::Cls
                } else if on("pooling_mode_mean_tokens") {
                    Pooling::Mean
                } else {
                    return Err(QuantizeError::Unsupported(
                        "sentence-transformers pooling other than mean or CLS".into(),
                    ));
                };
            }
        }
    }
    Ok(TaskHead::Embedding { pooling, normalize })
}

/// Finds the weights file of a directory.
pub fn safetensors_path(dir: &Path) -> Result<PathBuf, QuantizeError> {
    let p = dir.join("model.safetensors");
    if p.exists() {
        Ok(p)
    } else {
        Err(QuantizeError::MissingFile(p))
    }
}
