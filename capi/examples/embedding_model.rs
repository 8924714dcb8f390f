//! Test fixtures for the C tests (scripts/test_capi.sh), without the quantizer: turns a pooled
//! classifier made by `bertq-quantize train-head` (e.g. `models/sentiment-minilm.bertq`:
//! MiniLM-L6 + a linear head) back into the sentence-embedding model it was trained on
//! (`BertModel`, same pooling and normalisation) by dropping the classifier and the labels; the
//! encoder's tensors are copied byte for byte, so the embeddings are exactly MiniLM's int8 ones.
//! With `qa` or `fill-mask`, the same encoder gets a head with seeded pseudo-random f32 weights
//! instead (`qa_outputs`; or the masked-LM transform, LayerNorm and bias, the decoder tied to
//! the word embeddings): models whose answers are arbitrary but whose outputs `bertq run` and
//! the C library must agree on.
//!
//! `cargo run --release -p bertq-capi --example embedding_model -- IN.bertq OUT.bertq [embedding|qa|fill-mask]`

use bertq_runtime::format::{DType, HeaderInfo, Layout, ModelFile, ModelWriter, TaskHead};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output, task) = match args.as_slice() {
        [i, o] => (i, o, "embedding"),
        [i, o, t] => (i, o, t.as_str()),
        _ => {
            return Err("usage: embedding_model IN.bertq OUT.bertq [embedding|qa|fill-mask]".into())
        }
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
    let hidden = h.config.hidden_size as usize;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = |n: usize, scale: f32| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * scale
            })
            .collect()
    };
    let task = match task {
        "embedding" => TaskHead::Embedding { pooling, normalize },
        "qa" => {
            w.add_f32("qa_outputs.weight", &[2, hidden], &random(2 * hidden, 0.5));
            w.add_f32("qa_outputs.bias", &[2], &[0.1, -0.1]);
            TaskHead::QuestionAnswering
        }
        "fill-mask" => {
            let vocab = h.config.vocab_size as usize;
            let mut dense = random(hidden * hidden, 0.02);
            for i in 0..hidden {
                dense[i * hidden + i] += 1.0;
            }
            w.add_f32(
                "cls.predictions.transform.dense.weight",
                &[hidden, hidden],
                &dense,
            );
            w.add_f32(
                "cls.predictions.transform.dense.bias",
                &[hidden],
                &random(hidden, 0.01),
            );
            w.add_f32(
                "cls.predictions.transform.LayerNorm.weight",
                &[hidden],
                &vec![1.0; hidden],
            );
            w.add_f32(
                "cls.predictions.transform.LayerNorm.bias",
                &[hidden],
                &vec![0.0; hidden],
            );
            w.add_f32("cls.predictions.bias", &[vocab], &random(vocab, 0.1));
            TaskHead::FillMask
        }
        other => return Err(format!("unknown task {other}")),
    };
    let info = HeaderInfo {
        name: format!(
            "{}-{}",
            h.name.trim_start_matches("sentiment-"),
            match task {
                TaskHead::Embedding { .. } => "embedding",
                TaskHead::QuestionAnswering => "qa",
                _ => "fill-mask",
            }
        ),
        source: format!("{} (its encoder and pooling, classifier removed)", h.name),
        config: h.config,
        tokenizer: h.tokenizer,
        task,
    };
    std::fs::write(output, w.to_bytes(&info)).map_err(|e| format!("{output}: {e}"))?;
    Ok(())
}
