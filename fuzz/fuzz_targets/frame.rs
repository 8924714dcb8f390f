//! The frame decoder and accumulator: any byte stream, cut into chunks of any size, gives
//! frames and lines no longer than the buffer, every frame opens to a request or a typed
//! error, and every JSON line parses to a request or a typed error.
//!
//! The first input byte picks the chunk size (1..=64) and the buffer size (16..=1039).
#![no_main]

use bertq_protocol::{decode_frame, decode_request, Accumulator, Item};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&knob, stream)) = data.split_first() else {
        return;
    };
    let chunk = 1 + (knob & 63) as usize;
    let cap = 16 + (knob as usize >> 6) * 341;
    let mut buf = vec![0u8; cap];
    let mut acc = Accumulator::new(&mut buf[..]);
    for piece in stream.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            let before = rest.len();
            let (item, r) = acc.feed(rest);
            // Progress: either bytes were consumed or something was reported.
            assert!(r.len() < before || item.is_some());
            rest = r;
            match item {
                Some(Item::Frame(f)) => {
                    assert!(f.len() <= cap);
                    if let Ok(message) = decode_frame(f) {
                        let _ = decode_request(message);
                    }
                }
                Some(Item::Line(l)) => {
                    assert!(l.len() <= cap);
                    assert!(!l.contains(&b'\n') && !l.contains(&0));
                    let _ = bertq_server::jsonl::parse(l);
                }
                Some(Item::TooLong(_) | Item::Garbage) | None => {}
            }
        }
    }
});
