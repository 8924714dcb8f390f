//! Finds BERT in a normalised graph by following the data, and names every weight after the
//! Hugging Face module it belongs to.
//!
//! The walk: the three embedding `Gather`s (word ids and token types index graph inputs, the
//! larger table is the vocabulary; positions are `0..seq` from a constant `arange` or `Range`),
//! summed by `Add`s into a LayerNorm; then, for as long as a hidden state feeds three Linears,
//! one encoder layer: the two Linears that meet as left and right operand of the scores `MatMul`
//! are query and key (after head split `[batch, heads, seq, head_dim]` and key transposed to
//! `[batch, heads, head_dim, seq]`), the scale on the way must total `1/sqrt(head_dim)`, an
//! optional mask `Add` (not fed by the hidden states) leads to the `Softmax`, whose output is the
//! left operand of the context `MatMul` whose right operand is the value Linear; the merged
//! heads feed the attention output Linear, its residual `Add` with the layer input, a LayerNorm,
//! the intermediate Linear, an activation (checked numerically: erf GELU, tanh GELU or ReLU),
//! the output Linear, its residual `Add` with the attention LayerNorm output and a LayerNorm.
//! After the last layer: nothing (a `BertModel` output), a token classifier, or `[CLS]`
//! selection -> pooler Linear -> `Tanh` -> sequence classifier. Every node on the main path
//! must be one of these; anything else is an error that names it.

use super::eval::{self, Axis, Shapes, Sv};
use super::graph::{Graph, LinearOp, Node};
use super::linear::describe_all;
use super::tensor::Const;
use super::OnnxError;
use bertq_runtime::format::Activation;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

/// The task head found after the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// The last hidden state is the output (`BertModel`).
    Encoder,
    TokenClassification {
        labels: usize,
    },
    SequenceClassification {
        labels: usize,
    },
}

/// A BERT recovered from a graph: canonical weights (Hugging Face names without `bert.`,
/// PyTorch shapes) and the hyper-parameters the graph fixes.
#[derive(Debug)]
pub struct Matched {
    pub weights: BTreeMap<String, (Vec<f32>, Vec<usize>)>,
    pub num_layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub eps: f32,
    pub activation: Activation,
    pub head: HeadKind,
}

/// Logical axes of a tensor on the attention path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lab {
    Batch,
    Seq,
    Hidden,
    Heads,
    HeadDim,
}

/// Bound on every walk (a malformed file may contain cycles).
const MAX_STEPS: usize = 4096;

/// Bounds every walk along the graph, so that a cyclic or absurdly deep graph is an error.
#[derive(Default)]
struct Steps(usize);

impl Steps {
    fn next(&mut self) -> Result<(), OnnxError> {
        self.0 += 1;
        if self.0 > MAX_STEPS {
            return Err(OnnxError::Structure(
                "the graph has a cycle or is too deep".into(),
            ));
        }
        Ok(())
    }
}

struct Matcher<'g> {
    g: &'g Graph,
    shapes: Shapes,
    /// Tensors on the main data path (hidden states, projections): a mask must not read them.
    main: HashSet<String>,
    weights: BTreeMap<String, (Vec<f32>, Vec<usize>)>,
    hidden: usize,
    heads: Option<usize>,
    heads_hint: Option<usize>,
    eps: Option<f32>,
    activation: Option<Activation>,
}

fn at(n: &Node, msg: impl Into<String>) -> OnnxError {
    OnnxError::at(&n.describe(), msg.into())
}

fn linear_of(n: &Node) -> Option<&Rc<LinearOp>> {
    n.linear.as_ref()
}

/// Matches the graph. `heads_hint` (config.json's `num_attention_heads`) is used only when the
/// graph's head-split `Reshape` has no constant head count.
pub fn match_bert(g: &Graph, heads_hint: Option<usize>) -> Result<Matched, OnnxError> {
    let mut m = Matcher {
        g,
        shapes: Shapes::new(),
        main: HashSet::new(),
        weights: BTreeMap::new(),
        hidden: 0,
        heads: None,
        heads_hint,
        eps: None,
        activation: None,
    };
    for i in &g.inputs {
        m.shapes
            .insert(i.clone(), vec![Sv::Sym(Axis::Batch), Sv::Sym(Axis::Seq)]);
    }
    let (mut h, sizes) = m.embeddings()?;
    let mut layers = 0usize;
    let mut intermediate = 0usize;
    let mut steps = Steps::default();
    loop {
        steps.next()?;
        let cons = g.consumers(&h);
        let linears: Vec<&Node> = cons
            .iter()
            .copied()
            .filter(|n| n.linear.is_some())
            .collect();
        if linears.len() != 3 {
            if layers == 0 {
                return Err(OnnxError::Structure(format!(
                    "the embedding LayerNorm output `{h}` should feed the first layer's query, key \
                     and value Linears, it feeds {}",
                    describe_all(&cons)
                )));
            }
            break;
        }
        let (out, inter) = m.layer(layers, &h, &cons)?;
        if layers > 0 && inter != intermediate {
            return Err(OnnxError::Structure(format!(
                "layer {layers} has an intermediate size of {inter}, layer 0 {intermediate}"
            )));
        }
        intermediate = inter;
        h = out;
        layers += 1;
    }
    let head = m.head(&h)?;
    let (Some(heads), Some(eps), Some(activation)) = (m.heads, m.eps, m.activation) else {
        return Err(OnnxError::Structure("no encoder layer found".into()));
    };
    Ok(Matched {
        weights: m.weights,
        num_layers: layers,
        hidden: m.hidden,
        heads,
        intermediate,
        vocab: sizes.0,
        max_positions: sizes.1,
        type_vocab: sizes.2,
        eps,
        activation,
        head,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmbKind {
    Word,
    Position,
    TokenType,
}

impl Matcher<'_> {
    fn put(&mut self, name: &str, values: Vec<f32>, shape: Vec<usize>) -> Result<(), OnnxError> {
        if self.weights.contains_key(name) {
            return Err(OnnxError::Structure(format!("`{name}` found twice")));
        }
        self.weights.insert(name.to_string(), (values, shape));
        Ok(())
    }

    fn put_linear(&mut self, name: &str, l: &LinearOp) -> Result<(), OnnxError> {
        self.put(&format!("{name}.weight"), l.weight.clone(), vec![l.n, l.k])?;
        let bias = l.bias.clone().unwrap_or_else(|| vec![0.0; l.n]);
        self.put(&format!("{name}.bias"), bias, vec![l.n])
    }

    fn set_labels(&mut self, t: &str, labs: &[Lab]) {
        let heads = self.heads.unwrap_or(0);
        let d = self.hidden.checked_div(heads).unwrap_or(0);
        let dims = labs
            .iter()
            .map(|l| match l {
                Lab::Batch => Sv::Sym(Axis::Batch),
                Lab::Seq => Sv::Sym(Axis::Seq),
                Lab::Hidden => Sv::Num(self.hidden as f64),
                Lab::Heads if heads > 0 => Sv::Num(heads as f64),
                Lab::HeadDim if d > 0 => Sv::Num(d as f64),
                _ => Sv::Unknown,
            })
            .collect();
        self.shapes.insert(t.to_string(), dims);
        self.main.insert(t.to_string());
    }

    fn hidden_state(&mut self, t: &str) {
        self.set_labels(t, &[Lab::Batch, Lab::Seq, Lab::Hidden]);
    }

    /// The three embeddings, their sum and LayerNorm. Returns the LayerNorm output and
    /// (vocab, max positions, token types).
    fn embeddings(&mut self) -> Result<(String, (usize, usize, usize)), OnnxError> {
        let g = self.g;
        let mut by_input: Vec<(&Node, Rc<Const>, String)> = Vec::new();
        let mut derived: Vec<(&Node, Rc<Const>, EmbKind)> = Vec::new();
        for n in &g.nodes {
            if !n.is("Gather") {
                continue;
            }
            let (Some(table), Some(idx)) = (n.input(0), n.input(1)) else {
                continue;
            };
            let Some(table) = g.constant(table)? else {
                continue;
            };
            if table.dims.len() != 2 || !table.is_float() {
                continue;
            }
            match self.index_source(n, idx)? {
                IndexSource::Input(name) => by_input.push((n, table, name)),
                IndexSource::Derived(kind) => derived.push((n, table, kind)),
            }
        }
        by_input.sort_by_key(|(_, t, _)| std::cmp::Reverse(t.dims[0]));
        let mut found: Vec<(EmbKind, &Node, Rc<Const>)> = Vec::new();
        match by_input.as_slice() {
            [(w, wt, wi), rest @ ..] => {
                found.push((EmbKind::Word, w, wt.clone()));
                if let [(t, tt, ti)] = rest {
                    if ti == wi {
                        return Err(at(t, format!("indexes `{ti}` like the word embeddings")));
                    }
                    found.push((EmbKind::TokenType, t, tt.clone()));
                } else if rest.len() > 1 {
                    return Err(at(
                        rest[1].0,
                        "a third embedding indexed by a graph input (BERT has word and token type)",
                    ));
                }
            }
            [] => {
                return Err(OnnxError::Structure(
                    "no word embedding: no Gather of a constant table indexed by a graph input"
                        .into(),
                ))
            }
        }
        for (n, t, k) in derived {
            if found.iter().any(|(f, _, _)| *f == k) {
                return Err(at(n, format!("a second {k:?} embedding")));
            }
            found.push((k, n, t));
        }
        // Without position ids the table is sliced to the sequence length instead of gathered:
        // `Slice(table, starts [0], ends, axes [0] or none, steps [1] or none)`, as
        // scripts/export_bert_onnx.py (and graphs traced without `position_ids`) write it.
        if !found.iter().any(|(f, _, _)| *f == EmbKind::Position) {
            for n in &g.nodes {
                if !n.is("Slice") {
                    continue;
                }
                let Some(table) = n.input(0) else { continue };
                let Some(table) = g.constant(table)? else {
                    continue;
                };
                if table.dims.len() != 2 || !table.is_float() {
                    continue;
                }
                // `None`: the input is absent; `Some(None)`: present but not a constant.
                let ints = |i: usize| -> Result<Option<Option<Vec<i64>>>, OnnxError> {
                    match n.input(i) {
                        Some(x) if !x.is_empty() => {
                            Ok(Some(g.constant(x)?.and_then(|c| c.to_i64())))
                        }
                        _ => Ok(None),
                    }
                };
                let starts_at_0 = ints(1)? == Some(Some(vec![0]));
                // Absent, or a constant `[default]`.
                let is = |v: Option<Option<Vec<i64>>>, default: i64| match v {
                    None => true,
                    Some(Some(v)) => v.is_empty() || v == [default],
                    Some(None) => false,
                };
                let axis_0 = is(ints(3)?, 0);
                let step_1 = is(ints(4)?, 1);
                if starts_at_0 && axis_0 && step_1 {
                    found.push((EmbKind::Position, n, table));
                    break;
                }
            }
        }
        let get = |k: EmbKind| found.iter().find(|(f, _, _)| *f == k);
        let (Some(word), Some(pos), Some(tt)) = (
            get(EmbKind::Word),
            get(EmbKind::Position),
            get(EmbKind::TokenType),
        ) else {
            return Err(OnnxError::Structure(format!(
                "BERT embeddings are word + position + token type; found {:?}",
                found.iter().map(|f| f.0).collect::<Vec<_>>()
            )));
        };
        let h = word.2.dims[1];
        for (k, n, t) in [word, pos, tt] {
            if t.dims[1] != h {
                return Err(at(
                    n,
                    format!("{k:?} table is {:?}, hidden size {h}", t.dims),
                ));
            }
        }
        self.hidden = h;
        let outs: Vec<String> = [word, pos, tt]
            .iter()
            .map(|(_, n, _)| n.outputs.first().cloned().unwrap_or_default())
            .collect();
        for o in &outs {
            self.hidden_state(o);
        }
        // The sum: single-consumer Adds from the word embedding up to the LayerNorm input.
        let mut root = outs[0].clone();
        let mut steps = Steps::default();
        loop {
            steps.next()?;
            match g.consumers(&root).as_slice() {
                [a] if a.is("Add") => root = a.outputs.first().cloned().unwrap_or_default(),
                _ => break,
            }
        }
        let mut leaves = Vec::new();
        self.add_leaves(&root, &outs, &mut leaves, 0)?;
        leaves.sort();
        let mut want = outs.clone();
        want.sort();
        if leaves != want {
            let n = g.producer(&root);
            return Err(OnnxError::Structure(format!(
                "the embeddings are not summed as word + position + token type before the \
                 LayerNorm (sum ends at {})",
                n.map(Node::describe).unwrap_or_else(|| format!("`{root}`"))
            )));
        }
        self.hidden_state(&root);
        for (name, (_, _, t)) in [
            ("word_embeddings", word),
            ("position_embeddings", pos),
            ("token_type_embeddings", tt),
        ] {
            self.put(
                &format!("embeddings.{name}.weight"),
                t.to_f32(),
                t.dims.clone(),
            )?;
        }
        let out = self.layer_norm(&root, "embeddings.LayerNorm")?;
        Ok((out, (word.2.dims[0], pos.2.dims[0], tt.2.dims[0])))
    }

    fn add_leaves(
        &self,
        t: &str,
        stop: &[String],
        leaves: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), OnnxError> {
        if stop.iter().any(|s| s == t) || depth > 8 {
            leaves.push(t.to_string());
            return Ok(());
        }
        match self.g.producer(t) {
            Some(a) if a.is("Add") && a.inputs.len() == 2 => {
                for i in &a.inputs {
                    self.add_leaves(i, stop, leaves, depth + 1)?;
                }
                Ok(())
            }
            _ => {
                leaves.push(t.to_string());
                Ok(())
            }
        }
    }

    /// Where an embedding Gather's indices come from.
    fn index_source(&self, gather: &Node, idx: &str) -> Result<IndexSource, OnnxError> {
        let g = self.g;
        let mut stack = vec![idx.to_string()];
        let mut seen = HashSet::new();
        let mut inputs = Vec::new();
        let mut buffers: Vec<Rc<Const>> = Vec::new();
        let mut ranges = 0usize;
        let mut computed = None;
        while let Some(t) = stack.pop() {
            if !seen.insert(t.clone()) || seen.len() > 10_000 {
                continue;
            }
            if g.is_input(&t) {
                inputs.push(t);
                continue;
            }
            if let Some(c) = g.constant(&t)? {
                if t == g.resolve(idx) {
                    buffers.push(c);
                }
                continue;
            }
            let Some(n) = g.producer(&t) else { continue };
            match n.op.as_str() {
                "Shape" => continue,
                "Slice" | "Gather" | "Expand" | "Tile" => {
                    // The data input is the buffer; the rest are positions into it.
                    if let Some(d) = n.input(0) {
                        match g.constant(d)? {
                            Some(c) => buffers.push(c),
                            None => stack.push(d.to_string()),
                        }
                    }
                    if n.is("Slice") {
                        let start = n
                            .input(1)
                            .and_then(|s| eval::eval(g, &self.shapes, s))
                            .map(|s| s.vals);
                        if start.is_some_and(|v| v.iter().any(|x| *x != Sv::Num(0.0))) {
                            return Err(at(gather, "its indices are a slice not starting at 0"));
                        }
                    }
                    for i in n.inputs.iter().skip(1).filter(|s| !s.is_empty()) {
                        stack.push(i.clone());
                    }
                }
                "Range" => {
                    let (start, delta) = (
                        n.input(0).and_then(|s| eval::scalar(g, &self.shapes, s)),
                        n.input(2).and_then(|s| eval::scalar(g, &self.shapes, s)),
                    );
                    if start != Some(0.0) || delta != Some(1.0) {
                        return Err(at(n, "position ids are not a Range from 0 in steps of 1"));
                    }
                    ranges += 1;
                    stack.extend(n.inputs.iter().filter(|s| !s.is_empty()).cloned());
                }
                "Cast" | "Reshape" | "Unsqueeze" | "Squeeze" | "Flatten" | "Identity"
                | "Concat" | "ConstantOfShape" => {
                    stack.extend(n.inputs.iter().filter(|s| !s.is_empty()).cloned());
                }
                _ => {
                    computed.get_or_insert_with(|| n.describe());
                    stack.extend(n.inputs.iter().filter(|s| !s.is_empty()).cloned());
                }
            }
        }
        inputs.sort();
        inputs.dedup();
        match inputs.as_slice() {
            [one] => {
                if let Some(c) = computed {
                    return Err(at(
                        gather,
                        format!(
                            "its indices are computed from `{one}` by {c} (BERT reads ids \
                             directly; position ids computed from the input are RoBERTa's)"
                        ),
                    ));
                }
                return Ok(IndexSource::Input(one.clone()));
            }
            [] => {}
            many => {
                return Err(at(gather, format!("its indices depend on {many:?}")));
            }
        }
        let all = |f: &dyn Fn(&Const) -> bool| !buffers.is_empty() && buffers.iter().all(|c| f(c));
        if ranges == 0 && all(&|c| c.to_f64().iter().all(|&v| v == 0.0)) {
            return Ok(IndexSource::Derived(EmbKind::TokenType));
        }
        let arange = |c: &Const| {
            let v = c.to_f64();
            let row = c.dims.last().copied().unwrap_or(v.len()).max(1);
            v.chunks(row)
                .all(|r| r.iter().enumerate().all(|(i, &x)| x == i as f64))
        };
        if (ranges > 0 && buffers.is_empty()) || (ranges == 0 && all(&arange)) {
            return Ok(IndexSource::Derived(EmbKind::Position));
        }
        Err(at(
            gather,
            "its indices are neither token ids, token types, nor positions 0..seq",
        ))
    }

    /// LayerNormalization (or its ReduceMean/Sub/Pow/.../Mul/Add decomposition) over the last
    /// axis of `x`. Stores `{name}.weight`/`.bias` and returns the output.
    fn layer_norm(&mut self, x: &str, name: &str) -> Result<String, OnnxError> {
        let g = self.g;
        let cons = g.consumers(x);
        let h = self.hidden;
        let vec_h = |t: Option<&str>, what: &str, n: &Node| -> Result<Vec<f32>, OnnxError> {
            let c = match t {
                Some(t) => g.constant(t)?,
                None => None,
            }
            .ok_or_else(|| at(n, format!("LayerNorm {what} is not a constant")))?;
            if c.len() != h {
                return Err(at(
                    n,
                    format!("LayerNorm {what} has {} values, hidden {h}", c.len()),
                ));
            }
            Ok(c.to_f32())
        };
        let (gamma, beta, eps, out) = match cons.as_slice() {
            [ln] if ln.is("LayerNormalization") => {
                let axis = ln.attr_i("axis").unwrap_or(-1);
                if axis != -1 && axis != 2 {
                    return Err(at(
                        ln,
                        format!("normalises axis {axis}, not the hidden axis"),
                    ));
                }
                let gamma = vec_h(ln.input(1), "scale", ln)?;
                let beta = match ln.input(2) {
                    Some(_) => vec_h(ln.input(2), "bias", ln)?,
                    None => vec![0.0; h],
                };
                if ln
                    .outputs
                    .iter()
                    .skip(1)
                    .any(|o| !o.is_empty() && !g.consumers(o).is_empty())
                {
                    return Err(at(ln, "its mean / inverse std outputs are used"));
                }
                let eps = ln.attr_f("epsilon").unwrap_or(1e-5);
                (gamma, beta, eps, ln.out().to_string())
            }
            two if two.len() == 2 && two.iter().any(|n| n.is("ReduceMean")) => {
                self.decomposed_layer_norm(x, two, &vec_h)?
            }
            _ => {
                let hint = if cons.iter().any(|n| n.op.contains("SkipLayerNorm")) {
                    " (onnxruntime's fused transformer graph: export without \
                     `optimize_model` / Optimum's O2+ optimisation)"
                } else {
                    ""
                };
                return Err(OnnxError::Structure(format!(
                    "expected a LayerNormalization of `{x}` ({name}), found {}{hint}",
                    describe_all(&cons)
                )));
            }
        };
        match self.eps {
            None => self.eps = Some(eps),
            Some(e) if ((e - eps) / e.max(f32::MIN_POSITIVE)).abs() > 1e-3 => {
                return Err(OnnxError::Structure(format!(
                    "{name} has epsilon {eps}, the others {e}"
                )));
            }
            _ => {}
        }
        self.put(&format!("{name}.weight"), gamma, vec![h])?;
        self.put(&format!("{name}.bias"), beta, vec![h])?;
        self.hidden_state(&out);
        Ok(out)
    }

    #[allow(clippy::type_complexity)]
    fn decomposed_layer_norm(
        &self,
        x: &str,
        cons: &[&Node],
        vec_h: &dyn Fn(Option<&str>, &str, &Node) -> Result<Vec<f32>, OnnxError>,
    ) -> Result<(Vec<f32>, Vec<f32>, f32, String), OnnxError> {
        let g = self.g;
        let last_axis = |n: &Node| -> Result<(), OnnxError> {
            let axes = match n.attr_ints("axes") {
                Some(a) => Some(a.to_vec()),
                None => match n.input(1) {
                    Some(t) => g.constant(t)?.and_then(|c| c.to_i64()),
                    None => None,
                },
            };
            if axes.as_deref() != Some(&[-1]) && axes.as_deref() != Some(&[2]) {
                return Err(at(n, format!("reduces axes {axes:?}, not the hidden axis")));
            }
            if n.attr_i("keepdims").unwrap_or(1) != 1 {
                return Err(at(n, "does not keep dims"));
            }
            Ok(())
        };
        let only = |t: &str, op: &str, from: &Node| -> Result<Node, OnnxError> {
            match g.consumers(t).as_slice() {
                [n] if n.is(op) => Ok((*n).clone()),
                other => Err(at(
                    from,
                    format!(
                        "LayerNorm: expected one {op} after it, found {}",
                        describe_all(other)
                    ),
                )),
            }
        };
        let other = |n: &Node, t: &str| -> Option<String> {
            match n.inputs.as_slice() {
                [a, b] if a == t => Some(b.clone()),
                [a, b] if b == t => Some(a.clone()),
                _ => None,
            }
        };
        let mean = cons.iter().find(|n| n.is("ReduceMean")).copied();
        let sub = cons.iter().find(|n| n.is("Sub")).copied();
        let (Some(mean), Some(sub)) = (mean, sub) else {
            return Err(OnnxError::Structure(format!(
                "expected a LayerNormalization of `{x}`, found {}",
                describe_all(cons)
            )));
        };
        last_axis(mean)?;
        let m = mean.outputs.first().cloned().unwrap_or_default();
        if sub.input(0) != Some(x) || sub.input(1) != Some(m.as_str()) {
            return Err(at(sub, "LayerNorm: is not x - mean(x)"));
        }
        let d = sub.out().to_string();
        let dcons = g.consumers(&d);
        let sq = dcons
            .iter()
            .find(|n| {
                (n.is("Pow")
                    && n.input(0) == Some(&d)
                    && n.input(1).and_then(|e| eval::scalar(g, &self.shapes, e)) == Some(2.0))
                    || (n.is("Mul") && n.input(0) == Some(&d) && n.input(1) == Some(&d))
            })
            .copied()
            .ok_or_else(|| at(sub, "LayerNorm: x - mean is not squared"))?;
        let div = dcons
            .iter()
            .find(|n| n.is("Div") && n.input(0) == Some(&d))
            .copied()
            .ok_or_else(|| at(sub, "LayerNorm: x - mean is not divided by the std"))?;
        if dcons.len() != 2 {
            return Err(at(
                sub,
                format!("LayerNorm: x - mean feeds {}", describe_all(&dcons)),
            ));
        }
        let var = only(sq.out(), "ReduceMean", sq)?;
        last_axis(&var)?;
        let add = only(var.out(), "Add", &var)?;
        let eps_t = other(&add, var.out()).unwrap_or_default();
        let eps = eval::scalar(g, &self.shapes, &eps_t)
            .ok_or_else(|| at(&add, "LayerNorm epsilon is not a constant"))?
            as f32;
        let sqrt = only(add.out(), "Sqrt", &add)?;
        if div.input(1) != Some(sqrt.out()) {
            return Err(at(div, "LayerNorm: does not divide by sqrt(var + eps)"));
        }
        let mul = only(div.out(), "Mul", div)?;
        let gamma_t = other(&mul, div.out());
        let gamma = vec_h(gamma_t.as_deref(), "weight", &mul)?;
        let badd = only(mul.out(), "Add", &mul)?;
        let beta_t = other(&badd, mul.out());
        let beta = vec_h(beta_t.as_deref(), "bias", &badd)?;
        Ok((gamma, beta, eps, badd.out().to_string()))
    }

    /// Follows a projection to the attention MatMul it feeds: (that MatMul, operand index,
    /// axes on arrival, accumulated scale).
    fn follow_projection(&mut self, lin: &Node) -> Result<(Node, usize, Vec<Lab>, f64), OnnxError> {
        let g = self.g;
        let mut t = lin.out().to_string();
        let mut labs = vec![Lab::Batch, Lab::Seq, Lab::Hidden];
        let mut scale = 1.0f64;
        for _ in 0..32 {
            self.set_labels(&t, &labs);
            let cons = g.consumers(&t);
            let [n] = cons.as_slice() else {
                return Err(at(
                    lin,
                    format!(
                        "attention projection: `{t}` should feed one op towards the attention \
                         MatMul, it feeds {}",
                        describe_all(&cons)
                    ),
                ));
            };
            let n = (*n).clone();
            match n.op.as_str() {
                "Reshape" if n.is("Reshape") && n.input(0) == Some(t.as_str()) => {
                    labs = self.reshape(&n, &labs)?;
                }
                "Transpose" if n.is("Transpose") => labs = transpose(&n, &labs)?,
                "Mul" | "Div" if n.linear.is_none() => {
                    scale = self.scale_op(&n, &t, scale)?;
                }
                "MatMul" if n.is("MatMul") && n.linear.is_none() => {
                    let pos = n
                        .inputs
                        .iter()
                        .position(|i| *i == t)
                        .ok_or_else(|| at(&n, "operand not found"))?;
                    return Ok((n, pos, labs, scale));
                }
                _ => {
                    return Err(at(
                        &n,
                        format!(
                            "unexpected between the projection {} and the attention MatMul",
                            lin.describe()
                        ),
                    ))
                }
            }
            t = n.outputs.first().cloned().unwrap_or_default();
        }
        Err(at(lin, "attention MatMul not found"))
    }

    /// `t * c` or `t / c` with a constant scalar `c`: the updated scale.
    fn scale_op(&self, n: &Node, t: &str, scale: f64) -> Result<f64, OnnxError> {
        let other = match n.inputs.as_slice() {
            [a, b] if a == t => b,
            [a, b] if b == t && n.is("Mul") => a,
            _ => return Err(at(n, "is not a scaling of the attention path")),
        };
        let c = eval::scalar(self.g, &self.shapes, other).ok_or_else(|| {
            at(
                n,
                "scales the attention by a value that is not a constant scalar",
            )
        })?;
        Ok(if n.is("Mul") { scale * c } else { scale / c })
    }

    fn reshape(&mut self, n: &Node, labs: &[Lab]) -> Result<Vec<Lab>, OnnxError> {
        let target = n
            .input(1)
            .and_then(|s| eval::eval(self.g, &self.shapes, s))
            .map(|s| s.vals);
        let h = self.hidden;
        let size = |l: Lab| -> Option<usize> {
            match l {
                Lab::Hidden => Some(h),
                Lab::Heads => self.heads,
                Lab::HeadDim => self.heads.map(|x| h / x),
                _ => None,
            }
        };
        let allow_zero = n.attr_i("allowzero").unwrap_or(0) != 0;
        // Resolve `0` (copy the input's dimension).
        let target: Option<Vec<Sv>> = target.map(|t| {
            t.iter()
                .enumerate()
                .map(|(i, v)| match (v, labs.get(i)) {
                    (Sv::Num(z), Some(l)) if *z == 0.0 && !allow_zero => match size(*l) {
                        Some(s) => Sv::Num(s as f64),
                        None if *l == Lab::Batch => Sv::Sym(Axis::Batch),
                        None if *l == Lab::Seq => Sv::Sym(Axis::Seq),
                        None => Sv::Unknown,
                    },
                    _ => *v,
                })
                .collect()
        });
        let fits = |v: Sv, l: Lab| -> bool {
            match (v, l) {
                (Sv::Unknown, _) => true,
                (Sv::Sym(Axis::Batch), Lab::Batch) | (Sv::Sym(Axis::Seq), Lab::Seq) => true,
                (Sv::Num(x), Lab::Batch | Lab::Seq) => x >= 1.0 || x == -1.0,
                (Sv::Num(x), l) => size(l).is_some_and(|s| x == s as f64) || x == -1.0,
                _ => false,
            }
        };
        let num = |v: Sv| match v {
            Sv::Num(x) => Some(x),
            _ => None,
        };
        // A positive integral dimension.
        let whole = |x: f64| x >= 1.0 && x.fract() == 0.0 && x < 1e9;
        use Lab::*;
        match (labs, target.as_deref()) {
            ([Batch, Seq, Hidden], Some([b, s, a, d])) if fits(*b, Batch) && fits(*s, Seq) => {
                let (a, d) = (num(*a), num(*d));
                let heads = match (a, d) {
                    (Some(a), Some(d)) if whole(a) && whole(d) && (a * d) as usize == h => {
                        Some(a as usize)
                    }
                    (Some(a), Some(d)) if a == -1.0 && whole(d) && h.is_multiple_of(d as usize) => {
                        Some(h / d as usize)
                    }
                    (Some(a), Some(d)) if d == -1.0 && whole(a) && h.is_multiple_of(a as usize) => {
                        Some(a as usize)
                    }
                    _ => None,
                };
                let heads = heads.or(self.heads).or(self.heads_hint).ok_or_else(|| {
                    at(
                        n,
                        "the head count cannot be read from this head-split Reshape \
                         (add config.json with num_attention_heads)",
                    )
                })?;
                if heads == 0 || !h.is_multiple_of(heads) || self.heads.is_some_and(|x| x != heads)
                {
                    return Err(at(n, format!("splits {h} into {heads} heads")));
                }
                self.heads = Some(heads);
                Ok(vec![Batch, Seq, Heads, HeadDim])
            }
            ([Batch, Seq, Heads, HeadDim], Some([b, s, x])) if fits(*b, Batch) && fits(*s, Seq) => {
                if num(*x) == Some(h as f64) || num(*x) == Some(-1.0) {
                    Ok(vec![Batch, Seq, Hidden])
                } else {
                    Err(at(n, format!("merges the heads into {x:?}, hidden {h}")))
                }
            }
            (_, Some(t))
                if t.len() == labs.len() && t.iter().zip(labs).all(|(v, l)| fits(*v, *l)) =>
            {
                Ok(labs.to_vec())
            }
            ([Batch, Seq, Hidden], None) if self.heads.or(self.heads_hint).is_some() => {
                self.heads = self.heads.or(self.heads_hint);
                Ok(vec![Batch, Seq, Heads, HeadDim])
            }
            _ => Err(at(
                n,
                format!("reshapes {labs:?} to {target:?}, which is not a BERT head split or merge"),
            )),
        }
    }

    /// One encoder layer from its input `h` (consumed by `cons`). Returns the layer output and
    /// the intermediate size.
    fn layer(&mut self, l: usize, h: &str, cons: &[&Node]) -> Result<(String, usize), OnnxError> {
        let g = self.g;
        let p = format!("encoder.layer.{l}");
        let hs = self.hidden;
        let others: Vec<&Node> = cons
            .iter()
            .copied()
            .filter(|n| n.linear.is_none())
            .collect();
        match others.as_slice() {
            [a] if a.is("Add") => {}
            _ => {
                return Err(OnnxError::Structure(format!(
                    "layer {l}: its input `{h}` should feed the query, key and value Linears \
                     and the residual Add, it also feeds {}",
                    describe_all(&others)
                )))
            }
        }
        let linears: Vec<Node> = cons
            .iter()
            .filter(|n| n.linear.is_some())
            .map(|n| (*n).clone())
            .collect();
        let mut follows = Vec::new();
        for lin in &linears {
            let l_op = linear_of(lin).ok_or_else(|| at(lin, "not a Linear"))?;
            if l_op.n != hs || l_op.k != hs {
                return Err(at(
                    lin,
                    format!(
                        "attention projection is [{}, {}], hidden {hs}",
                        l_op.n, l_op.k
                    ),
                ));
            }
            follows.push((lin.clone(), self.follow_projection(lin)?));
        }
        // Two projections meet in the scores MatMul (query left, key right), one is the value.
        let (mut q, mut k, mut v) = (None, None, None);
        for (i, (lin, (mm, pos, labs, scale))) in follows.iter().enumerate() {
            let shared = follows
                .iter()
                .enumerate()
                .any(|(j, (_, (m2, _, _, _)))| j != i && m2.name == mm.name);
            match (shared, pos) {
                (true, 0) => q = Some((lin, mm, labs, *scale)),
                (true, 1) => k = Some((lin, mm, labs, *scale)),
                (false, 1) => v = Some((lin, mm, labs, *scale)),
                _ => {
                    return Err(at(
                        mm,
                        format!(
                            "layer {l}: {} is operand {pos} of this MatMul, which is neither \
                             the attention scores (query x key) nor the context (probs x value)",
                            lin.describe()
                        ),
                    ))
                }
            }
        }
        let (Some(q), Some(k), Some(v)) = (q, k, v) else {
            return Err(OnnxError::Structure(format!(
                "layer {l}: the three projections of `{h}` do not form query, key and value"
            )));
        };
        use Lab::*;
        if q.2.as_slice() != [Batch, Heads, Seq, HeadDim] {
            return Err(at(q.1, format!("query operand has axes {:?}", q.2)));
        }
        if k.2.as_slice() != [Batch, Heads, HeadDim, Seq] {
            return Err(at(
                k.1,
                format!("key operand has axes {:?}, expected key transposed", k.2),
            ));
        }
        if v.2.as_slice() != [Batch, Heads, Seq, HeadDim] || v.3 != 1.0 {
            return Err(at(
                v.1,
                format!("value operand has axes {:?} (scale {})", v.2, v.3),
            ));
        }
        let scores = q.1.clone();
        let context = v.1.clone();
        // scores -> [scale] -> [mask Add] -> Softmax -> context MatMul (left operand).
        let mut scale = q.3 * k.3;
        let mut t = scores.out().to_string();
        self.set_labels(&t, &[Batch, Heads, Seq, Seq]);
        let mut masks = 0;
        let mut steps = Steps::default();
        let softmax = loop {
            steps.next()?;
            let c = g.consumers(&t);
            let [n] = c.as_slice() else {
                return Err(at(
                    &scores,
                    format!(
                        "attention scores feed {}, expected a Softmax",
                        describe_all(&c)
                    ),
                ));
            };
            let n = (*n).clone();
            match n.op.as_str() {
                "Mul" | "Div" => scale = self.scale_op(&n, &t, scale)?,
                "Add" if masks == 0 => {
                    let other = if n.input(0) == Some(t.as_str()) {
                        n.input(1)
                    } else {
                        n.input(0)
                    }
                    .unwrap_or("")
                    .to_string();
                    let main = &self.main;
                    if g.depends_on(&other, &|x| main.contains(x)) {
                        return Err(at(&n, "adds hidden-state values to the attention scores"));
                    }
                    masks += 1;
                }
                "Softmax" => break n,
                _ => {
                    return Err(at(
                        &n,
                        "unexpected between the attention scores and the Softmax",
                    ))
                }
            }
            t = n.out().to_string();
        };
        let axis = softmax
            .attr_i("axis")
            .unwrap_or(if g.opset >= 13 { -1 } else { 1 });
        if axis != -1 && axis != 3 {
            return Err(at(
                &softmax,
                format!("normalises axis {axis}, not the key axis"),
            ));
        }
        let probs = softmax.out().to_string();
        match g.consumers(&probs).as_slice() {
            [c] if c.name == context.name && c.input(0) == Some(probs.as_str()) => {}
            other => {
                return Err(at(
                    &softmax,
                    format!(
                        "the attention probabilities should be the left operand of {} only, \
                         they feed {}",
                        context.describe(),
                        describe_all(other)
                    ),
                ))
            }
        }
        let heads = self.heads.unwrap_or(1);
        let d = (hs / heads) as f64;
        let want = 1.0 / d.sqrt();
        if ((scale - want) / want).abs() > 1e-4 {
            return Err(at(
                &scores,
                format!("attention scale is {scale}, BERT's is 1/sqrt({d}) = {want}"),
            ));
        }
        // context -> merge heads -> attention output Linear.
        let mut t = context.out().to_string();
        let mut labs = vec![Batch, Heads, Seq, HeadDim];
        let mut steps = Steps::default();
        let ao = loop {
            steps.next()?;
            self.set_labels(&t, &labs);
            let c = g.consumers(&t);
            let [n] = c.as_slice() else {
                return Err(at(
                    &context,
                    format!("the attention context feeds {}", describe_all(&c)),
                ));
            };
            let n = (*n).clone();
            match n.op.as_str() {
                _ if n.linear.is_some() => break n,
                "Transpose" => labs = transpose(&n, &labs)?,
                "Reshape" => labs = self.reshape(&n, &labs)?,
                _ => {
                    return Err(at(
                        &n,
                        "unexpected between the attention context and its output Linear",
                    ))
                }
            }
            t = n.out().to_string();
        };
        if labs.as_slice() != [Batch, Seq, Hidden] {
            return Err(at(&ao, format!("reads the context with axes {labs:?}")));
        }
        let ao_op = linear_of(&ao)
            .ok_or_else(|| at(&ao, "not a Linear"))?
            .clone();
        if ao_op.n != hs || ao_op.k != hs {
            return Err(at(&ao, "attention output Linear is not hidden x hidden"));
        }
        let ao_out = ao.out().to_string();
        self.hidden_state(&ao_out);
        let r1 = self.residual(&ao, &ao_out, h)?;
        let attn = self.layer_norm(&r1, &format!("{p}.attention.output.LayerNorm"))?;

        // Feed-forward: intermediate Linear -> activation -> output Linear -> residual -> LN.
        let c = g.consumers(&attn);
        let (inter, rest): (Vec<&Node>, Vec<&Node>) = c.iter().partition(|n| n.linear.is_some());
        let ([inter], [add]) = (inter.as_slice(), rest.as_slice()) else {
            return Err(OnnxError::Structure(format!(
                "layer {l}: the attention LayerNorm output should feed the intermediate Linear \
                 and the residual Add, it feeds {}",
                describe_all(&c)
            )));
        };
        if !add.is("Add") {
            return Err(at(
                add,
                format!("layer {l}: expected the feed-forward residual Add"),
            ));
        }
        let inter = (*inter).clone();
        let inter_op = linear_of(&inter)
            .ok_or_else(|| at(&inter, "not a Linear"))?
            .clone();
        if inter_op.k != hs {
            return Err(at(
                &inter,
                "intermediate Linear does not read the hidden size",
            ));
        }
        let isz = inter_op.n;
        let (act, out_lin) = self.activation(&inter)?;
        match self.activation {
            None => self.activation = Some(act),
            Some(a) if a != act => {
                return Err(at(
                    &inter,
                    format!("layer {l} uses {act:?}, earlier layers {a:?}"),
                ));
            }
            _ => {}
        }
        let out_op = linear_of(&out_lin)
            .ok_or_else(|| at(&out_lin, "not a Linear"))?
            .clone();
        if out_op.n != hs || out_op.k != isz {
            return Err(at(&out_lin, "output Linear is not hidden x intermediate"));
        }
        let out_out = out_lin.out().to_string();
        self.hidden_state(&out_out);
        let r2 = self.residual(&out_lin, &out_out, &attn)?;
        let out = self.layer_norm(&r2, &format!("{p}.output.LayerNorm"))?;

        for (role, node) in [("query", q.0), ("key", k.0), ("value", v.0)] {
            let op = linear_of(node)
                .ok_or_else(|| at(node, "not a Linear"))?
                .clone();
            self.put_linear(&format!("{p}.attention.self.{role}"), &op)?;
        }
        self.put_linear(&format!("{p}.attention.output.dense"), &ao_op)?;
        self.put_linear(&format!("{p}.intermediate.dense"), &inter_op)?;
        self.put_linear(&format!("{p}.output.dense"), &out_op)?;
        Ok((out, isz))
    }

    /// `branch + skip` right after `from` (whose output is `branch`).
    fn residual(&self, from: &Node, branch: &str, skip: &str) -> Result<String, OnnxError> {
        let c = self.g.consumers(branch);
        match c.as_slice() {
            [a] if a.is("Add")
                && a.inputs.len() == 2
                && a.inputs.iter().any(|i| i == skip)
                && a.inputs.iter().any(|i| i == branch) =>
            {
                Ok(a.out().to_string())
            }
            _ => Err(at(
                from,
                format!(
                    "expected its output to be added to `{skip}` (the residual), it feeds {}",
                    describe_all(&c)
                ),
            )),
        }
    }

    /// The activation between the intermediate Linear and the output Linear, identified by
    /// evaluating it.
    fn activation(&mut self, inter: &Node) -> Result<(Activation, Node), OnnxError> {
        const ELEMENTWISE: &[&str] = &[
            "Add",
            "Sub",
            "Mul",
            "Div",
            "Pow",
            "Sqrt",
            "Erf",
            "Tanh",
            "Relu",
            "Sigmoid",
            "Neg",
            "Reciprocal",
            "Abs",
            "Gelu",
        ];
        let g = self.g;
        let x = inter.out().to_string();
        self.main.insert(x.clone());
        let mut block: Vec<Node> = Vec::new();
        let mut exit: Option<(String, Node)> = None;
        let mut stack = vec![x.clone()];
        let mut seen = HashSet::new();
        while let Some(t) = stack.pop() {
            if !seen.insert(t.clone()) {
                continue;
            }
            for c in g.consumers(&t) {
                if c.linear.is_some() {
                    if let Some((t0, n0)) = &exit {
                        if n0.name != c.name || *t0 != t {
                            return Err(at(
                                c,
                                format!("a second Linear after {}", inter.describe()),
                            ));
                        }
                    }
                    exit = Some((t.clone(), c.clone()));
                    continue;
                }
                let known =
                    (c.domain.is_empty() || c.domain == "ai.onnx" || c.domain == "com.microsoft")
                        && ELEMENTWISE.contains(&c.op.as_str());
                if !known {
                    return Err(at(
                        c,
                        format!("unexpected in the activation after {}", inter.describe()),
                    ));
                }
                if !block.iter().any(|b| b.name == c.name) {
                    if block.len() > 64 {
                        return Err(at(c, "activation too large"));
                    }
                    block.push(c.clone());
                    stack.extend(c.outputs.iter().filter(|o| !o.is_empty()).cloned());
                }
            }
        }
        let Some((y, out_lin)) = exit else {
            return Err(at(inter, "no output Linear after the intermediate Linear"));
        };
        if y == x || block.is_empty() {
            return Err(at(
                &out_lin,
                "no activation between the intermediate and output Linears",
            ));
        }
        // Evaluate the block on sample inputs.
        let xs: Vec<f64> = (0..=200).map(|i| -6.0 + 0.06 * i as f64).collect();
        let mut vals: std::collections::HashMap<String, Vec<f64>> = Default::default();
        vals.insert(x.clone(), xs.clone());
        let mut pending: Vec<&Node> = block.iter().collect();
        for _ in 0..=block.len() {
            let mut next = Vec::new();
            for n in pending {
                let mut args = Vec::new();
                let mut ready = true;
                for i in n.inputs.iter().filter(|s| !s.is_empty()) {
                    if let Some(v) = vals.get(i) {
                        args.push(v.clone());
                    } else if let Some(c) = eval::scalar(g, &self.shapes, i) {
                        args.push(vec![c; xs.len()]);
                    } else if block.iter().any(|b| b.outputs.contains(i)) {
                        ready = false;
                        break;
                    } else {
                        return Err(at(n, "activation reads a non-constant, non-scalar operand"));
                    }
                }
                if !ready {
                    next.push(n);
                    continue;
                }
                let out =
                    apply(n, &args).ok_or_else(|| at(n, "cannot evaluate this activation op"))?;
                if let Some(o) = n.outputs.first() {
                    vals.insert(o.clone(), out);
                }
            }
            pending = next;
            if pending.is_empty() {
                break;
            }
        }
        let got = vals
            .get(&y)
            .ok_or_else(|| at(&out_lin, "cannot evaluate the activation"))?;
        let gelu = |x: f64| 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
        let gelu_tanh = |x: f64| {
            0.5 * x
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
        };
        let relu = |x: f64| x.max(0.0);
        let err = |f: &dyn Fn(f64) -> f64| {
            xs.iter()
                .zip(got)
                .map(|(&x, &y)| (f(x) - y).abs())
                .fold(0.0f64, f64::max)
        };
        let candidates: [(Activation, f64); 3] = [
            (Activation::GeluErf, err(&gelu)),
            (Activation::GeluTanh, err(&gelu_tanh)),
            (Activation::Relu, err(&relu)),
        ];
        let best = candidates
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .copied()
            .unwrap_or((Activation::GeluErf, f64::INFINITY));
        if best.1 > 1e-4 {
            return Err(at(
                &block[0],
                format!(
                    "the activation after {} is not erf GELU, tanh GELU or ReLU \
                     (closest: {:?}, max error {:.3e})",
                    inter.describe(),
                    best.0,
                    best.1
                ),
            ));
        }
        Ok((best.0, out_lin))
    }

    /// The task head after the last hidden state `h`.
    fn head(&mut self, h: &str) -> Result<HeadKind, OnnxError> {
        let g = self.g;
        let hs = self.hidden;
        let cons = g.consumers(h);
        let graph_out = |t: &str| g.is_output(t);
        if cons.is_empty() {
            if graph_out(h) {
                return Ok(HeadKind::Encoder);
            }
            return Err(OnnxError::Structure(format!(
                "the last hidden state `{h}` is neither an output nor read by a head"
            )));
        }
        if let [c] = cons.as_slice() {
            if let Some(op) = c.linear.clone() {
                let out = c.out();
                if !graph_out(out) {
                    return Err(at(c, "the token classifier's output is not a graph output"));
                }
                if op.k != hs {
                    return Err(at(c, "the classifier does not read the hidden size"));
                }
                self.put_linear("classifier", &op)?;
                return Ok(HeadKind::TokenClassification { labels: op.n });
            }
        }
        // [CLS] selection -> pooler -> Tanh [-> classifier].
        let [sel] = cons.as_slice() else {
            return Err(OnnxError::Structure(format!(
                "the last hidden state `{h}` feeds {}, expected a classifier, the [CLS] pooler \
                 or nothing",
                describe_all(&cons)
            )));
        };
        let mut t = self.cls_selection(sel)?;
        // An optional Squeeze/Reshape/Flatten to [batch, hidden].
        let mut steps = Steps::default();
        loop {
            steps.next()?;
            let c = g.consumers(&t);
            match c.as_slice() {
                [n] if n.is("Squeeze") || n.is("Reshape") || n.is("Flatten") => {
                    t = n.out().to_string()
                }
                _ => break,
            }
        }
        let c = g.consumers(&t);
        let pooler = match c.as_slice() {
            [n] if n.linear.is_some() => (*n).clone(),
            _ => {
                return Err(at(
                    sel,
                    format!(
                        "the [CLS] state feeds {}, expected the pooler Linear",
                        describe_all(&c)
                    ),
                ))
            }
        };
        let p_op = linear_of(&pooler)
            .ok_or_else(|| at(&pooler, "not a Linear"))?
            .clone();
        if p_op.n != hs || p_op.k != hs {
            return Err(at(&pooler, "the pooler is not hidden x hidden"));
        }
        let tanh = match g.consumers(pooler.out()).as_slice() {
            [n] if n.is("Tanh") => (*n).clone(),
            other => {
                return Err(at(
                    &pooler,
                    format!(
                        "the pooler should feed a Tanh, it feeds {}",
                        describe_all(other)
                    ),
                ))
            }
        };
        let pooled = tanh.out().to_string();
        let c = g.consumers(&pooled);
        match c.as_slice() {
            [] if graph_out(&pooled) && graph_out(h) => Ok(HeadKind::Encoder),
            [cls] if cls.linear.is_some() && graph_out(cls.out()) => {
                let c_op = linear_of(cls)
                    .ok_or_else(|| at(cls, "not a Linear"))?
                    .clone();
                if c_op.k != hs {
                    return Err(at(cls, "the classifier does not read the hidden size"));
                }
                self.put_linear("pooler.dense", &p_op)?;
                self.put_linear("classifier", &c_op)?;
                Ok(HeadKind::SequenceClassification { labels: c_op.n })
            }
            other => Err(at(
                &tanh,
                format!(
                    "the pooled output feeds {}, expected the classifier (whose output is a \
                     graph output)",
                    describe_all(other)
                ),
            )),
        }
    }

    /// `Gather(h, 0, axis=1)` or `Slice(h, 0:1, axis 1)`: the [CLS] state. Returns its output.
    fn cls_selection(&self, n: &Node) -> Result<String, OnnxError> {
        let g = self.g;
        let sc = |i: usize| {
            n.input(i)
                .and_then(|s| eval::eval(g, &self.shapes, s))
                .map(|s| s.vals)
        };
        let ok = if n.is("Gather") {
            n.attr_i("axis") == Some(1) && sc(1).as_deref() == Some(&[Sv::Num(0.0)])
        } else if n.is("Slice") {
            sc(1).as_deref() == Some(&[Sv::Num(0.0)])
                && sc(2).as_deref() == Some(&[Sv::Num(1.0)])
                && sc(3).as_deref() == Some(&[Sv::Num(1.0)])
        } else {
            false
        };
        if ok {
            Ok(n.out().to_string())
        } else {
            Err(at(
                n,
                "reads the last hidden state, but is not a classifier or the [CLS] token selection",
            ))
        }
    }
}

enum IndexSource {
    Input(String),
    Derived(EmbKind),
}

fn transpose(n: &Node, labs: &[Lab]) -> Result<Vec<Lab>, OnnxError> {
    let perm: Vec<usize> = match n.attr_ints("perm") {
        Some(p) => p
            .iter()
            .map(|&a| usize::try_from(a).ok().filter(|&a| a < labs.len()))
            .collect::<Option<_>>()
            .ok_or_else(|| at(n, format!("perm {p:?} for rank {}", labs.len())))?,
        None => (0..labs.len()).rev().collect(),
    };
    if perm.len() != labs.len() {
        return Err(at(n, format!("perm {perm:?} for rank {}", labs.len())));
    }
    Ok(perm.iter().map(|&p| labs[p]).collect())
}

/// Elementwise evaluation of one activation op.
fn apply(n: &Node, a: &[Vec<f64>]) -> Option<Vec<f64>> {
    let un = |f: &dyn Fn(f64) -> f64| a.first().map(|x| x.iter().map(|&v| f(v)).collect());
    let bin = |f: &dyn Fn(f64, f64) -> f64| match a {
        [x, y] => Some(x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect()),
        _ => None,
    };
    // Values are f32 in the graph: round after every op as onnxruntime would.
    let r = |v: f64| v as f32 as f64;
    let out: Vec<f64> = match n.op.as_str() {
        "Add" => bin(&|p, q| p + q)?,
        "Sub" => bin(&|p, q| p - q)?,
        "Mul" => bin(&|p, q| p * q)?,
        "Div" => bin(&|p, q| p / q)?,
        "Pow" => bin(&|p, q| p.powf(q))?,
        "Sqrt" => un(&f64::sqrt)?,
        "Erf" => un(&libm::erf)?,
        "Tanh" => un(&f64::tanh)?,
        "Relu" => un(&|v| v.max(0.0))?,
        "Sigmoid" => un(&|v| 1.0 / (1.0 + (-v).exp()))?,
        "Neg" => un(&|v| -v)?,
        "Reciprocal" => un(&|v| 1.0 / v)?,
        "Abs" => un(&f64::abs)?,
        "Gelu" => {
            let tanh = n
                .attr("approximate")
                .is_some_and(|a| a.s.as_slice() == b"tanh");
            if tanh {
                un(&|x| {
                    0.5 * x
                        * (1.0
                            + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x))
                                .tanh())
                })?
            } else {
                un(&|x| 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)))?
            }
        }
        _ => return None,
    };
    Some(out.into_iter().map(r).collect())
}
