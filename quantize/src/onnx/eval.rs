//! A small evaluator for the shape and scalar computations of an exported graph (reshape
//! targets, the attention scale), where dimensions may be symbolic: the batch size and the
//! sequence length are not fixed by the export, everything the matcher needs is.

use super::graph::{axes_of, Graph};
use super::tensor::{dt, Data};
use std::collections::HashMap;

/// A symbolic dimension of the running graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Batch,
    Seq,
}

/// One value: a number, a symbolic dimension, or unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sv {
    Num(f64),
    Sym(Axis),
    Unknown,
}

/// A small tensor of [`Sv`]s.
#[derive(Debug, Clone, PartialEq)]
pub struct Small {
    pub dims: Vec<usize>,
    pub vals: Vec<Sv>,
    /// Integer-typed (integer `Div` truncates).
    pub int: bool,
}

const MAX_SMALL: usize = 1 << 16;
const MAX_DEPTH: usize = 128;

/// Known shapes of main-path tensors (set by the matcher as it walks the graph).
pub type Shapes = HashMap<String, Vec<Sv>>;

pub fn eval(g: &Graph, shapes: &Shapes, t: &str) -> Option<Small> {
    eval_at(g, shapes, t, 0)
}

/// The single number a tensor evaluates to.
pub fn scalar(g: &Graph, shapes: &Shapes, t: &str) -> Option<f64> {
    let s = eval(g, shapes, t)?;
    match s.vals.as_slice() {
        [Sv::Num(x)] => Some(*x),
        _ => None,
    }
}

fn eval_at(g: &Graph, shapes: &Shapes, t: &str, depth: usize) -> Option<Small> {
    if depth > MAX_DEPTH {
        return None;
    }
    let t = g.resolve(t);
    if let Ok(Some(c)) = g.constant(t) {
        if c.len() > MAX_SMALL {
            return None;
        }
        let int = matches!(c.data, Data::I64(_));
        return Some(Small {
            dims: c.dims.clone(),
            vals: c.to_f64().into_iter().map(Sv::Num).collect(),
            int,
        });
    }
    let node = g.producer(t)?;
    if node.outputs.first().map(String::as_str) != Some(t) || node.linear.is_some() {
        return None;
    }
    if !(node.domain.is_empty() || node.domain == "ai.onnx") {
        return None;
    }
    let arg = |i: usize| node.input(i).and_then(|s| eval_at(g, shapes, s, depth + 1));
    match node.op.as_str() {
        "Shape" => {
            let dims = shapes.get(g.resolve(node.input(0)?))?;
            let r = dims.len() as i64;
            let clamp = |a: i64| (if a < 0 { a.saturating_add(r) } else { a }).clamp(0, r) as usize;
            let start = clamp(node.attr_i("start").unwrap_or(0));
            let end = clamp(node.attr_i("end").unwrap_or(r));
            let vals = dims.get(start..end.max(start))?.to_vec();
            Some(Small {
                dims: vec![vals.len()],
                vals,
                int: true,
            })
        }
        "Identity" => arg(0),
        "Cast" => {
            let mut x = arg(0)?;
            let to = node.attr_i("to").unwrap_or(dt::FLOAT as i64) as i32;
            let int = !matches!(to, dt::FLOAT | dt::DOUBLE | dt::FLOAT16 | dt::BFLOAT16);
            if int {
                for v in &mut x.vals {
                    if let Sv::Num(n) = v {
                        *n = n.trunc();
                    }
                }
            } else {
                for v in &mut x.vals {
                    if let Sv::Num(n) = v {
                        *n = *n as f32 as f64;
                    }
                }
            }
            x.int = int;
            Some(x)
        }
        "Unsqueeze" | "Squeeze" | "Reshape" | "Flatten" => {
            let x = arg(0)?;
            let dims = match node.op.as_str() {
                "Reshape" => {
                    let target = arg(1)?;
                    let tv: Option<Vec<i64>> = target
                        .vals
                        .iter()
                        .map(|v| match v {
                            Sv::Num(n) => Some(*n as i64),
                            _ => None,
                        })
                        .collect();
                    super::graph::reshape_dims(&x.dims, &tv?).ok()?
                }
                "Unsqueeze" => {
                    let axes = axes_of(
                        node,
                        g.constant(node.input(1).unwrap_or("")).ok()?.as_deref(),
                        g,
                    )?;
                    let mut dims = x.dims.clone();
                    let r = (dims.len() + axes.len()) as i64;
                    let mut axes: Vec<i64> = axes
                        .iter()
                        .map(|&a| if a < 0 { a.saturating_add(r) } else { a })
                        .collect();
                    axes.sort_unstable();
                    for a in axes {
                        if a < 0 || a as usize > dims.len() {
                            return None;
                        }
                        dims.insert(a as usize, 1);
                    }
                    dims
                }
                "Flatten" => vec![1, x.vals.len()],
                _ => x.dims.iter().copied().filter(|&d| d != 1).collect(),
            };
            (dims.iter().product::<usize>() == x.vals.len()).then_some(Small { dims, ..x })
        }
        "Concat" => {
            let mut vals = Vec::new();
            let mut int = true;
            for i in 0..node.inputs.len() {
                let x = arg(i)?;
                if x.dims.len() > 1 {
                    return None;
                }
                int &= x.int;
                vals.extend(x.vals);
            }
            Some(Small {
                dims: vec![vals.len()],
                vals,
                int,
            })
        }
        "Gather" => {
            let data = arg(0)?;
            let idx = arg(1)?;
            if data.dims.len() > 1 || node.attr_i("axis").unwrap_or(0) != 0 {
                return None;
            }
            let n = data.vals.len() as i64;
            let vals = idx
                .vals
                .iter()
                .map(|v| match v {
                    Sv::Num(i) => {
                        let i = *i as i64;
                        let i = if i < 0 { i.saturating_add(n) } else { i };
                        data.vals.get(usize::try_from(i).ok()?).copied()
                    }
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Small {
                dims: idx.dims,
                vals,
                int: data.int,
            })
        }
        "Slice" => {
            let data = arg(0)?;
            if data.dims.len() > 1 {
                return None;
            }
            let num = |s: Option<Small>| -> Option<i64> {
                match s?.vals.as_slice() {
                    [Sv::Num(x)] => Some(*x as i64),
                    _ => None,
                }
            };
            let (start, end, step) = if g.opset < 10 {
                (
                    *node.attr_ints("starts")?.first()?,
                    *node.attr_ints("ends")?.first()?,
                    1,
                )
            } else {
                (
                    num(arg(1))?,
                    num(arg(2))?,
                    if node.input(4).is_some() {
                        num(arg(4))?
                    } else {
                        1
                    },
                )
            };
            if step != 1 {
                return None;
            }
            let n = data.vals.len() as i64;
            let clamp = |a: i64| (if a < 0 { a.saturating_add(n) } else { a }).clamp(0, n) as usize;
            let (s, e) = (clamp(start), clamp(end));
            let vals = data.vals.get(s..e.max(s))?.to_vec();
            Some(Small {
                dims: vec![vals.len()],
                vals,
                int: data.int,
            })
        }
        "Sqrt" | "Reciprocal" | "Neg" | "Abs" | "Floor" | "Ceil" => {
            let mut x = arg(0)?;
            let f: fn(f64) -> f64 = match node.op.as_str() {
                "Sqrt" => f64::sqrt,
                "Reciprocal" => |v| 1.0 / v,
                "Neg" => |v| -v,
                "Abs" => f64::abs,
                "Floor" => f64::floor,
                _ => f64::ceil,
            };
            for v in &mut x.vals {
                *v = match v {
                    Sv::Num(n) => Sv::Num(f(*n)),
                    _ => Sv::Unknown,
                };
            }
            Some(x)
        }
        "Add" | "Sub" | "Mul" | "Div" | "Pow" => {
            let (a, b) = (arg(0)?, arg(1)?);
            let int = a.int && b.int;
            let n = a.vals.len().max(b.vals.len());
            if !(a.vals.len() == n || a.vals.len() == 1)
                || !(b.vals.len() == n || b.vals.len() == 1)
            {
                return None;
            }
            let dims = if a.vals.len() >= b.vals.len() {
                a.dims.clone()
            } else {
                b.dims.clone()
            };
            let vals = (0..n)
                .map(|i| {
                    let x = a.vals[if a.vals.len() == 1 { 0 } else { i }];
                    let y = b.vals[if b.vals.len() == 1 { 0 } else { i }];
                    match (x, y) {
                        (Sv::Num(x), Sv::Num(y)) => Sv::Num(match node.op.as_str() {
                            "Add" => x + y,
                            "Sub" => x - y,
                            "Mul" => x * y,
                            "Div" if int => (x / y).trunc(),
                            "Div" => x / y,
                            _ => x.powf(y),
                        }),
                        _ => Sv::Unknown,
                    }
                })
                .collect();
            Some(Small { dims, vals, int })
        }
        "ConstantOfShape" => {
            let shape = arg(0)?;
            let dims: Vec<usize> = shape
                .vals
                .iter()
                .map(|v| match v {
                    Sv::Num(n) if *n >= 0.0 => Some(*n as usize),
                    _ => None,
                })
                .collect::<Option<_>>()?;
            let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
            if n > MAX_SMALL {
                return None;
            }
            let value = match node.attr("value").and_then(|a| a.t.as_ref()) {
                Some(t) => super::tensor::decode(t, None).ok()?.scalar()?,
                None => 0.0,
            };
            Some(Small {
                dims,
                vals: vec![Sv::Num(value); n],
                int: false,
            })
        }
        _ => None,
    }
}
