//! `train-head`: the trainer against scikit-learn (fixture from
//! `scripts/gen_train_head_fixtures.py`), TSV parsing and its errors, and a head trained on the
//! real MiniLM encoder written as a `.bertq` that the runtime loads and runs.

use bertq_quantize::train::{self, Features, FitOptions};
use bertq_quantize::{load_input, ConvertOptions};
use bertq_runtime::format::{Pooling, TaskHead};
use bertq_runtime::{Model, ModelBytes, Session, TaskOutput};
use bertq_tests::{minilm_dir, read_fixture};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    l2: f64,
    d: usize,
    k: usize,
    train_x: Vec<f32>,
    train_y: Vec<u32>,
    test_x: Vec<f32>,
    test_y: Vec<u32>,
    weight: Vec<f64>,
    bias: Vec<f64>,
    test_logits: Vec<f64>,
    test_accuracy: f64,
}

fn softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn centred(v: &[f64]) -> Vec<f64> {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| x - m).collect()
}

#[test]
fn trainer_reaches_the_scikit_learn_solution() {
    let f: Fixture = read_fixture("train_head.json");
    let xtr = Features {
        x: f.train_x.clone(),
        d: f.d,
    };
    let xte = Features {
        x: f.test_x.clone(),
        d: f.d,
    };
    // The same objective, optimised to convergence (no early stopping).
    let opts = FitOptions {
        l2: f.l2,
        max_iter: 50_000,
        tol: 1e-9,
        patience: 0,
        ..Default::default()
    };
    let r = train::fit(&xtr, &f.train_y, f.k, None, &opts);
    assert!(r.converged, "no convergence in {} steps", r.iterations);
    let h = &r.head;
    let wmax = f.weight.iter().map(|v| v.abs()).fold(0.0, f64::max);
    let wdiff = h
        .weight
        .iter()
        .zip(&f.weight)
        .map(|(&a, b)| (a as f64 - b).abs())
        .fold(0.0, f64::max);
    let bias: Vec<f64> = h.bias.iter().map(|&b| b as f64).collect();
    let bdiff = centred(&bias)
        .iter()
        .zip(centred(&f.bias))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let mut pdiff = 0.0f64;
    let mut z = vec![0.0; f.k];
    for i in 0..xte.n() {
        h.logits(xte.row(i), &mut z);
        let (p, q) = (softmax(&z), softmax(&f.test_logits[i * f.k..(i + 1) * f.k]));
        pdiff = p
            .iter()
            .zip(&q)
            .map(|(a, b)| (a - b).abs())
            .fold(pdiff, f64::max);
    }
    let acc = h.accuracy(&xte, &f.test_y);
    println!(
        "trainer vs scikit-learn: {} steps, weights max |diff| {wdiff:.2e} (max |w| {wmax:.2}), \
         intercepts {bdiff:.2e}, test probabilities {pdiff:.2e}, test accuracy {acc:.4} vs {:.4}",
        r.iterations, f.test_accuracy
    );
    assert!(wdiff <= 1e-3 * wmax, "weights differ by {wdiff}");
    assert!(
        bdiff <= 1e-3 * wmax.max(1.0),
        "intercepts differ by {bdiff}"
    );
    assert!(pdiff <= 1e-4, "probabilities differ by {pdiff}");
    assert!(
        (acc - f.test_accuracy).abs() < 1e-9,
        "{acc} vs {}",
        f.test_accuracy
    );
}

#[test]
fn training_with_held_out_split_and_early_stopping_converges() {
    let f: Fixture = read_fixture("train_head.json");
    let all = Features {
        x: f.train_x.clone(),
        d: f.d,
    };
    let (tr, va) = train::split(all.n(), 0.2, 3);
    assert_eq!((tr.len(), va.len()), (192, 48));
    // Deterministic for a seed, different for another.
    assert_eq!(train::split(all.n(), 0.2, 3), (tr.clone(), va.clone()));
    assert_ne!(train::split(all.n(), 0.2, 4).1, va);
    let (xt, xv) = (all.select(&tr), all.select(&va));
    let yt: Vec<u32> = tr.iter().map(|&i| f.train_y[i]).collect();
    let yv: Vec<u32> = va.iter().map(|&i| f.train_y[i]).collect();
    let run = || {
        train::train(
            &xt,
            &yt,
            f.k,
            (&xv, &yv),
            &[1e-1, 1e-2, 1e-3],
            &FitOptions::default(),
            &|_| {},
        )
    };
    let (best, trials) = run();
    assert_eq!(trials.len(), 3);
    let test = Features {
        x: f.test_x.clone(),
        d: f.d,
    };
    let acc = best.result.head.accuracy(&test, &f.test_y);
    println!(
        "held-out accuracy {:.4} (l2 {}), test accuracy {acc:.4} (scikit-learn {:.4})",
        best.result.valid_accuracy.unwrap(),
        best.l2,
        f.test_accuracy
    );
    assert!(best.result.valid_accuracy.unwrap() >= 0.95);
    assert!(acc >= f.test_accuracy - 0.02);
    assert_eq!(run().0.result.head, best.result.head, "not deterministic");
}

#[test]
fn tsv_parsing_and_its_errors() {
    let t = train::parse_tsv(
        "text\tlabel\r\nI loved it\tpos\n\nawful\tneg\na\ttab\tpos\n",
        None,
    )
    .unwrap();
    assert_eq!(t.labels, ["neg", "pos"]);
    assert_eq!(t.texts, ["I loved it", "awful", "a\ttab"]);
    assert_eq!(t.targets, [1, 0, 1]);
    let order = ["pos".to_string(), "neg".to_string()];
    let t = train::parse_tsv("good\tpos\nbad\tneg\n", Some(&order)).unwrap();
    assert_eq!(t.targets, [0, 1]);
    let err = |data: &str, order: Option<&[String]>| train::parse_tsv(data, order).unwrap_err();
    assert!(err("good\tpos\nno tab here\n", None).contains("line 2"));
    assert!(err("good\tpos\nbad\t \n", None).contains("line 2: empty label"));
    assert!(err("\tpos\n", None).contains("line 1: empty text"));
    assert!(err("a\tpos\nb\tpos\n", None).contains("at least two labels"));
    assert!(err("", None).contains("no examples"));
    let only_pos = ["pos".to_string()];
    assert!(err("a\tpos\nb\tneg\n", Some(&only_pos)).contains("`neg`"));
}

#[test]
fn head_on_minilm_is_written_and_runs() {
    let data = "\
The pizza was delicious and the pasta even better\tfood
I cooked a spicy curry with rice for dinner\tfood
Fresh bread and cheese make a perfect breakfast\tfood
This chocolate cake recipe needs butter and sugar\tfood
We ordered sushi and ramen at the new restaurant\tfood
The soup needs more salt and some pepper\tfood
The striker scored twice in the second half\tsport
Our team won the basketball championship\tsport
She ran the marathon in under three hours\tsport
The tennis final went to five sets\tsport
The goalkeeper saved a penalty in extra time\tsport
He trains at the gym and swims every morning\tsport
";
    let t = train::parse_tsv(data, None).unwrap();
    let input = load_input(&minilm_dir()).unwrap();
    let opts = ConvertOptions::default();
    let encoder_bytes = ModelBytes::copy_from(&input.convert(&opts).unwrap().bytes);
    let encoder = Model::load(&encoder_bytes).unwrap();
    let x = train::embed(&encoder, &t.texts, 64, 1, &|_| {}).unwrap();
    let (tr, va) = train::split(t.texts.len(), 0.25, 0);
    let yt: Vec<u32> = tr.iter().map(|&i| t.targets[i]).collect();
    let yv: Vec<u32> = va.iter().map(|&i| t.targets[i]).collect();
    let (best, _) = train::train(
        &x.select(&tr),
        &yt,
        2,
        (&x.select(&va), &yv),
        &[1e-2, 1e-3],
        &FitOptions::default(),
        &|_| {},
    );
    let bytes = train::write_model(&input, &best.result.head, &t.labels, &opts).unwrap();
    let bytes = ModelBytes::copy_from(&bytes);
    let model = Model::load(&bytes).unwrap();
    assert_eq!(
        model.task(),
        TaskHead::PooledClassification {
            pooling: Pooling::Mean,
            normalize: true
        }
    );
    assert_eq!(model.labels.iter().collect::<Vec<_>>(), ["food", "sport"]);
    let mut session = Session::with_owned_memory(&model, 64).unwrap();
    let mut right = 0;
    for (text, &y) in t.texts.iter().zip(&t.targets) {
        let out = session.run(text).unwrap();
        let TaskOutput::Classification { scores, ranking } = out.task else {
            panic!("a classifier")
        };
        assert!((scores.iter().sum::<f32>() - 1.0).abs() < 1e-5, "softmax");
        // The runtime computes what the trainer's head computes on the same embedding.
        let i = t.texts.iter().position(|s| s == text).unwrap();
        let mut z = vec![0.0f64; 2];
        best.result.head.logits(x.row(i), &mut z);
        let p1 = 1.0 / (1.0 + (z[0] - z[1]).exp());
        assert!(
            (scores[1] as f64 - p1).abs() < 1e-4,
            "{text}: {scores:?} vs {p1}"
        );
        right += usize::from(ranking[0] == y);
    }
    assert!(right >= 11, "{right}/12 training texts right");
    let out = session
        .run("The chef grilled salmon with lemon and herbs")
        .unwrap();
    let TaskOutput::Classification { ranking, .. } = out.task else {
        panic!("a classifier")
    };
    assert_eq!(model.labels.get(ranking[0] as usize), Some("food"));
}
