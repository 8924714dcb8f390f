//! The model loader and session creation: any bytes are a typed error or a model with a
//! session, never a panic, an abort or a huge allocation. Cheap enough for tens of millions of
//! executions; `model_run` goes on to run the session.
#![no_main]

mod common;

use bertq_runtime::session::MemorySizes;
use bertq_runtime::{Model, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(bytes) = common::model_bytes(data) else {
        return;
    };
    let Ok(model) = Model::load(&bytes) else {
        return;
    };
    let max_seq = model.max_sequence_length().min(24);
    let _ = MemorySizes::for_model_threads(&model, max_seq, 2).bytes_in_block();
    let _ = Session::with_input_limit(&model, max_seq, 40, 1);
});
