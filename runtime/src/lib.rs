//! bertq runtime: int8 BERT inference that allocates nothing once a session exists.
//!
//! Layout (see ARCHITECTURE.md):
//! - [`format`](mod@format): the `.bertq` model file (header, tensor table, zero-copy validated loading).
//! - [`tokenizer`]: BERT basic tokenizer + WordPiece, Hugging Face-exact ids and offsets.
//! - [`kernels`]: matrix kernels behind one table, portable reference beside each ISA.
//! - [`model`]: the BERT encoder over borrowed weights.
//! - [`heads`]: task heads and decoding (classification, token classification, embeddings).
//! - [`pii`]: whole PII spans: span mode, recognizers, merge, the model's PII profile.
//! - [`session`]: preallocated working memory and the allocation-free `run`.
#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(target_endian = "big")]
compile_error!("bertq model files are little-endian and loaded zero-copy: big-endian targets are not supported");

pub mod format;
pub mod heads;
pub mod kernels;
pub mod model;
pub mod parallel;
pub mod pii;
pub mod session;
pub mod tokenizer;

#[cfg(feature = "std")]
pub use format::ModelBytes;
pub use format::{LoadError, ModelFile};
pub use heads::question_answering::QaOptions;
pub use heads::Aggregation;
pub use model::{Model, Precision};
pub use session::{
    MemorySizes, Output, RunError, RunOptions, Session, SessionError, SessionMemory, TaskOutput,
};
