//! Static activation calibration: run the f32 model over representative texts, observe the input
//! of every encoder Linear, and choose one fixed int8 scale per input (`.input_scale` in the file)
//! with a `minmax`, `percentile` or `mse` observer.

use crate::report::sensitivity::linear_name;
use bertq_runtime::kernels::reference::quantize_value;
use bertq_runtime::{Model, Precision, Session};
use std::collections::BTreeMap;

/// How a fixed input scale is chosen from the observed values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observer {
    /// `max |x| / 127`: nothing clips.
    MinMax,
    /// `percentile(|x|, p) / 127` (numpy's linear interpolation), clipping the outliers above.
    Percentile(f64),
    /// The clipping threshold of [`MSE_CANDIDATES`] evenly spaced ones up to `max |x|` that
    /// minimises the squared quantization error, `/ 127`.
    Mse,
}

impl Observer {
    pub fn name(&self) -> String {
        match self {
            Observer::MinMax => "minmax".into(),
            Observer::Percentile(p) => format!("percentile {p}"),
            Observer::Mse => "mse".into(),
        }
    }
}

/// Thresholds tried by the MSE observer: `max * i / MSE_CANDIDATES`, `i = 1..=MSE_CANDIDATES`.
pub const MSE_CANDIDATES: usize = 512;
/// The MSE search runs on at most this many values (an even stride through the observations).
pub const MSE_MAX_VALUES: usize = 1 << 16;

/// `max |x| / 127` (0 for no or all-zero values).
pub fn minmax_scale(values: &[f32]) -> f32 {
    values.iter().fold(0f32, |m, &v| m.max(v.abs())) / 127.0
}

/// `numpy.percentile(|x|, p) / 127` (linear interpolation between order statistics).
pub fn percentile_scale(values: &[f32], p: f64) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mut a: Vec<f32> = values.iter().map(|v| v.abs()).collect();
    a.sort_by(f32::total_cmp);
    let pos = (p / 100.0).clamp(0.0, 1.0) * (a.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let t = a[lo] as f64 + (a[hi] as f64 - a[lo] as f64) * (pos - lo as f64);
    (t / 127.0) as f32
}

/// Squared error of quantizing `values` with `scale` by the runtime's rule.
pub fn quantization_sse(values: &[f32], scale: f32) -> f64 {
    let inv = 1.0 / scale;
    values
        .iter()
        .map(|&x| {
            let d = x as f64 - quantize_value(x * inv) as f64 * scale as f64;
            d * d
        })
        .sum()
}

/// The MSE observer's scale (see [`Observer::Mse`]).
pub fn mse_scale(values: &[f32]) -> f32 {
    let stride = values.len().div_ceil(MSE_MAX_VALUES).max(1);
    let sample: Vec<f32> = values.iter().step_by(stride).copied().collect();
    let max = sample.iter().fold(0f32, |m, &v| m.max(v.abs()));
    if max == 0.0 || !max.is_finite() {
        return 0.0;
    }
    let mut best = (f64::INFINITY, 0f32);
    for i in 1..=MSE_CANDIDATES {
        let scale = (max as f64 * i as f64 / MSE_CANDIDATES as f64 / 127.0) as f32;
        let e = quantization_sse(&sample, scale);
        if e < best.0 {
            best = (e, scale);
        }
    }
    best.1
}

pub fn scale(observer: Observer, values: &[f32]) -> f32 {
    match observer {
        Observer::MinMax => minmax_scale(values),
        Observer::Percentile(p) => percentile_scale(values, p),
        Observer::Mse => mse_scale(values),
    }
}

/// Runs `reference` (f32 weights, f32 path) over `texts` and returns a static input scale for
/// every encoder Linear whose input was not all zero. Query, key and value share one.
pub fn calibrate(
    reference: &Model<'_>,
    texts: &[String],
    observer: Observer,
    max_length: usize,
    progress: bool,
) -> Result<BTreeMap<String, f32>, String> {
    let layers = reference.encoder.layers.len();
    let max_seq = reference.max_sequence_length().min(max_length).max(2);
    let mut session = Session::with_owned_memory(reference, max_seq).map_err(|e| e.to_string())?;
    session.set_precision(Precision::F32);
    // Observed inputs per (layer, site): sites 0 (query/key/value), 3, 4, 5 of LAYER_LINEARS.
    let mut seen: Vec<Vec<f32>> = vec![Vec::new(); layers * 6];
    let bar = crate::report::progress_bar(texts.len(), progress);
    bar.set_message("calibrating");
    for text in texts {
        let ids: Vec<u32> = {
            let out = session.run(text).map_err(|e| format!("{text:?}: {e}"))?;
            out.tokens.iter().map(|t| t.id).collect()
        };
        session
            .run_ids_observed(&ids, None, &mut |l, j, x| {
                seen[l * 6 + j].extend_from_slice(x)
            })
            .map_err(|e| format!("{text:?}: {e}"))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut scales = BTreeMap::new();
    for l in 0..layers {
        for site in [0, 3, 4, 5] {
            let s = scale(observer, &seen[l * 6 + site]);
            if !(s.is_finite() && s > 0.0) {
                continue; // nothing observed: the layer stays dynamic
            }
            let targets: &[usize] = if site == 0 { &[0, 1, 2] } else { &[site] };
            for &j in targets {
                scales.insert(linear_name(l, j), s);
            }
        }
    }
    Ok(scales)
}

/// Reads a calibration file: one input per line, blank lines skipped.
pub fn read_texts(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if lines.is_empty() {
        return Err(format!("{}: no calibration texts", path.display()));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms() {
        let v = [0.5f32, -2.0, 1.0, 0.0];
        assert_eq!(minmax_scale(&v), 2.0 / 127.0);
        // |x| sorted: 0, 0.5, 1, 2; p50 at position 1.5 -> 0.75.
        assert!((percentile_scale(&v, 50.0) - 0.75 / 127.0).abs() < 1e-9);
        assert_eq!(percentile_scale(&v, 100.0), minmax_scale(&v));
        // Values exactly on a grid of max/127 lose nothing at the minmax scale.
        let grid: Vec<f32> = (-127..=127).map(|i| i as f32 * 0.01).collect();
        assert!(quantization_sse(&grid, 0.01) < 1e-10);
        assert!((mse_scale(&grid) - 0.01).abs() < 1e-7);
        assert_eq!(mse_scale(&[0.0, 0.0]), 0.0);
    }
}
