//! Test fixture for the C tests (scripts/test_capi.sh): turns a pooled classifier made by
//! `bertq-quantize train-head` (e.g. `models/sentiment-minilm.bertq`: MiniLM-L6 + a linear head)
//! back into the sentence-embedding model it was trained on (`BertModel`, same pooling and
//! normalisation), by dropping the classifier and the labels. The encoder's tensors are copied
//! byte for byte, so the embeddings are exactly MiniLM's int8 ones, without running the quantizer.
//!
//! `cargo run --release -p bertq-capi --example embedding_model -- IN.bertq OUT.bertq`

use bertq_runtime::format::{DType, HeaderInfo, Layout, ModelFile, ModelWriter, TaskHead};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: embedding_model IN.bertq OUT.bertq".into());
    };
    let bytes =
        bertq_runtime::ModelBytes::map(input.as_ref()).map_err(|e| format!("{input}: {e}"))?;
    let file = ModelFile::parse(&bytes).map_err(|e| format!("{input}: {e}"))?;
    let h = &file.header;
    let TaskHead::PooledClassification { pooling, normalize } = h.task else {
        return Err(format!(
            "{input}: not a pooled classifier (train-head output)"
        ));
    };
    let mut w = ModelWriter::new();
    for e in file.entries() {
        if e.name.starts_with("classifier") || e.name.starts_with("labels.") {
            continue;
        }
        let t = file.tensor(e.name).map_err(|err| err.to_string())?;
        let shape: Vec<usize> = t.shape().iter().map(|&d| d as usize).collect();
        let err = |x: bertq_runtime::LoadError| x.to_string();
        match (e.dtype, e.layout) {
            (DType::I8, Layout::RowMajor) => w.add_i8(e.name, &shape, t.i8s().map_err(err)?),
            (DType::I8, layout) => {
                w.add_i8_packed(e.name, layout, shape[0], shape[1], t.i8s().map_err(err)?)
            }
            (DType::F32, _) => w.add_f32(e.name, &shape, t.f32s().map_err(err)?),
            (DType::U8, _) => w.add_u8(e.name, &shape, t.u8s().map_err(err)?),
            (DType::U32, _) => w.add_u32(e.name, &shape, t.u32s().map_err(err)?),
            (DType::I32, _) => w.add_i32(e.name, &shape, t.i32s().map_err(err)?),
            (DType::F16, _) => w.add_f16_bits(e.name, &shape, t.f16_bits().map_err(err)?),
        }
    }
    let info = HeaderInfo {
        name: format!("{}-embedding", h.name.trim_start_matches("sentiment-")),
        source: format!("{} (its encoder and pooling, classifier removed)", h.name),
        config: h.config,
        tokenizer: h.tokenizer,
        task: TaskHead::Embedding { pooling, normalize },
    };
    std::fs::write(output, w.to_bytes(&info)).map_err(|e| format!("{output}: {e}"))?;
    Ok(())
}
