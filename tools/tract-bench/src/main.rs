//! `tract-bench MODEL.onnx SEQ ITERS [--markers]`: loads a BERT ONNX export (inputs input_ids,
//! attention_mask, token_type_ids of shape [1, SEQ]), optimises it for that shape with tract, and
//! prints `{"p50_ms": .., "mean_ms": .., "iters": ..}` after a warm-up. Single-threaded, as tract.
//!
//! `--markers`: the timed runs are preceded and followed by a marker system call,
//! `close(-4242)`, so that the instruction-counting plugin of `tools/qemu-count` counts those
//! runs only (scripts/count_inference.py, under qemu-aarch64), not loading and optimising.
use std::time::Instant;
use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let markers = args.len() == 5 && args[4] == "--markers";
    if args.len() != 4 && !markers {
        eprintln!("usage: tract-bench MODEL.onnx SEQ ITERS [--markers]");
        std::process::exit(2);
    }
    let (path, seq, iters): (&str, usize, usize) = (&args[1], args[2].parse()?, args[3].parse()?);
    let mut model = tract_onnx::onnx().model_for_path(path)?;
    for i in 0..3 {
        model.set_input_fact(i, i64::fact([1, seq]).into())?;
    }
    let model = model.into_optimized()?.into_runnable()?;
    let mut ids = vec![1000i64; seq];
    ids[0] = 101;
    ids[seq - 1] = 102;
    let inputs: TVec<TValue> = tvec![
        tract_ndarray::Array2::from_shape_vec((1, seq), ids)?.into_tensor().into(),
        tract_ndarray::Array2::<i64>::ones((1, seq)).into_tensor().into(),
        tract_ndarray::Array2::<i64>::zeros((1, seq)).into_tensor().into(),
    ];
    for _ in 0..(iters / 10).max(3) {
        model.run(inputs.clone())?;
    }
    let mut times = Vec::with_capacity(iters);
    if markers {
        marker();
    }
    for _ in 0..iters {
        let t = Instant::now();
        model.run(inputs.clone())?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    if markers {
        marker();
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    let p50 = times[times.len() / 2];
    println!("{}", serde_json::json!({"p50_ms": p50, "mean_ms": mean, "iters": iters, "seq": seq}));
    Ok(())
}

/// The counting plugin's marker: a `close` of a descriptor that cannot exist (it fails, EBADF).
fn marker() {
    extern "C" {
        fn close(fd: i32) -> i32;
    }
    // SAFETY: closing an invalid descriptor only returns an error.
    unsafe {
        close(-4242);
    }
}
