//! Question answering and fill-mask over `bertq serve` (in this crate because only the
//! quantizer can make those models, and boards must not depend on it).
//!
//! Question answering: a random `BertForQuestionAnswering` model (from the
//! QA fixture's first shape, `scripts/gen_qa_fixtures.py`) served in-process; binary `Answer`
//! frames and JSON lines with `question`/`context` reply exactly what `bertq run --question
//! --context` prints (the session's answers written by the same JSON writer), and the request
//! path allocates nothing on the server's threads.

use bertq_boards::client::Client;
use bertq_boards::serve::{self, Control, ServeConfig};
use bertq_protocol::{AnswerOptions, ErrorCode};
use bertq_quantize::WeightPrecision;
use bertq_runtime::heads::json;
use bertq_runtime::{Model, ModelBytes, QaOptions, Session, TaskOutput};
use bertq_tests::counting_alloc::{allocations, count_this_thread, CountingAllocator};
use bertq_tests::random_bert::{write_hf_dir_with_vocab, RandomConfig, RandomHead};
use bertq_tests::{convert, read_fixture};
use serde::Deserialize;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The allocation counter is global: the two servers of this file must not run at once, or one
/// test's server start-up is counted in the other's measurement.
static ONE_SERVER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const T: Duration = Duration::from_secs(30);

/// `bertq serve` on a Unix socket in a temporary directory, one worker, its threads counted.
struct TestServer {
    sock: std::path::PathBuf,
    _dir: tempfile::TempDir,
    control: Arc<Control>,
    thread: std::thread::JoinHandle<Result<serve::Summary, String>>,
}

impl TestServer {
    fn start(model: &'static Model<'static>, max_seq: usize) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("bertq.sock");
        let mut cfg = ServeConfig::new(bertq_runtime::kernels::select());
        cfg.unix = vec![sock.clone()];
        cfg.workers = 1;
        cfg.max_seq = Some(max_seq);
        cfg.on_thread_start = Some(count_this_thread);
        let control = Arc::new(Control::new().unwrap());
        let thread = {
            let control = control.clone();
            std::thread::spawn(move || {
                count_this_thread();
                serve::run(model, &cfg, &control)
            })
        };
        assert!(control.wait_ready(Duration::from_secs(60)), "server ready");
        TestServer {
            sock,
            _dir: dir,
            control,
            thread,
        }
    }

    fn stop(self) -> serve::Summary {
        self.control.stop();
        self.thread.join().unwrap().unwrap()
    }
}

/// Runs `round` twice (the first warms up) and returns the allocations on server threads
/// during the second.
fn allocations_in_second_round(round: impl Fn()) -> usize {
    round();
    let before = allocations();
    round();
    allocations() - before
}
const MAX_SEQ: usize = 48;

#[derive(Deserialize)]
struct Fixture {
    vocab: Vec<String>,
    models: Vec<FixtureModel>,
}

#[derive(Deserialize)]
struct FixtureModel {
    seed: u64,
    config: RandomConfig,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    question: String,
    context: String,
}

/// What `bertq run --question Q --context C` prints: the session's answers, same writer.
fn expected(model: &Model<'_>, q: &str, c: &str, o: &AnswerOptions) -> String {
    let mut session = Session::with_input_limit(model, MAX_SEQ, 1024, 1).unwrap();
    let options = QaOptions {
        top_k: o.top_k as usize,
        doc_stride: o.doc_stride.map(usize::from),
        max_answer_len: o.max_answer_len as usize,
        handle_impossible_answer: o.handle_impossible_answer,
    };
    let out = session.run_qa(q, c, &options).unwrap();
    let TaskOutput::Answers(answers) = out.task else {
        panic!("answers")
    };
    let mut s = String::new();
    json::write_answers(&mut s, answers, c).unwrap();
    s
}

#[test]
fn answers_over_serve_equal_bertq_run_and_allocate_nothing() {
    let _serial = ONE_SERVER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let fixture: Fixture = read_fixture("question_answering.json");
    let m = &fixture.models[0];
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir_with_vocab(
        dir.path(),
        &m.config,
        m.seed,
        Some(RandomHead::QuestionAnswering),
        Some(&fixture.vocab),
    );
    let bytes: &'static ModelBytes =
        Box::leak(Box::new(convert(dir.path(), WeightPrecision::Int8)));
    let model: &'static Model<'static> = Box::leak(Box::new(Model::load(bytes).unwrap()));
    let options = [
        AnswerOptions::default(),
        AnswerOptions {
            top_k: 3,
            doc_stride: Some(8),
            max_answer_len: 4,
            handle_impossible_answer: true,
        },
    ];
    let cases: Vec<(&Case, AnswerOptions, String)> = m
        .cases
        .iter()
        .flat_map(|c| options.iter().map(move |o| (c, *o)))
        .map(|(c, o)| (c, o, expected(model, &c.question, &c.context, &o)))
        .collect();

    let server = TestServer::start(model, MAX_SEQ);
    let sock = &server.sock;
    let round = || {
        let mut client = Client::connect_unix(sock, T).unwrap();
        for (case, o, want) in &cases {
            let got = client
                .answer(&case.question, &case.context, *o)
                .unwrap()
                .unwrap();
            assert_eq!(&got.json, want, "binary answer to {:?}", case.question);
        }
        let bad = AnswerOptions {
            max_answer_len: 0,
            ..AnswerOptions::default()
        };
        let e = client.answer("who", "the city", bad).unwrap().unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        let s = UnixStream::connect(sock).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut lines = BufReader::new(s.try_clone().unwrap());
        for (i, (case, o, want)) in cases.iter().enumerate() {
            let req = serde_json::json!({
                "id": i, "question": case.question, "context": case.context, "top_k": o.top_k,
                "max_answer_len": o.max_answer_len,
                "handle_impossible_answer": o.handle_impossible_answer,
                "doc_stride": o.doc_stride,
            });
            // `doc_stride: null` is not a number: leave it out for the default.
            let mut req = req;
            if o.doc_stride.is_none() {
                req.as_object_mut().unwrap().remove("doc_stride");
            }
            (&s).write_all(format!("{req}\n").as_bytes()).unwrap();
            let mut line = String::new();
            lines.read_line(&mut line).unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let want: serde_json::Value = serde_json::from_str(want).unwrap();
            assert_eq!(v["result"], want, "JSON answer to {:?}", case.question);
        }
    };
    let during = allocations_in_second_round(round);
    let summary = server.stop();
    assert!(
        summary.inferences as usize >= 4 * cases.len(),
        "{summary:?}"
    );
    assert_eq!(during, 0, "allocations on server threads while answering");
}

#[derive(Deserialize)]
struct MlmFixture {
    models: Vec<MlmModel>,
}

#[derive(Deserialize)]
struct MlmModel {
    seed: u64,
    config: RandomConfig,
    cases: Vec<MlmCase>,
}

#[derive(Deserialize)]
struct MlmCase {
    text: String,
}

/// Fill-mask over `bertq serve` (a random `BertForMaskedLM` of `scripts/gen_mlm_fixtures.py`):
/// binary frames (strings written while encoding) and JSON lines reply what `bertq run`
/// prints (the same writer, `fill_mask::write_json`), allocation-free on the server.
#[test]
fn fill_mask_over_serve_equals_bertq_run_and_allocates_nothing() {
    use bertq_protocol::InferOptions;
    let _serial = ONE_SERVER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let fixture: MlmFixture = read_fixture("fill_mask.json");
    let m = &fixture.models[0];
    let dir = tempfile::tempdir().unwrap();
    bertq_tests::random_bert::write_hf_dir_with_head(
        dir.path(),
        &m.config,
        m.seed,
        Some(RandomHead::MaskedLm),
    );
    let bytes: &'static ModelBytes =
        Box::leak(Box::new(convert(dir.path(), WeightPrecision::Int8)));
    let model: &'static Model<'static> = Box::leak(Box::new(Model::load(bytes).unwrap()));
    let expected = |text: &str, top_k: usize| {
        let mut session = Session::with_owned_memory(model, 32).unwrap();
        let options = bertq_runtime::RunOptions {
            top_k,
            ..Default::default()
        };
        let out = session.run_with(text, &options).unwrap();
        let TaskOutput::FillMask {
            top_k,
            positions,
            ids,
            scores,
        } = out.task
        else {
            panic!("fill-mask")
        };
        let (vocab, settings) = (model.tokenizer.vocab(), model.tokenizer.settings());
        let mut s = String::new();
        bertq_runtime::heads::fill_mask::write_json(
            &mut s, vocab, settings, out.tokens, top_k, positions, ids, scores,
        )
        .unwrap();
        s
    };
    let cases: Vec<(&str, u16, String)> = m
        .cases
        .iter()
        .flat_map(|c| [1u16, 5].map(|k| (c.text.as_str(), k, expected(&c.text, k as usize))))
        .collect();

    let server = TestServer::start(model, 32);
    let sock = &server.sock;
    let round = || {
        let mut client = Client::connect_unix(sock, T).unwrap();
        for (text, top_k, want) in &cases {
            let o = InferOptions {
                top_k: *top_k,
                ..InferOptions::default()
            };
            let got = client.infer(text, o).unwrap().unwrap();
            assert_eq!(&got.json, want, "binary fill-mask reply for {text:?}");
        }
        let e = client
            .infer("no mask here", InferOptions::default())
            .unwrap()
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        let s = UnixStream::connect(sock).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut lines = BufReader::new(s.try_clone().unwrap());
        for (i, (text, top_k, want)) in cases.iter().enumerate() {
            let req = serde_json::json!({"id": i, "text": text, "top_k": top_k});
            (&s).write_all(format!("{req}\n").as_bytes()).unwrap();
            let mut line = String::new();
            lines.read_line(&mut line).unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let want: serde_json::Value = serde_json::from_str(want).unwrap();
            assert_eq!(v["result"], want, "JSON fill-mask reply for {text:?}");
        }
    };
    let during = allocations_in_second_round(round);
    server.stop();
    assert_eq!(
        during, 0,
        "allocations on server threads while filling masks"
    );
}
