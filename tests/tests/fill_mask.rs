//! Fill-mask (`BertForMaskedLM`) against the Hugging Face `fill-mask` pipeline (`top_k=5`), next
//! sentence prediction against `BertForNextSentencePrediction`'s logits, and WordPiece decoding
//! against `tokenizer.decode`, on randomly initialised models both sides build from the same
//! seeded weights (fixture from `scripts/gen_mlm_fixtures.py`).

use bertq_quantize::WeightPrecision;
use bertq_runtime::format::TaskHead;
use bertq_runtime::heads::{fill_mask, ScoreFunction};
use bertq_runtime::tokenizer::VocabTables;
use bertq_runtime::{Model, Precision, RunError, RunOptions, Session, TaskOutput};
use bertq_tests::random_bert::{write_hf_dir_with_head, RandomConfig, RandomHead};
use bertq_tests::{convert, read_fixture};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    models: Vec<FixtureModel>,
    decode_vocab: Vec<String>,
    decodes: Vec<Decode>,
}

#[derive(Deserialize)]
struct FixtureModel {
    name: String,
    seed: u64,
    nsp_seed: u64,
    config: RandomConfig,
    cases: Vec<Case>,
    pairs: Vec<Pair>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    input_ids: Vec<u32>,
    masks: Vec<Vec<Candidate>>,
}

#[derive(Deserialize, Debug)]
struct Candidate {
    score: f32,
    token: u32,
    token_str: String,
    sequence: String,
}

#[derive(Deserialize)]
struct Pair {
    text: String,
    text_pair: String,
    input_ids: Vec<u32>,
    logits: Vec<f32>,
    probs: Vec<f32>,
}

#[derive(Deserialize)]
struct Decode {
    ids: Vec<u32>,
    skip_special_tokens: bool,
    text: String,
}

/// The pipeline's candidates for every mask, as bertq prints them.
fn candidates(
    model: &Model<'_>,
    session: &mut Session<'_, '_, impl bertq_runtime::session::Storage>,
    text: &str,
) -> (Vec<u32>, Vec<Vec<Candidate>>) {
    let out = session.run(text).unwrap();
    let ids: Vec<u32> = out.tokens.iter().map(|t| t.id).collect();
    let TaskOutput::FillMask {
        top_k,
        positions,
        ids: predicted,
        scores,
    } = out.task
    else {
        panic!("fill-mask output")
    };
    let vocab = model.tokenizer.vocab();
    let settings = model.tokenizer.settings();
    let single = positions.len() == 1;
    let rows = positions
        .iter()
        .enumerate()
        .map(|(m, &pos)| {
            (0..top_k)
                .map(|r| {
                    let id = predicted[m * top_k + r];
                    let seq =
                        fill_mask::sequence_ids(out.tokens, settings, pos as usize, id, single);
                    Candidate {
                        score: scores[m * top_k + r],
                        token: id,
                        token_str: fill_mask::decode(vocab, std::iter::once(id)),
                        sequence: fill_mask::decode(vocab, seq),
                    }
                })
                .collect()
        })
        .collect();
    (ids, rows)
}

fn masked_lm(m: &FixtureModel, precision: WeightPrecision) -> bertq_runtime::ModelBytes {
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir_with_head(dir.path(), &m.config, m.seed, Some(RandomHead::MaskedLm));
    convert(dir.path(), precision)
}

#[test]
fn f32_fill_mask_matches_the_pipeline() {
    let fixture: Fixture = read_fixture("fill_mask.json");
    for m in &fixture.models {
        let bytes = masked_lm(m, WeightPrecision::F32);
        let model = Model::load(&bytes).unwrap();
        assert_eq!(model.task(), TaskHead::FillMask);
        let mut session = Session::with_owned_memory(&model, 32).unwrap();
        session.set_precision(Precision::F32);
        for case in &m.cases {
            let (ids, rows) = candidates(&model, &mut session, &case.text);
            assert_eq!(ids, case.input_ids, "{}: {:?}", m.name, case.text);
            assert_eq!(rows.len(), case.masks.len(), "{}: {:?}", m.name, case.text);
            for (got, want) in rows.iter().zip(&case.masks) {
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(want) {
                    let ctx = format!("{} {:?}: {g:?} vs {w:?}", m.name, case.text);
                    assert_eq!(g.token, w.token, "{ctx}");
                    assert!((g.score - w.score).abs() < 1e-5, "{ctx}");
                    assert_eq!(g.token_str, w.token_str, "{ctx}");
                    assert_eq!(g.sequence, w.sequence, "{ctx}");
                }
            }
        }
    }
}

#[test]
fn int8_fill_mask_keeps_clear_top_predictions() {
    let fixture: Fixture = read_fixture("fill_mask.json");
    let mut checked = 0;
    for m in &fixture.models {
        let bytes = masked_lm(m, WeightPrecision::Int8);
        let model = Model::load(&bytes).unwrap();
        let mut session = Session::with_owned_memory(&model, 32).unwrap();
        for case in &m.cases {
            let (_, rows) = candidates(&model, &mut session, &case.text);
            for (got, want) in rows.iter().zip(&case.masks) {
                if want[0].score - want[1].score > 0.05 {
                    assert_eq!(got[0].token, want[0].token, "{} {:?}", m.name, case.text);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 4, "only {checked} masks had a clear fp32 winner");
}

#[test]
fn mask_count_and_top_k_bounds() {
    let fixture: Fixture = read_fixture("fill_mask.json");
    let m = &fixture.models[0];
    let bytes = masked_lm(m, WeightPrecision::Int8);
    let model = Model::load(&bytes).unwrap();
    let mut session = Session::with_owned_memory(&model, 64).unwrap();
    let max = fill_mask::MAX_MASKS;
    assert_eq!(
        session.run("tok7 tok8").unwrap_err(),
        RunError::Masks { found: 0, max }
    );
    let many = "[MASK] ".repeat(max + 1);
    assert_eq!(
        session.run(&many).unwrap_err(),
        RunError::Masks {
            found: max + 1,
            max
        }
    );
    for (top_k, expected) in [(0, 1), (3, 3), (1000, fill_mask::MAX_TOP_K)] {
        let options = RunOptions {
            top_k,
            ..RunOptions::default()
        };
        let out = session.run_with("tok7 [MASK]", &options).unwrap();
        let TaskOutput::FillMask {
            top_k, ids, scores, ..
        } = out.task
        else {
            panic!("fill-mask output")
        };
        assert_eq!(
            (top_k, ids.len(), scores.len()),
            (expected, expected, expected)
        );
        assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    }
}

#[test]
fn next_sentence_prediction_matches_transformers() {
    let fixture: Fixture = read_fixture("fill_mask.json");
    for m in &fixture.models {
        let dir = tempfile::tempdir().unwrap();
        write_hf_dir_with_head(
            dir.path(),
            &m.config,
            m.nsp_seed,
            Some(RandomHead::NextSentence),
        );
        let bytes = convert(dir.path(), WeightPrecision::F32);
        let model = Model::load(&bytes).unwrap();
        assert_eq!(
            model.task(),
            TaskHead::SequenceClassification { multi_label: false }
        );
        let labels: Vec<&str> = model.labels.iter().collect();
        assert_eq!(labels, ["isNext", "notNext"]);
        let mut session = Session::with_owned_memory(&model, 32).unwrap();
        session.set_precision(Precision::F32);
        for p in &m.pairs {
            for (function, expected) in [(None, &p.probs), (Some(ScoreFunction::None), &p.logits)] {
                let options = RunOptions {
                    function_to_apply: function,
                    ..RunOptions::default()
                };
                let out = session.run_pair(&p.text, &p.text_pair, &options).unwrap();
                let ids: Vec<u32> = out.tokens.iter().map(|t| t.id).collect();
                assert_eq!(ids, p.input_ids, "{}: {:?}", m.name, p.text);
                let TaskOutput::Classification { scores, .. } = out.task else {
                    panic!("classification output")
                };
                for (s, e) in scores.iter().zip(expected.iter()) {
                    assert!(
                        (s - e).abs() < 1e-5,
                        "{} {function:?}: {scores:?} vs {expected:?}",
                        m.name
                    );
                }
            }
        }
    }
}

#[test]
fn wordpiece_decoding_matches_the_tokenizer() {
    let fixture: Fixture = read_fixture("fill_mask.json");
    let tokens: Vec<&str> = fixture.decode_vocab.iter().map(String::as_str).collect();
    let tables = VocabTables::build(&tokens);
    let vocab = tables.vocab().unwrap();
    let settings = bertq_runtime::format::TokenizerSettings {
        clean_text: true,
        handle_chinese_chars: true,
        strip_accents: true,
        lowercase: true,
        max_input_chars_per_word: 100,
        cls_id: 2,
        sep_id: 3,
        pad_id: 0,
        unk_id: 1,
        mask_id: 4,
        model_max_length: 512,
    };
    for d in &fixture.decodes {
        let ids = d
            .ids
            .iter()
            .copied()
            .filter(|&i| !(d.skip_special_tokens && fill_mask::is_special(&settings, i)));
        assert_eq!(
            fill_mask::decode(&vocab, ids),
            d.text,
            "{:?} skip {}",
            d.ids,
            d.skip_special_tokens
        );
    }
}
