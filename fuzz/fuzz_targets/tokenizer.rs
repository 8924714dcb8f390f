//! The tokenizer of the built-in model on any text: no panic; every token's character offsets
//! lie inside the text and are ordered; byte offsets fall on character boundaries and agree
//! with the character offsets.
#![no_main]

use bertq_runtime::tokenizer::Token;
use bertq_runtime::{Model, ModelBytes};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static BYTES: &[u8] = include_bytes!("../../models/rampart-pii.bertq");

fn model() -> &'static Model<'static> {
    static MODEL: OnceLock<(&'static ModelBytes, Model<'static>)> = OnceLock::new();
    &MODEL
        .get_or_init(|| {
            let b: &'static ModelBytes = Box::leak(Box::new(ModelBytes::copy_from(BYTES)));
            (b, Model::load(b).expect("the built-in model loads"))
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let model = model();
    let mut tokens = vec![Token::default(); 96];
    let Ok(enc) = model.tokenizer.encode(&text, &mut tokens) else {
        return;
    };
    let chars = text.chars().count() as u32;
    let mut last_start = 0;
    for t in &tokens[..enc.len] {
        assert!(t.start <= t.end && t.end <= chars, "{t:?} in {chars} chars");
        assert!(t.byte_start <= t.byte_end && t.byte_end as usize <= text.len());
        assert!(text.is_char_boundary(t.byte_start as usize));
        assert!(text.is_char_boundary(t.byte_end as usize));
        let prefix = &text[..t.byte_start as usize];
        assert_eq!(prefix.chars().count() as u32, t.start);
        if t.end > t.start {
            assert!(t.start >= last_start, "offsets out of order");
            last_start = t.start;
        }
    }
});
