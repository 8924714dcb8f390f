//! The `.bertq` model file: a postcard header, a tensor table and 64-byte aligned tensor data,
//! read zero-copy from a `&[u8]` after validating every byte of it.
#[cfg(feature = "std")]
mod bytes;
mod file;
mod header;
#[cfg(feature = "std")]
mod writer;

#[cfg(feature = "std")]
pub use bytes::ModelBytes;
pub use file::*;
pub use header::*;
#[cfg(feature = "std")]
pub use writer::{HeaderInfo, ModelWriter};

/// Canonical tensor names, shared by the quantizer (writer) and the model (reader).
/// They follow Hugging Face's state-dict names without the `bert.` prefix.
pub mod names {
    pub const WORD_EMBEDDINGS: &str = "embeddings.word_embeddings";
    pub const POSITION_EMBEDDINGS: &str = "embeddings.position_embeddings";
    pub const TOKEN_TYPE_EMBEDDINGS: &str = "embeddings.token_type_embeddings";
    pub const EMBEDDINGS_LAYER_NORM: &str = "embeddings.LayerNorm";
    /// Per-layer modules, under `encoder.layer.{i}.`.
    pub const LAYER_LINEARS: [&str; 6] = [
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "intermediate.dense",
        "output.dense",
    ];
    pub const LAYER_NORMS: [&str; 2] = ["attention.output.LayerNorm", "output.LayerNorm"];
    pub const POOLER: &str = "pooler.dense";
    pub const CLASSIFIER: &str = "classifier";
    /// `BertForMaskedLM`'s prediction head; its decoder is the word embedding table (tied).
    pub const MLM_TRANSFORM: &str = "cls.predictions.transform.dense";
    pub const MLM_LAYER_NORM: &str = "cls.predictions.transform.LayerNorm";
    /// f32 `[vocab]`: the decoder's bias.
    pub const MLM_BIAS: &str = "cls.predictions.bias";
    /// `BertForQuestionAnswering`'s `qa_outputs` (`[2, hidden]`: start and end logits).
    pub const QA_OUTPUTS: &str = "qa_outputs";
    pub const VOCAB_STRINGS: &str = "tokenizer.vocab.strings";
    pub const VOCAB_OFFSETS: &str = "tokenizer.vocab.offsets";
    pub const VOCAB_INDEX: &str = "tokenizer.vocab.index";
    pub const LABEL_STRINGS: &str = "labels.strings";
    pub const LABEL_OFFSETS: &str = "labels.offsets";
    /// Suffixes: `.weight` (i8 `[out, in]` or f32), `.scale` (f32 per output row, with i8), `.bias`.
    pub const WEIGHT: &str = ".weight";
    pub const SCALE: &str = ".scale";
    /// i32 `[out]`: per-row sums of a packed int8 weight (for unsigned-activation kernels).
    pub const ROW_SUMS: &str = ".row_sums";
    pub const BIAS: &str = ".bias";
    /// f32 `[1]`: a static activation scale of an int8 Linear's input (from calibration);
    /// without it the input is quantized dynamically, one scale per row.
    pub const INPUT_SCALE: &str = ".input_scale";
}
