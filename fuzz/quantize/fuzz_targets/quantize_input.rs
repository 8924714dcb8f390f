//! The quantizer's readers on damaged inputs: a tiny Hugging Face directory (`base/`) with one
//! of its files replaced by the fuzzer's bytes (the first byte picks which: config.json,
//! vocab.txt, model.safetensors, tokenizer.json, or model.onnx instead of the safetensors), then
//! loaded and converted. Any input is a `QuantizeError` or a model, never a panic.
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
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let dir = scratch();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let write = |name: &str, b: &[u8]| std::fs::write(dir.join(name), b).unwrap();
    write("config.json", CONFIG);
    write("vocab.txt", VOCAB);
    match which % 5 {
        0 => {
            write("config.json", bytes);
            write("model.safetensors", WEIGHTS);
        }
        1 => {
            write("vocab.txt", bytes);
            write("model.safetensors", WEIGHTS);
        }
        2 => write("model.safetensors", bytes),
        3 => {
            write("tokenizer.json", bytes);
            write("model.safetensors", WEIGHTS);
        }
        _ => write("model.onnx", bytes),
    }
    let opts = bertq_quantize::ConvertOptions::default();
    if let Ok(input) = bertq_quantize::load_input(dir) {
        let _ = input.convert(&opts);
    }
});
