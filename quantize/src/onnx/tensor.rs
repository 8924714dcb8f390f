//! ONNX `TensorProto` -> values, for every element type a BERT export uses as a constant.
//!
//! Decoded here rather than with tract's loader so that every malformed tensor (wrong length,
//! unknown type, external data outside the model's directory) is an error, never a panic.

use super::OnnxError;
use std::path::Path;
use tract_onnx::pb::TensorProto;

/// ONNX `TensorProto.DataType` codes.
pub mod dt {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const UINT16: i32 = 4;
    pub const INT16: i32 = 5;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const BOOL: i32 = 9;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
    pub const UINT32: i32 = 12;
    pub const UINT64: i32 = 13;
    pub const BFLOAT16: i32 = 16;
    pub const UINT4: i32 = 21;
    pub const INT4: i32 = 22;
}

/// The values of a constant tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// FLOAT, FLOAT16, BFLOAT16 and DOUBLE (converted exactly or, for DOUBLE, rounded once).
    F32(Vec<f32>),
    /// Every integer type (and BOOL), widened.
    I64(Vec<i64>),
}

/// A constant tensor: initializer, `Constant` node or a value folded from them.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    pub dims: Vec<usize>,
    /// The ONNX element type (decides the saturation range of `QuantizeLinear`).
    pub dtype: i32,
    pub data: Data,
}

impl Const {
    pub fn f32(dims: Vec<usize>, values: Vec<f32>) -> Self {
        Const {
            dims,
            dtype: dt::FLOAT,
            data: Data::F32(values),
        }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_float(&self) -> bool {
        matches!(self.data, Data::F32(_))
    }

    /// The values as f32 (integers converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as f64 (for small shape and scalar computations).
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.data {
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// Integer values (floats must be integral).
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        match &self.data {
            Data::I64(v) => Some(v.clone()),
            Data::F32(v) => v
                .iter()
                .map(|&x| (x.fract() == 0.0 && x.is_finite()).then_some(x as i64))
                .collect(),
        }
    }

    /// The single value of a one-element tensor.
    pub fn scalar(&self) -> Option<f64> {
        (self.len() == 1).then(|| self.to_f64()[0])
    }
}

fn element_count(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Decodes an initializer or a `Constant` node's tensor. `model_dir` resolves external data.
pub fn decode(t: &TensorProto, model_dir: Option<&Path>) -> Result<Const, OnnxError> {
    let name = &t.name;
    let bad = |msg: String| OnnxError::Tensor {
        name: name.clone(),
        message: msg,
    };
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("negative dimension {d}"))))
        .collect::<Result<_, _>>()?;
    let n = element_count(&dims).ok_or_else(|| bad("element count overflows".into()))?;
    if t.segment.is_some() {
        return Err(bad("segmented tensors are not supported".into()));
    }
    let external;
    let raw: &[u8] = if t.data_location == Some(1) {
        external = read_external(t, model_dir).map_err(bad)?;
        &external
    } else {
        &t.raw_data
    };
    let dtype = t.data_type;
    let check = |len: usize| -> Result<(), OnnxError> {
        if len == n {
            Ok(())
        } else {
            Err(bad(format!(
                "holds {len} values, its shape {dims:?} needs {n}"
            )))
        }
    };
    // Element size in bytes of raw data (4-bit types are handled separately).
    let size = match dtype {
        dt::FLOAT | dt::INT32 | dt::UINT32 => 4,
        dt::UINT8 | dt::INT8 | dt::BOOL => 1,
        dt::UINT16 | dt::INT16 | dt::FLOAT16 | dt::BFLOAT16 => 2,
        dt::INT64 | dt::UINT64 | dt::DOUBLE => 8,
        dt::UINT4 | dt::INT4 => 0,
        other => return Err(bad(format!("element type {other} is not supported"))),
    };
    let data = if !raw.is_empty() {
        if size == 0 {
            if raw.len() != n.div_ceil(2) {
                return Err(bad(format!(
                    "holds {} bytes, {n} 4-bit values need {}",
                    raw.len(),
                    n.div_ceil(2)
                )));
            }
            // Two values per byte, the first in the low nibble.
            let signed = dtype == dt::INT4;
            Data::I64(
                (0..n)
                    .map(|i| {
                        let nib = (raw[i / 2] >> (4 * (i % 2))) & 0x0F;
                        if signed && nib >= 8 {
                            nib as i64 - 16
                        } else {
                            nib as i64
                        }
                    })
                    .collect(),
            )
        } else {
            if n.checked_mul(size) != Some(raw.len()) {
                return Err(bad(format!(
                    "holds {} bytes, its shape {dims:?} needs {n} x {size}",
                    raw.len(),
                )));
            }
            let c = raw.chunks_exact(size);
            match dtype {
                dt::FLOAT => Data::F32(
                    c.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                ),
                dt::FLOAT16 => Data::F32(
                    c.map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                        .collect(),
                ),
                dt::BFLOAT16 => Data::F32(
                    c.map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                        .collect(),
                ),
                dt::DOUBLE => Data::F32(
                    c.map(|b| {
                        f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                    })
                    .collect(),
                ),
                dt::UINT8 | dt::BOOL => Data::I64(c.map(|b| b[0] as i64).collect()),
                dt::INT8 => Data::I64(c.map(|b| b[0] as i8 as i64).collect()),
                dt::UINT16 => {
                    Data::I64(c.map(|b| u16::from_le_bytes([b[0], b[1]]) as i64).collect())
                }
                dt::INT16 => {
                    Data::I64(c.map(|b| i16::from_le_bytes([b[0], b[1]]) as i64).collect())
                }
                dt::INT32 => Data::I64(
                    c.map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                        .collect(),
                ),
                dt::UINT32 => Data::I64(
                    c.map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                        .collect(),
                ),
                // UINT64 values above i64::MAX do not occur in BERT graphs; they wrap.
                _ => Data::I64(
                    c.map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                        .collect(),
                ),
            }
        }
    } else {
        // Typed fields (small tensors and `Constant` values are often stored this way).
        match dtype {
            dt::FLOAT => {
                check(t.float_data.len())?;
                Data::F32(t.float_data.clone())
            }
            dt::DOUBLE => {
                check(t.double_data.len())?;
                Data::F32(t.double_data.iter().map(|&x| x as f32).collect())
            }
            dt::FLOAT16 | dt::BFLOAT16 => {
                check(t.int32_data.len())?;
                Data::F32(
                    t.int32_data
                        .iter()
                        .map(|&b| {
                            let bits = b as u16;
                            if dtype == dt::FLOAT16 {
                                half::f16::from_bits(bits).to_f32()
                            } else {
                                half::bf16::from_bits(bits).to_f32()
                            }
                        })
                        .collect(),
                )
            }
            dt::INT64 => {
                check(t.int64_data.len())?;
                Data::I64(t.int64_data.clone())
            }
            dt::UINT32 | dt::UINT64 => {
                check(t.uint64_data.len())?;
                Data::I64(t.uint64_data.iter().map(|&x| x as i64).collect())
            }
            dt::UINT4 | dt::INT4 => {
                // Packed two per int32 entry's low byte.
                if t.int32_data.len() != n.div_ceil(2) {
                    return Err(bad(format!(
                        "holds {} packed entries, {n} 4-bit values need {}",
                        t.int32_data.len(),
                        n.div_ceil(2)
                    )));
                }
                let signed = dtype == dt::INT4;
                Data::I64(
                    (0..n)
                        .map(|i| {
                            let nib = ((t.int32_data[i / 2] >> (4 * (i % 2))) & 0x0F) as i64;
                            if signed && nib >= 8 {
                                nib - 16
                            } else {
                                nib
                            }
                        })
                        .collect(),
                )
            }
            _ => {
                check(t.int32_data.len())?;
                Data::I64(t.int32_data.iter().map(|&x| x as i64).collect())
            }
        }
    };
    Ok(Const { dims, dtype, data })
}

/// Reads an external-data tensor's bytes: `location` relative to the model's directory (and
/// inside it), `offset` and `length` in bytes.
fn read_external(t: &TensorProto, model_dir: Option<&Path>) -> Result<Vec<u8>, String> {
    let entry = |key: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    };
    let location = entry("location").ok_or("external data without a location")?;
    let dir = model_dir.ok_or("external data but no model directory")?;
    let rel = Path::new(location);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!(
            "external data location `{location}` is not a plain relative path"
        ));
    }
    let path = dir.join(rel);
    let parse = |key: &str| -> Result<Option<u64>, String> {
        entry(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("external data {key} `{v}` is not a number"))
            })
            .transpose()
    };
    let offset = parse("offset")?.unwrap_or(0);
    let length = parse("length")?;
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file_len = f
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let len = match length {
        Some(l) => l,
        None => file_len.saturating_sub(offset),
    };
    if offset.checked_add(len).is_none_or(|end| end > file_len) {
        return Err(format!(
            "external data range {offset}+{len} is outside {} ({file_len} bytes)",
            path.display()
        ));
    }
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; usize::try_from(len).map_err(|_| "external data too large")?];
    f.read_exact(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(buf)
}
