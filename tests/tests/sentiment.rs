//! The shipped sentiment model (`models/sentiment-minilm.bertq`, built by
//! `scripts/build_sentiment_model.sh` with `train-head`): its accuracy on the committed
//! Rotten Tomatoes test split (`tests/fixtures/sentiment_test.tsv`, never seen in training),
//! run through the int8 runtime as on the device.

use bertq_quantize::train;
use bertq_runtime::format::{Pooling, TaskHead};
use bertq_runtime::{Model, ModelBytes, Session, TaskOutput};
use bertq_tests::{fixture, workspace_root};

/// The test accuracy models/README.md reports (`scripts/build_sentiment_model.sh`).
const CLAIMED: f64 = 0.7745;
/// Kernels differ per CPU (rounding of int8 accumulations): allow a few flipped borderline texts.
const TOLERANCE: f64 = 0.005;

#[test]
fn shipped_sentiment_model_keeps_its_test_accuracy() {
    let bytes = ModelBytes::read(&workspace_root().join("models/sentiment-minilm.bertq")).unwrap();
    let model = Model::load(&bytes).unwrap();
    assert_eq!(
        model.task(),
        TaskHead::PooledClassification {
            pooling: Pooling::Mean,
            normalize: true
        }
    );
    let labels: Vec<&str> = model.labels.iter().collect();
    assert_eq!(labels, ["NEGATIVE", "POSITIVE"]);
    let data = std::fs::read_to_string(fixture("sentiment_test.tsv")).unwrap();
    let order: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    let test = train::parse_tsv(&data, Some(&order)).unwrap();
    assert_eq!(test.texts.len(), 2000);
    let mut session = Session::with_threads(&model, 128, 2).unwrap();
    let mut right = 0usize;
    for (text, &y) in test.texts.iter().zip(&test.targets) {
        let out = session.run(text).unwrap();
        let TaskOutput::Classification { ranking, .. } = out.task else {
            panic!("a classifier")
        };
        right += usize::from(ranking[0] == y);
    }
    let acc = right as f64 / test.texts.len() as f64;
    println!(
        "sentiment-minilm test accuracy {:.2}% ({right} of 2000)",
        acc * 100.0
    );
    assert!(acc >= CLAIMED - TOLERANCE, "accuracy {acc}");
}
