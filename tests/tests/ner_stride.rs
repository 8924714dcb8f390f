//! Token classification of long texts with a stride against the Hugging Face pipeline
//! (`stride=N`: overlapping windows, entities merged across windows; fixture from
//! `scripts/gen_stride_fixtures.py`): random models of two shapes, and the real Rampart model in
//! fp32 (f32 weights and activations: identical entities) and int8 (the shipped model).

use bertq_quantize::WeightPrecision;
use bertq_runtime::{Aggregation, Model, Precision, RunError, RunOptions, Session, TaskOutput};
use bertq_tests::random_bert::{write_hf_dir_with_vocab, RandomConfig, RandomHead};
use bertq_tests::{convert, default_model, rampart_dir, read_fixture};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    vocab: Vec<String>,
    models: Vec<FixtureModel>,
    rampart: Real,
}

#[derive(Deserialize)]
struct FixtureModel {
    name: String,
    seed: u64,
    window: usize,
    labels: Vec<String>,
    config: RandomConfig,
    texts: Vec<Text>,
}

#[derive(Deserialize)]
struct Real {
    window: usize,
    texts: Vec<Text>,
}

#[derive(Deserialize)]
struct Text {
    text: String,
    runs: Vec<Run>,
}

#[derive(Deserialize)]
struct Run {
    stride: usize,
    aggregation: String,
    windows: usize,
    /// `[entity_group, score, start, end]`.
    entities: Vec<(String, f32, u32, u32)>,
}

/// One text with one stride and strategy, and the pipeline's entities.
struct Case<'f> {
    text: &'f str,
    stride: usize,
    aggregation: &'f str,
    windows: usize,
    entities: Vec<RefEntity>,
}

fn cases(texts: &[Text]) -> Vec<Case<'_>> {
    texts
        .iter()
        .flat_map(|t| {
            t.runs.iter().map(|r| Case {
                text: &t.text,
                stride: r.stride,
                aggregation: &r.aggregation,
                windows: r.windows,
                entities: r
                    .entities
                    .iter()
                    .map(|(g, score, start, end)| RefEntity {
                        entity_group: g.clone(),
                        score: *score,
                        start: *start,
                        end: *end,
                    })
                    .collect(),
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
struct RefEntity {
    entity_group: String,
    score: f32,
    start: u32,
    end: u32,
}

fn run(model: &Model<'_>, window: usize, case: &Case<'_>, precision: Precision) -> Vec<RefEntity> {
    let mut session = Session::with_input_limit(model, window, 4096, 1).unwrap();
    session.set_precision(precision);
    let options = RunOptions {
        aggregation: Aggregation::from_name(case.aggregation).unwrap(),
        stride: Some(case.stride),
        ..RunOptions::default()
    };
    let out = session.run_with(case.text, &options).unwrap();
    assert!(!out.encoded.truncated);
    let TaskOutput::Entities(es) = out.task else {
        panic!("entities")
    };
    es.iter()
        .map(|e| RefEntity {
            entity_group: model.labels.entity_group(e.label as usize).to_string(),
            score: e.score,
            start: e.start,
            end: e.end,
        })
        .collect()
}

fn assert_same(got: &[RefEntity], expected: &[RefEntity], what: &str) {
    let ctx = || format!("{what}\n got {got:?}\n expected {expected:?}");
    assert_eq!(got.len(), expected.len(), "{}", ctx());
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(
            (&g.entity_group, g.start, g.end),
            (&e.entity_group, e.start, e.end),
            "{}",
            ctx()
        );
        assert!((g.score - e.score).abs() < 1e-4, "{}", ctx());
    }
}

#[test]
fn random_models_match_the_pipeline_with_stride() {
    let fixture: Fixture = read_fixture("ner_stride.json");
    let (mut entities, mut multi) = (0, 0);
    for m in &fixture.models {
        let dir = tempfile::tempdir().unwrap();
        let head = RandomHead::TokenClassification {
            labels: m.labels.len(),
        };
        write_hf_dir_with_vocab(
            dir.path(),
            &m.config,
            m.seed,
            Some(head),
            Some(&fixture.vocab),
        );
        let bytes = convert(dir.path(), WeightPrecision::F32);
        let model = Model::load(&bytes).unwrap();
        assert_eq!(model.labels.iter().collect::<Vec<_>>(), m.labels);
        for case in &cases(&m.texts) {
            let got = run(&model, m.window, case, Precision::F32);
            let what = format!(
                "{} stride {} {} ({} windows) on {:?}",
                m.name, case.stride, case.aggregation, case.windows, case.text
            );
            assert_same(&got, &case.entities, &what);
            entities += got.len();
            multi += usize::from(case.windows > 1);
        }
    }
    println!("{entities} entities, {multi} multi-window cases");
    assert!(entities > 1000 && multi > 40);
}

#[test]
fn rampart_fp32_matches_the_pipeline_with_stride() {
    let fixture: Fixture = read_fixture("ner_stride.json");
    // The package's own model, dequantized exactly by the ONNX importer (no Python step).
    let bytes = convert(&rampart_dir(), WeightPrecision::F32);
    let model = Model::load(&bytes).unwrap();
    let mut entities = 0;
    for case in &cases(&fixture.rampart.texts) {
        let got = run(&model, fixture.rampart.window, case, Precision::F32);
        let what = format!(
            "rampart stride {} {} ({} windows)",
            case.stride, case.aggregation, case.windows
        );
        assert_same(&got, &case.entities, &what);
        entities += got.len();
    }
    println!("{entities} Rampart entities identical");
    assert!(entities > 200);
}

/// The shipped int8 model finds the same entities (group and span) as fp32 Hugging Face on
/// nearly all of them.
#[test]
fn rampart_int8_agrees_with_the_pipeline_with_stride() {
    let fixture: Fixture = read_fixture("ner_stride.json");
    let bytes = default_model();
    let model = Model::load(&bytes).unwrap();
    let (mut same, mut total) = (0usize, 0usize);
    for case in &cases(&fixture.rampart.texts) {
        let got = run(&model, fixture.rampart.window, case, Precision::Int8);
        let key = |e: &RefEntity| (e.entity_group.clone(), e.start, e.end);
        let got: Vec<_> = got.iter().map(key).collect();
        same += case
            .entities
            .iter()
            .filter(|e| got.contains(&key(e)))
            .count();
        total += case.entities.len().max(got.len());
    }
    let agreement = same as f64 / total as f64;
    println!("int8 Rampart with stride: {same}/{total} entities identical ({agreement:.3})");
    assert!(agreement > 0.9, "{agreement}");
}

#[test]
fn stride_errors_are_typed() {
    let bytes = default_model();
    let model = Model::load(&bytes).unwrap();
    let long = "Call John Smith at +1 555 0100 tomorrow. ".repeat(20);
    let mut session = Session::with_input_limit(&model, 32, 256, 1).unwrap();
    let with = |stride, aggregation| RunOptions {
        stride: Some(stride),
        aggregation,
        ..RunOptions::default()
    };
    assert_eq!(
        session
            .run_with(&long, &with(4, Aggregation::None))
            .unwrap_err(),
        RunError::StrideNeedsAggregation
    );
    assert!(matches!(
        session.run_with(&long, &with(30, Aggregation::Simple)),
        Err(RunError::BadStride {
            stride: 30,
            max: 29
        })
    ));
    // Over half the window: more windows than entity slots.
    assert!(matches!(
        session.run_with(&long, &with(29, Aggregation::Simple)),
        Err(RunError::TooManyWindows { .. })
    ));
    // Longer than the session's input limit: refused, never cut.
    let longer = long.repeat(3);
    assert!(matches!(
        session.run_with(&longer, &with(8, Aggregation::Simple)),
        Err(RunError::TooLong { max: 256, .. })
    ));
    // Without a stride, the pipeline's default: truncated, and said so.
    let out = session.run(&long).unwrap();
    assert!(out.encoded.truncated);
    // With one, the whole text.
    let out = session
        .run_with(&long, &with(8, Aggregation::Simple))
        .unwrap();
    assert!(!out.encoded.truncated);
    let TaskOutput::Entities(es) = out.task else {
        panic!()
    };
    assert!(es.last().unwrap().end as usize > long.len() - 40, "{es:?}");
}
