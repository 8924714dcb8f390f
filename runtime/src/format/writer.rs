//! Writing `.bertq` files (std only; used by the quantizer and by tests).

use super::file::{FORMAT_VERSION, MAGIC, PREAMBLE_LEN, TENSOR_ALIGN};
use super::header::{DType, Header, Layout, ModelConfig, TaskHead, TensorEntry, TokenizerSettings};

struct PendingTensor {
    name: String,
    dtype: DType,
    layout: Layout,
    shape: heapless::Vec<u32, 4>,
    data: Vec<u8>,
}

/// Collects the header and tensors, then lays them out deterministically.
#[derive(Default)]
pub struct ModelWriter {
    tensors: Vec<PendingTensor>,
}

impl std::fmt::Debug for ModelWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelWriter")
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// Everything in the header except the tensor count.
#[derive(Debug, Clone)]
pub struct HeaderInfo {
    pub name: String,
    pub source: String,
    pub config: ModelConfig,
    pub tokenizer: TokenizerSettings,
    pub task: TaskHead,
}

impl ModelWriter {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, name: &str, dtype: DType, shape: &[usize], data: Vec<u8>) {
        self.push_with_layout(name, dtype, Layout::RowMajor, shape, data)
    }

    fn push_with_layout(
        &mut self,
        name: &str,
        dtype: DType,
        layout: Layout,
        shape: &[usize],
        data: Vec<u8>,
    ) {
        let shape = shape
            .iter()
            .map(|&d| u32::try_from(d).expect("tensor dimension fits in u32"))
            .collect::<heapless::Vec<u32, 4>>();
        let expected = match layout {
            Layout::RowMajor => shape.iter().map(|&d| d as usize).product::<usize>() * dtype.size(),
            packed => packed
                .packed_len(shape[0] as usize, shape[1] as usize)
                .expect("size fits"),
        };
        assert_eq!(expected, data.len(), "tensor {name}: data/shape mismatch");
        self.tensors.push(PendingTensor {
            name: name.to_string(),
            dtype,
            layout,
            shape,
            data,
        });
    }

    /// An int8 `[n, k]` matrix already packed into `layout` (see `kernels::pack`).
    pub fn add_i8_packed(&mut self, name: &str, layout: Layout, n: usize, k: usize, packed: &[i8]) {
        let bytes = packed.iter().map(|&x| x as u8).collect();
        self.push_with_layout(name, DType::I8, layout, &[n, k], bytes);
    }
    pub fn add_i32(&mut self, name: &str, shape: &[usize], data: &[i32]) {
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push(name, DType::I32, shape, bytes);
    }

    pub fn add_f32(&mut self, name: &str, shape: &[usize], data: &[f32]) {
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push(name, DType::F32, shape, bytes);
    }
    pub fn add_i8(&mut self, name: &str, shape: &[usize], data: &[i8]) {
        let bytes = data.iter().map(|&x| x as u8).collect();
        self.push(name, DType::I8, shape, bytes);
    }
    pub fn add_u8(&mut self, name: &str, shape: &[usize], data: &[u8]) {
        self.push(name, DType::U8, shape, data.to_vec());
    }
    pub fn add_u32(&mut self, name: &str, shape: &[usize], data: &[u32]) {
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push(name, DType::U32, shape, bytes);
    }
    pub fn add_f16_bits(&mut self, name: &str, shape: &[usize], data: &[u16]) {
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push(name, DType::F16, shape, bytes);
    }

    /// Serialises the model file.
    pub fn to_bytes(&self, info: &HeaderInfo) -> Vec<u8> {
        let header = Header {
            name: &info.name,
            source: &info.source,
            config: info.config,
            tokenizer: info.tokenizer,
            task: info.task,
            tensor_count: self.tensors.len() as u32,
        };
        // Offsets are varints, so the header's size depends on where the data starts:
        // guess, encode, and move the data start until it fits.
        let mut data_start = align(PREAMBLE_LEN + 4096);
        let (meta, offsets) = loop {
            let mut offsets = Vec::with_capacity(self.tensors.len());
            let mut at = data_start;
            for t in &self.tensors {
                offsets.push(at);
                at = align(at + t.data.len());
            }
            let mut meta = postcard::to_stdvec(&header).expect("header serialises");
            for (t, &off) in self.tensors.iter().zip(&offsets) {
                let entry = TensorEntry {
                    name: &t.name,
                    dtype: t.dtype,
                    layout: t.layout,
                    shape: t.shape.clone(),
                    offset: off as u64,
                    len: t.data.len() as u64,
                };
                meta.extend(postcard::to_stdvec(&entry).expect("entry serialises"));
            }
            let needed = align(PREAMBLE_LEN + meta.len());
            if needed <= data_start {
                break (meta, offsets);
            }
            data_start = needed;
        };
        let total = offsets
            .last()
            .zip(self.tensors.last())
            .map(|(&o, t)| o + t.data.len())
            .unwrap_or(data_start);
        let mut out = vec![0u8; total];
        out[..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(meta.len() as u32).to_le_bytes());
        out[16..24].copy_from_slice(&(total as u64).to_le_bytes());
        out[PREAMBLE_LEN..PREAMBLE_LEN + meta.len()].copy_from_slice(&meta);
        for (t, &off) in self.tensors.iter().zip(&offsets) {
            out[off..off + t.data.len()].copy_from_slice(&t.data);
        }
        let crc = crc32fast::hash(&out[PREAMBLE_LEN..]);
        out[24..28].copy_from_slice(&crc.to_le_bytes());
        out
    }
}

fn align(x: usize) -> usize {
    x.div_ceil(TENSOR_ALIGN) * TENSOR_ALIGN
}
