//! The Rust mirror of `scripts/random_bert.py`: seeded BERT weights reproduced bit-exactly, so
//! fixtures hold inputs and Hugging Face's outputs but never the weights.

use std::collections::BTreeMap;
use std::path::Path;

/// The `config.json` keys the fixtures record.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct RandomConfig {
    pub num_hidden_layers: usize,
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
}

pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn center_amp(name: &str) -> (f64, f64) {
    let is_embedding = name.starts_with("embeddings.") && name.ends_with("_embeddings.weight");
    if name == "qa_outputs.weight" {
        (0.0, 1.0)
    } else if name.ends_with("LayerNorm.weight") {
        (1.0, 0.2)
    } else if name.ends_with("LayerNorm.bias") {
        (0.0, 0.1)
    } else if is_embedding {
        (0.0, 0.5)
    } else if name.ends_with(".weight") {
        (0.0, 0.06)
    } else {
        (0.0, 0.05)
    }
}

/// The tensor `name` with `numel` elements for `model_seed` (see the Python module for the spec).
pub fn make_tensor(name: &str, numel: usize, model_seed: u64) -> Vec<f32> {
    let seed = fnv1a64(name.as_bytes()) ^ model_seed;
    let (center, amp) = center_amp(name);
    (0..numel as u64)
        .map(|i| {
            let mut z = seed.wrapping_add((i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 40) as f64 / 16_777_216.0;
            let r = 2.0 * u - 1.0;
            (center + r * amp) as f32
        })
        .collect()
}

/// State-dict names and shapes of a `BertModel` (without the `bert.` prefix).
pub fn tensor_shapes(c: &RandomConfig) -> Vec<(String, Vec<usize>)> {
    let (h, f) = (c.hidden_size, c.intermediate_size);
    let mut v: Vec<(String, Vec<usize>)> = vec![
        (
            "embeddings.word_embeddings.weight".into(),
            vec![c.vocab_size, h],
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![c.max_position_embeddings, h],
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            vec![c.type_vocab_size, h],
        ),
        ("embeddings.LayerNorm.weight".into(), vec![h]),
        ("embeddings.LayerNorm.bias".into(), vec![h]),
    ];
    for l in 0..c.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        for proj in ["query", "key", "value"] {
            v.push((format!("{p}.attention.self.{proj}.weight"), vec![h, h]));
            v.push((format!("{p}.attention.self.{proj}.bias"), vec![h]));
        }
        v.push((format!("{p}.attention.output.dense.weight"), vec![h, h]));
        v.push((format!("{p}.attention.output.dense.bias"), vec![h]));
        v.push((format!("{p}.attention.output.LayerNorm.weight"), vec![h]));
        v.push((format!("{p}.attention.output.LayerNorm.bias"), vec![h]));
        v.push((format!("{p}.intermediate.dense.weight"), vec![f, h]));
        v.push((format!("{p}.intermediate.dense.bias"), vec![f]));
        v.push((format!("{p}.output.dense.weight"), vec![h, f]));
        v.push((format!("{p}.output.dense.bias"), vec![h]));
        v.push((format!("{p}.output.LayerNorm.weight"), vec![h]));
        v.push((format!("{p}.output.LayerNorm.bias"), vec![h]));
    }
    v.push(("pooler.dense.weight".into(), vec![h, h]));
    v.push(("pooler.dense.bias".into(), vec![h]));
    v
}

/// A task head to add to a random model.
#[derive(Debug, Clone, Copy)]
pub enum RandomHead {
    SequenceClassification {
        labels: usize,
    },
    TokenClassification {
        labels: usize,
    },
    /// `BertForMaskedLM`: `cls.predictions.*` (the decoder tied to the word embeddings, so not
    /// stored), and no pooler.
    MaskedLm,
    /// `BertForNextSentencePrediction`: the pooler and `cls.seq_relationship` `[2, hidden]`.
    NextSentence,
    /// `BertForQuestionAnswering`: `qa_outputs` `[2, hidden]` (start, end), and no pooler.
    QuestionAnswering,
}

/// The head tensors of a random task model (names as `transformers` saves them).
pub fn head_shapes(c: &RandomConfig, head: RandomHead) -> Vec<(String, Vec<usize>)> {
    let h = c.hidden_size;
    let v = |n: &str, s: Vec<usize>| (n.to_string(), s);
    match head {
        RandomHead::SequenceClassification { labels }
        | RandomHead::TokenClassification { labels } => {
            vec![
                v("classifier.weight", vec![labels, h]),
                v("classifier.bias", vec![labels]),
            ]
        }
        RandomHead::MaskedLm => vec![
            v("cls.predictions.transform.dense.weight", vec![h, h]),
            v("cls.predictions.transform.dense.bias", vec![h]),
            v("cls.predictions.transform.LayerNorm.weight", vec![h]),
            v("cls.predictions.transform.LayerNorm.bias", vec![h]),
            v("cls.predictions.bias", vec![c.vocab_size]),
        ],
        RandomHead::NextSentence => vec![
            v("cls.seq_relationship.weight", vec![2, h]),
            v("cls.seq_relationship.bias", vec![2]),
        ],
        RandomHead::QuestionAnswering => vec![
            v("qa_outputs.weight", vec![2, h]),
            v("qa_outputs.bias", vec![2]),
        ],
    }
}

/// Writes a Hugging Face `BertModel` directory (config.json, model.safetensors, vocab.txt with
/// placeholder tokens) for the seeded weights.
pub fn write_hf_dir(dir: &Path, c: &RandomConfig, model_seed: u64) {
    write_hf_dir_with_head(dir, c, model_seed, None)
}

/// Like [`write_hf_dir`], optionally with a classification head (`classifier.*`, seeded by the
/// same rules; weights get the `bert.` prefix as `transformers` saves task models).
pub fn write_hf_dir_with_head(
    dir: &Path,
    c: &RandomConfig,
    model_seed: u64,
    head: Option<RandomHead>,
) {
    write_hf_dir_with_vocab(dir, c, model_seed, head, None)
}

/// Like [`write_hf_dir_with_head`], with a given vocabulary (`vocab.txt` lines; its length must
/// be the config's `vocab_size`) instead of placeholder tokens.
pub fn write_hf_dir_with_vocab(
    dir: &Path,
    c: &RandomConfig,
    model_seed: u64,
    head: Option<RandomHead>,
    vocab: Option<&[String]>,
) {
    std::fs::create_dir_all(dir).unwrap();
    let mut config = serde_json::to_value(c).unwrap();
    let (arch, labels) = match head {
        None => ("BertModel", 0),
        Some(RandomHead::SequenceClassification { labels }) => {
            ("BertForSequenceClassification", labels)
        }
        Some(RandomHead::TokenClassification { labels }) => ("BertForTokenClassification", labels),
        Some(RandomHead::MaskedLm) => ("BertForMaskedLM", 0),
        Some(RandomHead::NextSentence) => ("BertForNextSentencePrediction", 0),
        Some(RandomHead::QuestionAnswering) => ("BertForQuestionAnswering", 0),
    };
    config["architectures"] = serde_json::json!([arch]);
    config["model_type"] = serde_json::json!("bert");
    if labels > 0 {
        let names = [
            "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "MISC",
        ];
        let id2label: BTreeMap<String, String> = (0..labels)
            .map(|i| {
                (
                    i.to_string(),
                    names.get(i).map_or(format!("LABEL_{i}"), |s| s.to_string()),
                )
            })
            .collect();
        config["id2label"] = serde_json::to_value(id2label).unwrap();
    }
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let mut vocab: Vec<String> = match vocab {
        Some(v) => {
            assert_eq!(v.len(), c.vocab_size, "vocabulary size");
            v.to_vec()
        }
        None => ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    while vocab.len() < c.vocab_size {
        vocab.push(format!("tok{}", vocab.len()));
    }
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n") + "\n").unwrap();
    let mut shapes = tensor_shapes(c);
    if let Some(head) = head {
        if matches!(head, RandomHead::MaskedLm | RandomHead::QuestionAnswering) {
            shapes.retain(|(name, _)| !name.starts_with("pooler."));
        }
        shapes.extend(head_shapes(c, head));
    }
    let prefix = if head.is_some() { "bert." } else { "" };
    let tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = shapes
        .into_iter()
        .map(|(name, shape)| {
            let data = make_tensor(&name, shape.iter().product(), model_seed);
            let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
            let stored = if name.starts_with("classifier")
                || name.starts_with("cls.")
                || name.starts_with("qa_outputs")
            {
                name
            } else {
                format!("{prefix}{name}")
            };
            (stored, (shape, bytes))
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(name, (shape, bytes))| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .unwrap();
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }

    /// Values printed by `python scripts/random_bert.py` (the Python side of the spec), with all
    /// the digits it printed.
    #[test]
    #[allow(clippy::excessive_precision)]
    fn matches_python_reference_values() {
        let cases: [(&str, [f32; 4]); 4] = [
            (
                "embeddings.word_embeddings.weight",
                [0.41216445, -0.488696337, 0.129406869, -0.158182919],
            ),
            (
                "embeddings.LayerNorm.weight",
                [1.00015628, 0.929066718, 1.14295197, 0.918113828],
            ),
            (
                "encoder.layer.0.attention.self.query.weight",
                [-0.00259496202, 0.000216851229, -0.0312832184, 0.0211976916],
            ),
            (
                "encoder.layer.0.output.dense.bias",
                [0.0252180509, -0.0288189836, 0.036061734, 0.0476883128],
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(make_tensor(name, 4, 1), expected, "{name}");
        }
    }
}

/// `tests/fixtures/random_models.json` (`scripts/gen_model_fixtures.py`): seeded random
/// BertModels (weights regenerated by [`write_hf_dir`]) and transformers' last hidden states.
#[derive(Debug, serde::Deserialize)]
pub struct RandomModels {
    pub models: Vec<RandomModel>,
}

#[derive(Debug, serde::Deserialize)]
pub struct RandomModel {
    pub name: String,
    pub seed: u64,
    pub config: RandomConfig,
    pub inputs: Vec<RandomInput>,
}

#[derive(Debug, serde::Deserialize)]
pub struct RandomInput {
    pub input_ids: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    pub last_hidden_state: Vec<Vec<f32>>,
}
