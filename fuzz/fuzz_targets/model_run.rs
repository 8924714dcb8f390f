//! The model loader, session creation and one run of each kind (text, pair, windows, token
//! ids, question answering): a damaged file that loads must answer with results or typed
//! errors, never a panic.
#![no_main]

mod common;

use bertq_runtime::format::TaskHead;
use bertq_runtime::{Model, QaOptions, RunOptions, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(bytes) = common::model_bytes(data) else {
        return;
    };
    let Ok(model) = Model::load(&bytes) else {
        return;
    };
    let max_seq = model.max_sequence_length().min(24);
    let Ok(mut session) = Session::with_input_limit(&model, max_seq, 40, 1) else {
        return;
    };
    let text = "Hi, I'm Maria Gonzalez [MASK] tok7 tok8, 555-0100 日本 é";
    if model.task() == TaskHead::QuestionAnswering {
        let _ = session.run_qa("Who is it?", text, &QaOptions::default());
        return;
    }
    let _ = session.run(text);
    let _ = session.run_pair("first", text, &RunOptions::default());
    let stride = RunOptions {
        stride: Some(3),
        ..RunOptions::default()
    };
    let _ = session.run_with(&text.repeat(3), &stride);
    let _ = session.run_token_ids(&[0, 1, 2]);
});
