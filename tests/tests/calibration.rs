//! Activation calibration and the sensitivity analysis: the observers against numpy
//! (`tests/fixtures/calibration.json`, `scripts/gen_calibration_fixtures.py`), `--keep-float N`
//! keeping exactly the layers the ranking names, and the per-layer error table in the report.

use bertq_quantize::calibrate::{self, Observer};
use bertq_quantize::plan::{plan_precision, PlanOptions};
use bertq_quantize::{load_input, ConvertOptions};
use bertq_runtime::format::names;
use bertq_runtime::kernels::Weights;
use bertq_runtime::{Model, ModelBytes, Session};
use bertq_tests::random_bert::{write_hf_dir_with_head, RandomConfig, RandomHead};
use bertq_tests::read_fixture;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Fixture {
    mse_candidates: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    values: Vec<f32>,
    minmax: f32,
    percentile: BTreeMap<String, f64>,
    mse_scale: f32,
    mse_sse: f64,
    sse_at_minmax: f64,
}

#[test]
fn observers_match_numpy() {
    let f: Fixture = read_fixture("calibration.json");
    assert_eq!(f.mse_candidates, calibrate::MSE_CANDIDATES);
    assert_eq!(f.cases.len(), 3);
    for c in &f.cases {
        assert_eq!(calibrate::minmax_scale(&c.values), c.minmax, "{}", c.name);
        for (p, &expected) in &c.percentile {
            let p: f64 = p.parse().unwrap();
            let got = calibrate::percentile_scale(&c.values, p) as f64;
            assert!(
                (got - expected).abs() <= 1e-6 * expected,
                "{} p{p}: {got} vs numpy {expected}",
                c.name
            );
        }
        // The brute-force search finds numpy's minimum (same candidates, same rounding).
        let s = calibrate::mse_scale(&c.values);
        let sse = calibrate::quantization_sse(&c.values, s);
        assert!(
            (sse - c.mse_sse).abs() <= 1e-9 * c.mse_sse,
            "{}: sse {sse} at {s} vs numpy {} at {}",
            c.name,
            c.mse_sse,
            c.mse_scale
        );
        assert!((s - c.mse_scale).abs() <= 1e-6 * c.mse_scale, "{}", c.name);
        let at_minmax = calibrate::quantization_sse(&c.values, c.minmax);
        assert!((at_minmax - c.sse_at_minmax).abs() <= 1e-9 * c.sse_at_minmax);
        assert!(sse <= at_minmax);
        assert_eq!(calibrate::scale(Observer::Mse, &c.values), s);
    }
}

fn config() -> RandomConfig {
    RandomConfig {
        num_hidden_layers: 2,
        hidden_size: 64,
        num_attention_heads: 4,
        intermediate_size: 256,
        vocab_size: 300,
        max_position_embeddings: 64,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
    }
}

fn texts() -> Vec<String> {
    (0..12)
        .map(|i| {
            (0..6 + i % 5)
                .map(|j| format!("tok{}", (i * 37 + j * 11) % 250))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn keep_float_keeps_the_layers_the_ranking_names_and_the_table_lists_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir_with_head(
        dir.path(),
        &config(),
        31,
        Some(RandomHead::TokenClassification { labels: 5 }),
    );
    let input = load_input(dir.path()).unwrap();
    let mut opts = ConvertOptions::default();
    let p = PlanOptions {
        keep_float: 3,
        texts: texts(),
        texts_name: "test".into(),
        ..Default::default()
    };
    let plan = plan_precision(&input, &p, &mut opts).unwrap();
    let sens = plan.sensitivity.expect("--keep-float runs the analysis");
    assert_eq!(sens.layers.len(), 12);
    assert_eq!(sens.metric, "entity_f1_vs_fp32");
    // Ranked most sensitive first: largest hidden-state error, then lowest task metric.
    for (i, w) in sens.layers.windows(2).enumerate() {
        assert_eq!(w[0].rank, i + 1);
        assert!(
            w[0].hidden_error > w[1].hidden_error
                || (w[0].hidden_error == w[1].hidden_error && w[0].task_value <= w[1].task_value),
            "{:?} before {:?}",
            w[0],
            w[1]
        );
    }
    let top: Vec<String> = sens.layers[..3].iter().map(|r| r.name.clone()).collect();
    assert_eq!(opts.keep_float, top);
    let bytes = ModelBytes::copy_from(&input.convert(&opts).unwrap().bytes);
    let model = Model::load(&bytes).unwrap();
    for (l, layer) in model.encoder.layers.iter().enumerate() {
        let lins = [
            &layer.query,
            &layer.key,
            &layer.value,
            &layer.attention_output,
            &layer.intermediate,
            &layer.output,
        ];
        for (lin, m) in lins.iter().zip(names::LAYER_LINEARS) {
            let name = format!("encoder.layer.{l}.{m}");
            let kept = top.contains(&name);
            assert_eq!(matches!(lin.weight, Weights::F16(_)), kept, "{name}");
            assert_eq!(matches!(lin.weight, Weights::I8(_)), !kept, "{name}");
        }
    }
    // An error budget keeps the fewest layers whose remaining errors fit it.
    let budget: f64 = sens.layers[2..].iter().map(|r| r.hidden_error).sum();
    assert_eq!(sens.keep_for_budget(budget), 2);
    assert_eq!(sens.keep_for_budget(f64::INFINITY), 0);
    assert_eq!(sens.keep_for_budget(0.0), 12);
    let mut budget_opts = ConvertOptions::default();
    let p = PlanOptions {
        error_budget: Some(budget),
        keep_float: 0,
        ..p
    };
    plan_precision(&input, &p, &mut budget_opts).unwrap();
    assert_eq!(budget_opts.keep_float, top[..2].to_vec());
    // The table (printed and in the JSON report) names every layer once, with its numbers.
    let table = sens.table();
    let json = serde_json::to_value(&sens).unwrap();
    let rows = json["layers"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    for r in &sens.layers {
        assert_eq!(
            table.matches(&format!(" {} ", r.name)).count(),
            1,
            "{table}"
        );
    }
    for key in ["name", "rank", "hidden_error", "task_value"] {
        assert!(rows.iter().all(|r| r.get(key).is_some()), "{key}");
    }
}

#[test]
fn static_scales_cover_every_linear_and_the_model_runs() {
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir_with_head(
        dir.path(),
        &config(),
        32,
        Some(RandomHead::SequenceClassification { labels: 3 }),
    );
    let input = load_input(dir.path()).unwrap();
    for observer in [Observer::MinMax, Observer::Percentile(99.9), Observer::Mse] {
        let mut opts = ConvertOptions::default();
        let p = PlanOptions {
            observer: Some(observer),
            texts: texts(),
            ..Default::default()
        };
        plan_precision(&input, &p, &mut opts).unwrap();
        assert_eq!(opts.input_scales.len(), 12, "{observer:?}");
        for l in 0..2 {
            let s = |m: &str| opts.input_scales[&format!("encoder.layer.{l}.{m}")];
            // Query, key and value see the same input: one scale.
            assert_eq!(s("attention.self.query"), s("attention.self.key"));
            assert_eq!(s("attention.self.query"), s("attention.self.value"));
        }
        let bytes = ModelBytes::copy_from(&input.convert(&opts).unwrap().bytes);
        let model = Model::load(&bytes).unwrap();
        assert!(model.encoder.layers[1].output.input_scale.is_some());
        let mut session = Session::with_owned_memory(&model, 32).unwrap();
        session.run("tok1 tok2 tok3").unwrap();
    }
    // Percentiles outside (0, 100] are refused.
    let p = PlanOptions {
        observer: Some(Observer::Percentile(120.0)),
        texts: texts(),
        ..Default::default()
    };
    assert!(plan_precision(&input, &p, &mut ConvertOptions::default()).is_err());
}
