//! The f32 reference path against Hugging Face `transformers` (fixtures from
//! `scripts/gen_model_fixtures.py`): randomly initialised models of several shapes, whose weights
//! both sides generate from the same seed, and the real MiniLM-L6.

use bertq_quantize::WeightPrecision;
use bertq_runtime::{Model, Precision, Session, TaskOutput};
use bertq_tests::random_bert::{write_hf_dir, RandomModels};
use bertq_tests::{convert, cosine, max_abs_diff, minilm_dir, read_fixture};
use serde::Deserialize;

const F32_TOLERANCE: f32 = 1e-4;

#[test]
fn random_models_f32_path_matches_transformers() {
    let fixture: RandomModels = read_fixture("random_models.json");
    assert!(fixture.models.len() >= 5);
    for m in &fixture.models {
        let dir = tempfile::tempdir().unwrap();
        write_hf_dir(dir.path(), &m.config, m.seed);
        let bytes = convert(dir.path(), WeightPrecision::F32);
        let model = Model::load(&bytes).unwrap();
        let max_seq = m
            .inputs
            .iter()
            .map(|i| i.input_ids.len())
            .max()
            .unwrap()
            .max(2);
        let mut session = Session::with_owned_memory(&model, max_seq).unwrap();
        session.set_precision(Precision::F32);
        for input in &m.inputs {
            let hidden = session
                .run_ids(&input.input_ids, Some(&input.token_type_ids))
                .unwrap();
            let expected: Vec<f32> = input.last_hidden_state.concat();
            let diff = max_abs_diff(hidden, &expected);
            println!(
                "{} seq {}: max abs diff {diff:.2e}",
                m.name,
                input.input_ids.len()
            );
            assert!(diff <= F32_TOLERANCE, "{}: max abs diff {diff}", m.name);
        }

        // The int8 file of the same model stays close to the reference (sanity, not a target).
        let bytes = convert(dir.path(), WeightPrecision::Int8);
        let model = Model::load(&bytes).unwrap();
        let mut session = Session::with_owned_memory(&model, max_seq).unwrap();
        for input in &m.inputs {
            let hidden = session
                .run_ids(&input.input_ids, Some(&input.token_type_ids))
                .unwrap();
            let c = cosine(hidden, &input.last_hidden_state.concat());
            println!(
                "{} seq {}: int8 cosine {c:.5}",
                m.name,
                input.input_ids.len()
            );
            assert!(c > 0.98, "{}: int8 cosine {c}", m.name);
        }
    }
}

#[derive(Deserialize)]
struct MiniLmFixture {
    sentences: Vec<MiniLmSentence>,
}

#[derive(Deserialize)]
struct MiniLmSentence {
    text: String,
    input_ids: Vec<u32>,
    embedding: Vec<f32>,
    #[serde(default)]
    last_hidden_state: Option<Vec<Vec<f32>>>,
}

#[test]
fn minilm_f32_path_matches_transformers() {
    let fixture: MiniLmFixture = read_fixture("minilm.json");
    let bytes = convert(&minilm_dir(), WeightPrecision::F32);
    let model = Model::load(&bytes).unwrap();
    let mut session = Session::with_owned_memory(&model, 512).unwrap();
    session.set_precision(Precision::F32);
    let mut checked = 0;
    for s in &fixture.sentences {
        if let Some(expected) = &s.last_hidden_state {
            let hidden = session.run_ids(&s.input_ids, None).unwrap();
            let diff = max_abs_diff(hidden, &expected.concat());
            println!(
                "hidden states, {} tokens: max abs diff {diff:.2e}",
                s.input_ids.len()
            );
            assert!(diff <= F32_TOLERANCE, "{:?}: max abs diff {diff}", s.text);
            checked += 1;
        }
        // Tokenizer + encoder + pooling end to end.
        let out = session.run(&s.text).unwrap();
        let ids: Vec<u32> = out.tokens.iter().map(|t| t.id).collect();
        assert_eq!(ids, s.input_ids, "tokenization of {:?}", s.text);
        let TaskOutput::Embedding(e) = out.task else {
            panic!("MiniLM is an embedding model")
        };
        let diff = max_abs_diff(e, &s.embedding);
        assert!(
            diff <= F32_TOLERANCE,
            "{:?}: embedding max abs diff {diff}",
            s.text
        );
    }
    assert!(checked >= 4);
}
