//! Weight quantization.

use bertq_runtime::kernels::reference::quantize_value;

/// Symmetric int8 quantization of each row of `w` (`cols` wide): `scale = max|row| / 127`,
/// `q = round(w / scale)`. All-zero rows get scale 0.
pub fn quantize_rows_symmetric(w: &[f32], cols: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = vec![0i8; w.len()];
    let mut scales = vec![0f32; w.len() / cols.max(1)];
    for ((row, qrow), scale) in w
        .chunks_exact(cols)
        .zip(q.chunks_exact_mut(cols))
        .zip(&mut scales)
    {
        let max = row.iter().fold(0f32, |m, &v| m.max(v.abs()));
        if max == 0.0 || !max.is_finite() {
            continue;
        }
        *scale = max / 127.0;
        for (d, &v) in qrow.iter_mut().zip(row) {
            *d = quantize_value(v / *scale);
        }
    }
    (q, scales)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_map_to_127_and_error_is_bounded() {
        let w = [0.5f32, -1.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0];
        let (q, s) = quantize_rows_symmetric(&w, 4);
        assert_eq!(q[1], -127);
        assert_eq!(q[0], 64); // 0.5 * 127 = 63.5 rounds away from zero
        assert_eq!(s[1], 0.0);
        assert_eq!(&q[4..], &[0, 0, 0, 0]);
        for (x, &qv) in w[..4].iter().zip(&q[..4]) {
            assert!((x - qv as f32 * s[0]).abs() <= s[0] / 2.0 + 1e-7);
        }
    }
}
