//! Extractive question answering against the Hugging Face `question-answering` pipeline
//! (transformers 4.57.1; fixture from `scripts/gen_qa_fixtures.py`) on randomly initialised
//! `BertForQuestionAnswering` models of three shapes, rebuilt here from the same seeded weights:
//! long contexts in several `doc_stride` windows, `max_answer_len`, `top_k`,
//! `handle_impossible_answer`, accented and CJK text (character offsets).

use bertq_quantize::WeightPrecision;
use bertq_runtime::format::TaskHead;
use bertq_runtime::heads::Entity;
use bertq_runtime::{Model, Precision, QaOptions, RunError, Session, TaskOutput};
use bertq_tests::random_bert::{write_hf_dir_with_vocab, RandomConfig, RandomHead};
use bertq_tests::{convert, read_fixture};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    vocab: Vec<String>,
    models: Vec<FixtureModel>,
}

#[derive(Deserialize)]
struct FixtureModel {
    name: String,
    seed: u64,
    config: RandomConfig,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    question: String,
    context: String,
    max_seq_len: usize,
    top_k: usize,
    max_answer_len: usize,
    handle_impossible_answer: bool,
    #[serde(default)]
    doc_stride: Option<usize>,
    windows: Vec<Vec<u32>>,
    answers: Vec<Answer>,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
struct Answer {
    score: f32,
    start: u32,
    end: u32,
    answer: String,
}

fn qa_model(
    fixture: &Fixture,
    m: &FixtureModel,
    precision: WeightPrecision,
) -> bertq_runtime::ModelBytes {
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir_with_vocab(
        dir.path(),
        &m.config,
        m.seed,
        Some(RandomHead::QuestionAnswering),
        Some(&fixture.vocab),
    );
    convert(dir.path(), precision)
}

fn options(case: &Case) -> QaOptions {
    QaOptions {
        top_k: case.top_k,
        doc_stride: case.doc_stride,
        max_answer_len: case.max_answer_len,
        handle_impossible_answer: case.handle_impossible_answer,
    }
}

fn answers(model: &Model<'_>, case: &Case, precision: Precision) -> Vec<Answer> {
    let mut session = Session::with_input_limit(model, case.max_seq_len, 1024, 1).unwrap();
    session.set_precision(precision);
    let out = session
        .run_qa(&case.question, &case.context, &options(case))
        .unwrap();
    let TaskOutput::Answers(list) = out.task else {
        panic!("question-answering output")
    };
    list.iter()
        .map(|a: &Entity| Answer {
            score: a.score,
            start: a.start,
            end: a.end,
            answer: case.context[a.byte_start as usize..a.byte_end as usize].to_string(),
        })
        .collect()
}

/// The windows bertq builds are `tokenizers`' overflowing windows (same count and ids).
fn check_windows(model: &Model<'_>, case: &Case) {
    let ids = |text: &str| {
        let mut tokens = vec![Default::default(); 4096];
        let enc = model.tokenizer.encode(text, &mut tokens).unwrap();
        tokens[1..enc.len - 1]
            .iter()
            .map(|t| t.id)
            .collect::<Vec<u32>>()
    };
    let (q, c) = (ids(&case.question), ids(&case.context));
    let window = case.max_seq_len - 3 - q.len();
    let window = window.min(c.len());
    let stride = case
        .doc_stride
        .unwrap_or(bertq_runtime::heads::question_answering::default_doc_stride(case.max_seq_len));
    let s = model.tokenizer.settings();
    let built: Vec<Vec<u32>> =
        bertq_runtime::heads::question_answering::windows(c.len(), window, stride)
            .map(|(a, b)| {
                let mut w = vec![s.cls_id];
                w.extend(&q);
                w.push(s.sep_id);
                w.extend(&c[a..b]);
                w.push(s.sep_id);
                w
            })
            .collect();
    assert_eq!(built, case.windows, "windows of {:?}", case.context);
}

#[test]
fn f32_answers_match_the_pipeline() {
    let fixture: Fixture = read_fixture("question_answering.json");
    let (mut checked, mut multi_window, mut empty) = (0, 0, 0);
    for m in &fixture.models {
        let bytes = qa_model(&fixture, m, WeightPrecision::F32);
        let model = Model::load(&bytes).unwrap();
        assert_eq!(model.task(), TaskHead::QuestionAnswering);
        for case in &m.cases {
            check_windows(&model, case);
            let got = answers(&model, case, Precision::F32);
            let ctx = format!(
                "{} {:?} / {:?}\n got {got:?}\n expected {:?}",
                m.name, case.question, case.context, case.answers
            );
            assert_eq!(got.len(), case.answers.len(), "{ctx}");
            for (g, e) in got.iter().zip(&case.answers) {
                assert_eq!(
                    (g.start, g.end, &g.answer),
                    (e.start, e.end, &e.answer),
                    "{ctx}"
                );
                assert!((g.score - e.score).abs() < 1e-4, "{ctx}");
                checked += 1;
                empty += usize::from(e.answer.is_empty());
            }
            multi_window += usize::from(case.windows.len() > 1);
        }
    }
    println!(
        "{checked} answers checked ({empty} impossible), {multi_window} cases over several windows"
    );
    assert!(checked >= 200 && multi_window >= 20 && empty >= 2);
}

#[test]
fn int8_keeps_clear_best_answers() {
    let fixture: Fixture = read_fixture("question_answering.json");
    let mut checked = 0;
    for m in &fixture.models {
        let bytes = qa_model(&fixture, m, WeightPrecision::Int8);
        let model = Model::load(&bytes).unwrap();
        for case in &m.cases {
            let [best, second, ..] = &case.answers[..] else {
                continue;
            };
            // Only where the reference's winner is clear.
            if best.score - second.score < 0.1 {
                continue;
            }
            let got = answers(&model, case, Precision::Int8);
            assert_eq!(got[0].answer, best.answer, "{} {:?}", m.name, case.context);
            checked += 1;
        }
    }
    println!("{checked} clear best answers checked on int8");
    assert!(checked >= 4, "only {checked} cases had a clear winner");
}

#[test]
fn bad_questions_get_typed_errors() {
    let fixture: Fixture = read_fixture("question_answering.json");
    let m = &fixture.models[0];
    let bytes = qa_model(&fixture, m, WeightPrecision::Int8);
    let model = Model::load(&bytes).unwrap();
    let mut session = Session::with_input_limit(&model, 32, 64, 1).unwrap();
    let o = QaOptions::default();
    assert_eq!(
        session.run_qa("", "the city", &o).unwrap_err(),
        RunError::BadQuestion
    );
    assert_eq!(
        session.run_qa("who", "", &o).unwrap_err(),
        RunError::BadQuestion
    );
    let zero = QaOptions {
        max_answer_len: 0,
        ..o
    };
    assert_eq!(
        session.run_qa("who", "the city", &zero).unwrap_err(),
        RunError::BadQuestion
    );
    // A question that leaves no room for the context.
    let long_question = "who ".repeat(40);
    assert!(matches!(
        session.run_qa(&long_question, "the city is big", &o),
        Err(RunError::QuestionTooLong { .. }) | Err(RunError::TooLong { .. })
    ));
    let long_question = "who ".repeat(29);
    assert!(matches!(
        session.run_qa(&long_question, "the city is big", &o),
        Err(RunError::QuestionTooLong { .. })
    ));
    // A context beyond the session's input limit is refused, not cut.
    let long_context = "the city ".repeat(40);
    assert!(matches!(
        session.run_qa("who", &long_context, &o),
        Err(RunError::TooLong { .. })
    ));
    // A stride as long as the window.
    let stride = QaOptions {
        doc_stride: Some(28),
        ..o
    };
    assert!(matches!(
        session.run_qa("who", &"the city ".repeat(20), &stride),
        Err(RunError::BadStride { .. })
    ));
    // Text entry points refuse a question-answering model.
    assert_eq!(session.run("the city").unwrap_err(), RunError::WrongTask);
}

/// `bertq run --question Q --context C` (and JSON Lines on stdin) print the pipeline's answers:
/// the command line end to end on the f32 path of the first fixture model.
#[test]
fn command_line_prints_the_pipeline_answers() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let fixture: Fixture = read_fixture("question_answering.json");
    let m = &fixture.models[0];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qa.bertq");
    std::fs::write(&path, &*qa_model(&fixture, m, WeightPrecision::F32)).unwrap();
    let bertq = bertq_tests::bertq_binary();
    let parse = |stdout: &[u8]| -> Vec<Answer> {
        let v: serde_json::Value = serde_json::from_slice(stdout).expect("JSON");
        // One answer is an object, several a list (the pipeline's shape).
        let list = match v {
            serde_json::Value::Array(a) => a,
            one => vec![one],
        };
        list.into_iter()
            .map(|a| serde_json::from_value(a).unwrap())
            .collect()
    };
    let same = |got: &[Answer], case: &Case| {
        assert_eq!(got.len(), case.answers.len(), "{:?}", case.question);
        for (g, e) in got.iter().zip(&case.answers) {
            assert_eq!((&g.answer, g.start, g.end), (&e.answer, e.start, e.end));
            assert!((g.score - e.score).abs() < 1e-4, "{g:?} vs {e:?}");
        }
    };
    let mut checked = 0;
    for case in m.cases.iter().take(12) {
        let mut args = vec![
            "run".to_string(),
            "--model".into(),
            path.display().to_string(),
            "--precision".into(),
            "f32".into(),
            "--max-length".into(),
            case.max_seq_len.to_string(),
            "--top-k".into(),
            case.top_k.to_string(),
            "--max-answer-len".into(),
            case.max_answer_len.to_string(),
        ];
        if case.handle_impossible_answer {
            args.push("--handle-impossible-answer".into());
        }
        if let Some(s) = case.doc_stride {
            args.extend(["--doc-stride".into(), s.to_string()]);
        }
        let out = Command::new(&bertq)
            .args(&args)
            .args(["--question", &case.question, "--context", &case.context])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        same(&parse(&out.stdout), case);
        // The same case as a JSON line on stdin.
        let mut child = Command::new(&bertq)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let line = serde_json::json!({"question": case.question, "context": case.context});
        writeln!(child.stdin.take().unwrap(), "{line}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        same(&parse(&out.stdout), case);
        checked += 1;
    }
    println!("{checked} cases through the command line");
    assert!(checked >= 10);
}
