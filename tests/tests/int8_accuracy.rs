//! What int8 costs, measured against the fp32 Hugging Face reference (fixtures from
//! `scripts/gen_model_fixtures.py`): MiniLM sentence embeddings and Rampart PII entities.

use bertq_quantize::WeightPrecision;
use bertq_runtime::{Model, Session, TaskOutput};
use bertq_tests::{convert, cosine, default_model, minilm_dir, read_fixture};
use serde::Deserialize;

#[derive(Deserialize)]
struct MiniLmFixture {
    sentences: Vec<MiniLmSentence>,
}

#[derive(Deserialize)]
struct MiniLmSentence {
    text: String,
    embedding: Vec<f32>,
}

#[test]
fn minilm_int8_embeddings_stay_close_to_fp32() {
    let fixture: MiniLmFixture = read_fixture("minilm.json");
    let bytes = convert(&minilm_dir(), WeightPrecision::Int8);
    let model = Model::load(&bytes).unwrap();
    let mut session = Session::with_owned_memory(&model, 512).unwrap();
    let mut cosines = Vec::new();
    for s in &fixture.sentences {
        let out = session.run(&s.text).unwrap();
        let TaskOutput::Embedding(e) = out.task else {
            panic!("MiniLM is an embedding model")
        };
        cosines.push(cosine(e, &s.embedding));
    }
    let mean = cosines.iter().sum::<f64>() / cosines.len() as f64;
    let min = cosines.iter().cloned().fold(f64::INFINITY, f64::min);
    println!(
        "MiniLM int8 vs fp32 embeddings over {} sentences: mean cosine {mean:.5}, min {min:.5}",
        cosines.len()
    );
    assert!(cosines.len() >= 50);
    assert!(mean >= 0.99, "mean cosine {mean}");
}

#[derive(Deserialize)]
struct RampartFixture {
    sentences: Vec<RampartSentence>,
}

#[derive(Deserialize)]
struct RampartSentence {
    text: String,
    entities: Vec<RefEntity>,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
struct RefEntity {
    entity_group: String,
    score: f32,
    start: u32,
    end: u32,
}

/// The shipped int8 Rampart model against `transformers`' fp32 pipeline (aggregation "simple").
#[test]
fn rampart_int8_entities_agree_with_fp32_pipeline() {
    let fixture: RampartFixture = read_fixture("rampart_ner.json");
    let bytes = default_model();
    let model = Model::load(&bytes).unwrap();
    let mut session = Session::with_owned_memory(&model, 512).unwrap();
    let (mut reference, mut ours, mut matched) = (0usize, 0usize, 0usize);
    for s in &fixture.sentences {
        let out = session.run(&s.text).unwrap();
        assert!(!out.encoded.truncated);
        let TaskOutput::Entities(entities) = out.task else {
            panic!("Rampart is a token classification model")
        };
        let found: Vec<(String, u32, u32)> = entities
            .iter()
            .map(|e| {
                (
                    model.labels.entity_group(e.label as usize).to_string(),
                    e.start,
                    e.end,
                )
            })
            .collect();
        reference += s.entities.len();
        ours += found.len();
        for r in &s.entities {
            let key = (r.entity_group.clone(), r.start, r.end);
            if found.contains(&key) {
                matched += 1;
            } else {
                println!("missed {key:?} in {:?}", s.text);
            }
        }
    }
    let recall = matched as f64 / reference as f64;
    let precision = matched as f64 / ours as f64;
    println!(
        "Rampart int8 vs fp32 over {} sentences: {matched} of {reference} reference entities \
         reproduced exactly ({:.1}%), {ours} found ({:.1}% exact)",
        fixture.sentences.len(),
        recall * 100.0,
        precision * 100.0
    );
    assert!(fixture.sentences.len() >= 40);
    assert!(recall >= 0.95, "recall {recall}");
    assert!(precision >= 0.95, "precision {precision}");
}

/// Where the int8 spans agree with the fp32 pipeline, their scores (mean token probability)
/// must be close too: int8 should not change the model's confidence.
#[test]
fn rampart_entity_scores_track_the_reference() {
    let fixture: RampartFixture = read_fixture("rampart_ner.json");
    let bytes = default_model();
    let model = Model::load(&bytes).unwrap();
    let mut session = Session::with_owned_memory(&model, 512).unwrap();
    let mut diffs = Vec::new();
    for s in &fixture.sentences {
        let out = session.run(&s.text).unwrap();
        let TaskOutput::Entities(entities) = out.task else {
            panic!("Rampart is a token classification model")
        };
        for e in entities {
            let group = model.labels.entity_group(e.label as usize);
            if let Some(r) = s
                .entities
                .iter()
                .find(|r| r.entity_group == group && r.start == e.start && r.end == e.end)
            {
                diffs.push((r.score - e.score).abs());
            }
        }
    }
    diffs.sort_by(f32::total_cmp);
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    let p90 = diffs[diffs.len() * 9 / 10];
    println!(
        "entity score |int8 - fp32| over {} matched entities: mean {mean:.4}, p90 {p90:.4}, max {:.4}",
        diffs.len(),
        diffs.last().unwrap()
    );
    assert!(mean < 0.02, "mean score difference {mean}");
    assert!(p90 < 0.05, "p90 score difference {p90}");
}
