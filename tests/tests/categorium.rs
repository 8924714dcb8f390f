//! The real categorium models (Keras `tf_model.h5`, English and French), converted at test time
//! by `scripts/convert_categorium.py` and `bertq-quantize`, against `transformers`'
//! TFBertForSequenceClassification on the original file (`scripts/gen_categorium_fixtures.py`):
//! tokenization (custom accent-stripped vocabulary), f32 logits to 1e-4 and identical labels,
//! and the int8 model's top label where the f32 margin allows.

use bertq_quantize::WeightPrecision;
use bertq_runtime::heads::ScoreFunction;
use bertq_runtime::tokenizer::Token;
use bertq_runtime::{Model, Precision, RunOptions, Session, TaskOutput};
use bertq_tests::{cache_dir, convert, max_abs_diff, read_fixture, workspace_root};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Deserialize)]
struct Fixture {
    languages: BTreeMap<String, Language>,
}

#[derive(Deserialize)]
struct Language {
    labels: Vec<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    logits: Vec<f32>,
    label: String,
}

/// Runs the committed converter (h5py in the venv `scripts/fetch_models.sh` makes).
fn convert_keras(lang: &str, out: &Path) {
    let python = std::env::var_os("BERTQ_H5_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("h5venv/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: run scripts/fetch_models.sh",
        python.display()
    );
    let pkg = cache_dir().join("models/categorium/categorium-0.2.2/categorium");
    let status = Command::new(&python)
        .arg(workspace_root().join("scripts/convert_categorium.py"))
        .arg(lang)
        .arg(out)
        .arg(&pkg)
        .status()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    assert!(status.success(), "convert_categorium.py {lang} failed");
}

fn logits(
    session: &mut Session<'_, '_, bertq_runtime::session::OwnedMemory>,
    text: &str,
) -> Vec<f32> {
    let opts = RunOptions {
        function_to_apply: Some(ScoreFunction::None),
        ..Default::default()
    };
    let out = session.run_with(text, &opts).unwrap();
    let TaskOutput::Classification { scores, .. } = out.task else {
        panic!("categorium is a sequence classifier")
    };
    scores.to_vec()
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

/// Top-1 minus top-2 logit.
fn margin(v: &[f32]) -> f32 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    s[0] - s[1]
}

#[test]
fn categorium_matches_transformers_in_english_and_french() {
    let fixture: Fixture = read_fixture("categorium.json");
    assert!(fixture.languages.contains_key("en") && fixture.languages.contains_key("fr"));
    for (lang, l) in &fixture.languages {
        let dir = tempfile::tempdir().unwrap();
        convert_keras(lang, dir.path());
        let f32_bytes = convert(dir.path(), WeightPrecision::F32);
        let int8_bytes = convert(dir.path(), WeightPrecision::Int8);
        let f32_model = Model::load(&f32_bytes).unwrap();
        let int8_model = Model::load(&int8_bytes).unwrap();
        let labels: Vec<&str> = f32_model.labels.iter().collect();
        assert_eq!(labels, l.labels, "{lang}: labels in output order");
        let mut f32_session = Session::with_owned_memory(&f32_model, 128).unwrap();
        f32_session.set_precision(Precision::F32);
        let mut int8_session = Session::with_owned_memory(&int8_model, 128).unwrap();
        let (mut worst, mut agree, mut decided, mut decided_agree) = (0.0f32, 0, 0, 0);
        for c in &l.cases {
            let mut tokens = vec![Token::default(); 128];
            let enc = f32_model.tokenizer.encode(&c.text, &mut tokens).unwrap();
            let ids: Vec<u32> = tokens[..enc.len].iter().map(|t| t.id).collect();
            assert_eq!(ids, c.ids, "{lang}: tokens of {:?}", c.text);
            let got = logits(&mut f32_session, &c.text);
            let diff = max_abs_diff(&got, &c.logits);
            worst = worst.max(diff);
            assert!(
                diff <= 1e-4,
                "{lang}: {:?}: logits differ by {diff}",
                c.text
            );
            assert_eq!(labels[argmax(&got)], c.label, "{lang}: {:?}", c.text);
            let q = logits(&mut int8_session, &c.text);
            let same = argmax(&q) == argmax(&c.logits);
            agree += usize::from(same);
            // int8 must agree where the f32 margin is clearly larger than int8's logit error.
            if margin(&c.logits) > 0.1 {
                decided += 1;
                decided_agree += usize::from(same);
                assert!(same, "{lang}: int8 top label differs on {:?}", c.text);
            }
        }
        println!(
            "categorium {lang}: {} texts, f32 logits max |diff| {worst:.2e}, labels identical; \
             int8 top label agrees on {agree}/{} ({decided_agree}/{decided} with f32 margin > 0.1)",
            l.cases.len(),
            l.cases.len()
        );
    }
}

/// The other four languages (no TensorFlow reference committed for them): the conversion runs,
/// the labels come from the CSV in output order, and int8 agrees with f32 on a sample.
#[test]
fn other_categorium_languages_convert() {
    for (lang, text, first_label) in [
        ("es", "Receta fácil de pastel de chocolate", "Adulto"),
        ("pt", "Receita fácil de bolo de chocolate", "Adulto"),
        (
            "it",
            "Ricetta facile della torta al cioccolato",
            "Alimentazione",
        ),
        ("de", "Einfaches Rezept für Schokoladenkuchen", "Autos"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        convert_keras(lang, dir.path());
        let bytes = convert(dir.path(), WeightPrecision::Int8);
        let model = Model::load(&bytes).unwrap();
        assert_eq!(model.labels.len(), 27, "{lang}");
        assert_eq!(model.labels.get(0), Some(first_label), "{lang}");
        let mut session = Session::with_owned_memory(&model, 64).unwrap();
        let int8 = logits(&mut session, text);
        session.set_precision(Precision::F32);
        let f32 = logits(&mut session, text);
        assert_eq!(argmax(&int8), argmax(&f32), "{lang}: {text}");
    }
}
