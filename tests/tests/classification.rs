//! Sequence classification against the Hugging Face text-classification pipeline (`top_k=None`,
//! every `function_to_apply`, and the default) on randomly initialised models that both sides
//! build from the same seeded weights (fixture from `scripts/gen_classification_fixtures.py`).

use bertq_quantize::WeightPrecision;
use bertq_runtime::heads::ScoreFunction;
use bertq_runtime::{Model, Precision, RunOptions, Session, TaskOutput};
use bertq_tests::random_bert::{write_hf_dir_with_head, RandomConfig, RandomHead};
use bertq_tests::{convert, read_fixture};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    models: Vec<FixtureModel>,
}

#[derive(Deserialize)]
struct FixtureModel {
    name: String,
    seed: u64,
    labels: usize,
    problem_type: Option<String>,
    config: RandomConfig,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    input_ids: Vec<u32>,
    softmax: Vec<LabelScore>,
    sigmoid: Vec<LabelScore>,
    none: Vec<LabelScore>,
    default: Vec<LabelScore>,
}

#[derive(Deserialize, Debug)]
struct LabelScore {
    label: String,
    score: f32,
}

#[test]
fn scores_match_the_pipeline_for_every_function() {
    let fixture: Fixture = read_fixture("classification.json");
    for m in &fixture.models {
        let dir = tempfile::tempdir().unwrap();
        let head = RandomHead::SequenceClassification { labels: m.labels };
        write_hf_dir_with_head(dir.path(), &m.config, m.seed, Some(head));
        if let Some(p) = &m.problem_type {
            let path = dir.path().join("config.json");
            let mut config: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            config["problem_type"] = serde_json::json!(p);
            std::fs::write(&path, config.to_string()).unwrap();
        }
        let bytes = convert(dir.path(), WeightPrecision::F32);
        let model = Model::load(&bytes).unwrap();
        let mut session = Session::with_owned_memory(&model, 32).unwrap();
        session.set_precision(Precision::F32);
        for case in &m.cases {
            for (function, expected) in [
                (Some(ScoreFunction::Softmax), &case.softmax),
                (Some(ScoreFunction::Sigmoid), &case.sigmoid),
                (Some(ScoreFunction::None), &case.none),
                (None, &case.default),
            ] {
                let options = RunOptions {
                    function_to_apply: function,
                    ..RunOptions::default()
                };
                let out = session.run_with(&case.text, &options).unwrap();
                let ids: Vec<u32> = out.tokens.iter().map(|t| t.id).collect();
                assert_eq!(ids, case.input_ids, "{}: {:?}", m.name, case.text);
                let TaskOutput::Classification { scores, ranking } = out.task else {
                    panic!("sequence classification")
                };
                // Same order (top_k=None sorts by score) and the same scores.
                assert_eq!(ranking.len(), expected.len());
                for (&id, e) in ranking.iter().zip(expected.iter()) {
                    let label = model.labels.get(id as usize).unwrap();
                    assert_eq!(
                        label, e.label,
                        "{} {function:?} {:?}: {expected:?}",
                        m.name, case.text
                    );
                    let s = scores[id as usize];
                    assert!(
                        (s - e.score).abs() < 1e-5,
                        "{} {function:?}: {s} vs {}",
                        m.name,
                        e.score
                    );
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct PairFixture {
    models: Vec<PairModel>,
}

#[derive(Deserialize)]
struct PairModel {
    name: String,
    seed: u64,
    labels: usize,
    config: RandomConfig,
    pairs: Vec<PairCase>,
    truncations: Vec<Truncation>,
}

#[derive(Deserialize)]
struct PairCase {
    text: String,
    text_pair: String,
    input_ids: Vec<u32>,
    default: Vec<LabelScore>,
}

#[derive(Deserialize)]
struct Truncation {
    text: String,
    text_pair: String,
    max_length: usize,
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
}

/// Text pairs: `[CLS] a [SEP] b [SEP]` with token types, the pipeline's scores, and
/// `longest_first` truncation identical to `BertTokenizerFast`.
#[test]
fn text_pairs_match_the_pipeline_and_truncate_longest_first() {
    let fixture: PairFixture = read_fixture("classification.json");
    for m in fixture.models.iter().filter(|m| m.name == "mini-5-labels") {
        let dir = tempfile::tempdir().unwrap();
        let head = RandomHead::SequenceClassification { labels: m.labels };
        write_hf_dir_with_head(dir.path(), &m.config, m.seed, Some(head));
        let bytes = convert(dir.path(), WeightPrecision::F32);
        let model = Model::load(&bytes).unwrap();
        let mut session = Session::with_owned_memory(&model, 32).unwrap();
        session.set_precision(Precision::F32);
        for case in &m.pairs {
            let out = session
                .run_pair(&case.text, &case.text_pair, &RunOptions::default())
                .unwrap();
            let ids: Vec<u32> = out.tokens.iter().map(|t| t.id).collect();
            assert_eq!(ids, case.input_ids);
            let TaskOutput::Classification { scores, ranking } = out.task else {
                panic!("sequence classification")
            };
            for (&id, e) in ranking.iter().zip(&case.default) {
                assert_eq!(model.labels.get(id as usize).unwrap(), e.label);
                assert!((scores[id as usize] - e.score).abs() < 1e-5);
            }
        }
        for t in &m.truncations {
            let mut tokens = vec![bertq_runtime::tokenizer::Token::default(); t.max_length];
            let enc = model
                .tokenizer
                .encode_pair(&t.text, &t.text_pair, &mut tokens)
                .unwrap();
            let ids: Vec<u32> = tokens[..enc.len].iter().map(|x| x.id).collect();
            let types: Vec<u32> = (0..enc.len)
                .map(|i| u32::from(i >= enc.first_len))
                .collect();
            assert_eq!(
                ids, t.input_ids,
                "{:?} + {:?} to {}",
                t.text, t.text_pair, t.max_length
            );
            assert_eq!(types, t.token_type_ids);
            assert_eq!(enc.truncated, enc.total > t.max_length);
        }
    }
}
