//! A loaded model: the validated file, the encoder, the task head, the tokenizer and the labels,
//! all borrowing the file's bytes (the encoder's int8 weights optionally converted, once, into a
//! buffer the caller owns: [`Model::repacked`]).

pub mod bert;

pub use bert::{Encoder, Precision, Scratch, MAX_LAYERS};

use crate::format::{names, LoadError, ModelConfig, ModelFile, TaskHead};
use crate::heads::{Aggregation, Entity, Head};
use crate::kernels::{pack, Kernels, Layout, PackedI8, Weights};
use crate::pii::PiiProfile;
use crate::tokenizer::{Tokenizer, Vocab};

/// Alignment of each repacked matrix (the file's tensor alignment: a cache line).
const ALIGN: usize = crate::format::TENSOR_ALIGN;

/// The int8 weights of a Linear that [`Model::repacked`] converts for `kernels`.
fn repackable<'w>(w: &Weights<'w>, kernels: &Kernels) -> Option<PackedI8<'w>> {
    let to = kernels.native_layout;
    match *w {
        Weights::I8(w)
            if w.layout != to
                && to != Layout::RowMajor
                && (w.row_sums.is_some() || !kernels.unsigned_activations) =>
        {
            Some(w)
        }
        _ => None,
    }
}

/// The label names (`id2label`), stored as a string table in the file.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    strings: &'a str,
    offsets: &'a [u32],
}

impl<'a> Labels<'a> {
    fn load(file: &ModelFile<'a>) -> Result<Self, LoadError> {
        let (Some(s), Some(o)) = (
            file.find(names::LABEL_STRINGS),
            file.find(names::LABEL_OFFSETS),
        ) else {
            return Ok(Labels {
                strings: "",
                offsets: &[],
            });
        };
        let strings = core::str::from_utf8(s.u8s()?).map_err(|_| LoadError::InvalidLabels)?;
        let offsets = o.u32s()?;
        let ok = offsets.first() == Some(&0)
            && offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets.last().is_some_and(|&e| e as usize == strings.len())
            && offsets
                .iter()
                .all(|&x| strings.is_char_boundary(x as usize));
        if !ok {
            return Err(LoadError::InvalidLabels);
        }
        Ok(Labels { strings, offsets })
    }

    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, id: usize) -> Option<&'a str> {
        let (&a, &b) = (self.offsets.get(id)?, self.offsets.get(id + 1)?);
        self.strings.get(a as usize..b as usize)
    }
    /// The `entity_group` Hugging Face reports: the label after its first `-` (`B-EMAIL` ->
    /// `EMAIL`), or the whole label (`O`).
    pub fn entity_group(&self, id: usize) -> &'a str {
        let l = self.get(id).unwrap_or("");
        l.split_once('-').map_or(l, |(_, rest)| rest)
    }
    /// The BIO reading of a label used to decide grouping: `(is_begin, tag)`. Labels without a
    /// `B-`/`I-` prefix count as `I-` of themselves (Hugging Face's `get_tag`).
    pub fn bio_tag(&self, id: usize) -> (bool, &'a str) {
        let l = self.get(id).unwrap_or("");
        if let Some(t) = l.strip_prefix("B-") {
            (true, t)
        } else {
            (false, l.strip_prefix("I-").unwrap_or(l))
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// Everything needed to run a model, borrowed from the model file's bytes.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    pub file: ModelFile<'a>,
    pub encoder: Encoder<'a>,
    pub head: Head<'a>,
    pub tokenizer: Tokenizer<'a>,
    pub labels: Labels<'a>,
    /// The PII profile (`pii.profile` tensor), if the file has one: then the `pii`
    /// aggregation is this model's default ([`Model::default_aggregation`]).
    pub pii: Option<PiiProfile<'a>>,
}

impl<'a> Model<'a> {
    /// Validates and loads a model from its bytes (zero-copy; the bytes must be 4-byte aligned).
    pub fn load(bytes: &'a [u8]) -> Result<Self, LoadError> {
        let file = ModelFile::parse(bytes)?;
        let encoder = Encoder::load(&file)?;
        let labels = Labels::load(&file)?;
        let head = Head::load(&file, &encoder.config, labels.len())?;
        let vocab = Vocab::from_parts(
            file.tensor(names::VOCAB_STRINGS)?.u8s()?,
            file.tensor(names::VOCAB_OFFSETS)?.u32s()?,
            file.tensor(names::VOCAB_INDEX)?.u32s()?,
        )
        .map_err(|_| LoadError::Tokenizer("vocabulary tables are inconsistent"))?;
        if vocab.len() > encoder.config.vocab_size as usize {
            return Err(LoadError::Tokenizer(
                "vocabulary has more tokens than the embedding table",
            ));
        }
        let tokenizer = Tokenizer::new(vocab, file.header.tokenizer)
            .map_err(|_| LoadError::Tokenizer("settings do not fit the vocabulary"))?;
        let pii = match file.find(crate::pii::PROFILE_TENSOR) {
            None => None,
            Some(t) => {
                let text = core::str::from_utf8(t.u8s()?)
                    .map_err(|_| LoadError::InvalidConfig("the PII profile is not UTF-8"))?;
                Some(
                    PiiProfile::parse(text, false)
                        .map_err(|_| LoadError::InvalidConfig("invalid PII profile"))?,
                )
            }
        };
        Ok(Model {
            file,
            encoder,
            head,
            tokenizer,
            labels,
            pii,
        })
    }

    /// The layout [`Model::repacked`] would give the encoder's int8 weights for `kernels`, and
    /// the bytes of buffer it needs; `None` when nothing would change. A table's own layout
    /// runs fastest on it (i8mm's SMMLA kernel on K8N8 executes about a quarter fewer
    /// instructions than on the default K4N16, SDOT and x86 tables run K8N8 in the
    /// portable reference). Weights stay as they are for the reference table (it takes every
    /// layout alike) and for a table with unsigned activations when the file has no row sums.
    pub fn repack_plan(&self, kernels: &Kernels) -> Option<(Layout, usize)> {
        let to = kernels.native_layout;
        let mut bytes = 0usize;
        for layer in &self.encoder.layers {
            for lin in layer.linears() {
                if let Some(w) = repackable(&lin.weight, kernels) {
                    // Each matrix starts 64-byte aligned, as in the file.
                    let len = to.packed_len(w.n, w.k)?.checked_add(ALIGN - 1)?;
                    bytes = bytes.checked_add(len)?;
                }
            }
        }
        (bytes > 0).then_some((to, bytes))
    }

    /// This model with the encoder's int8 weights converted to `kernels`' own layout, written
    /// into `buf` (at least [`Model::repack_plan`]'s bytes; the caller owns it, nothing is
    /// allocated). The outputs are the same bit for bit: only the order of the weights changes.
    /// Without a plan the model is returned as it is.
    pub fn repacked<'b>(&self, kernels: &Kernels, buf: &'b mut [i8]) -> Result<Model<'b>, LoadError>
    where
        'a: 'b,
    {
        let mut model: Model<'b> = self.clone();
        let Some((to, needed)) = self.repack_plan(kernels) else {
            return Ok(model);
        };
        let got = buf.len();
        let short = LoadError::RepackBuffer { needed, got };
        if got < needed {
            return Err(short);
        }
        let mut rest = buf;
        for layer in model.encoder.layers.iter_mut() {
            for lin in layer.linears_mut() {
                let Some(w) = repackable(&lin.weight, kernels) else {
                    continue;
                };
                let len = to.packed_len(w.n, w.k).ok_or(LoadError::InvalidConfig(
                    "weight matrix too large to repack",
                ))?;
                let pad = rest.as_ptr().align_offset(ALIGN);
                let (_, aligned) = core::mem::take(&mut rest)
                    .split_at_mut_checked(pad)
                    .ok_or(short.clone())?;
                let (dst, tail) = aligned.split_at_mut_checked(len).ok_or(short.clone())?;
                rest = tail;
                if !pack::repack(w.layout, w.data, to, dst, w.n, w.k) {
                    return Err(LoadError::InvalidConfig(
                        "weight matrix does not fit its layout",
                    ));
                }
                lin.weight = Weights::I8(PackedI8 {
                    layout: to,
                    data: dst,
                    ..w
                });
            }
        }
        Ok(model)
    }

    /// The aggregation `bertq run` uses when none is asked for: `pii` for a token-classification
    /// model with a PII profile, else Hugging Face's default `simple`.
    pub fn default_aggregation(&self) -> Aggregation {
        match (self.task(), self.pii) {
            (TaskHead::TokenClassification, Some(_)) => Aggregation::Pii,
            _ => Aggregation::Simple,
        }
    }

    /// The type name of an entity of a token-classification output: its full tag with
    /// aggregation `none`, else its entity group, a recognizer's type or a profile's rename.
    pub fn entity_type(&self, e: &Entity, aggregation: Aggregation) -> &'a str {
        if aggregation == Aggregation::None {
            return self.labels.get(e.label as usize).unwrap_or("");
        }
        crate::pii::entity_type(&self.labels, self.pii.as_ref(), e.label)
    }

    pub fn config(&self) -> &ModelConfig {
        &self.encoder.config
    }
    pub fn task(&self) -> TaskHead {
        self.file.header.task
    }
    pub fn name(&self) -> &'a str {
        self.file.header.name
    }

    /// The longest sequence a session of this model can be created for.
    pub fn max_sequence_length(&self) -> usize {
        let c = self.config();
        let tok = self.file.header.tokenizer.model_max_length;
        let pos = c.max_position_embeddings as usize;
        if tok == 0 {
            pos
        } else {
            pos.min(tok as usize)
        }
    }

    /// Parameter count of the encoder and head.
    pub fn parameter_count(&self) -> usize {
        let c = self.config();
        let (h, i, l) = (
            c.hidden_size as usize,
            c.intermediate_size as usize,
            c.num_layers as usize,
        );
        let emb =
            (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) as usize * h + 2 * h;
        let layer = 4 * (h * h + h) + 2 * h * i + i + h + 4 * h;
        emb + l * layer + self.head.parameter_count()
    }
}
