//! The model loader, then session creation and one run of each kind: any bytes are a typed
//! error or a working model, never a panic, an abort or a huge allocation.
//!
//! The first input byte is a mode: odd = rewrite the file length and CRC-32 after mutation, so
//! that mutations reach the header, the tensor table and the tensors (as a damaged file with a
//! valid checksum would); even = the bytes as they are.
#![no_main]

use bertq_runtime::format::{TaskHead, PREAMBLE_LEN};
use bertq_runtime::{Model, ModelBytes, QaOptions, RunOptions, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 && bytes.len() >= PREAMBLE_LEN {
        let len = bytes.len() as u64;
        bytes[16..24].copy_from_slice(&len.to_le_bytes());
        let crc = crc32(&bytes[PREAMBLE_LEN..]);
        bytes[24..28].copy_from_slice(&crc.to_le_bytes());
    }
    let aligned = ModelBytes::copy_from(&bytes);
    let Ok(model) = Model::load(&aligned) else {
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

/// CRC-32 (IEEE), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
