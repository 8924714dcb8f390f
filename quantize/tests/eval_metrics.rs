//! The accuracy report's metrics on small cases computed by hand (and, for entity chunking and
//! F1, the examples seqeval documents), and its data formats.

use bertq_quantize::report::data::{self, DataTask, Gold, Label, Span};
use bertq_quantize::report::metrics::{
    chunks, distribution, expected_calibration_error, percentile, EntityCounts, Prf,
};

fn c(t: &str, s: usize, e: usize) -> (String, usize, usize) {
    (t.to_string(), s, e)
}

#[test]
fn chunks_follow_seqeval() {
    // seqeval README: get_entities(['B-PER', 'I-PER', 'O', 'B-LOC']) == [('PER', 0, 1), ('LOC', 3, 3)]
    // (inclusive ends there, half-open here).
    assert_eq!(
        chunks(&["B-PER", "I-PER", "O", "B-LOC"]),
        vec![c("PER", 0, 2), c("LOC", 3, 4)]
    );
    // Non-strict mode: an I- after O (or after another type) starts an entity.
    assert_eq!(chunks(&["O", "I-PER", "I-PER", "O"]), vec![c("PER", 1, 3)]);
    assert_eq!(
        chunks(&["B-PER", "I-LOC", "I-LOC"]),
        vec![c("PER", 0, 1), c("LOC", 1, 3)]
    );
    // B- after B- of the same type: two entities.
    assert_eq!(
        chunks(&["B-PER", "B-PER", "I-PER"]),
        vec![c("PER", 0, 1), c("PER", 1, 3)]
    );
    // IOBES.
    assert_eq!(
        chunks(&["S-PER", "B-LOC", "E-LOC", "O", "S-ORG"]),
        vec![c("PER", 0, 1), c("LOC", 1, 3), c("ORG", 4, 5)]
    );
    // An entity running to the end of the sentence.
    assert_eq!(chunks(&["O", "B-MISC", "I-MISC"]), vec![c("MISC", 1, 3)]);
    assert!(chunks(&["O", "O"]).is_empty());
    assert!(chunks::<&str>(&[]).is_empty());
}

#[test]
fn entity_scores_are_exact_match_micro_averages() {
    // seqeval README: this pair scores f1 0.50 (one of two entities matches exactly).
    let true_tags = [
        vec!["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"],
        vec!["B-PER", "I-PER", "O"],
    ];
    let pred_tags = [
        vec!["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"],
        vec!["B-PER", "I-PER", "O"],
    ];
    let mut counts = EntityCounts::default();
    for (t, p) in true_tags.iter().zip(&pred_tags) {
        counts.add(&chunks(t), &chunks(p));
    }
    let o = counts.overall();
    assert_eq!((o.reference, o.predicted, o.correct), (2, 2, 1));
    assert_eq!((o.precision, o.recall, o.f1), (0.5, 0.5, 0.5));
    let per = counts.per_type();
    assert_eq!(per["PER"].f1, 1.0);
    assert_eq!(per["MISC"].f1, 0.0);

    // 3 reference, 4 predicted, 2 exact: P 1/2, R 2/3, F1 = 2 * (1/2 * 2/3) / (1/2 + 2/3) = 4/7.
    let p = Prf::from_counts(3, 4, 2);
    assert!((p.f1 - 4.0 / 7.0).abs() < 1e-12);
    // Nothing predicted, nothing to find: zeros, not NaN.
    assert_eq!(Prf::from_counts(0, 0, 0).f1, 0.0);

    // Duplicated predictions count once (sets), and a shifted end is a miss.
    let mut counts = EntityCounts::default();
    counts.add(
        &[c("EMAIL", 10, 20)],
        &[c("EMAIL", 10, 20), c("EMAIL", 10, 20), c("EMAIL", 10, 21)],
    );
    let o = counts.overall();
    assert_eq!((o.reference, o.predicted, o.correct), (1, 2, 1));
}

#[test]
fn calibration_error_by_hand() {
    // Bins of width 0.1: 0.9 and 0.9 -> (0.8, 0.9] (accuracy 1/2, confidence 0.9);
    // 0.6 -> (0.5, 0.6] (1, 0.6); 0.3 -> (0.2, 0.3] (0, 0.3).
    // ECE = 2/4 * |0.5 - 0.9| + 1/4 * |1 - 0.6| + 1/4 * |0 - 0.3| = 0.2 + 0.1 + 0.075.
    let ece = expected_calibration_error(&[0.9, 0.9, 0.6, 0.3], &[true, false, true, false], 10);
    assert!((ece - 0.375).abs() < 1e-12, "{ece}");
    // Perfect calibration in one bin.
    let ece = expected_calibration_error(&[1.0, 1.0], &[true, true], 15);
    assert!(ece.abs() < 1e-12);
    assert_eq!(expected_calibration_error(&[], &[], 15), 0.0);
}

#[test]
fn distribution_uses_linear_percentiles() {
    // numpy.percentile([1, 2, 3, 4, 5], [5, 50]) == [1.2, 3.0]
    let v = [5.0, 3.0, 1.0, 4.0, 2.0];
    let d = distribution(&v);
    assert_eq!(
        (d.count, d.min, d.max, d.mean, d.p50),
        (5, 1.0, 5.0, 3.0, 3.0)
    );
    assert!((d.p5 - 1.2).abs() < 1e-12);
    assert!((percentile(&[1.0, 2.0], 50.0) - 1.5).abs() < 1e-12);
}

#[test]
fn data_formats() {
    let conll =
        "-DOCSTART- -X- O O\n\nMaria NNP B-PER\nGonzalez NNP I-PER\nlives O\n\nin O\nParis B-LOC\n";
    let ex = data::parse(conll, DataTask::TokenClassification).unwrap();
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].text, "Maria Gonzalez lives");
    let Gold::Words { words, tags } = &ex[0].gold else {
        panic!("word-level gold")
    };
    assert_eq!(words, &["Maria", "Gonzalez", "lives"]);
    assert_eq!(tags, &["B-PER", "I-PER", "O"]);
    assert_eq!(data::word_offsets(words), vec![(0, 5), (6, 14), (15, 20)]);
    assert!(data::parse("word_without_tag\n", DataTask::TokenClassification).is_err());

    let jsonl = r#"{"text": "Call Bob", "entities": [{"start": 5, "end": 8, "label": "B-PER"}]}
{"text": "nothing here", "entities": []}
"#;
    let ex = data::parse(jsonl, DataTask::TokenClassification).unwrap();
    assert_eq!(
        ex[0].gold,
        Gold::Spans(vec![Span {
            label: "PER".into(),
            start: 5,
            end: 8
        }])
    );
    assert_eq!(ex[1].gold, Gold::Spans(vec![]));

    // A JSON document with a `sentences` array (the fixtures' shape), entity_group names.
    let doc = r#"{"sentences": [{"text": "x", "entities": [{"entity_group": "EMAIL", "start": 0, "end": 1}]}]}"#;
    let ex = data::parse(doc, DataTask::TokenClassification).unwrap();
    assert_eq!(ex.len(), 1);

    let cls = "positive\tI loved it\n1\tmeh\nno label here\n";
    let ex = data::parse(cls, DataTask::SequenceClassification).unwrap();
    assert_eq!(ex[0].gold, Gold::Label(Label::Name("positive".into())));
    assert_eq!(ex[1].gold, Gold::Label(Label::Id(1)));
    assert_eq!(ex[2].gold, Gold::None);

    let emb = r#"[{"text": "a", "embedding": [0.5, -1]}, {"text": "b"}]"#;
    let ex = data::parse(emb, DataTask::Embedding).unwrap();
    assert_eq!(ex[0].gold, Gold::Embedding(vec![0.5, -1.0]));
    assert_eq!(ex[1].gold, Gold::None);

    // Malformed data is an error naming the example.
    let err = data::parse(
        r#"[{"text": "a", "label": [1]}]"#,
        DataTask::SequenceClassification,
    )
    .unwrap_err();
    assert!(err.contains("example 1"), "{err}");
    assert!(data::parse("{not json", DataTask::Embedding).is_err());
}
