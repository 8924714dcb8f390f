//! `bertq bench`: latency of the model on a synthetic input of exactly N tokens, like TFLite's
//! `benchmark_model` or `tract bench`.

use bertq_runtime::kernels::Kernels;
use bertq_runtime::{Model, Session};
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct BenchReport {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    /// Median CPU time of the process per inference (all threads), where the OS reports it:
    /// on a shared machine it moves less than wall-clock latency when other jobs take the cores.
    pub cpu_p50_ms: Option<f64>,
    pub iters: usize,
    pub seq: usize,
    pub threads: usize,
}

/// `[CLS] w w ... [SEP]` with ordinary word-piece ids, exactly `seq` tokens.
fn synthetic_ids(model: &Model<'_>, seq: usize) -> Vec<u32> {
    let t = &model.file.header.tokenizer;
    let vocab = model.tokenizer.vocab().len() as u32;
    let mut ids = vec![t.cls_id];
    // Cycle through ids away from the special tokens at the start of BERT vocabularies.
    ids.extend(
        (0..seq.saturating_sub(2) as u32)
            .map(|i| 1000.min(vocab - 1) + (i * 37) % (vocab / 2).max(1)),
    );
    ids.push(t.sep_id);
    ids.truncate(seq);
    ids
}

/// CPU time consumed by this process so far, in ms (Linux: `CLOCK_PROCESS_CPUTIME_ID`).
#[cfg(target_os = "linux")]
fn process_cpu_ms() -> Option<f64> {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `clock_gettime` (libc, always linked with std on Linux) writes one `struct
    // timespec` (two 64-bit fields on the 64-bit targets bertq supports) through the pointer.
    let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    (rc == 0).then_some(t.sec as f64 * 1e3 + t.nsec as f64 * 1e-6)
}

#[cfg(not(target_os = "linux"))]
fn process_cpu_ms() -> Option<f64> {
    None
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn run(
    model: &Model<'_>,
    kernels: &'static Kernels,
    seq: usize,
    threads: usize,
    iters: usize,
) -> Result<BenchReport, String> {
    let mut session = Session::with_threads(model, seq, threads).map_err(|e| e.to_string())?;
    session.set_kernels(kernels);
    let ids = synthetic_ids(model, seq);
    let warmup = (iters / 10).clamp(2, 20);
    for _ in 0..warmup {
        session.run_token_ids(&ids).map_err(|e| e.to_string())?;
    }
    let mut times = Vec::with_capacity(iters);
    let mut cpu = Vec::with_capacity(iters);
    for _ in 0..iters {
        let cpu_start = process_cpu_ms();
        let start = Instant::now();
        let out = session.run_token_ids(&ids).map_err(|e| e.to_string())?;
        std::hint::black_box(&out);
        times.push(start.elapsed().as_secs_f64() * 1e3);
        if let (Some(a), Some(b)) = (cpu_start, process_cpu_ms()) {
            cpu.push(b - a);
        }
    }
    cpu.sort_by(f64::total_cmp);
    let cpu_p50_ms = (cpu.len() == iters).then(|| percentile(&cpu, 0.5));
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    Ok(BenchReport {
        p50_ms: percentile(&times, 0.5),
        p90_ms: percentile(&times, 0.9),
        p99_ms: percentile(&times, 0.99),
        mean_ms: mean,
        cpu_p50_ms,
        iters,
        seq,
        threads,
    })
}
