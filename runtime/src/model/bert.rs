//! The BERT encoder over weights borrowed from the model file.
//!
//! One struct per Hugging Face module (`BertEmbeddings`, `BertLayer`, ...), mirroring
//! `transformers/models/bert/modeling_bert.py`. All working memory comes from [`Scratch`].

use crate::format::{names, Activation, LoadError, ModelConfig, ModelFile, TensorView};
use crate::kernels::pack::{self, PackedError};
use crate::kernels::vector::Attention;
use crate::kernels::{GemmF32, GemmI8, Kernels, Layout, MatMut, PackedI8, Weights};
use crate::parallel::{split_range, Parallel, SharedMut};
use core::fmt::Write;
use core::ops::Range;

/// The most encoder layers a model may have (bert-large has 24).
pub const MAX_LAYERS: usize = 64;
/// The most positions (`max_position_embeddings`) a model may have (BERT: 512). One head's
/// attention scores at this length are 256 MiB.
pub const MAX_POSITIONS: u32 = 8192;
/// The widest hidden state (bert-large: 1024).
pub const MAX_HIDDEN: u32 = 8192;
/// The widest feed-forward layer (bert-large: 4096).
pub const MAX_INTERMEDIATE: u32 = 65536;
/// The largest vocabulary (multilingual BERT: 119,547).
pub const MAX_VOCAB: u32 = 1 << 21;
/// The most token types (BERT: 2; some models have 1).
pub const MAX_TOKEN_TYPES: u32 = 1024;

/// How the encoder's matrix products are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// int8 weights x int8 activations (dynamic per-row quantization), i32 accumulation.
    Int8,
    /// f32 activations x dequantised weights: the verification reference.
    F32,
}

/// A `Linear` layer: `y = x W^T + b`, `W` of shape `[n, k]`.
#[derive(Debug, Clone, Copy)]
pub struct Linear<'a> {
    pub weight: Weights<'a>,
    pub bias: &'a [f32],
    pub n: usize,
    pub k: usize,
    /// A static input scale from calibration (`.input_scale`): with int8 weights the input is
    /// quantized as `round(x * (1 / scale))` clamped to ±127, instead of one dynamic scale per row.
    pub input_scale: Option<f32>,
}

fn name(parts: &[&str]) -> heapless::String<128> {
    let mut s = heapless::String::new();
    for p in parts {
        // Names are built from short constants; overflow would only truncate an error message.
        let _ = s.push_str(p);
    }
    s
}

fn wrong(t: &TensorView<'_>, expected: &'static str) -> LoadError {
    LoadError::WrongTensor {
        name: crate::format::tensor_name(t.entry.name),
        expected,
    }
}

fn check_shape(
    t: &TensorView<'_>,
    shape: &[usize],
    expected: &'static str,
) -> Result<(), LoadError> {
    let s = t.shape();
    if s.len() != shape.len() || s.iter().zip(shape).any(|(&a, &b)| a as usize != b) {
        return Err(wrong(t, expected));
    }
    Ok(())
}

/// Loads a 1-D f32 vector of `n` elements.
pub(crate) fn load_vector<'a>(
    file: &ModelFile<'a>,
    name: &str,
    n: usize,
) -> Result<&'a [f32], LoadError> {
    let t = file.tensor(name)?;
    check_shape(&t, &[n], "f32 vector of the layer's width")?;
    t.f32s()
}

/// Loads an `[n, k]` weight (int8 with per-row `.scale`, or f32) and its `[n]` bias.
pub(crate) fn load_weights<'a>(
    file: &ModelFile<'a>,
    prefix: &str,
    n: usize,
    k: usize,
) -> Result<Weights<'a>, LoadError> {
    let w = file.tensor(&name(&[prefix, names::WEIGHT]))?;
    check_shape(&w, &[n, k], "[out_features, in_features]")?;
    match w.entry.dtype {
        crate::format::DType::I8 => {
            let scales = load_vector(file, &name(&[prefix, names::SCALE]), n)?;
            let sums = file.find(&name(&[prefix, names::ROW_SUMS]));
            let row_sums = match &sums {
                Some(t) => {
                    check_shape(t, &[n], "i32 row sums")?;
                    Some(t.i32s()?)
                }
                None => None,
            };
            let (data, layout) = (w.i8s()?, w.entry.layout);
            // The kernels trust the padding and the sums: a file that lies about them is an
            // error here, not different outputs on one kernel table.
            match (pack::check_packed(layout, data, n, k, row_sums), &sums) {
                (Ok(()), _) => {}
                (Err(PackedError::RowSum), Some(t)) => {
                    return Err(wrong(t, "the sums of the weight's rows"))
                }
                (Err(PackedError::Padding), _) => {
                    return Err(wrong(&w, "zero padding in its packed layout"))
                }
                (Err(_), _) => return Err(wrong(&w, "as long as its packed layout")),
            }
            Ok(Weights::I8(PackedI8 {
                layout,
                data,
                scales,
                row_sums,
                n,
                k,
            }))
        }
        crate::format::DType::F32 => Ok(Weights::F32(w.f32s()?)),
        crate::format::DType::F16 => Ok(Weights::F16(w.f16_bits()?)),
        _ => Err(wrong(&w, "i8, f16 or f32")),
    }
}

impl<'a> Linear<'a> {
    pub fn load(file: &ModelFile<'a>, prefix: &str, n: usize, k: usize) -> Result<Self, LoadError> {
        let input_scale = match file.find(&name(&[prefix, names::INPUT_SCALE])) {
            Some(t) => {
                check_shape(&t, &[1], "a static input scale [1]")?;
                let s = t.f32s()?[0];
                // A zero, negative or non-finite scale would turn every activation into garbage.
                if !(s.is_finite() && s > 0.0) {
                    return Err(wrong(&t, "a positive finite input scale"));
                }
                Some(s)
            }
            None => None,
        };
        Ok(Linear {
            weight: load_weights(file, prefix, n, k)?,
            bias: load_vector(file, &name(&[prefix, names::BIAS]), n)?,
            n,
            k,
            input_scale,
        })
    }

    /// `out = x W^T + b` for the `m` rows of `x`. In int8 precision `xq`/`xs` (at least `m` rows)
    /// receive the quantized rows of `x`, as `input` says they must be (see [`Input`]). Float
    /// weights (f32, f16) always take the f32 activations.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        kernels: &Kernels,
        precision: Precision,
        x: &[f32],
        m: usize,
        xq: &mut [i8],
        xs: &mut [f32],
        input: Input,
        out: &mut [f32],
    ) {
        let (n, k) = (self.n, self.k);
        let out = &mut out[..m * n];
        match (precision, self.weight) {
            (Precision::Int8, Weights::I8(_)) => {
                if input != Input::Quantized {
                    let max_known = input == Input::RowMax;
                    self.quantize_input(kernels, x, m, xq, xs, max_known);
                }
                let out = &mut MatMut::new(out, m, n);
                self.gemm_columns(kernels, &xq[..m * k], &xs[..m], 0..n, out);
            }
            // f32 precision, or an f32 layer in a mixed model: the f32 activations directly.
            (_, weight) => {
                let p = GemmF32 {
                    m,
                    n,
                    k,
                    a: &x[..m * k],
                    w: weight,
                    bias: Some(self.bias),
                };
                (kernels.gemm_f32)(&p, out);
            }
        }
    }
}

impl Linear<'_> {
    /// Quantizes the `m` rows of `x` into `xq`/`xs` as this layer's int8 product takes them
    /// (its static input scale, or dynamic per-row scales; `max_known`: `xs` holds the rows'
    /// `max |x|`, see [`Input::RowMax`]).
    pub fn quantize_input(
        &self,
        kernels: &Kernels,
        x: &[f32],
        m: usize,
        xq: &mut [i8],
        xs: &mut [f32],
        max_known: bool,
    ) {
        let k = self.k;
        let (x, xq, xs) = (&x[..m * k], &mut xq[..m * k], &mut xs[..m]);
        match self.input_scale {
            Some(scale) => crate::kernels::reference::quantize_rows_static(
                x,
                scale,
                kernels.unsigned_activations,
                xq,
                xs,
            ),
            None => (kernels.quantize_rows)(x, k, xq, xs, max_known),
        }
    }

    /// Output columns `cols` of the int8 product of the quantized rows `xq`/`xs` (one scale
    /// per row) into `out` (`[rows, cols.len()]`). `cols` must start on a weight panel (see
    /// [`Linear::column_share`]); the weights must be int8.
    pub fn gemm_columns(
        &self,
        kernels: &Kernels,
        xq: &[i8],
        xs: &[f32],
        cols: core::ops::Range<usize>,
        out: &mut MatMut<'_>,
    ) {
        let Weights::I8(w) = self.weight else {
            unreachable!("an int8 product of float weights");
        };
        let w = w
            .rows(cols.clone())
            .expect("column shares start on a weight panel");
        let p = GemmI8 {
            m: xs.len(),
            a: xq,
            a_scales: xs,
            w,
            bias: Some(&self.bias[cols]),
        };
        (kernels.gemm_i8)(&p, out);
    }

    /// The output columns part `part` of `parts` computes in a column split: whole weight
    /// panels, as even as they go.
    pub fn column_share(&self, part: usize, parts: usize) -> core::ops::Range<usize> {
        let panel = match self.weight {
            Weights::I8(w) => w.layout.tile().0,
            _ => 1,
        };
        split_range(self.n, part, parts, panel)
    }

    /// Whether the product is int8 in `precision` (a column split needs every product int8).
    fn is_int8(&self, precision: Precision) -> bool {
        precision == Precision::Int8 && matches!(self.weight, Weights::I8(_))
    }

    /// Whether the step that writes this layer's input should note each row's `max |x|` on the
    /// way (GELU, LayerNorm): dynamic int8 quantization then reads the row once, not twice.
    fn takes_row_max(&self, precision: Precision) -> bool {
        self.is_int8(precision) && self.input_scale.is_none()
    }

    /// How this layer's input arrives from a step that noted row maxima when it wanted them.
    fn input_after_row_max(&self, precision: Precision) -> Input {
        match self.takes_row_max(precision) {
            true => Input::RowMax,
            false => Input::Float,
        }
    }
}

/// What a [`Linear`]'s int8 input buffers (`xq`, `xs`) hold when its `forward` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Nothing of this input: quantize the f32 rows.
    Float,
    /// `xs` holds each row's `max |x|`, noted by the step that wrote the rows: quantize them
    /// without a pass to find it.
    RowMax,
    /// `xq`/`xs` hold the rows quantized with this layer's input scale (Q, K and V share one
    /// quantization).
    Quantized,
}

#[derive(Debug, Clone, Copy)]
pub struct LayerNorm<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f32,
}

impl<'a> LayerNorm<'a> {
    pub fn load(file: &ModelFile<'a>, prefix: &str, n: usize, eps: f32) -> Result<Self, LoadError> {
        Ok(LayerNorm {
            gamma: load_vector(file, &name(&[prefix, names::WEIGHT]), n)?,
            beta: load_vector(file, &name(&[prefix, names::BIAS]), n)?,
            eps,
        })
    }

    /// `x = LayerNorm(x + residual)`, every row.
    pub fn forward(&self, kernels: &Kernels, x: &mut [f32], residual: Option<&[f32]>) {
        self.forward_max(kernels, x, residual, None);
    }

    /// [`LayerNorm::forward`], noting each row's `max |x|` afterwards in `row_max` if given.
    pub fn forward_max(
        &self,
        kernels: &Kernels,
        x: &mut [f32],
        residual: Option<&[f32]>,
        row_max: Option<&mut [f32]>,
    ) {
        (kernels.add_layer_norm)(x, residual, self.gamma, self.beta, self.eps, row_max);
    }
}

/// An embedding table `[rows, dim]`: int8 with a scale per row, or f32.
#[derive(Debug, Clone, Copy)]
pub struct Embedding<'a> {
    pub table: Weights<'a>,
    pub rows: usize,
    pub dim: usize,
}

impl<'a> Embedding<'a> {
    pub fn load(
        file: &ModelFile<'a>,
        prefix: &str,
        rows: usize,
        dim: usize,
    ) -> Result<Self, LoadError> {
        let table = load_weights(file, prefix, rows, dim)?;
        if let Weights::I8(w) = table {
            if w.layout != Layout::RowMajor {
                let t = file.tensor(&name(&[prefix, names::WEIGHT]))?;
                return Err(wrong(&t, "a row-major embedding table"));
            }
        }
        Ok(Embedding { table, rows, dim })
    }

    /// `out += table[row]`. `row` must be `< rows` (checked by the caller: ids against the
    /// vocabulary, token types against `type_vocab_size`); a row out of range adds nothing
    /// rather than panicking.
    fn add_row(&self, row: usize, out: &mut [f32]) {
        let d = self.dim;
        if row >= self.rows {
            return;
        }
        let range = row * d..(row + 1) * d;
        match self.table {
            Weights::I8(w) => {
                let (Some(&s), Some(data)) = (w.scales.get(row), w.data.get(range)) else {
                    return;
                };
                for (o, &q) in out.iter_mut().zip(data) {
                    *o += q as f32 * s;
                }
            }
            Weights::F32(t) => {
                for (o, &v) in out.iter_mut().zip(t.get(range).unwrap_or(&[])) {
                    *o += v;
                }
            }
            Weights::F16(t) => {
                for (o, &v) in out.iter_mut().zip(t.get(range).unwrap_or(&[])) {
                    *o += half::f16::from_bits(v).to_f32();
                }
            }
        }
    }
}

/// `BertEmbeddings`: word + position + token type, then LayerNorm.
#[derive(Debug, Clone, Copy)]
pub struct Embeddings<'a> {
    pub word: Embedding<'a>,
    pub position: Embedding<'a>,
    pub token_type: Embedding<'a>,
    pub layer_norm: LayerNorm<'a>,
}

/// `BertLayer`: self-attention and feed-forward, each with a residual and post-LayerNorm.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    pub query: Linear<'a>,
    pub key: Linear<'a>,
    pub value: Linear<'a>,
    pub attention_output: Linear<'a>,
    pub attention_norm: LayerNorm<'a>,
    pub intermediate: Linear<'a>,
    pub output: Linear<'a>,
    pub output_norm: LayerNorm<'a>,
}

impl<'a> Layer<'a> {
    /// The six Linear layers, in the order they run.
    pub fn linears(&self) -> [&Linear<'a>; 6] {
        [
            &self.query,
            &self.key,
            &self.value,
            &self.attention_output,
            &self.intermediate,
            &self.output,
        ]
    }
    pub fn linears_mut(&mut self) -> [&mut Linear<'a>; 6] {
        [
            &mut self.query,
            &mut self.key,
            &mut self.value,
            &mut self.attention_output,
            &mut self.intermediate,
            &mut self.output,
        ]
    }

    /// Whether every product of the layer is int8 in `precision` (what a column split needs).
    fn is_int8(&self, precision: Precision) -> bool {
        self.linears().iter().all(|lin| lin.is_int8(precision))
    }
}

/// Working memory of one forward pass, sized for `max_seq` tokens.
#[derive(Debug)]
pub struct Scratch<'s> {
    /// `[seq, hidden]`: the hidden states (the encoder's output after `forward`).
    pub hidden: &'s mut [f32],
    pub q: &'s mut [f32],
    pub k: &'s mut [f32],
    pub v: &'s mut [f32],
    /// `[seq, hidden]`: attention context, then sublayer outputs.
    pub ctx: &'s mut [f32],
    /// `[seq, intermediate]`.
    pub ffn: &'s mut [f32],
    /// `[parts, seq, seq]`: each parallel part's attention probabilities for one head.
    pub scores: &'s mut [f32],
    /// `[hidden, seq]`: K transposed.
    pub kt: &'s mut [f32],
    /// `[rows, max(hidden, intermediate)]`: quantized activations, `rows` from
    /// [`activation_rows`] (a column split gives each part its own copy of every row).
    pub act_q: &'s mut [i8],
    /// `[rows]`: their per-row scales.
    pub act_scales: &'s mut [f32],
}

/// Rows of quantized activations a pass over `seq` tokens in `parts` parts needs: `seq` for a
/// row split; in a column split (short inputs, [`COLUMN_SPLIT_MAX_ROWS`]) every part quantizes
/// all rows into its own block. `None` on overflow.
pub fn activation_rows(seq: usize, parts: usize) -> Option<usize> {
    if parts <= 1 {
        return Some(seq);
    }
    Some(seq.max(parts.checked_mul(seq.min(COLUMN_SPLIT_MAX_ROWS))?))
}

impl Scratch<'_> {
    /// f32 elements needed for `seq` tokens run in `parts` parallel parts (saturating: a size
    /// that does not fit in `usize` is `usize::MAX`, which no memory fits).
    pub fn f32_len(c: &ModelConfig, seq: usize, parts: usize) -> usize {
        Self::f32_len_checked(c, seq, parts).unwrap_or(usize::MAX)
    }
    /// [`Self::f32_len`], `None` on overflow.
    pub fn f32_len_checked(c: &ModelConfig, seq: usize, parts: usize) -> Option<usize> {
        let (h, i) = (c.hidden_size as usize, c.intermediate_size as usize);
        let rows = seq.checked_mul(h)?.checked_mul(6)?;
        let ffn = seq.checked_mul(i)?;
        let scores = parts.max(1).checked_mul(seq)?.checked_mul(seq)?;
        let act_scales = activation_rows(seq, parts)?;
        rows.checked_add(ffn)?
            .checked_add(scores)?
            .checked_add(act_scales)
    }
    /// i8 elements needed for `seq` tokens in `parts` parts, `None` on overflow.
    pub fn i8_len_checked(c: &ModelConfig, seq: usize, parts: usize) -> Option<usize> {
        activation_rows(seq, parts)?.checked_mul(c.hidden_size.max(c.intermediate_size) as usize)
    }
    /// Carves the scratch out of caller memory (lengths from [`Self::f32_len`] /
    /// [`Self::i8_len_checked`]).
    pub fn carve<'s>(
        c: &ModelConfig,
        seq: usize,
        parts: usize,
        f: &'s mut [f32],
        i8s: &'s mut [i8],
    ) -> Option<Scratch<'s>> {
        let (h, i) = (c.hidden_size as usize, c.intermediate_size as usize);
        if f.len() < Self::f32_len(c, seq, parts)
            || Self::i8_len_checked(c, seq, parts).is_none_or(|len| i8s.len() < len)
        {
            return None;
        }
        let act_rows = activation_rows(seq, parts)?;
        let (hidden, f) = f.split_at_mut(seq * h);
        let (q, f) = f.split_at_mut(seq * h);
        let (k, f) = f.split_at_mut(seq * h);
        let (v, f) = f.split_at_mut(seq * h);
        let (ctx, f) = f.split_at_mut(seq * h);
        let (ffn, f) = f.split_at_mut(seq * i);
        let (scores, f) = f.split_at_mut(parts.max(1) * seq * seq);
        let (kt, f) = f.split_at_mut(seq * h);
        let (act_scales, _) = f.split_at_mut(act_rows);
        Some(Scratch {
            hidden,
            q,
            k,
            v,
            ctx,
            ffn,
            scores,
            kt,
            act_q: i8s,
            act_scales,
        })
    }
}

/// The encoder: embeddings and the layer stack.
#[derive(Debug, Clone)]
pub struct Encoder<'a> {
    pub config: ModelConfig,
    pub embeddings: Embeddings<'a>,
    pub layers: heapless::Vec<Layer<'a>, MAX_LAYERS>,
}

impl<'a> Encoder<'a> {
    pub fn load(file: &ModelFile<'a>) -> Result<Self, LoadError> {
        let c = file.header.config;
        validate_config(&c)?;
        let (h, i) = (c.hidden_size as usize, c.intermediate_size as usize);
        let eps = c.layer_norm_eps;
        let embeddings = Embeddings {
            word: Embedding::load(file, names::WORD_EMBEDDINGS, c.vocab_size as usize, h)?,
            position: Embedding::load(
                file,
                names::POSITION_EMBEDDINGS,
                c.max_position_embeddings as usize,
                h,
            )?,
            token_type: Embedding::load(
                file,
                names::TOKEN_TYPE_EMBEDDINGS,
                c.type_vocab_size as usize,
                h,
            )?,
            layer_norm: LayerNorm::load(file, names::EMBEDDINGS_LAYER_NORM, h, eps)?,
        };
        let mut layers = heapless::Vec::new();
        for l in 0..c.num_layers as usize {
            let mut prefix: heapless::String<32> = heapless::String::new();
            let _ = write!(prefix, "encoder.layer.{l}.");
            let lin = |m: &str, n, k| Linear::load(file, &name(&[&prefix, m]), n, k);
            let norm = |m: &str| LayerNorm::load(file, &name(&[&prefix, m]), h, eps);
            let [q, k, v, ao, inter, out] = names::LAYER_LINEARS;
            let [an, on] = names::LAYER_NORMS;
            let layer = Layer {
                query: lin(q, h, h)?,
                key: lin(k, h, h)?,
                value: lin(v, h, h)?,
                attention_output: lin(ao, h, h)?,
                attention_norm: norm(an)?,
                intermediate: lin(inter, i, h)?,
                output: lin(out, h, i)?,
                output_norm: norm(on)?,
            };
            layers.push(layer).map_err(|_| LoadError::TooManyLayers {
                layers: c.num_layers,
                max: MAX_LAYERS,
            })?;
        }
        Ok(Encoder {
            config: c,
            embeddings,
            layers,
        })
    }

    /// Runs the encoder on `seq` tokens; `input(t)` gives token `t`'s (id, token type). Afterwards
    /// `scratch.hidden[..seq * hidden]` holds the last hidden states. The caller guarantees that
    /// `seq` fits the scratch (carved for `par.parts()`) and the position table, and that ids and
    /// types are in range ([`Encoder::check_input`]).
    pub fn forward(
        &self,
        exec: &Exec<'_>,
        seq: usize,
        input: impl Fn(usize) -> (u32, u32),
        s: &mut Scratch<'_>,
    ) {
        self.forward_observed(exec, seq, input, s, None);
    }

    /// [`Encoder::forward`] that shows `observe(layer, linear, x)` the input `x` (`[seq, k]`) of
    /// every Linear, `linear` indexing [`names::LAYER_LINEARS`] (0 stands for query, key and
    /// value, which share their input). For activation calibration; called between the parallel
    /// steps, on the calling thread.
    pub fn forward_observed(
        &self,
        exec: &Exec<'_>,
        seq: usize,
        input: impl Fn(usize) -> (u32, u32),
        s: &mut Scratch<'_>,
        mut observe: Option<&mut Observer<'_>>,
    ) {
        let c = &self.config;
        let h = c.hidden_size as usize;
        let e = &self.embeddings;
        let hidden = &mut s.hidden[..seq * h];
        hidden.fill(0.0);
        for (t, row) in hidden.chunks_exact_mut(h).enumerate() {
            let (id, token_type) = input(t);
            e.word.add_row(id as usize, row);
            e.token_type.add_row(token_type as usize, row);
            e.position.add_row(t, row);
        }
        e.layer_norm.forward(exec.kernels, hidden, None);
        if observe.is_none() && !self.column_split(exec, seq) {
            return self.layers_forward_rows(exec, seq, s);
        }
        for (i, layer) in self.layers.iter().enumerate() {
            match observe.as_mut() {
                Some(f) => self.layer_forward(layer, exec, seq, s, &mut |j, x| f(i, j, x)),
                None => self.layer_forward(layer, exec, seq, s, &mut |_, _| {}),
            }
        }
    }

    /// Checks that the model has at least `needed` token types (a text pair or a question
    /// uses type 1).
    pub fn check_token_types(&self, needed: u32) -> Result<(), crate::session::RunError> {
        let available = self.config.type_vocab_size;
        if available < needed {
            return Err(crate::session::RunError::TokenTypes { needed, available });
        }
        Ok(())
    }

    /// Checks that a sequence can run: length within the position table and scratch, ids in range.
    pub fn check_input(&self, ids: &[u32], token_types: Option<&[u32]>, max_seq: usize) -> bool {
        let c = &self.config;
        ids.len() <= max_seq
            && ids.len() <= c.max_position_embeddings as usize
            && ids.iter().all(|&id| id < c.vocab_size)
            && token_types
                .is_none_or(|tt| tt.len() == ids.len() && tt.iter().all(|&t| t < c.type_vocab_size))
    }

    /// One `BertLayer` in five parallel steps, with `observe` shown each Linear's input between
    /// them (calibration). Short inputs on several threads split the products by columns
    /// instead ([`Encoder::layer_forward_columns`]); runs that observe nothing fuse the
    /// row-local steps across layers ([`Encoder::layers_forward_rows`]).
    fn layer_forward(
        &self,
        l: &Layer<'_>,
        exec: &Exec<'_>,
        seq: usize,
        s: &mut Scratch<'_>,
        observe: &mut dyn FnMut(usize, &[f32]),
    ) {
        if self.column_split(exec, seq) {
            return self.layer_forward_columns(l, exec, seq, s, observe);
        }
        let b = Buffers::new(&self.config, seq, s);
        let (h, inter) = (b.h, b.inter);
        let par = exec.par;
        let rows = |part: usize, parts: usize| split_range(seq, part, parts, ROW_BLOCK);
        // The hidden states come from the previous call (or the embeddings): no row maxima.
        par.for_each(&|part, parts| b.qkv(l, exec, rows(part, parts), Input::Float));
        // SAFETY: between steps no job runs, so nothing writes what is observed (likewise below).
        observe(0, unsafe { &*b.hidden.range(0..seq * h) });
        par.for_each(&|part, parts| b.attention(exec, part, parts));
        par.for_each(&|part, parts| b.attention_output(l, exec, rows(part, parts)));
        // SAFETY: as above; `ctx` (the attention output's input) is intact until the next layer.
        observe(3, unsafe { &*b.ctx.range(0..seq * h) });
        par.for_each(&|part, parts| b.intermediate(l, exec, rows(part, parts)));
        // SAFETY: as above; `hidden` is written again only in the next step.
        observe(4, unsafe { &*b.hidden.range(0..seq * h) });
        par.for_each(&|part, parts| b.output(l, exec, rows(part, parts), None));
        // SAFETY: as above.
        observe(5, unsafe { &*b.ffn.range(0..seq * inter) });
    }

    /// Every layer, split by rows, in two parallel steps per layer: attention by heads, then
    /// everything row-local on each part's rows (attention output and LayerNorm, the
    /// feed-forward block and its LayerNorm, and the next layer's Q, K, V projections). A part
    /// keeps its rows in its own cache from one attention to the next, and an inference waits
    /// at 2 boundaries per layer instead of 5. Bit-identical to [`Encoder::layer_forward`].
    fn layers_forward_rows(&self, exec: &Exec<'_>, seq: usize, s: &mut Scratch<'_>) {
        let b = Buffers::new(&self.config, seq, s);
        let par = exec.par;
        let rows = |part: usize, parts: usize| split_range(seq, part, parts, ROW_BLOCK);
        let Some(first) = self.layers.first() else {
            return;
        };
        par.for_each(&|part, parts| b.qkv(first, exec, rows(part, parts), Input::Float));
        for (i, l) in self.layers.iter().enumerate() {
            par.for_each(&|part, parts| b.attention(exec, part, parts));
            let next = self.layers.get(i + 1);
            par.for_each(&|part, parts| {
                let r = rows(part, parts);
                b.attention_output(l, exec, r.clone());
                b.intermediate(l, exec, r.clone());
                b.output(l, exec, r.clone(), next.map(|n| &n.query));
                if let Some(next) = next {
                    let input = next.query.input_after_row_max(exec.precision);
                    b.qkv(next, exec, r, input);
                }
            });
        }
    }

    /// Whether a run of `seq` tokens splits its products by columns (short inputs, several
    /// threads, every product int8).
    fn column_split(&self, exec: &Exec<'_>, seq: usize) -> bool {
        exec.par.parts() > 1
            && seq <= COLUMN_SPLIT_MAX_ROWS
            && self.layers.iter().all(|l| l.is_int8(exec.precision))
    }
}

/// The scratch of one forward pass as shared handles for the parallel steps, with the steps'
/// row-local bodies. In each, a part touches only its rows `r` of every `[seq, *]` buffer
/// (attention: its heads' columns), so parts never share an element within a step.
#[derive(Clone, Copy)]
struct Buffers {
    seq: usize,
    h: usize,
    inter: usize,
    heads: usize,
    head_dim: usize,
    activation: Activation,
    /// Row stride of `act_q`: the widest input, so that a part's rows of it are the same
    /// bytes whatever product it quantizes for (in the fused step, parts run different
    /// products at the same time).
    widest: usize,
    hidden: SharedMut<f32>,
    q: SharedMut<f32>,
    k: SharedMut<f32>,
    v: SharedMut<f32>,
    ctx: SharedMut<f32>,
    ffn: SharedMut<f32>,
    act_q: SharedMut<i8>,
    act_scales: SharedMut<f32>,
    kt: SharedMut<f32>,
    scores: SharedMut<f32>,
}

impl Buffers {
    fn new(c: &ModelConfig, seq: usize, s: &mut Scratch<'_>) -> Buffers {
        let (h, inter) = (c.hidden_size as usize, c.intermediate_size as usize);
        Buffers {
            seq,
            h,
            inter,
            heads: c.num_heads as usize,
            head_dim: c.head_dim(),
            activation: c.activation,
            hidden: SharedMut::new(&mut s.hidden[..seq * h]),
            q: SharedMut::new(&mut s.q[..seq * h]),
            k: SharedMut::new(&mut s.k[..seq * h]),
            v: SharedMut::new(&mut s.v[..seq * h]),
            ctx: SharedMut::new(&mut s.ctx[..seq * h]),
            ffn: SharedMut::new(&mut s.ffn[..seq * inter]),
            widest: h.max(inter),
            // Whole: the column split gives each part a block of its own (`activation_rows`).
            act_q: SharedMut::new(&mut *s.act_q),
            act_scales: SharedMut::new(&mut *s.act_scales),
            kt: SharedMut::new(&mut s.kt[..seq * h]),
            scores: SharedMut::new(&mut *s.scores),
        }
    }

    /// Q, K, V of rows `r` from the hidden states; in int8 they share one quantization.
    /// `input`: what the activation buffers hold for the query's input (row maxima after the
    /// previous layer's last LayerNorm).
    fn qkv(&self, l: &Layer<'_>, exec: &Exec<'_>, r: Range<usize>, input: Input) {
        if r.is_empty() {
            return;
        }
        let h = self.h;
        // SAFETY: row ranges of different parts are disjoint, and the buffers outlive the job.
        let (x, (xq, xs)) = unsafe {
            (
                &*self.hidden.range(r.start * h..r.end * h),
                self.activations(r.clone()),
            )
        };
        // The input scale `xq` holds the hidden states quantized with, once it holds them
        // (`Some(None)`: dynamic); a layer with the same scale reuses them.
        let mut quantized: Option<Option<f32>> = None;
        let mut input = input;
        for (lin, out) in [(&l.query, self.q), (&l.key, self.k), (&l.value, self.v)] {
            // SAFETY: as above.
            let out = unsafe { out.range(r.start * h..r.end * h) };
            if quantized == Some(lin.input_scale) {
                input = Input::Quantized;
            }
            lin.forward(exec.kernels, exec.precision, x, r.len(), xq, xs, input, out);
            if lin.is_int8(exec.precision) {
                quantized = Some(lin.input_scale);
            }
            // The row maxima were the query's; `xs` holds scales (or is untouched) now.
            input = Input::Float;
        }
    }

    /// Attention for part `part`'s heads, with its own scores block.
    fn attention(&self, exec: &Exec<'_>, part: usize, parts: usize) {
        let (seq, h) = (self.seq, self.h);
        let hs = split_range(self.heads, part, parts, 1);
        if hs.is_empty() {
            return;
        }
        // SAFETY: the step before finished writing q, k, v, which nothing writes during this
        // step; each part uses its own `seq * seq` block of `scores` (and its heads' columns of
        // `kt` and `ctx`, see `Attention`).
        let (q, k, v, sc) = unsafe {
            (
                &*self.q.range(0..seq * h),
                &*self.k.range(0..seq * h),
                &*self.v.range(0..seq * h),
                self.scores.range(part * seq * seq..(part + 1) * seq * seq),
            )
        };
        let args = Attention {
            seq,
            heads: self.heads,
            head_dim: self.head_dim,
            q,
            k,
            v,
            kt: self.kt,
            ctx: self.ctx,
        };
        (exec.kernels.attention)(&args, hs, sc);
    }

    /// The attention output projection of rows `r` (into `q`, free now), then residual and
    /// LayerNorm into `hidden`, with the row maxima the intermediate projection wants.
    fn attention_output(&self, l: &Layer<'_>, exec: &Exec<'_>, r: Range<usize>) {
        let (lin, norm) = (&l.attention_output, &l.attention_norm);
        // Attention notes no row maxima: its output is quantized in two passes.
        let intermediate = Some(&l.intermediate);
        self.project_and_norm(lin, norm, self.ctx, exec, r, Input::Float, intermediate);
    }

    /// The intermediate projection of rows `r` (after [`Buffers::attention_output`] on them)
    /// and its activation, into `ffn`, noting the row maxima the output projection wants.
    fn intermediate(&self, l: &Layer<'_>, exec: &Exec<'_>, r: Range<usize>) {
        if r.is_empty() {
            return;
        }
        let (h, inter) = (self.h, self.inter);
        // SAFETY: disjoint row ranges per part.
        let (x, (xq, xs), out) = unsafe {
            (
                &*self.hidden.range(r.start * h..r.end * h),
                self.activations(r.clone()),
                self.ffn.range(r.start * inter..r.end * inter),
            )
        };
        let input = l.intermediate.input_after_row_max(exec.precision);
        l.intermediate
            .forward(exec.kernels, exec.precision, x, r.len(), xq, xs, input, out);
        let row_max = l.output.takes_row_max(exec.precision).then_some(xs);
        (exec.kernels.activate)(self.activation, out, inter, row_max);
    }

    /// The output projection of rows `r` (after [`Buffers::intermediate`] on them, into `q`),
    /// then residual and LayerNorm into `hidden`, with the row maxima `next` (the next
    /// layer's query, in the same step) wants.
    fn output(&self, l: &Layer<'_>, exec: &Exec<'_>, r: Range<usize>, next: Option<&Linear<'_>>) {
        let input = l.output.input_after_row_max(exec.precision);
        self.project_and_norm(&l.output, &l.output_norm, self.ffn, exec, r, input, next);
    }

    /// `lin` on rows `r` of `x` (`lin.k` wide) into `q`, then `hidden = norm(hidden + q)` on
    /// those rows: the two sublayer outputs of a layer. `input` says what the activation
    /// buffers hold for `lin`; the norm notes row maxima if `next` wants them.
    #[allow(clippy::too_many_arguments)]
    fn project_and_norm(
        &self,
        lin: &Linear<'_>,
        norm: &LayerNorm<'_>,
        x: SharedMut<f32>,
        exec: &Exec<'_>,
        r: Range<usize>,
        input: Input,
        next: Option<&Linear<'_>>,
    ) {
        if r.is_empty() {
            return;
        }
        let (h, k) = (self.h, lin.k);
        // SAFETY: disjoint row ranges per part; the step before finished writing `x`.
        let (x, (xq, xs), out, hid) = unsafe {
            (
                &*x.range(r.start * k..r.end * k),
                self.activations(r.clone()),
                self.q.range(r.start * h..r.end * h),
                self.hidden.range(r.start * h..r.end * h),
            )
        };
        lin.forward(exec.kernels, exec.precision, x, r.len(), xq, xs, input, out);
        let row_max = next.is_some_and(|n| n.takes_row_max(exec.precision));
        norm.forward_max(exec.kernels, hid, Some(out), row_max.then_some(xs));
    }

    /// The quantized-activation rows `r` (at the widest input's stride, so that a part's rows
    /// are the same bytes whatever product it quantizes for) and their scales.
    ///
    /// # Safety
    /// Parts running at the same time use disjoint `r`.
    #[allow(clippy::mut_from_ref)]
    unsafe fn activations(&self, r: Range<usize>) -> (&mut [i8], &mut [f32]) {
        // SAFETY: per the caller's contract.
        unsafe {
            (
                self.act_q.range(r.start * self.widest..r.end * self.widest),
                self.act_scales.range(r),
            )
        }
    }
}

impl Encoder<'_> {
    /// [`Encoder::layer_forward`] for inputs too short to share by rows: every product is split
    /// by output columns (whole weight panels), so each thread streams its own part of the
    /// weights over all rows. Each part quantizes all input rows into its own block of `act_q`
    /// (the rows are few, the products are not), and the LayerNorms, which need whole rows,
    /// become steps of their own. Bit-identical to one thread: every output element is the
    /// same exact sum, rounded the same way.
    fn layer_forward_columns(
        &self,
        l: &Layer<'_>,
        exec: &Exec<'_>,
        seq: usize,
        s: &mut Scratch<'_>,
        observe: &mut dyn FnMut(usize, &[f32]),
    ) {
        let b = Buffers::new(&self.config, seq, s);
        let Buffers {
            h,
            inter,
            activation,
            hidden,
            q,
            k,
            v,
            ctx,
            ffn,
            ..
        } = b;
        let (kernels, par) = (exec.kernels, exec.par);

        // Part `part`'s own quantized rows: block `part` of `seq` rows (`activation_rows` sized
        // the scratch for them).
        // SAFETY: parts use disjoint blocks, each only inside its own job.
        let own_rows = |part: usize| unsafe { b.activations(part * seq..(part + 1) * seq) };
        // One product, this part's columns of it: quantize `x` unless `xq` already holds it
        // with this layer's input scale (`held`), then the GEMM into `out` (`[seq, n]`).
        let product = |lin: &Linear<'_>,
                       x: &[f32],
                       (xq, xs): (&mut [i8], &mut [f32]),
                       held: &mut Option<Option<f32>>,
                       out: SharedMut<f32>,
                       part: usize,
                       parts: usize| {
            if *held != Some(lin.input_scale) {
                lin.quantize_input(kernels, x, seq, xq, xs, false);
                *held = Some(lin.input_scale);
            }
            let cols = lin.column_share(part, parts);
            if !cols.is_empty() {
                // SAFETY: parts write disjoint column ranges of `out`; nothing reads it during
                // the step.
                let mut view = unsafe { out.columns(seq, lin.n, cols.clone()) };
                lin.gemm_columns(kernels, &xq[..seq * lin.k], xs, cols, &mut view);
            }
        };
        // Residual + LayerNorm of whole rows, split by rows.
        let norm = |norm: &LayerNorm<'_>, out: SharedMut<f32>| {
            par.for_each(&|part, parts| {
                let r = split_range(seq, part, parts, 1);
                // SAFETY: disjoint row ranges per part; the products finished writing `out`.
                let (hid, out) = unsafe {
                    (
                        hidden.range(r.start * h..r.end * h),
                        &*out.range(r.start * h..r.end * h),
                    )
                };
                norm.forward(kernels, hid, Some(out));
            });
        };

        // 1. Q, K, V projections, sharing one quantization of the hidden states per part.
        par.for_each(&|part, parts| {
            // SAFETY: `hidden` is only read during this step.
            let x = unsafe { &*hidden.range(0..seq * h) };
            let (xq, xs) = own_rows(part);
            let mut held = None;
            for (lin, out) in [(&l.query, q), (&l.key, k), (&l.value, v)] {
                product(lin, x, (&mut *xq, &mut *xs), &mut held, out, part, parts);
            }
        });
        // SAFETY: between steps no job runs (likewise for the observations below).
        observe(0, unsafe { &*hidden.range(0..seq * h) });

        // 2. Attention, split by heads, exactly as in the row split.
        par.for_each(&|part, parts| b.attention(exec, part, parts));

        // 3. Attention output projection into `q` (free now), then residual + LayerNorm.
        par.for_each(&|part, parts| {
            // SAFETY: attention finished writing `ctx`; it is only read here.
            let x = unsafe { &*ctx.range(0..seq * h) };
            product(
                &l.attention_output,
                x,
                own_rows(part),
                &mut None,
                q,
                part,
                parts,
            );
        });
        norm(&l.attention_norm, q);
        // SAFETY: as above.
        observe(3, unsafe { &*ctx.range(0..seq * h) });

        // 4. Intermediate projection and activation (on this part's columns of each row).
        par.for_each(&|part, parts| {
            // SAFETY: `hidden` is only read during this step.
            let x = unsafe { &*hidden.range(0..seq * h) };
            product(
                &l.intermediate,
                x,
                own_rows(part),
                &mut None,
                ffn,
                part,
                parts,
            );
            let cols = l.intermediate.column_share(part, parts);
            if !cols.is_empty() {
                // SAFETY: this part's columns, as written just above.
                let mut view = unsafe { ffn.columns(seq, inter, cols) };
                for i in 0..seq {
                    let row = view.row(i);
                    let cols = row.len();
                    (kernels.activate)(activation, row, cols, None);
                }
            }
        });
        // SAFETY: as above.
        observe(4, unsafe { &*hidden.range(0..seq * h) });

        // 5. Output projection into `q`, then residual + LayerNorm.
        par.for_each(&|part, parts| {
            // SAFETY: `ffn` is only read during this step.
            let x = unsafe { &*ffn.range(0..seq * inter) };
            product(&l.output, x, own_rows(part), &mut None, q, part, parts);
        });
        norm(&l.output_norm, q);
        // SAFETY: as above.
        observe(5, unsafe { &*ffn.range(0..seq * inter) });
    }
}

/// Inputs up to this many tokens run on several threads by splitting every product by output
/// columns (`Encoder::layer_forward_columns`); longer ones by rows, in blocks of
/// `ROW_BLOCK` (4). Measured with `bertq bench --threads 2` against the two-step row split
/// (BENCHMARKS.md): the column split wins at 4 and 8 tokens, ties at 10 and 16, and loses at
/// 12 and above, as it moves more data between the cores (every row goes to the other core
/// before each product) and waits at more step boundaries.
pub const COLUMN_SPLIT_MAX_ROWS: usize = 10;

/// `observe(layer, linear, x)`: sees the input of a layer's Linear (see
/// [`Encoder::forward_observed`]).
pub type Observer<'f> = dyn FnMut(usize, usize, &[f32]) + 'f;

/// Rows per parallel block of the row split. Small, so that short inputs split evenly (24
/// tokens: 12 + 12 rather than 16 + 8; with [`split_range`]'s nearest boundaries, 18 tokens:
/// 8 + 10 rather than 12 + 6); every kernel takes any row count, and an uneven critical path
/// costs more than a partial row tile.
const ROW_BLOCK: usize = 4;

/// What a forward pass runs with: the kernel table, the precision, and the parallel executor.
#[derive(Clone, Copy)]
pub struct Exec<'p> {
    pub kernels: &'static Kernels,
    pub precision: Precision,
    pub par: &'p dyn Parallel,
}

impl core::fmt::Debug for Exec<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Exec")
            .field("kernels", &self.kernels.name)
            .field("precision", &self.precision)
            .field("parts", &self.par.parts())
            .finish()
    }
}

/// Rejects configurations the encoder cannot run.
pub fn validate_config(c: &ModelConfig) -> Result<(), LoadError> {
    let bad = LoadError::InvalidConfig;
    if c.num_layers == 0 {
        return Err(bad("zero layers"));
    }
    if c.num_layers as usize > MAX_LAYERS {
        return Err(LoadError::TooManyLayers {
            layers: c.num_layers,
            max: MAX_LAYERS,
        });
    }
    if c.hidden_size == 0 || c.num_heads == 0 || !c.hidden_size.is_multiple_of(c.num_heads) {
        return Err(bad(
            "hidden size must be a positive multiple of the head count",
        ));
    }
    if c.intermediate_size == 0 || c.vocab_size == 0 || c.type_vocab_size == 0 {
        return Err(bad(
            "zero-sized intermediate, vocabulary or token-type table",
        ));
    }
    if c.max_position_embeddings < 2 {
        return Err(bad("fewer than two positions"));
    }
    // Bound sizes so that every buffer length computed from them fits comfortably in usize and
    // a session's memory stays within reason (the attention scores grow with the square of the
    // positions): far above every BERT published, far below what would overflow.
    if c.hidden_size > MAX_HIDDEN
        || c.intermediate_size > MAX_INTERMEDIATE
        || c.vocab_size > MAX_VOCAB
        || c.type_vocab_size > MAX_TOKEN_TYPES
    {
        return Err(bad("dimensions out of the supported range"));
    }
    if c.max_position_embeddings > MAX_POSITIONS {
        return Err(bad(
            "more than 8192 positions (a session's attention scores grow with their square)",
        ));
    }
    if !(c.layer_norm_eps > 0.0 && c.layer_norm_eps < 1.0) {
        return Err(bad("layer_norm_eps must be in (0, 1)"));
    }
    Ok(())
}
