//! The typed header of a `.bertq` file: everything except the tensor bytes.
//!
//! Serialised with postcard. Enums may gain variants at the end in later format versions
//! (postcard encodes the variant index as a varint), fields may not be reordered.

use serde::{Deserialize, Serialize};

/// Architecture hyper-parameters, mirroring Hugging Face's `BertConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub num_layers: u32,
    pub hidden_size: u32,
    pub num_heads: u32,
    pub intermediate_size: u32,
    pub vocab_size: u32,
    pub max_position_embeddings: u32,
    pub type_vocab_size: u32,
    pub layer_norm_eps: f32,
    pub activation: Activation,
}

impl ModelConfig {
    pub fn head_dim(&self) -> usize {
        (self.hidden_size / self.num_heads.max(1)) as usize
    }
}

/// The feed-forward activation (`hidden_act` in `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `gelu`: the exact erf form BERT was trained with.
    GeluErf,
    /// `gelu_new` / `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    Relu,
}

/// Settings of BERT's basic tokenizer and WordPiece, as `BertTokenizerFast` applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizerSettings {
    /// Remove control characters and map every whitespace character to a space.
    pub clean_text: bool,
    /// Put spaces around every CJK ideograph so each becomes its own word.
    pub handle_chinese_chars: bool,
    /// Decompose (NFD) and drop non-spacing marks.
    pub strip_accents: bool,
    pub lowercase: bool,
    /// Words longer than this many characters become `[UNK]` (Hugging Face default 100).
    pub max_input_chars_per_word: u32,
    pub cls_id: u32,
    pub sep_id: u32,
    pub pad_id: u32,
    pub unk_id: u32,
    pub mask_id: u32,
    /// `model_max_length` of the tokenizer (positions the model was trained with).
    pub model_max_length: u32,
}

/// What the model computes on top of the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskHead {
    /// `BertModel` used as a sentence encoder (sentence-transformers style).
    Embedding { pooling: Pooling, normalize: bool },
    /// `BertForSequenceClassification`: pooler (dense + tanh on `[CLS]`) and a linear classifier.
    SequenceClassification { multi_label: bool },
    /// `BertForTokenClassification`: a linear classifier on every token.
    TokenClassification,
    /// `BertForMaskedLM`: the prediction head (dense, activation, LayerNorm) on every `[MASK]`
    /// token and the decoder tied to the word embeddings (stored once) plus a vocabulary bias.
    FillMask,
    /// A linear classifier on the pooled sentence embedding (what `bertq-quantize train-head`
    /// writes): pooling and normalisation as [`TaskHead::Embedding`], then `classifier` and
    /// softmax. No pooler.
    PooledClassification { pooling: Pooling, normalize: bool },
    /// `BertForQuestionAnswering`: `qa_outputs`, a linear layer giving every token a start and an
    /// end logit (extractive question answering).
    QuestionAnswering,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pooling {
    /// Mean over all tokens of the sequence, special tokens included (sentence-transformers).
    Mean,
    /// The `[CLS]` token's hidden state.
    Cls,
}

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DType {
    F32,
    I8,
    U8,
    U32,
    F16,
    I32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::U32 | DType::I32 => 4,
            DType::I8 | DType::U8 => 1,
            DType::F16 => 2,
        }
    }
}

/// How the elements of a weight matrix are ordered in the file (see [`crate::kernels::pack`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// Row-major in the tensor's shape (a Linear weight is `[out_features, in_features]`).
    RowMajor,
    /// Panels of 16 rows, k in groups of 4: the native order of SDOT and x86 VNNI kernels.
    K4N16,
    /// Panels of 8 rows, k in groups of 8: the native order of i8mm SMMLA kernels.
    K8N8,
}

/// One entry of the tensor table. `offset` is from the start of the file, 64-byte aligned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorEntry<'a> {
    pub name: &'a str,
    pub dtype: DType,
    pub layout: Layout,
    pub shape: heapless::Vec<u32, 4>,
    pub offset: u64,
    pub len: u64,
}

/// The header proper; followed in the file by `tensor_count` postcard-encoded [`TensorEntry`]s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header<'a> {
    /// A short name for the model (e.g. `rampart-pii`).
    pub name: &'a str,
    /// Where the weights came from and how they were converted (free text).
    pub source: &'a str,
    pub config: ModelConfig,
    pub tokenizer: TokenizerSettings,
    pub task: TaskHead,
    pub tensor_count: u32,
}
