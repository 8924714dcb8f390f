//! The JSON Lines request parser: any line is a request or a typed error; a request's strings
//! are valid UTF-8 slices of the line (unescaped in place) and its id is valid JSON.
#![no_main]

use bertq_server::jsonl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut line = data.to_vec();
    let len = line.len();
    match jsonl::parse(&mut line) {
        Ok(r) => {
            assert!(r.text.len() <= len);
            let id = r.id.as_str();
            assert!(id.len() <= jsonl::MAX_ID_LEN);
            if let bertq_server::request::JobExtra::Answer { question, .. } = r.extra {
                assert!(question.len() <= len);
            }
        }
        Err(e) => assert!(!e.message.is_empty()),
    }
});
