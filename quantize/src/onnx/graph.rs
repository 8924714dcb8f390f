//! The ONNX graph as the matcher sees it: nodes with producer/consumer indexes, constants decoded
//! on demand and folded through the ops that only re-express a constant (`DequantizeLinear`,
//! `QuantizeLinear`, `Transpose`, `Cast`, reshapes, scalar arithmetic), and layout-free aliases
//! (`Identity`, `Dropout`, activation fake-quantization `QuantizeLinear -> DequantizeLinear`,
//! SDPA's NaN guard) removed.

use super::tensor::{self, dt, Const, Data};
use super::OnnxError;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use tract_onnx::pb;

/// A Linear layer recovered from one of the weight-carrying patterns (see `linear.rs`):
/// `y = x @ weight^T + bias`, `weight` row-major `[n, k]` as in PyTorch.
#[derive(Debug)]
pub struct LinearOp {
    pub weight: Vec<f32>,
    pub n: usize,
    pub k: usize,
    pub bias: Option<Vec<f32>>,
    /// How the weight was stored (`MatMul f32`, `MatMulNBits 4-bit`, ...).
    pub kind: &'static str,
}

#[derive(Debug, Clone)]
pub struct Node {
    /// The node's name, or `#index op_type` when the exporter left it empty.
    pub name: String,
    pub op: String,
    pub domain: String,
    /// Input tensor names (`""` for an absent optional input), aliases resolved.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: Vec<pb::AttributeProto>,
    /// Set for the synthetic `Linear` nodes that replace weight patterns.
    pub linear: Option<Rc<LinearOp>>,
}

impl Node {
    pub fn attr(&self, name: &str) -> Option<&pb::AttributeProto> {
        self.attrs.iter().find(|a| a.name == name)
    }
    pub fn attr_i(&self, name: &str) -> Option<i64> {
        self.attr(name).map(|a| a.i)
    }
    pub fn attr_f(&self, name: &str) -> Option<f32> {
        self.attr(name).map(|a| a.f)
    }
    pub fn attr_ints(&self, name: &str) -> Option<&[i64]> {
        self.attr(name).map(|a| a.ints.as_slice())
    }
    /// `op` in the default (or `ai.onnx`) domain.
    pub fn is(&self, op: &str) -> bool {
        self.op == op && (self.domain.is_empty() || self.domain == "ai.onnx")
    }
    pub fn input(&self, i: usize) -> Option<&str> {
        self.inputs
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
    /// The first output (`""` if the node has none).
    pub fn out(&self) -> &str {
        self.outputs.first().map(String::as_str).unwrap_or("")
    }
    pub fn describe(&self) -> String {
        if let Some(l) = &self.linear {
            return format!("`{}` ({} Linear)", self.name, l.kind);
        }
        if self.domain.is_empty() || self.domain == "ai.onnx" {
            format!("`{}` ({})", self.name, self.op)
        } else {
            format!("`{}` ({}.{})", self.name, self.domain, self.op)
        }
    }
}

/// Element count cap for values folded from constants (a bert-large embedding table is 31 M).
const MAX_FOLD: usize = 1 << 26;
/// Recursion cap of constant folding (exporters produce chains of a handful of ops).
const MAX_FOLD_DEPTH: usize = 64;

#[derive(Debug)]
pub struct Graph {
    pub nodes: Vec<Node>,
    inits: HashMap<String, pb::TensorProto>,
    consts: RefCell<HashMap<String, Rc<Const>>>,
    not_const: RefCell<HashSet<String>>,
    alias: HashMap<String, String>,
    producer: HashMap<String, usize>,
    consumers: HashMap<String, Vec<usize>>,
    /// Graph inputs that are not initializers (`input_ids`, ...).
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub model_dir: Option<PathBuf>,
    /// Opset of the default domain.
    pub opset: i64,
}

impl Graph {
    pub fn from_model(model: pb::ModelProto, model_dir: Option<&Path>) -> Result<Self, OnnxError> {
        let opset = model
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .unwrap_or(1);
        let graph = model
            .graph
            .ok_or_else(|| OnnxError::Structure("the model has no graph".into()))?;
        let mut inits = HashMap::new();
        for t in graph.initializer {
            inits.insert(t.name.clone(), t);
        }
        let mut consts = HashMap::new();
        let mut nodes = Vec::with_capacity(graph.node.len());
        for (i, n) in graph.node.into_iter().enumerate() {
            let name = if n.name.is_empty() {
                format!("#{i} {}", n.op_type)
            } else {
                n.name.clone()
            };
            if n.op_type == "Constant" && (n.domain.is_empty() || n.domain == "ai.onnx") {
                let Some(out) = n.output.first() else {
                    continue;
                };
                let value = constant_node_value(&n, model_dir)
                    .map_err(|m| OnnxError::at(&format!("`{name}` (Constant)"), m))?;
                consts.insert(out.clone(), Rc::new(value));
                continue;
            }
            nodes.push(Node {
                name,
                op: n.op_type,
                domain: n.domain,
                inputs: n.input,
                outputs: n.output,
                attrs: n.attribute,
                linear: None,
            });
        }
        let inputs = graph
            .input
            .iter()
            .map(|v| v.name.clone())
            .filter(|n| !inits.contains_key(n))
            .collect();
        let outputs = graph.output.iter().map(|v| v.name.clone()).collect();
        let mut g = Graph {
            nodes,
            inits,
            consts: RefCell::new(consts),
            not_const: RefCell::new(HashSet::new()),
            alias: HashMap::new(),
            producer: HashMap::new(),
            consumers: HashMap::new(),
            inputs,
            outputs,
            model_dir: model_dir.map(Path::to_path_buf),
            opset,
        };
        g.reindex();
        Ok(g)
    }

    /// Rebuilds the producer and consumer maps after nodes changed.
    pub fn reindex(&mut self) {
        self.producer.clear();
        self.consumers.clear();
        for (i, n) in self.nodes.iter().enumerate() {
            for o in &n.outputs {
                if !o.is_empty() {
                    self.producer.insert(o.clone(), i);
                }
            }
            for inp in &n.inputs {
                if !inp.is_empty() {
                    let list = self.consumers.entry(inp.clone()).or_default();
                    if list.last() != Some(&i) {
                        list.push(i);
                    }
                }
            }
        }
    }

    pub fn resolve<'a>(&'a self, mut t: &'a str) -> &'a str {
        // Alias chains are acyclic (each alias points to an earlier tensor); bound anyway.
        for _ in 0..1000 {
            match self.alias.get(t) {
                Some(next) => t = next,
                None => break,
            }
        }
        t
    }

    /// Makes `from` another name of `to` (the node producing `from` is then dead).
    pub fn add_alias(&mut self, from: &str, to: &str) {
        let to = self.resolve(to).to_string();
        if from != to {
            self.alias.insert(from.to_string(), to);
        }
    }

    /// Rewrites every node input and graph output through the alias map.
    pub fn apply_aliases(&mut self) {
        let alias = std::mem::take(&mut self.alias);
        let resolve = |t: &str| -> String {
            let mut t = t;
            for _ in 0..1000 {
                match alias.get(t) {
                    Some(n) => t = n,
                    None => break,
                }
            }
            t.to_string()
        };
        for n in &mut self.nodes {
            for i in &mut n.inputs {
                if !i.is_empty() {
                    *i = resolve(i);
                }
            }
        }
        for o in &mut self.outputs {
            *o = resolve(o);
        }
        self.alias = alias;
        self.reindex();
    }

    pub fn producer(&self, t: &str) -> Option<&Node> {
        self.producer.get(t).map(|&i| &self.nodes[i])
    }

    pub fn producer_index(&self, t: &str) -> Option<usize> {
        self.producer.get(t).copied()
    }

    /// Consumers of `t`, excluding `Shape` (shape reads carry no values).
    pub fn consumers(&self, t: &str) -> Vec<&Node> {
        self.consumers
            .get(t)
            .map(|v| {
                v.iter()
                    .map(|&i| &self.nodes[i])
                    .filter(|n| !n.is("Shape"))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn consumer_indices(&self, t: &str) -> Vec<usize> {
        self.consumers
            .get(t)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&i| !self.nodes[i].is("Shape"))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn is_output(&self, t: &str) -> bool {
        self.outputs.iter().any(|o| o == t)
    }

    pub fn is_input(&self, t: &str) -> bool {
        self.inputs.iter().any(|o| o == t)
    }

    /// Registers a synthetic constant (e.g. an embedding table dequantized before its Gather).
    pub fn insert_const(&self, name: &str, c: Const) {
        self.consts
            .borrow_mut()
            .insert(name.to_string(), Rc::new(c));
    }

    /// The constant value of `t`, if it is one: an initializer, a `Constant`, or a value
    /// folded from them.
    pub fn constant(&self, t: &str) -> Result<Option<Rc<Const>>, OnnxError> {
        self.constant_at(t, 0)
    }

    fn constant_at(&self, t: &str, depth: usize) -> Result<Option<Rc<Const>>, OnnxError> {
        let t = self.resolve(t);
        if t.is_empty() {
            return Ok(None);
        }
        if let Some(c) = self.consts.borrow().get(t) {
            return Ok(Some(c.clone()));
        }
        if self.not_const.borrow().contains(t) {
            return Ok(None);
        }
        if let Some(proto) = self.inits.get(t) {
            let c = Rc::new(tensor::decode(proto, self.model_dir.as_deref())?);
            self.consts.borrow_mut().insert(t.to_string(), c.clone());
            return Ok(Some(c));
        }
        let folded = match self.producer(t) {
            Some(node) if depth < MAX_FOLD_DEPTH => self.fold(node, t, depth)?,
            _ => None,
        };
        match &folded {
            Some(c) => {
                self.consts.borrow_mut().insert(t.to_string(), c.clone());
            }
            None => {
                self.not_const.borrow_mut().insert(t.to_string());
            }
        }
        Ok(folded)
    }

    fn fold(&self, node: &Node, out: &str, depth: usize) -> Result<Option<Rc<Const>>, OnnxError> {
        if node.outputs.first().map(String::as_str) != Some(out) || node.linear.is_some() {
            return Ok(None);
        }
        let foldable = [
            "Identity",
            "Cast",
            "DequantizeLinear",
            "QuantizeLinear",
            "Transpose",
            "Reshape",
            "Unsqueeze",
            "Squeeze",
            "Flatten",
            "Mul",
            "Div",
            "Add",
            "Sub",
            "Sqrt",
            "Reciprocal",
            "Neg",
        ];
        let known_domain = node.domain.is_empty() || node.domain == "ai.onnx";
        if !known_domain || !foldable.contains(&node.op.as_str()) {
            return Ok(None);
        }
        let mut ins = Vec::new();
        for i in &node.inputs {
            if i.is_empty() {
                ins.push(None);
                continue;
            }
            match self.constant_at(i, depth + 1)? {
                Some(c) => ins.push(Some(c)),
                None => return Ok(None),
            }
        }
        let err = |m: String| OnnxError::at(&node.describe(), m);
        let first = match ins.first() {
            Some(Some(c)) => c.clone(),
            _ => return Ok(None),
        };
        let c = match node.op.as_str() {
            "Identity" => (*first).clone(),
            "Cast" => {
                let to = node.attr_i("to").unwrap_or(dt::FLOAT as i64) as i32;
                cast(&first, to).map_err(err)?
            }
            "DequantizeLinear" => {
                let scale = ins
                    .get(1)
                    .cloned()
                    .flatten()
                    .ok_or_else(|| err("DequantizeLinear without a scale".into()))?;
                let zp = ins.get(2).cloned().flatten();
                dequantize_linear(node, &first, &scale, zp.as_deref()).map_err(err)?
            }
            "QuantizeLinear" => {
                let scale = ins
                    .get(1)
                    .cloned()
                    .flatten()
                    .ok_or_else(|| err("QuantizeLinear without a scale".into()))?;
                let zp = ins.get(2).cloned().flatten();
                quantize_linear(node, &first, &scale, zp.as_deref()).map_err(err)?
            }
            "Transpose" => {
                let perm = node.attr_ints("perm").map(<[i64]>::to_vec);
                transpose(&first, perm.as_deref()).map_err(err)?
            }
            "Reshape" | "Unsqueeze" | "Squeeze" | "Flatten" => {
                let dims = match node.op.as_str() {
                    "Reshape" => {
                        let target = ins
                            .get(1)
                            .cloned()
                            .flatten()
                            .and_then(|t| t.to_i64())
                            .ok_or_else(|| err("Reshape without a constant shape".into()))?;
                        reshape_dims(&first.dims, &target).map_err(err)?
                    }
                    "Flatten" => {
                        let axis = node.attr_i("axis").unwrap_or(1);
                        let r = first.dims.len() as i64;
                        let axis = if axis < 0 {
                            axis.saturating_add(r)
                        } else {
                            axis
                        };
                        if !(0..=r).contains(&axis) {
                            return Err(err(format!("Flatten axis {axis}")));
                        }
                        let (a, b) = first.dims.split_at(axis as usize);
                        vec![a.iter().product(), b.iter().product()]
                    }
                    "Unsqueeze" => {
                        let axes = axes_of(node, ins.get(1).cloned().flatten().as_deref(), self)
                            .ok_or_else(|| err("Unsqueeze without constant axes".into()))?;
                        let r = (first.dims.len() + axes.len()) as i64;
                        let mut axes: Vec<i64> = axes
                            .iter()
                            .map(|&a| if a < 0 { a.saturating_add(r) } else { a })
                            .collect();
                        axes.sort_unstable();
                        let mut dims = first.dims.clone();
                        for a in axes {
                            if a < 0 || a as usize > dims.len() {
                                return Err(err(format!("Unsqueeze axis {a}")));
                            }
                            dims.insert(a as usize, 1);
                        }
                        dims
                    }
                    _ => {
                        let axes = axes_of(node, ins.get(1).cloned().flatten().as_deref(), self);
                        let r = first.dims.len() as i64;
                        match axes {
                            Some(axes) => {
                                let axes: Vec<i64> = axes
                                    .iter()
                                    .map(|&a| if a < 0 { a.saturating_add(r) } else { a })
                                    .collect();
                                first
                                    .dims
                                    .iter()
                                    .enumerate()
                                    .filter(|(i, _)| !axes.contains(&(*i as i64)))
                                    .map(|(_, &d)| d)
                                    .collect()
                            }
                            None => first.dims.iter().copied().filter(|&d| d != 1).collect(),
                        }
                    }
                };
                if dims.iter().product::<usize>() != first.len() {
                    return Err(err(format!("cannot reshape {:?} to {dims:?}", first.dims)));
                }
                Const {
                    dims,
                    dtype: first.dtype,
                    data: first.data.clone(),
                }
            }
            "Sqrt" | "Reciprocal" | "Neg" => {
                let f: fn(f32) -> f32 = match node.op.as_str() {
                    "Sqrt" => f32::sqrt,
                    "Reciprocal" => |x| 1.0 / x,
                    _ => |x| -x,
                };
                Const::f32(
                    first.dims.clone(),
                    first.to_f32().into_iter().map(f).collect(),
                )
            }
            _ => {
                // Binary arithmetic on float constants.
                let second = match ins.get(1) {
                    Some(Some(c)) => c.clone(),
                    _ => return Ok(None),
                };
                if !first.is_float() && !second.is_float() {
                    // Integer shape arithmetic is the small evaluator's business.
                    return Ok(None);
                }
                let f: fn(f32, f32) -> f32 = match node.op.as_str() {
                    "Mul" => |a, b| a * b,
                    "Div" => |a, b| a / b,
                    "Add" => |a, b| a + b,
                    _ => |a, b| a - b,
                };
                broadcast(&first, &second, f).map_err(err)?
            }
        };
        Ok(Some(Rc::new(c)))
    }

    /// Removes the nodes whose outputs do not reach a graph output.
    pub fn remove_dead_nodes(&mut self) {
        let mut live = vec![false; self.nodes.len()];
        let mut stack: Vec<String> = self.outputs.clone();
        let mut seen = HashSet::new();
        while let Some(t) = stack.pop() {
            if !seen.insert(t.clone()) {
                continue;
            }
            if let Some(&i) = self.producer.get(&t) {
                if !live[i] {
                    live[i] = true;
                    stack.extend(
                        self.nodes[i]
                            .inputs
                            .iter()
                            .filter(|s| !s.is_empty())
                            .cloned(),
                    );
                }
            }
        }
        let mut i = 0;
        self.nodes.retain(|_| {
            let keep = live[i];
            i += 1;
            keep
        });
        self.reindex();
    }

    /// Whether values (not just shapes) of some non-constant tensor in `stop` reach `t`.
    pub fn depends_on(&self, t: &str, stop: &dyn Fn(&str) -> bool) -> bool {
        let mut stack = vec![t.to_string()];
        let mut seen = HashSet::new();
        while let Some(t) = stack.pop() {
            if !seen.insert(t.clone()) || seen.len() > 100_000 {
                continue;
            }
            if stop(&t) {
                return true;
            }
            if let Some(n) = self.producer(&t) {
                if n.is("Shape") {
                    continue;
                }
                stack.extend(n.inputs.iter().filter(|s| !s.is_empty()).cloned());
            }
        }
        false
    }
}

fn constant_node_value(n: &pb::NodeProto, dir: Option<&Path>) -> Result<Const, String> {
    let a = n
        .attribute
        .first()
        .ok_or_else(|| "Constant without a value".to_string())?;
    Ok(match a.name.as_str() {
        "value" => {
            let t = a.t.as_ref().ok_or("Constant value is not a tensor")?;
            tensor::decode(t, dir).map_err(|e| e.to_string())?
        }
        "value_float" => Const::f32(vec![], vec![a.f]),
        "value_floats" => Const::f32(vec![a.floats.len()], a.floats.clone()),
        "value_int" => Const {
            dims: vec![],
            dtype: dt::INT64,
            data: Data::I64(vec![a.i]),
        },
        "value_ints" => Const {
            dims: vec![a.ints.len()],
            dtype: dt::INT64,
            data: Data::I64(a.ints.clone()),
        },
        other => return Err(format!("Constant with `{other}` is not supported")),
    })
}

/// `axes` of Unsqueeze/Squeeze/ReduceMean: an attribute before opset 13 (18 for ReduceMean),
/// an input after.
pub fn axes_of(node: &Node, input: Option<&Const>, _g: &Graph) -> Option<Vec<i64>> {
    if let Some(a) = node.attr_ints("axes") {
        return Some(a.to_vec());
    }
    input.and_then(Const::to_i64)
}

fn is_int_type(t: i32) -> bool {
    matches!(
        t,
        dt::UINT8
            | dt::INT8
            | dt::UINT16
            | dt::INT16
            | dt::INT32
            | dt::INT64
            | dt::BOOL
            | dt::UINT32
            | dt::UINT64
            | dt::UINT4
            | dt::INT4
    )
}

fn cast(c: &Const, to: i32) -> Result<Const, String> {
    if matches!(to, dt::FLOAT | dt::DOUBLE) {
        return Ok(Const::f32(c.dims.clone(), c.to_f32()));
    }
    if matches!(to, dt::FLOAT16 | dt::BFLOAT16) {
        let v = c
            .to_f32()
            .into_iter()
            .map(|x| {
                if to == dt::FLOAT16 {
                    half::f16::from_f32(x).to_f32()
                } else {
                    half::bf16::from_f32(x).to_f32()
                }
            })
            .collect();
        return Ok(Const::f32(c.dims.clone(), v));
    }
    if is_int_type(to) {
        let v = match &c.data {
            Data::I64(v) => v.clone(),
            Data::F32(v) => v.iter().map(|&x| x.trunc() as i64).collect(),
        };
        return Ok(Const {
            dims: c.dims.clone(),
            dtype: to,
            data: Data::I64(v),
        });
    }
    Err(format!("Cast to element type {to}"))
}

/// Strides of the broadcast of `dims` (right-aligned) onto `out`, 0 where broadcast.
fn broadcast_strides(dims: &[usize], out: &[usize]) -> Option<Vec<usize>> {
    let mut strides = vec![0; out.len()];
    let mut s = 1;
    for (i, &d) in dims.iter().enumerate().rev() {
        let o = out.len() - (dims.len() - i);
        if d != out[o] && d != 1 {
            return None;
        }
        strides[o] = if d == 1 { 0 } else { s };
        s *= d;
    }
    Some(strides)
}

pub fn broadcast_dims(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        *o = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}

/// Visits every index of `out` with the matching offsets into two broadcast operands.
fn for_each_broadcast(out: &[usize], sa: &[usize], sb: &[usize], mut f: impl FnMut(usize, usize)) {
    let n: usize = out.iter().product();
    let mut idx = vec![0usize; out.len()];
    let (mut oa, mut ob) = (0usize, 0usize);
    for _ in 0..n {
        f(oa, ob);
        // Increment the multi-index, updating offsets incrementally.
        for d in (0..out.len()).rev() {
            idx[d] += 1;
            oa += sa[d];
            ob += sb[d];
            if idx[d] < out[d] {
                break;
            }
            oa -= sa[d] * out[d];
            ob -= sb[d] * out[d];
            idx[d] = 0;
        }
    }
}

fn broadcast(a: &Const, b: &Const, f: fn(f32, f32) -> f32) -> Result<Const, String> {
    let out = broadcast_dims(&a.dims, &b.dims)
        .ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", a.dims, b.dims))?;
    if out
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .is_none_or(|n| n > MAX_FOLD)
    {
        return Err("folded constant too large".into());
    }
    let (sa, sb) = (
        broadcast_strides(&a.dims, &out).ok_or("broadcast")?,
        broadcast_strides(&b.dims, &out).ok_or("broadcast")?,
    );
    let (va, vb) = (a.to_f32(), b.to_f32());
    let mut v = Vec::with_capacity(out.iter().product());
    for_each_broadcast(&out, &sa, &sb, |i, j| v.push(f(va[i], vb[j])));
    Ok(Const::f32(out, v))
}

/// Per-element scale/zero-point offsets for (de)quantization: per tensor, per axis (1-D
/// parameters along `axis`) or blocked (`block_size`, parameters of the same rank).
fn quant_param_index(
    node: &Node,
    x: &[usize],
    param: &[usize],
    param_len: usize,
) -> Result<Box<dyn Fn(usize) -> usize>, String> {
    if param_len == 1 {
        return Ok(Box::new(|_| 0));
    }
    let r = x.len() as i64;
    let axis = node.attr_i("axis").unwrap_or(1);
    let axis = if axis < 0 {
        axis.saturating_add(r)
    } else {
        axis
    };
    if !(0..r).contains(&axis) {
        return Err(format!("axis {axis} out of range for rank {r}"));
    }
    let axis = axis as usize;
    let block = node.attr_i("block_size").unwrap_or(0);
    let inner: usize = x[axis + 1..].iter().product();
    let d = x[axis];
    if block <= 0 {
        if param.len() != 1 || param[0] != d {
            return Err(format!(
                "per-axis parameters of shape {param:?} do not match axis {axis} of {x:?}"
            ));
        }
        return Ok(Box::new(move |i| (i / inner) % d));
    }
    let block = block as usize;
    let mut expect = x.to_vec();
    expect[axis] = d.div_ceil(block);
    if param != expect.as_slice() {
        return Err(format!(
            "blocked parameters of shape {param:?}, expected {expect:?}"
        ));
    }
    // Offset into the parameter tensor: same multi-index with the axis divided by block.
    let x = x.to_vec();
    let pstrides: Vec<usize> = {
        let mut s = vec![1; expect.len()];
        for i in (0..expect.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * expect[i + 1];
        }
        s
    };
    Ok(Box::new(move |mut i| {
        let mut off = 0;
        for dd in (0..x.len()).rev() {
            let c = i % x[dd];
            i /= x[dd];
            let c = if dd == axis { c / block } else { c };
            off += c * pstrides[dd];
        }
        off
    }))
}

/// ONNX `DequantizeLinear`: `(x - zero_point) * scale` in f32, as onnxruntime computes it.
pub fn dequantize_linear(
    node: &Node,
    x: &Const,
    scale: &Const,
    zp: Option<&Const>,
) -> Result<Const, String> {
    let Data::I64(q) = &x.data else {
        return Err("DequantizeLinear of a float tensor".into());
    };
    let s = scale.to_f32();
    let z = match zp {
        Some(z) => z
            .to_i64()
            .ok_or("DequantizeLinear zero point is not an integer")?,
        None => vec![0; s.len()],
    };
    if z.len() != s.len() {
        return Err(format!(
            "DequantizeLinear scale has {} values, zero point {}",
            s.len(),
            z.len()
        ));
    }
    let idx = quant_param_index(node, &x.dims, &scale.dims, s.len())?;
    let v = q
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let p = idx(i);
            (q.saturating_sub(z[p]) as f32) * s[p]
        })
        .collect();
    Ok(Const::f32(x.dims.clone(), v))
}

/// ONNX `QuantizeLinear` on a constant: `saturate(round_half_even(x / scale) + zero_point)`.
fn quantize_linear(
    node: &Node,
    x: &Const,
    scale: &Const,
    zp: Option<&Const>,
) -> Result<Const, String> {
    let v = x.to_f32();
    let s = scale.to_f32();
    let (z, dtype) = match zp {
        Some(z) => (
            z.to_i64()
                .ok_or("QuantizeLinear zero point is not an integer")?,
            z.dtype,
        ),
        None => (vec![0; s.len()], dt::UINT8),
    };
    if z.len() != s.len() {
        return Err("QuantizeLinear scale and zero point differ in size".into());
    }
    let (lo, hi) = match dtype {
        dt::UINT8 => (0, 255),
        dt::INT8 => (-128, 127),
        dt::UINT16 => (0, 65535),
        dt::INT16 => (-32768, 32767),
        dt::INT32 => (i32::MIN as i64, i32::MAX as i64),
        dt::UINT4 => (0, 15),
        dt::INT4 => (-8, 7),
        other => return Err(format!("QuantizeLinear to element type {other}")),
    };
    let idx = quant_param_index(node, &x.dims, &scale.dims, s.len())?;
    let q = v
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let p = idx(i);
            let r = (x / s[p]).round_ties_even();
            ((r as i64).saturating_add(z[p])).clamp(lo, hi)
        })
        .collect();
    Ok(Const {
        dims: x.dims.clone(),
        dtype,
        data: Data::I64(q),
    })
}

fn transpose(c: &Const, perm: Option<&[i64]>) -> Result<Const, String> {
    let r = c.dims.len();
    let perm: Vec<usize> = match perm {
        Some(p) => p
            .iter()
            .map(|&a| usize::try_from(a).map_err(|_| format!("perm {p:?}")))
            .collect::<Result<_, _>>()?,
        None => (0..r).rev().collect(),
    };
    let mut check = perm.clone();
    check.sort_unstable();
    if check != (0..r).collect::<Vec<_>>() {
        return Err(format!("perm {perm:?} for rank {r}"));
    }
    let out: Vec<usize> = perm.iter().map(|&p| c.dims[p]).collect();
    let mut in_strides = vec![1usize; r];
    for i in (0..r.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * c.dims[i + 1];
    }
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let zeros = vec![0; r];
    let mut order = Vec::with_capacity(c.len());
    for_each_broadcast(&out, &strides, &zeros, |i, _| order.push(i));
    let data = match &c.data {
        Data::F32(v) => Data::F32(order.iter().map(|&i| v[i]).collect()),
        Data::I64(v) => Data::I64(order.iter().map(|&i| v[i]).collect()),
    };
    Ok(Const {
        dims: out,
        dtype: c.dtype,
        data,
    })
}

/// Output dims of `Reshape(dims, target)` (`0` copies, one `-1` is inferred).
pub fn reshape_dims(dims: &[usize], target: &[i64]) -> Result<Vec<usize>, String> {
    let total: usize = dims.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            0 => out.push(*dims.get(i).ok_or("Reshape 0 beyond the input rank")?),
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            t if t > 0 => out.push(usize::try_from(t).map_err(|_| "Reshape dimension too large")?),
            t => return Err(format!("Reshape target dimension {t}")),
        }
    }
    if out
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .is_none()
    {
        return Err(format!("Reshape target {target:?} overflows"));
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot infer Reshape {target:?} of {dims:?}"));
        }
        out[i] = total / known;
    }
    Ok(out)
}
