//! The model loader, session creation and one run of each kind (text, pair, windows, token
//! ids, question answering): a damaged file that loads must answer with results or typed
//! errors, never a panic. Then the encoder's weights converted to the other packed layouts
//! (`Model::repacked`, what `bertq` does at load for an i8mm core): the same hidden states, bit
//! for bit.
#![no_main]

mod common;

use bertq_runtime::format::{Layout, TaskHead};
use bertq_runtime::kernels::{self, Kernels};
use bertq_runtime::session::OwnedMemory;
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
    // The reference kernels read every layout through the same index, so they see whether
    // the conversion moved each weight to its place; this CPU's table also runs on it (its
    // results may differ where a damaged file's `.row_sums` disagree with its weights: the
    // VNNI kernels trust them, the reference never reads them).
    let table = session.kernels();
    session.set_kernels(&kernels::REFERENCE);
    let want = hidden(&mut session);
    session.set_kernels(table);
    for to in [Layout::K8N8, Layout::K4N16] {
        let planner = Kernels {
            native_layout: to,
            ..*table
        };
        // (The plan is bounded by the file's own tensors: at most 64 bytes per weight byte.)
        let Some((_, len)) = model.repack_plan(&planner) else {
            continue;
        };
        let mut buf = vec![0i8; len];
        let repacked = model
            .repacked(&planner, &mut buf)
            .expect("a buffer of the plan's size is enough");
        let mut other = Session::with_input_limit(&repacked, max_seq, 40, 1)
            .expect("the same sizes as the session above");
        other.set_kernels(&kernels::REFERENCE);
        assert!(hidden(&mut other) == want, "repacking to {to:?} changed the hidden states");
        other.set_kernels(table);
        let _ = hidden(&mut other);
    }
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

/// The last hidden states' bits for three token ids, or `None` if the run is refused.
fn hidden(s: &mut Session<'_, '_, OwnedMemory>) -> Option<Vec<u32>> {
    s.run_ids(&[0, 1, 2], None)
        .ok()
        .map(|h| h.iter().map(|x| x.to_bits()).collect())
}
