//! The accuracy report (`bertq-quantize eval`) on real models and data whose expected answers
//! come from transformers and onnxruntime:
//! - Rampart: the f32 reference reproduces the transformers pipeline's entities exactly, and int8
//!   agrees with them at least as well as onnxruntime's `quantize_dynamic` does
//!   (tests/fixtures/ort_int8_accuracy.json, from scripts/ort_accuracy.py);
//! - MiniLM: the same for sentence-embedding cosines;
//! - classification: accuracy and calibration error of the f32 reference equal the values
//!   computed from transformers' probabilities.

use bertq_quantize::report::{self, data, EvalOptions, TaskReport};
use bertq_quantize::{load_input, ConvertOptions, WeightPrecision};
use bertq_runtime::{Model, ModelBytes};
use bertq_tests::random_bert::{write_hf_dir_with_head, RandomConfig, RandomHead};
use bertq_tests::{default_model, fixture, minilm_dir, rampart_dir, read_fixture};
use serde::Deserialize;

fn convert(path: &std::path::Path, precision: WeightPrecision) -> ModelBytes {
    let opts = ConvertOptions {
        precision,
        ..Default::default()
    };
    let bytes = load_input(path).unwrap().convert(&opts).unwrap().bytes;
    ModelBytes::copy_from(&bytes)
}

#[derive(Deserialize)]
struct OrtAccuracy {
    rampart_pii: std::collections::BTreeMap<String, OrtPrf>,
    minilm_l6: std::collections::BTreeMap<String, OrtCos>,
}

#[derive(Deserialize)]
struct OrtPrf {
    f1: f64,
}

#[derive(Deserialize)]
struct OrtCos {
    mean: f64,
    min: f64,
}

fn best_ort_f1(o: &OrtAccuracy) -> f64 {
    o.rampart_pii
        .iter()
        .filter(|(k, _)| k.starts_with("ORT"))
        .map(|(_, v)| v.f1)
        .fold(0.0, f64::max)
}

#[test]
fn rampart_report_against_the_transformers_pipeline() {
    let int8_bytes = default_model();
    let int8 = Model::load(&int8_bytes).unwrap();
    // The reference straight from the package's 4-bit ONNX, converted in f32.
    let ref_bytes = convert(&rampart_dir(), WeightPrecision::F32);
    let reference = Model::load(&ref_bytes).unwrap();
    let examples = data::load(
        &fixture("rampart_ner.json"),
        data::DataTask::TokenClassification,
    )
    .unwrap();
    let r = report::evaluate(&int8, &reference, &examples, &EvalOptions::default()).unwrap();
    println!("{}", report::summary(&r));
    let TaskReport::TokenClassification(t) = &r.task else {
        panic!("token classification")
    };
    let fp32 = t.fp32.as_ref().unwrap().overall;
    let int8 = t.int8.as_ref().unwrap().overall;
    // The f32 path reproduces every transformers entity exactly (type, start, end).
    assert_eq!(
        (fp32.correct, fp32.predicted, fp32.reference),
        (387, 387, 387)
    );
    // int8 vs the fp32 pipeline: at least as good as onnxruntime's int8.
    let ort: OrtAccuracy = read_fixture("ort_int8_accuracy.json");
    let best = best_ort_f1(&ort);
    println!(
        "entity F1 int8 vs fp32: bertq {:.4}, onnxruntime best {best:.4}",
        int8.f1
    );
    assert!(int8.f1 >= best, "bertq {} < onnxruntime {best}", int8.f1);
    assert!(int8.f1 >= 0.95);
    // Against its own f32 path the agreement is what it is against transformers.
    assert!((t.agreement.overall.f1 - int8.f1).abs() < 1e-9);
}

#[test]
fn minilm_report_against_sentence_transformers() {
    let dir = minilm_dir();
    let int8_bytes = convert(&dir, WeightPrecision::Int8);
    let ref_bytes = convert(&dir, WeightPrecision::F32);
    let (int8, reference) = (
        Model::load(&int8_bytes).unwrap(),
        Model::load(&ref_bytes).unwrap(),
    );
    let examples = data::load(&fixture("minilm.json"), data::DataTask::Embedding).unwrap();
    let r = report::evaluate(&int8, &reference, &examples, &EvalOptions::default()).unwrap();
    println!("{}", report::summary(&r));
    let TaskReport::Embedding(e) = &r.task else {
        panic!("embeddings")
    };
    let (to_data, f32_to_data) = (
        e.cosine_int8_vs_data.unwrap(),
        e.cosine_fp32_vs_data.unwrap(),
    );
    assert!(
        f32_to_data.min > 0.99999,
        "f32 reference vs sentence-transformers"
    );
    let ort: OrtAccuracy = read_fixture("ort_int8_accuracy.json");
    let ort = &ort.minilm_l6["ORT quantize_dynamic (per-channel)"];
    assert!(to_data.mean >= ort.mean && to_data.min >= ort.min);
    assert!(to_data.mean >= 0.995 && to_data.min >= 0.98, "{to_data:?}");
}

#[derive(Deserialize)]
struct OnnxExpected {
    config: RandomConfig,
    classification: Classification,
}

#[derive(Deserialize)]
struct Classification {
    fixture: String,
    examples: Vec<ClassExample>,
    fp32_accuracy: f64,
    fp32_ece_15_bins: f64,
}

#[derive(Deserialize)]
struct ClassExample {
    text: String,
    label: String,
    probs: Vec<f64>,
}

#[test]
fn classification_report_matches_transformers_probabilities() {
    let e: OnnxExpected = read_fixture("onnx/expected.json");
    let c = &e.classification;
    let tmp = tempfile::tempdir().unwrap();
    let hf = tmp.path().join("hf");
    write_hf_dir_with_head(
        &hf,
        &e.config,
        12,
        Some(RandomHead::SequenceClassification { labels: 3 }),
    );
    let ox = tmp.path().join("onnx");
    std::fs::create_dir_all(&ox).unwrap();
    for f in ["config.json", "vocab.txt"] {
        std::fs::copy(hf.join(f), ox.join(f)).unwrap();
    }
    std::fs::copy(
        fixture(&format!("onnx/{}", c.fixture)),
        ox.join("model.onnx"),
    )
    .unwrap();
    let int8_bytes = convert(&ox, WeightPrecision::Int8);
    let ref_bytes = convert(&ox, WeightPrecision::F32);
    let (int8, reference) = (
        Model::load(&int8_bytes).unwrap(),
        Model::load(&ref_bytes).unwrap(),
    );
    let jsonl: String = c
        .examples
        .iter()
        .map(|x| serde_json::json!({"text": x.text, "label": x.label}).to_string() + "\n")
        .collect();
    let examples = data::parse(&jsonl, data::DataTask::SequenceClassification).unwrap();
    let r = report::evaluate(&int8, &reference, &examples, &EvalOptions::default()).unwrap();
    println!("{}", report::summary(&r));
    let TaskReport::SequenceClassification(s) = &r.task else {
        panic!("classification")
    };
    assert_eq!(s.fp32.accuracy, Some(c.fp32_accuracy));
    let ece = s.fp32.ece.unwrap();
    assert!((ece - c.fp32_ece_15_bins).abs() < 1e-5, "{ece}");
    let mean_conf = c
        .examples
        .iter()
        .map(|x| x.probs.iter().cloned().fold(0.0, f64::max))
        .sum::<f64>()
        / c.examples.len() as f64;
    assert!((s.fp32.mean_confidence - mean_conf).abs() < 1e-5);
    assert!(s.top1_agreement > 0.9);
}

/// CoNLL (word-level) data: the words of fixture sentences whose fp32 entities are whole words
/// get BIO tags from those entities; the f32 reference reproduces most of them (the pipeline
/// groups word pieces, the word-level path reads each word's first piece).
#[test]
fn conll_word_level_report_runs() {
    #[derive(Deserialize)]
    struct Rampart {
        sentences: Vec<Sentence>,
    }
    #[derive(Deserialize)]
    struct Sentence {
        text: String,
        entities: Vec<Ent>,
    }
    #[derive(Deserialize)]
    struct Ent {
        entity_group: String,
        start: usize,
        end: usize,
    }
    let fx: Rampart = read_fixture("rampart_ner.json");
    let mut conll = String::new();
    let mut sentences = 0;
    for s in &fx.sentences {
        // Words = whitespace-separated, with their character spans.
        let mut words = Vec::new();
        let mut at = None;
        for (i, ch) in s.text.chars().chain(std::iter::once(' ')).enumerate() {
            match (ch.is_whitespace(), at) {
                (false, None) => at = Some(i),
                (true, Some(st)) => {
                    words.push((st, i));
                    at = None;
                }
                _ => {}
            }
        }
        let mut tags = vec!["O".to_string(); words.len()];
        let mut whole = true;
        for e in &s.entities {
            let inside: Vec<usize> = (0..words.len())
                .filter(|&w| words[w].0 >= e.start && words[w].1 <= e.end)
                .collect();
            let covers = inside.first().is_some_and(|&w| words[w].0 == e.start)
                && inside.last().is_some_and(|&w| words[w].1 == e.end);
            if !covers {
                whole = false;
                break;
            }
            for (k, &w) in inside.iter().enumerate() {
                tags[w] = format!("{}-{}", if k == 0 { "B" } else { "I" }, e.entity_group);
            }
        }
        if !whole {
            continue;
        }
        let chars: Vec<char> = s.text.chars().collect();
        for ((st, en), tag) in words.iter().zip(&tags) {
            let w: String = chars[*st..*en].iter().collect();
            conll.push_str(&format!("{w} {tag}\n"));
        }
        conll.push('\n');
        sentences += 1;
    }
    assert!(sentences >= 10, "{sentences}");
    let examples = data::parse(&conll, data::DataTask::TokenClassification).unwrap();
    let int8_bytes = default_model();
    let ref_bytes = convert(&rampart_dir(), WeightPrecision::F32);
    let (int8, reference) = (
        Model::load(&int8_bytes).unwrap(),
        Model::load(&ref_bytes).unwrap(),
    );
    let r = report::evaluate(&int8, &reference, &examples, &EvalOptions::default()).unwrap();
    println!("{sentences} sentences\n{}", report::summary(&r));
    let TaskReport::TokenClassification(t) = &r.task else {
        panic!("token classification")
    };
    assert_eq!(t.aggregation, "word-first");
    let fp32 = t.fp32.as_ref().unwrap().overall;
    assert!(fp32.f1 > 0.8, "{fp32:?}");
}

/// The mixed-precision recipe of models/README.md (`scripts/build_default_model.sh --mixed`:
/// the sensitivity ranking's top 8 Linears on models/calibration/pii.txt and the embedding
/// tables in f16) reaches the target against the transformers pipeline's entities.
#[test]
fn rampart_mixed_recipe_reaches_entity_f1_0_98() {
    let mut keep: Vec<String> = [
        "encoder.layer.4.attention.self.value",
        "encoder.layer.3.attention.self.value",
        "encoder.layer.0.output.dense",
        "encoder.layer.4.intermediate.dense",
        "encoder.layer.3.intermediate.dense",
        "encoder.layer.3.output.dense",
        "encoder.layer.2.output.dense",
        "encoder.layer.1.output.dense",
    ]
    .map(String::from)
    .to_vec();
    keep.extend(
        [
            "embeddings.word_embeddings",
            "embeddings.position_embeddings",
            "embeddings.token_type_embeddings",
        ]
        .map(String::from),
    );
    let opts = ConvertOptions {
        keep_float: keep,
        name: Some("rampart-pii".into()),
        ..Default::default()
    };
    let input = load_input(&rampart_dir()).unwrap();
    let mixed_bytes = ModelBytes::copy_from(&input.convert(&opts).unwrap().bytes);
    let mixed = Model::load(&mixed_bytes).unwrap();
    let ref_bytes = convert(&rampart_dir(), WeightPrecision::F32);
    let reference = Model::load(&ref_bytes).unwrap();
    let examples = data::load(
        &fixture("rampart_ner.json"),
        data::DataTask::TokenClassification,
    )
    .unwrap();
    let r = report::evaluate(&mixed, &reference, &examples, &EvalOptions::default()).unwrap();
    println!("{}", report::summary(&r));
    let TaskReport::TokenClassification(t) = &r.task else {
        panic!("token classification")
    };
    let f1 = t.int8.as_ref().unwrap().overall.f1;
    assert!(f1 >= 0.98, "mixed recipe entity F1 {f1}");
}
