//! The BERT encoder over weights borrowed from the model file.
//!
//! One struct per Hugging Face module (`BertEmbeddings`, `BertLayer`, ...), mirroring
//! `transformers/models/bert/modeling_bert.py`. All working memory comes from [`Scratch`].

use crate::format::{names, LoadError, ModelConfig, ModelFile, TensorView};
use crate::kernels::{GemmF32, GemmI8, Kernels, Layout, PackedI8, Weights};
use core::fmt::Write;

/// The most encoder layers a model may have (bert-large has 24).
pub const MAX_LAYERS: usize = 64;

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
            let row_sums = match file.find(&name(&[prefix, names::ROW_SUMS])) {
                Some(t) => {
                    check_shape(&t, &[n], "i32 row sums")?;
                    Some(t.i32s()?)
                }
                None => None,
            };
            Ok(Weights::I8(PackedI8 {
                layout: w.entry.layout,
                data: w.i8s()?,
                scales,
                row_sums,
                n,
                k,
            }))
        }
        crate::format::DType::F32 => Ok(Weights::F32(w.f32s()?)),
        _ => Err(wrong(&w, "i8 or f32")),
    }
}

impl<'a> Linear<'a> {
    pub fn load(file: &ModelFile<'a>, prefix: &str, n: usize, k: usize) -> Result<Self, LoadError> {
        Ok(Linear {
            weight: load_weights(file, prefix, n, k)?,
            bias: load_vector(file, &name(&[prefix, names::BIAS]), n)?,
            n,
            k,
        })
    }

    /// `out[m][n] = x[m] W^T + b`. In int8 precision `xq`/`xs` receive the quantized rows of `x`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        kernels: &Kernels,
        precision: Precision,
        x: &[f32],
        m: usize,
        xq: &mut [i8],
        xs: &mut [f32],
        out: &mut [f32],
    ) {
        let (n, k) = (self.n, self.k);
        let out = &mut out[..m * n];
        match (precision, self.weight) {
            (Precision::Int8, Weights::I8(w)) => {
                let (xq, xs) = (&mut xq[..m * k], &mut xs[..m]);
                (kernels.quantize_rows)(&x[..m * k], k, xq, xs);
                let p = GemmI8 {
                    m,
                    a: xq,
                    a_scales: xs,
                    w,
                    bias: Some(self.bias),
                };
                (kernels.gemm_i8)(&p, out);
            }
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
        (kernels.add_layer_norm)(x, residual, self.gamma, self.beta, self.eps);
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

    /// `out += table[row]`. `row` must be `< rows` (checked by the caller).
    fn add_row(&self, row: usize, out: &mut [f32]) {
        let d = self.dim;
        match self.table {
            Weights::I8(w) => {
                let s = w.scales[row];
                for (o, &q) in out.iter_mut().zip(&w.data[row * d..(row + 1) * d]) {
                    *o += q as f32 * s;
                }
            }
            Weights::F32(t) => {
                for (o, &v) in out.iter_mut().zip(&t[row * d..(row + 1) * d]) {
                    *o += v;
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
    /// `[seq, seq]`: one head's attention probabilities.
    pub scores: &'s mut [f32],
    /// `[hidden, seq]`: K transposed.
    pub kt: &'s mut [f32],
    /// `[seq, max(hidden, intermediate)]`: quantized activations.
    pub act_q: &'s mut [i8],
    /// `[seq]`: their per-row scales.
    pub act_scales: &'s mut [f32],
}

impl Scratch<'_> {
    /// f32 elements needed for `seq` tokens.
    pub fn f32_len(c: &ModelConfig, seq: usize) -> usize {
        let (h, i) = (c.hidden_size as usize, c.intermediate_size as usize);
        6 * seq * h + seq * i + seq * seq + seq
    }
    /// i8 elements needed for `seq` tokens.
    pub fn i8_len(c: &ModelConfig, seq: usize) -> usize {
        seq * (c.hidden_size.max(c.intermediate_size) as usize)
    }
    /// Carves the scratch out of caller memory (lengths from [`Self::f32_len`] / [`Self::i8_len`]).
    pub fn carve<'s>(
        c: &ModelConfig,
        seq: usize,
        f: &'s mut [f32],
        i8s: &'s mut [i8],
    ) -> Option<Scratch<'s>> {
        let (h, i) = (c.hidden_size as usize, c.intermediate_size as usize);
        if f.len() < Self::f32_len(c, seq) || i8s.len() < Self::i8_len(c, seq) {
            return None;
        }
        let (hidden, f) = f.split_at_mut(seq * h);
        let (q, f) = f.split_at_mut(seq * h);
        let (k, f) = f.split_at_mut(seq * h);
        let (v, f) = f.split_at_mut(seq * h);
        let (ctx, f) = f.split_at_mut(seq * h);
        let (ffn, f) = f.split_at_mut(seq * i);
        let (scores, f) = f.split_at_mut(seq * seq);
        let (kt, f) = f.split_at_mut(seq * h);
        let (act_scales, _) = f.split_at_mut(seq);
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
    /// `seq` fits the scratch and the position table and that ids and types are in range
    /// ([`Encoder::check_input`]).
    pub fn forward(
        &self,
        kernels: &Kernels,
        precision: Precision,
        seq: usize,
        input: impl Fn(usize) -> (u32, u32),
        s: &mut Scratch<'_>,
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
        e.layer_norm.forward(kernels, hidden, None);
        for layer in &self.layers {
            self.layer_forward(layer, kernels, precision, seq, s);
        }
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

    fn layer_forward(
        &self,
        l: &Layer<'_>,
        kernels: &Kernels,
        precision: Precision,
        seq: usize,
        s: &mut Scratch<'_>,
    ) {
        let c = &self.config;
        let h = c.hidden_size as usize;
        let x = &s.hidden[..seq * h];
        // The three projections share one quantization of x (int8 path).
        match precision {
            Precision::Int8 => {
                let (xq, xs) = (&mut s.act_q[..seq * h], &mut s.act_scales[..seq]);
                (kernels.quantize_rows)(x, h, xq, xs);
                for (lin, out) in [
                    (&l.query, &mut *s.q),
                    (&l.key, &mut *s.k),
                    (&l.value, &mut *s.v),
                ] {
                    project_shared(kernels, lin, x, xq, xs, seq, out);
                }
            }
            Precision::F32 => {
                for (lin, out) in [
                    (&l.query, &mut *s.q),
                    (&l.key, &mut *s.k),
                    (&l.value, &mut *s.v),
                ] {
                    lin.forward(kernels, precision, x, seq, s.act_q, s.act_scales, out);
                }
            }
        }
        self.attention(kernels, seq, s);
        // Attention output projection + residual + LayerNorm. `q` is free now: use it as output.
        l.attention_output.forward(
            kernels,
            precision,
            &s.ctx[..seq * h],
            seq,
            s.act_q,
            s.act_scales,
            s.q,
        );
        l.attention_norm
            .forward(kernels, &mut s.hidden[..seq * h], Some(&s.q[..seq * h]));
        // Feed-forward.
        let i = c.intermediate_size as usize;
        l.intermediate.forward(
            kernels,
            precision,
            &s.hidden[..seq * h],
            seq,
            s.act_q,
            s.act_scales,
            s.ffn,
        );
        (kernels.activate)(c.activation, &mut s.ffn[..seq * i]);
        l.output.forward(
            kernels,
            precision,
            &s.ffn[..seq * i],
            seq,
            s.act_q,
            s.act_scales,
            s.q,
        );
        l.output_norm
            .forward(kernels, &mut s.hidden[..seq * h], Some(&s.q[..seq * h]));
    }

    fn attention(&self, kernels: &Kernels, seq: usize, s: &mut Scratch<'_>) {
        let c = &self.config;
        let h = c.hidden_size as usize;
        let mut args = crate::kernels::vector::Attention {
            seq,
            heads: c.num_heads as usize,
            head_dim: c.head_dim(),
            q: &s.q[..seq * h],
            k: &s.k[..seq * h],
            v: &s.v[..seq * h],
            kt: &mut s.kt[..seq * h],
            scores: &mut s.scores[..seq * seq],
            ctx: &mut s.ctx[..seq * h],
        };
        (kernels.attention)(&mut args);
    }
}

/// A projection in the int8 path whose input rows were already quantized (Q, K and V share one
/// quantization of the hidden states). f32 weights (mixed-precision models) use `x` directly.
#[allow(clippy::too_many_arguments)]
fn project_shared(
    kernels: &Kernels,
    lin: &Linear<'_>,
    x: &[f32],
    xq: &[i8],
    xs: &[f32],
    m: usize,
    out: &mut [f32],
) {
    let out = &mut out[..m * lin.n];
    match lin.weight {
        Weights::I8(w) => {
            let p = GemmI8 {
                m,
                a: xq,
                a_scales: xs,
                w,
                bias: Some(lin.bias),
            };
            (kernels.gemm_i8)(&p, out);
        }
        w @ Weights::F32(_) => {
            let p = GemmF32 {
                m,
                n: lin.n,
                k: lin.k,
                a: x,
                w,
                bias: Some(lin.bias),
            };
            (kernels.gemm_f32)(&p, out);
        }
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
    // Bound sizes so that every buffer length computed from them fits comfortably in usize.
    if c.hidden_size > 1 << 16
        || c.intermediate_size > 1 << 18
        || c.max_position_embeddings > 1 << 16
    {
        return Err(bad("dimensions out of the supported range"));
    }
    if !(c.layer_norm_eps > 0.0 && c.layer_norm_eps < 1.0) {
        return Err(bad("layer_norm_eps must be in (0, 1)"));
    }
    Ok(())
}
