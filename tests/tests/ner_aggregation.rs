//! Token-classification decoding against the Hugging Face pipeline, isolated from quantization:
//! the model's own fp32 logits (fixture from `scripts/gen_aggregation_fixtures.py`) go through
//! bertq's decoder for every `aggregation_strategy`, and the entities must be the pipeline's:
//! same labels, same character offsets, same scores.

use bertq_runtime::heads::token_classification::{decode, Aggregation, DecodeInput};
use bertq_runtime::heads::Entity;
use bertq_runtime::tokenizer::Token;
use bertq_runtime::Model;
use bertq_tests::{default_model, read_fixture};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    input_ids: Vec<u32>,
    logits: Vec<Vec<f32>>,
    none: Vec<RefEntity>,
    simple: Vec<RefEntity>,
    first: Vec<RefEntity>,
    average: Vec<RefEntity>,
    max: Vec<RefEntity>,
}

#[derive(Deserialize, Debug)]
struct RefEntity {
    #[serde(default)]
    entity: Option<String>,
    #[serde(default)]
    entity_group: Option<String>,
    #[serde(default)]
    index: Option<u32>,
    score: f32,
    start: u32,
    end: u32,
}

#[test]
fn every_aggregation_strategy_matches_the_pipeline() {
    let fixture: Fixture = read_fixture("ner_aggregation.json");
    let bytes = default_model();
    let model = Model::load(&bytes).unwrap();
    let n = model.labels.len();
    let mut checked = 0;
    for case in &fixture.cases {
        let mut tokens = vec![Token::default(); 512];
        let enc = model.tokenizer.encode(&case.text, &mut tokens).unwrap();
        let tokens = &tokens[..enc.len];
        let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
        assert_eq!(ids, case.input_ids, "tokenization of {:?}", case.text);
        for (strategy, expected) in [
            (Aggregation::None, &case.none),
            (Aggregation::Simple, &case.simple),
            (Aggregation::First, &case.first),
            (Aggregation::Average, &case.average),
            (Aggregation::Max, &case.max),
        ] {
            let mut probs: Vec<f32> = case.logits.concat();
            let mut scratch = vec![0f32; n];
            let mut out = vec![Entity::default(); tokens.len()];
            let input = DecodeInput {
                text: &case.text,
                tokens,
                tokenizer: &model.tokenizer,
                labels: &model.labels,
            };
            let count = decode(
                &input,
                &mut probs,
                n,
                strategy,
                &["O"],
                &mut scratch,
                &mut out,
            );
            let got = &out[..count];
            let describe = || {
                format!(
                    "{:?} on {:?}\n got {got:?}\n expected {expected:?}",
                    strategy, case.text
                )
            };
            assert_eq!(got.len(), expected.len(), "{}", describe());
            for (g, e) in got.iter().zip(expected.iter()) {
                let name = match strategy {
                    Aggregation::None => model.labels.get(g.label as usize).unwrap(),
                    _ => model.labels.entity_group(g.label as usize),
                };
                let expected_name = e.entity.as_deref().or(e.entity_group.as_deref()).unwrap();
                assert_eq!(name, expected_name, "{}", describe());
                assert_eq!((g.start, g.end), (e.start, e.end), "{}", describe());
                assert!((g.score - e.score).abs() < 2e-5, "{}", describe());
                if let Some(index) = e.index {
                    assert_eq!(g.index, index, "{}", describe());
                }
                checked += 1;
            }
        }
    }
    println!(
        "{checked} entities checked over {} texts x 5 strategies",
        fixture.cases.len()
    );
    assert!(checked > 1000);
}
