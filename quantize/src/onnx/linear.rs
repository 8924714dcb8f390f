//! Normalisation of an exported graph before structure matching:
//!
//! 1. aliases: `Identity`, `Dropout`, float `Cast`s, activation fake-quantization
//!    (`QuantizeLinear -> DequantizeLinear` of a non-constant tensor) and SDPA's NaN guard
//!    (`Where(IsNaN(p), 0, p)`) are the tensor they consume;
//! 2. every weight-carrying pattern becomes one synthetic `Linear` node with the weight
//!    dequantized exactly as onnxruntime defines it:
//!    - `MatMul(x, W)` / `Gemm(x, W, b)` with a constant `W` (f32, f16, or QDQ `DequantizeLinear`
//!      of an int8/uint8/int4 initializer, per tensor, per channel or blocked),
//!    - `com.microsoft.MatMulNBits` (2/4/8-bit blocks, optional zero points and bias),
//!    - `DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scale_x * scale_w)`
//!      (onnxruntime's `quantize_dynamic`) and `com.microsoft.DynamicQuantizeMatMul`;
//!
//!    a following `Add` of a constant vector becomes the Linear's bias;
//! 3. `Gather(quantized table) -> DequantizeLinear` (quantized embeddings) becomes a `Gather` of
//!    the dequantized table;
//! 4. nodes that no longer reach a graph output are dropped.

use super::graph::{dequantize_linear, Graph, LinearOp, Node};
use super::tensor::{dt, Const, Data};
use super::OnnxError;
use std::collections::BTreeMap;
use std::rc::Rc;

/// What normalisation found: weight storage kinds and how many Linears of each.
pub type WeightKinds = BTreeMap<&'static str, usize>;

pub fn normalize(g: &mut Graph) -> Result<WeightKinds, OnnxError> {
    alias_pass(g)?;
    let kinds = linear_pass(g)?;
    g.remove_dead_nodes();
    bias_pass(g)?;
    embedding_pass(g)?;
    g.remove_dead_nodes();
    Ok(kinds)
}

fn is_float_type(to: i64) -> bool {
    matches!(
        to as i32,
        dt::FLOAT | dt::FLOAT16 | dt::DOUBLE | dt::BFLOAT16
    )
}

fn alias_pass(g: &mut Graph) -> Result<(), OnnxError> {
    let mut aliases = Vec::new();
    for n in &g.nodes {
        let (Some(out), Some(inp)) = (n.outputs.first(), n.input(0)) else {
            continue;
        };
        let default_domain = n.domain.is_empty() || n.domain == "ai.onnx";
        if !default_domain {
            continue;
        }
        match n.op.as_str() {
            "Identity" | "Dropout" => aliases.push((out.clone(), inp.to_string())),
            "Cast" if n.attr_i("to").is_some_and(is_float_type) => {
                aliases.push((out.clone(), inp.to_string()))
            }
            "DequantizeLinear" => {
                if let Some(q) = g.producer(inp).filter(|q| q.is("QuantizeLinear")) {
                    if let Some(x) = q.input(0) {
                        if g.constant(x)?.is_none() {
                            aliases.push((out.clone(), x.to_string()));
                        }
                    }
                }
            }
            "Where" => {
                // Where(IsNaN(p), 0, p) == p for every finite softmax output.
                let (Some(c), Some(zero), Some(p)) = (n.input(0), n.input(1), n.input(2)) else {
                    continue;
                };
                let isnan = g.producer(c).filter(|m| m.is("IsNaN"));
                let zero = g.constant(zero)?;
                if let (Some(isnan), Some(zero)) = (isnan, zero) {
                    if isnan.input(0) == Some(p) && zero.to_f64().iter().all(|&v| v == 0.0) {
                        aliases.push((out.clone(), p.to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    for (from, to) in aliases {
        g.add_alias(&from, &to);
    }
    g.apply_aliases();
    g.remove_dead_nodes();
    Ok(())
}

/// A Linear node replacing the node at `at` (whose output becomes the Linear's output).
fn linear_node(name: &str, input: &str, output: &str, op: LinearOp) -> Node {
    Node {
        name: name.to_string(),
        op: "Linear".into(),
        domain: "bertq".into(),
        inputs: vec![input.to_string()],
        outputs: vec![output.to_string()],
        attrs: Vec::new(),
        linear: Some(Rc::new(op)),
    }
}

/// `[k, n]` -> `[n, k]`.
fn transpose_kn(w: &[f32], k: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0f32; w.len()];
    for (kk, row) in w.chunks_exact(n).enumerate() {
        for (nn, &v) in row.iter().enumerate() {
            out[nn * k + kk] = v;
        }
    }
    out
}

/// How a constant weight is stored, for the report.
fn storage_kind(g: &Graph, t: &str) -> Result<&'static str, OnnxError> {
    let mut t = g.resolve(t).to_string();
    for _ in 0..16 {
        match g.producer(&t) {
            Some(p) if p.is("DequantizeLinear") => return Ok("MatMul + QDQ DequantizeLinear"),
            Some(p) if p.is("Transpose") || p.is("Reshape") => match p.input(0) {
                Some(i) => t = i.to_string(),
                None => break,
            },
            _ => break,
        }
    }
    Ok(match g.constant(&t)?.map(|c| c.dtype) {
        Some(dt::FLOAT16) => "MatMul f16",
        Some(dt::BFLOAT16) => "MatMul bf16",
        _ => "MatMul f32",
    })
}

fn matrix(c: &Const, what: &str, node: &Node) -> Result<(Vec<f32>, usize, usize), OnnxError> {
    if c.dims.len() != 2 || c.dims.contains(&0) {
        return Err(OnnxError::at(
            &node.describe(),
            format!("{what} has shape {:?}, expected a matrix", c.dims),
        ));
    }
    Ok((c.to_f32(), c.dims[0], c.dims[1]))
}

fn linear_pass(g: &mut Graph) -> Result<WeightKinds, OnnxError> {
    let mut kinds = WeightKinds::new();
    let mut replacements: Vec<(usize, Node)> = Vec::new();
    for n in &g.nodes {
        let m = match (n.domain.as_str(), n.op.as_str()) {
            ("" | "ai.onnx", "MatMul") => matmul(g, n)?,
            ("" | "ai.onnx", "Gemm") => gemm(g, n)?,
            ("com.microsoft", "MatMulNBits") => Some(matmul_nbits(g, n)?),
            ("com.microsoft", "DynamicQuantizeMatMul") => Some(dynamic_quantize_matmul(g, n)?),
            ("" | "ai.onnx", "MatMulInteger") => Some(matmul_integer(g, n)?),
            _ => None,
        };
        if let Some((at, node)) = m {
            if let Some(l) = &node.linear {
                *kinds.entry(l.kind).or_default() += 1;
            }
            replacements.push((at, node));
        }
    }
    for (at, node) in replacements {
        g.nodes[at] = node;
    }
    g.reindex();
    Ok(kinds)
}

fn matmul(g: &Graph, n: &Node) -> Result<Option<(usize, Node)>, OnnxError> {
    let (Some(a), Some(b), Some(out)) = (n.input(0), n.input(1), n.outputs.first()) else {
        return Ok(None);
    };
    let Some(w) = g.constant(b)? else {
        return Ok(None);
    };
    if g.constant(a)?.is_some() {
        return Ok(None);
    }
    let (w, k, nn) = matrix(&w, "the MatMul weight", n)?;
    let kind = storage_kind(g, b)?;
    let at = g.producer_index(out).unwrap_or_default();
    let op = LinearOp {
        weight: transpose_kn(&w, k, nn),
        n: nn,
        k,
        bias: None,
        kind,
    };
    Ok(Some((at, linear_node(&n.name, a, out, op))))
}

fn gemm(g: &Graph, n: &Node) -> Result<Option<(usize, Node)>, OnnxError> {
    let (Some(a), Some(b), Some(out)) = (n.input(0), n.input(1), n.outputs.first()) else {
        return Ok(None);
    };
    let Some(w) = g.constant(b)? else {
        return Ok(None);
    };
    let err = |m: &str| OnnxError::at(&n.describe(), m.to_string());
    if n.attr_i("transA").unwrap_or(0) != 0 {
        return Err(err("Gemm with transA is not a Linear layer"));
    }
    if n.attr_f("alpha").unwrap_or(1.0) != 1.0 || n.attr_f("beta").unwrap_or(1.0) != 1.0 {
        return Err(err("Gemm with alpha or beta other than 1 is not supported"));
    }
    let (w, r, c) = matrix(&w, "the Gemm weight", n)?;
    let (weight, nn, k) = if n.attr_i("transB").unwrap_or(0) != 0 {
        (w, r, c)
    } else {
        (transpose_kn(&w, r, c), c, r)
    };
    let bias = match n.input(2) {
        Some(c) => {
            let v = g
                .constant(c)?
                .ok_or_else(|| err("Gemm bias is not a constant"))?;
            let v = v.to_f32();
            if v.len() != nn {
                return Err(err("Gemm bias length differs from the output size"));
            }
            Some(v)
        }
        None => None,
    };
    let kind = if storage_kind(g, b)?.contains("QDQ") {
        "Gemm + QDQ DequantizeLinear"
    } else {
        "Gemm f32"
    };
    let at = g.producer_index(out).unwrap_or_default();
    let op = LinearOp {
        weight,
        n: nn,
        k,
        bias,
        kind,
    };
    Ok(Some((at, linear_node(&n.name, a, out, op))))
}

/// `com.microsoft.MatMulNBits`: `B` is uint8 `[N, blocks, block_size * bits / 8]`, element `k` of
/// a block in byte `k / (8 / bits)` starting at the low bits; `scales` `[N, blocks]`; zero points
/// packed the same way per row (default `2^(bits - 1)`); `W[n, k] = (q - zp) * scale`.
fn matmul_nbits(g: &Graph, n: &Node) -> Result<(usize, Node), OnnxError> {
    let err = |m: String| OnnxError::at(&n.describe(), m);
    let (Some(a), Some(out)) = (n.input(0), n.outputs.first()) else {
        return Err(err("MatMulNBits without input or output".into()));
    };
    let attr = |name: &str| -> Result<usize, OnnxError> {
        n.attr_i(name)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| err(format!("attribute {name} missing or negative")))
    };
    let (k, nn, block) = (attr("K")?, attr("N")?, attr("block_size")?);
    let bits = n.attr_i("bits").unwrap_or(4);
    if !matches!(bits, 2 | 4 | 8) {
        return Err(err(format!("{bits}-bit MatMulNBits is not supported")));
    }
    let bits = bits as usize;
    if block < 16 || !block.is_power_of_two() {
        return Err(err(format!("block_size {block}")));
    }
    if n.input(4).is_some() {
        let g_idx = g.constant(n.input(4).unwrap_or(""))?;
        let trivial = g_idx.as_ref().and_then(|c| c.to_i64()).is_some_and(|v| {
            v.len() == k && v.iter().enumerate().all(|(i, &b)| b == (i / block) as i64)
        });
        if !trivial {
            return Err(err("act-order g_idx is not supported".into()));
        }
    }
    let konst = |i: usize, what: &str| -> Result<Rc<Const>, OnnxError> {
        g.constant(n.input(i).unwrap_or(""))?
            .ok_or_else(|| err(format!("{what} is not a constant")))
    };
    let b = konst(1, "B")?;
    let scales = konst(2, "scales")?;
    let blocks = k.div_ceil(block);
    let blob = block * bits / 8;
    let Data::I64(q) = &b.data else {
        return Err(err("B is not uint8".into()));
    };
    let expect = nn.checked_mul(blocks).and_then(|x| x.checked_mul(blob));
    if k == 0 || nn == 0 || expect != Some(q.len()) {
        return Err(err(format!(
            "B has shape {:?}, expected [{nn}, {blocks}, {blob}]",
            b.dims
        )));
    }
    let s = scales.to_f32();
    if s.len() != nn * blocks {
        return Err(err(format!(
            "scales have {} values, expected {nn} x {blocks}",
            s.len()
        )));
    }
    let per_byte = 8 / bits;
    let mask = (1i64 << bits) - 1;
    let zp: Vec<i64> = match n.input(3) {
        Some(z) => {
            let z = g
                .constant(z)?
                .ok_or_else(|| err("zero points are not a constant".into()))?;
            let Data::I64(zq) = &z.data else {
                return Err(err("float zero points are not supported".into()));
            };
            let row = blocks.div_ceil(per_byte);
            if zq.len() != nn * row {
                return Err(err(format!(
                    "zero points have {} bytes, expected {nn} x {row}",
                    zq.len()
                )));
            }
            (0..nn * blocks)
                .map(|i| {
                    let (r, j) = (i / blocks, i % blocks);
                    (zq[r * row + j / per_byte] >> ((j % per_byte) * bits)) & mask
                })
                .collect()
        }
        None => vec![1i64 << (bits - 1); nn * blocks],
    };
    let mut w = vec![0f32; nn * k];
    for r in 0..nn {
        for kk in 0..k {
            let (j, e) = (kk / block, kk % block);
            let byte = q[(r * blocks + j) * blob + e / per_byte];
            let v = (byte >> ((e % per_byte) * bits)) & mask;
            w[r * k + kk] = ((v - zp[r * blocks + j]) as f32) * s[r * blocks + j];
        }
    }
    let bias = match n.input(5) {
        Some(bname) => {
            let v = g
                .constant(bname)?
                .ok_or_else(|| err("bias is not a constant".into()))?
                .to_f32();
            if v.len() != nn {
                return Err(err("bias length differs from N".into()));
            }
            Some(v)
        }
        None => None,
    };
    let kind = match bits {
        2 => "MatMulNBits 2-bit",
        4 => "MatMulNBits 4-bit",
        _ => "MatMulNBits 8-bit",
    };
    let at = g.producer_index(out).unwrap_or_default();
    let op = LinearOp {
        weight: w,
        n: nn,
        k,
        bias,
        kind,
    };
    Ok((at, linear_node(&n.name, a, out, op)))
}

/// `(B - zero_point) * scale` for a `[K, N]` integer weight with per-tensor or per-column
/// parameters, transposed to `[N, K]`.
fn dequantize_columns(
    n: &Node,
    b: &Const,
    scale: &Const,
    zp: Option<&Const>,
) -> Result<(Vec<f32>, usize, usize), OnnxError> {
    let err = |m: String| OnnxError::at(&n.describe(), m);
    if b.dims.len() != 2 || b.dims.contains(&0) {
        return Err(err(format!(
            "weight has shape {:?}, expected [K, N]",
            b.dims
        )));
    }
    let (k, nn) = (b.dims[0], b.dims[1]);
    let Data::I64(q) = &b.data else {
        return Err(err("weight is not an integer tensor".into()));
    };
    let s = scale.to_f32();
    let z = match zp {
        Some(z) => z
            .to_i64()
            .ok_or_else(|| err("zero point is not an integer".into()))?,
        None => vec![0; s.len()],
    };
    if !(s.len() == 1 || s.len() == nn) || z.len() != s.len() {
        return Err(err(format!(
            "{} scales and {} zero points for {nn} output columns",
            s.len(),
            z.len()
        )));
    }
    let mut w = vec![0f32; k * nn];
    for kk in 0..k {
        for c in 0..nn {
            let p = if s.len() == 1 { 0 } else { c };
            w[c * k + kk] = (q[kk * nn + c].saturating_sub(z[p]) as f32) * s[p];
        }
    }
    Ok((w, nn, k))
}

fn dynamic_quantize_matmul(g: &Graph, n: &Node) -> Result<(usize, Node), OnnxError> {
    let err = |m: &str| OnnxError::at(&n.describe(), m.to_string());
    let (Some(a), Some(out)) = (n.input(0), n.outputs.first()) else {
        return Err(err("without input or output"));
    };
    let konst = |i: usize| -> Result<Option<Rc<Const>>, OnnxError> {
        match n.input(i) {
            Some(t) => g.constant(t),
            None => Ok(None),
        }
    };
    let b = konst(1)?.ok_or_else(|| err("B is not a constant"))?;
    let scale = konst(2)?.ok_or_else(|| err("b_scale is not a constant"))?;
    let zp = konst(3)?;
    let (weight, nn, k) = dequantize_columns(n, &b, &scale, zp.as_deref())?;
    let bias = konst(4)?.map(|c| c.to_f32());
    if bias.as_ref().is_some_and(|b| b.len() != nn) {
        return Err(err("bias length differs from N"));
    }
    let at = g.producer_index(out).unwrap_or_default();
    let op = LinearOp {
        weight,
        n: nn,
        k,
        bias,
        kind: "DynamicQuantizeMatMul int8",
    };
    Ok((at, linear_node(&n.name, a, out, op)))
}

/// onnxruntime `quantize_dynamic`: `y, ys, yz = DynamicQuantizeLinear(x)`;
/// `MatMulInteger(y, Wq, yz, wz) -> Cast(float) -> Mul(., ys * w_scale)`.
fn matmul_integer(g: &Graph, n: &Node) -> Result<(usize, Node), OnnxError> {
    let err = |m: String| OnnxError::at(&n.describe(), m);
    let (Some(y), Some(bq), Some(out)) = (n.input(0), n.input(1), n.outputs.first()) else {
        return Err(err("MatMulInteger without inputs".into()));
    };
    let dql = g
        .producer(y)
        .filter(|p| {
            p.is("DynamicQuantizeLinear") && p.outputs.first().map(String::as_str) == Some(y)
        })
        .ok_or_else(|| err("its input A does not come from DynamicQuantizeLinear".into()))?;
    let x = dql
        .input(0)
        .ok_or_else(|| err("DynamicQuantizeLinear without input".into()))?;
    let (ys, yz) = (
        dql.outputs.get(1).map(String::as_str),
        dql.outputs.get(2).map(String::as_str),
    );
    if n.input(2) != yz {
        return Err(err(
            "A's zero point is not the DynamicQuantizeLinear zero point".into(),
        ));
    }
    let b = g
        .constant(bq)?
        .ok_or_else(|| err("B is not a constant".into()))?;
    let bz = match n.input(3) {
        Some(z) => Some(
            g.constant(z)?
                .ok_or_else(|| err("B's zero point is not a constant".into()))?,
        ),
        None => None,
    };
    // MatMulInteger -> Cast(to float) -> Mul(., S) with S = Mul(ys, w_scale).
    let single = |t: &str, op: &str| -> Result<Node, OnnxError> {
        let c = g.consumers(t);
        match c.as_slice() {
            [only] if only.is(op) => Ok((*only).clone()),
            _ => Err(err(format!(
                "expected its output to feed exactly one {op}, found {}",
                describe_all(&c)
            ))),
        }
    };
    // (The float Cast is usually gone already: the alias pass treats it as the identity.)
    let mut cast_out = out.to_string();
    if let [only] = g.consumers(out).as_slice() {
        if only.is("Cast") {
            if only.attr_i("to") != Some(dt::FLOAT as i64) {
                return Err(err("the integer product is not cast to float".into()));
            }
            cast_out = only.outputs.first().cloned().unwrap_or_default();
        }
    }
    let mul = single(&cast_out, "Mul")?;
    let s = mul
        .inputs
        .iter()
        .find(|i| **i != cast_out)
        .cloned()
        .ok_or_else(|| err("output scale Mul has no scale operand".into()))?;
    let smul = g.producer(&s).filter(|p| p.is("Mul")).ok_or_else(|| {
        OnnxError::at(
            &mul.describe(),
            "the output scale is not ys * w_scale".into(),
        )
    })?;
    let w_scale_name = match (smul.input(0), smul.input(1)) {
        (Some(p), Some(q)) if Some(p) == ys => q,
        (Some(p), Some(q)) if Some(q) == ys => p,
        _ => {
            return Err(OnnxError::at(
                &smul.describe(),
                "the output scale does not multiply the activation scale".into(),
            ))
        }
    };
    let w_scale = g
        .constant(w_scale_name)?
        .ok_or_else(|| OnnxError::at(&smul.describe(), "weight scale is not a constant".into()))?;
    let (weight, nn, k) = dequantize_columns(n, &b, &w_scale, bz.as_deref())?;
    let final_out = mul.outputs.first().cloned().unwrap_or_default();
    let at = g
        .producer_index(&final_out)
        .ok_or_else(|| err("scale Mul has no output".into()))?;
    let op = LinearOp {
        weight,
        n: nn,
        k,
        bias: None,
        kind: "MatMulInteger int8 (quantize_dynamic)",
    };
    Ok((at, linear_node(&n.name, x, &final_out, op)))
}

pub fn describe_all(nodes: &[&Node]) -> String {
    if nodes.is_empty() {
        return "nothing".into();
    }
    nodes
        .iter()
        .map(|n| n.describe())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Linear -> Add(constant [n])` becomes the Linear's bias.
fn bias_pass(g: &mut Graph) -> Result<(), OnnxError> {
    let mut merges: Vec<(usize, usize, Vec<f32>)> = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let Some(l) = &n.linear else { continue };
        if l.bias.is_some() {
            continue;
        }
        let Some(out) = n.outputs.first() else {
            continue;
        };
        let cons = g.consumer_indices(out);
        let [j] = cons.as_slice() else { continue };
        let add = &g.nodes[*j];
        if !add.is("Add") || add.inputs.len() != 2 {
            continue;
        }
        let other = if add.inputs[0] == *out {
            &add.inputs[1]
        } else {
            &add.inputs[0]
        };
        let Some(c) = g.constant(other)? else {
            continue;
        };
        if c.len() != l.n || c.dims.last() != Some(&l.n) {
            continue;
        }
        merges.push((i, *j, c.to_f32()));
    }
    for (i, j, bias) in merges {
        let add_out = g.nodes[j].outputs.first().cloned().unwrap_or_default();
        g.nodes[j].outputs.clear();
        let n = &mut g.nodes[i];
        if let Some(l) = n.linear.take() {
            let l = Rc::try_unwrap(l).unwrap_or_else(|rc| LinearOp {
                weight: rc.weight.clone(),
                n: rc.n,
                k: rc.k,
                bias: None,
                kind: rc.kind,
            });
            n.linear = Some(Rc::new(LinearOp {
                bias: Some(bias),
                ..l
            }));
        }
        n.outputs = vec![add_out];
    }
    g.reindex();
    Ok(())
}

/// `Gather(int table, ids) -> DequantizeLinear(per tensor or per last axis)` becomes a `Gather`
/// of the dequantized table (dequantization commutes with row selection).
fn embedding_pass(g: &mut Graph) -> Result<(), OnnxError> {
    let mut rewrites: Vec<(usize, Node)> = Vec::new();
    for (i, d) in g.nodes.iter().enumerate() {
        if !d.is("DequantizeLinear") {
            continue;
        }
        let Some(x) = d.input(0) else { continue };
        let Some(gather) = g.producer(x).filter(|p| p.is("Gather")) else {
            continue;
        };
        if g.consumers(x).len() != 1 || gather.attr_i("axis").unwrap_or(0) != 0 {
            continue;
        }
        let (Some(table_name), Some(idx)) = (gather.input(0), gather.input(1)) else {
            continue;
        };
        let Some(table) = g.constant(table_name)? else {
            continue;
        };
        let Some(scale) = g.constant(d.input(1).unwrap_or(""))? else {
            continue;
        };
        let zp = match d.input(2) {
            Some(z) => match g.constant(z)? {
                Some(c) => Some(c),
                None => continue,
            },
            None => None,
        };
        // Per tensor, or per channel along the last (hidden) axis.
        let axis = d.attr_i("axis").unwrap_or(1);
        let per_tensor = scale.len() == 1;
        let last = table.dims.len().saturating_sub(1);
        if !per_tensor && (axis != -1 && axis as usize != last + 1) {
            return Err(OnnxError::at(
                &d.describe(),
                "dequantization of an embedding along a non-hidden axis".into(),
            ));
        }
        let mut dq = d.clone();
        if !per_tensor {
            dq.attrs.retain(|a| a.name != "axis");
            dq.attrs.push(tract_onnx::pb::AttributeProto {
                name: "axis".into(),
                i: last as i64,
                r#type: 2,
                ..Default::default()
            });
        }
        let values = dequantize_linear(&dq, &table, &scale, zp.as_deref())
            .map_err(|m| OnnxError::at(&d.describe(), m))?;
        let name = format!("{table_name}::dequantized");
        g.insert_const(&name, values);
        let mut node = gather.clone();
        node.inputs = vec![name, idx.to_string()];
        node.outputs = d.outputs.clone();
        node.name = format!("{} + {}", gather.name, d.name);
        rewrites.push((i, node));
    }
    for (i, node) in rewrites {
        g.nodes[i] = node;
    }
    g.reindex();
    Ok(())
}
