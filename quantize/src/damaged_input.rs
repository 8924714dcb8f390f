//! One damaged input for the quantizer's readers: a tiny Hugging Face directory with one of its
//! files replaced by arbitrary bytes (the first byte picks which: config.json, vocab.txt,
//! model.safetensors, tokenizer.json, or model.onnx instead of the safetensors), then loaded and
//! converted. Shared by the libFuzzer target (fuzz/quantize) and the mutation test in
//! tests/tests/robustness.rs (what CI runs). Any input must give a `QuantizeError` or a model,
//! never a panic.

use std::io;
use std::path::Path;

/// The intact files of the directory (fuzz/quantize/base).
#[derive(Debug, Clone, Copy)]
pub struct Base<'a> {
    pub config: &'a [u8],
    pub vocab: &'a [u8],
    pub weights: &'a [u8],
}

/// Writes the directory for `data` into `dir` (emptied first), then loads and converts it.
/// `Err` only when the scratch directory cannot be written; the conversion's own result is
/// dropped (a typed error is a correct answer to a damaged file).
pub fn load_and_convert(base: &Base<'_>, dir: &Path, data: &[u8]) -> io::Result<()> {
    let Some((&which, bytes)) = data.split_first() else {
        return Ok(());
    };
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, b: &[u8]| std::fs::write(dir.join(name), b);
    write("config.json", base.config)?;
    write("vocab.txt", base.vocab)?;
    match which % 5 {
        0 => {
            write("config.json", bytes)?;
            write("model.safetensors", base.weights)?;
        }
        1 => {
            write("vocab.txt", bytes)?;
            write("model.safetensors", base.weights)?;
        }
        2 => write("model.safetensors", bytes)?,
        3 => {
            write("tokenizer.json", bytes)?;
            write("model.safetensors", base.weights)?;
        }
        _ => write("model.onnx", bytes)?,
    }
    if let Ok(input) = crate::load_input(dir) {
        let _ = input.convert(&crate::ConvertOptions::default());
    }
    Ok(())
}
