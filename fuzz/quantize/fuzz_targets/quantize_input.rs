//! The quantizer's readers on damaged inputs (`bertq_quantize::damaged_input`): a tiny Hugging
//! Face directory (`base/`) with one of its files replaced by the fuzzer's bytes, loaded and
//! converted. Any input is a `QuantizeError` or a model, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

const CONFIG: &[u8] = include_bytes!("../base/config.json");
const VOCAB: &[u8] = include_bytes!("../base/vocab.txt");
const WEIGHTS: &[u8] = include_bytes!("../base/model.safetensors");

/// A scratch directory per process (fuzzing jobs each have their own).
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!("bertq-fuzz-quantize-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let base = bertq_quantize::damaged_input::Base {
        config: CONFIG,
        vocab: VOCAB,
        weights: WEIGHTS,
    };
    bertq_quantize::damaged_input::load_and_convert(&base, scratch(), data)
        .expect("the scratch directory is writable");
});
