//! Mixed precision (f16 / f32 Linears among int8 ones) and static activation scales: the kept
//! layers compute exactly what the f32 reference path computes, the int8 paths (dynamic and
//! static) bit-exactly what a naive quantization computes, whole mixed models track Hugging
//! Face `transformers`, and corrupted mixed files are typed errors.

use bertq_quantize::{ConvertOptions, FloatDType, WeightPrecision};
use bertq_runtime::format::names;
use bertq_runtime::kernels::reference::quantize_value;
use bertq_runtime::kernels::{self, pack, Layout, PackedI8, Weights};
use bertq_runtime::model::bert::{Input, Linear};
use bertq_runtime::{LoadError, Model, ModelBytes, Precision, Session};
use bertq_tests::random_bert::{write_hf_dir, RandomConfig, RandomModels};
use bertq_tests::{convert, max_abs_diff, read_fixture};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        self.next() as f32 / (1u64 << 30) as f32 - 1.0
    }
}

/// The naive int8 Linear: quantize each row of `x` (dynamic: `max|row| / 127`, multiplying by
/// `127 / max`; static: multiplying by `1 / scale`), exact integer dot products, then
/// `acc * (a_scale * w_scale) + bias` (the documented dequantization, no fused multiply-add).
fn naive_linear(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[i8],
    w_scales: &[f32],
    bias: &[f32],
    static_scale: Option<f32>,
) -> Vec<f32> {
    let n = w_scales.len();
    let mut out = vec![0f32; m * n];
    for i in 0..m {
        let row = &x[i * k..(i + 1) * k];
        let (q, s): (Vec<i8>, f32) = match static_scale {
            Some(s) => (
                row.iter().map(|&v| quantize_value(v * (1.0 / s))).collect(),
                s,
            ),
            None => {
                let max = row.iter().fold(0f32, |a, &v| a.max(v.abs()));
                if max == 0.0 {
                    (vec![0; k], 0.0)
                } else {
                    let inv = 127.0 / max;
                    (
                        row.iter().map(|&v| quantize_value(v * inv)).collect(),
                        max / 127.0,
                    )
                }
            }
        };
        for j in 0..n {
            let acc: i32 = q
                .iter()
                .zip(&w[j * k..(j + 1) * k])
                .map(|(&a, &b)| a as i32 * b as i32)
                .sum();
            out[i * n + j] = acc as f32 * (s * w_scales[j]) + bias[j];
        }
    }
    out
}

#[test]
fn static_and_dynamic_int8_linears_match_a_naive_quantization_bit_exactly() {
    let mut rng = Lcg(11);
    let mut checked = 0;
    for name in kernels::ALL_NAMES {
        let Some(table) = kernels::by_name(name) else {
            println!("{name}: not supported by this CPU, skipped");
            continue;
        };
        for layout in [Layout::RowMajor, Layout::K4N16, Layout::K8N8] {
            for (m, n, k) in [
                (1, 1, 1),
                (3, 17, 33),
                (9, 40, 64),
                (16, 384, 96),
                (5, 24, 1536),
            ] {
                let w: Vec<i8> = (0..n * k).map(|_| (rng.next() % 255) as i8).collect();
                let w = w.iter().map(|&v| v.max(-127)).collect::<Vec<_>>();
                let w_scales: Vec<f32> = (0..n).map(|_| 0.001 + rng.f32().abs() * 0.01).collect();
                let bias: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
                // Activations of varied magnitude, some beyond the static range (they clip).
                let x: Vec<f32> = (0..m * k).map(|i| rng.f32() * (1 + i % 7) as f32).collect();
                let data = if layout == Layout::RowMajor {
                    w.clone()
                } else {
                    pack::pack(layout, &w, n, k)
                };
                let sums = pack::row_sums(&w, n, k);
                let packed = PackedI8 {
                    layout,
                    data: &data,
                    scales: &w_scales,
                    row_sums: Some(&sums),
                    n,
                    k,
                };
                for static_scale in [None, Some(0.02f32), Some(3.0 / 127.0)] {
                    let lin = Linear {
                        weight: Weights::I8(packed),
                        bias: &bias,
                        n,
                        k,
                        input_scale: static_scale,
                    };
                    let (mut xq, mut xs, mut out) =
                        (vec![0i8; m * k], vec![0f32; m], vec![0f32; m * n]);
                    lin.forward(
                        table,
                        Precision::Int8,
                        &x,
                        m,
                        &mut xq,
                        &mut xs,
                        Input::Float,
                        &mut out,
                    );
                    let expected = naive_linear(&x, m, k, &w, &w_scales, &bias, static_scale);
                    for (a, b) in out.iter().zip(&expected) {
                        assert_eq!(
                            a.to_bits(),
                            b.to_bits(),
                            "{name} {layout:?} {m}x{n}x{k} static {static_scale:?}: {a} vs {b}"
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 45);
}

fn small_config() -> RandomConfig {
    RandomConfig {
        num_hidden_layers: 2,
        hidden_size: 64,
        num_attention_heads: 4,
        intermediate_size: 256,
        vocab_size: 500,
        max_position_embeddings: 128,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
    }
}

const KEPT: [&str; 2] = [
    "encoder.layer.0.attention.self.key",
    "encoder.layer.1.output.dense",
];

fn convert_mixed(dir: &std::path::Path, keep: &[&str], dtype: FloatDType) -> ModelBytes {
    let opts = ConvertOptions {
        keep_float: keep.iter().map(|s| s.to_string()).collect(),
        float_dtype: dtype,
        ..Default::default()
    };
    ModelBytes::copy_from(&bertq_quantize::convert_dir(dir, &opts).unwrap().bytes)
}

fn linear<'m, 'a>(model: &'m Model<'a>, layer: usize, j: usize) -> &'m Linear<'a> {
    let l = &model.encoder.layers[layer];
    [
        &l.query,
        &l.key,
        &l.value,
        &l.attention_output,
        &l.intermediate,
        &l.output,
    ][j]
}

#[test]
fn kept_layers_compute_exactly_the_f32_reference_path() {
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir(dir.path(), &small_config(), 21);
    let f32_bytes = convert(dir.path(), WeightPrecision::F32);
    let int8_bytes = convert(dir.path(), WeightPrecision::Int8);
    let reference = Model::load(&f32_bytes).unwrap();
    let int8 = Model::load(&int8_bytes).unwrap();
    let mut rng = Lcg(5);
    for dtype in [FloatDType::F32, FloatDType::F16] {
        let bytes = convert_mixed(dir.path(), &KEPT, dtype);
        let mixed = Model::load(&bytes).unwrap();
        for l in 0..2 {
            for (j, module) in names::LAYER_LINEARS.iter().enumerate() {
                let name = format!("encoder.layer.{l}.{module}");
                let (got, r, q) = (
                    linear(&mixed, l, j),
                    linear(&reference, l, j),
                    linear(&int8, l, j),
                );
                let Weights::F32(rw) = r.weight else {
                    panic!("f32 reference")
                };
                match (got.weight, KEPT.contains(&name.as_str()), dtype) {
                    (Weights::F32(w), true, FloatDType::F32) => assert_eq!(w, rw, "{name}"),
                    (Weights::F16(w), true, FloatDType::F16) => {
                        let expected: Vec<u16> = rw
                            .iter()
                            .map(|&x| half::f16::from_f32(x).to_bits())
                            .collect();
                        assert_eq!(w, &expected[..], "{name}");
                    }
                    (Weights::I8(w), false, _) => {
                        let Weights::I8(e) = q.weight else {
                            panic!("int8 model")
                        };
                        assert_eq!(w.data, e.data, "{name}");
                        assert_eq!(w.scales, e.scales, "{name}");
                    }
                    (w, kept, _) => panic!("{name}: kept {kept}, stored {w:?}"),
                }
                if !KEPT.contains(&name.as_str()) {
                    continue;
                }
                // A kept layer in the int8 model computes what the reference path computes.
                let (m, n, k) = (7, got.n, got.k);
                let x: Vec<f32> = (0..m * k).map(|_| rng.f32()).collect();
                let (mut xq, mut xs) = (vec![0i8; m * k], vec![0f32; m]);
                let (mut a, mut b) = (vec![0f32; m * n], vec![0f32; m * n]);
                for table in kernels::ALL_NAMES
                    .iter()
                    .filter_map(|n| kernels::by_name(n))
                {
                    got.forward(
                        table,
                        Precision::Int8,
                        &x,
                        m,
                        &mut xq,
                        &mut xs,
                        Input::Float,
                        &mut a,
                    );
                    r.forward(
                        table,
                        Precision::F32,
                        &x,
                        m,
                        &mut xq,
                        &mut xs,
                        Input::Float,
                        &mut b,
                    );
                    let d = max_abs_diff(&a, &b);
                    match dtype {
                        FloatDType::F32 => assert_eq!(d, 0.0, "{name} on {}", table.name),
                        // f16 keeps 11 significant bits of each weight.
                        FloatDType::F16 => assert!(d < 2e-3, "{name} on {}: {d}", table.name),
                    }
                }
            }
        }
    }
}

#[test]
fn mixed_models_track_transformers_closer_than_int8() {
    let fixture: RandomModels = read_fixture("random_models.json");
    for m in fixture.models.iter().take(3) {
        let dir = tempfile::tempdir().unwrap();
        write_hf_dir(dir.path(), &m.config, m.seed);
        let all: Vec<String> = (0..m.config.num_hidden_layers)
            .flat_map(|l| names::LAYER_LINEARS.map(|n| format!("encoder.layer.{l}.{n}")))
            .collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let int8 = convert(dir.path(), WeightPrecision::Int8);
        let f32_kept = convert_mixed(dir.path(), &all, FloatDType::F32);
        let f16_kept = convert_mixed(dir.path(), &all, FloatDType::F16);
        let half_kept = convert_mixed(dir.path(), &all[..all.len() / 2], FloatDType::F16);
        let max_seq = m
            .inputs
            .iter()
            .map(|i| i.input_ids.len())
            .max()
            .unwrap()
            .max(2);
        let run = |bytes: &ModelBytes, precision: Precision| -> Vec<Vec<f32>> {
            let model = Model::load(bytes).unwrap();
            let mut s = Session::with_owned_memory(&model, max_seq).unwrap();
            s.set_precision(precision);
            m.inputs
                .iter()
                .map(|i| {
                    s.run_ids(&i.input_ids, Some(&i.token_type_ids))
                        .unwrap()
                        .to_vec()
                })
                .collect()
        };
        let vs_hf = |out: &[Vec<f32>]| {
            out.iter()
                .zip(&m.inputs)
                .map(|(h, i)| max_abs_diff(h, &i.last_hidden_state.concat()))
                .fold(0f32, f32::max)
        };
        let outs: Vec<_> = [&int8, &f32_kept, &f16_kept, &half_kept]
            .iter()
            .map(|b| run(b, Precision::Int8))
            .collect();
        let diffs: Vec<f32> = outs.iter().map(|o| vs_hf(o)).collect();
        println!(
            "{}: max |h - transformers|: int8 {:.2e}, all Linears f32 {:.2e}, f16 {:.2e}, half f16 {:.2e}",
            m.name, diffs[0], diffs[1], diffs[2], diffs[3]
        );
        // With every Linear kept in f32 only the int8 embedding tables differ from the reference
        // path: int8 precision takes exactly the f32 reference path's arithmetic.
        assert_eq!(outs[1], run(&f32_kept, Precision::F32), "{}", m.name);
        assert!(
            diffs[1] < diffs[0] && diffs[2] < diffs[0],
            "{}: {diffs:?}",
            m.name
        );
        let f16_vs_f32 = outs[2]
            .iter()
            .zip(&outs[1])
            .map(|(a, b)| max_abs_diff(a, b))
            .fold(0f32, f32::max);
        println!("{}: f16 vs f32 Linears: {f16_vs_f32:.2e}", m.name);
        assert!(f16_vs_f32 < 5e-3, "{}: {f16_vs_f32}", m.name);
    }
}

fn fix_checksum(bytes: &mut [u8]) {
    let crc = crc32fast::hash(&bytes[32..]);
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
}

/// Overwrites the data of tensor `name` (checksum fixed, so only the model's checks can object).
fn patch(bytes: &ModelBytes, name: &str, data: &[u8]) -> ModelBytes {
    let file = bertq_runtime::ModelFile::parse(bytes).unwrap();
    let e = file.entries().find(|e| e.name == name).unwrap();
    let mut v = bytes.to_vec();
    v[e.offset as usize..e.offset as usize + data.len()].copy_from_slice(data);
    fix_checksum(&mut v);
    ModelBytes::copy_from(&v)
}

#[test]
fn corrupted_mixed_and_calibrated_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir(dir.path(), &small_config(), 22);
    let scale = "encoder.layer.0.intermediate.dense.input_scale";
    let opts = ConvertOptions {
        keep_float: KEPT.iter().map(|s| s.to_string()).collect(),
        input_scales: [(scale.trim_end_matches(".input_scale").to_string(), 0.05f32)]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let bytes = ModelBytes::copy_from(
        &bertq_quantize::convert_dir(dir.path(), &opts)
            .unwrap()
            .bytes,
    );
    let model = Model::load(&bytes).unwrap();
    assert_eq!(model.encoder.layers[0].intermediate.input_scale, Some(0.05));
    assert!(matches!(
        model.encoder.layers[0].key.weight,
        Weights::F16(_)
    ));
    for bad in [-1.0f32, 0.0, f32::NAN, f32::INFINITY] {
        let b = patch(&bytes, scale, &bad.to_le_bytes());
        let result = Model::load(&b).map(|_| ());
        match result {
            Err(LoadError::WrongTensor { name, .. }) => assert_eq!(name.as_str(), scale),
            other => panic!("scale {bad}: {other:?}"),
        }
    }
    // Flipped f16 weight bytes without a fixed checksum: the checksum names it.
    let mut v = bytes.to_vec();
    let off = {
        let file = bertq_runtime::ModelFile::parse(&bytes).unwrap();
        let e = file
            .entries()
            .find(|e| e.name == "encoder.layer.0.attention.self.key.weight")
            .unwrap();
        assert_eq!(e.dtype, bertq_runtime::format::DType::F16);
        e.offset as usize
    };
    v[off] ^= 0xff;
    assert!(matches!(
        Model::load(&ModelBytes::copy_from(&v)),
        Err(LoadError::ChecksumMismatch { .. })
    ));
    // The quantizer refuses names that are not Linears and scales that are not positive.
    for (keep, scales) in [
        (vec!["encoder.layer.9.output.dense".to_string()], vec![]),
        (
            vec!["encoder.layer.0.attention.output.LayerNorm".to_string()],
            vec![],
        ),
        (
            vec![],
            vec![("encoder.layer.0.output.dense".to_string(), -1.0f32)],
        ),
    ] {
        let opts = ConvertOptions {
            keep_float: keep,
            input_scales: scales.into_iter().collect(),
            ..Default::default()
        };
        let err = bertq_quantize::convert_dir(dir.path(), &opts).unwrap_err();
        assert!(
            matches!(err, bertq_quantize::QuantizeError::Invalid(_)),
            "{err}"
        );
    }
}

/// `gemm_f32` with f32 and f16 weights on every table (the x86 FMA + F16C kernel, the portable
/// code) against a naive f64 product, over shapes that exercise every tail (m odd, n % 4, k % 8).
#[test]
fn float_gemm_matches_a_naive_product_on_every_table() {
    let mut rng = Lcg(77);
    for table in kernels::ALL_NAMES
        .iter()
        .filter_map(|n| kernels::by_name(n))
    {
        for (m, n, k) in [
            (1, 1, 1),
            (3, 5, 7),
            (2, 4, 8),
            (5, 9, 17),
            (8, 33, 384),
            (7, 6, 1536),
        ] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.f32()).collect();
            let w: Vec<f32> = (0..n * k).map(|_| rng.f32()).collect();
            let h: Vec<u16> = w
                .iter()
                .map(|&x| half::f16::from_f32(x).to_bits())
                .collect();
            let bias: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
            let wh: Vec<f32> = h
                .iter()
                .map(|&b| half::f16::from_bits(b).to_f32())
                .collect();
            for (weights, wv) in [(Weights::F32(&w), &w), (Weights::F16(&h), &wh)] {
                let p = kernels::GemmF32 {
                    m,
                    n,
                    k,
                    a: &a,
                    w: weights,
                    bias: Some(&bias),
                };
                let mut out = vec![f32::NAN; m * n];
                (table.gemm_f32)(&p, &mut out);
                for i in 0..m {
                    for j in 0..n {
                        let (mut s, mut mag) = (bias[j] as f64, bias[j].abs() as f64);
                        for c in 0..k {
                            let t = a[i * k + c] as f64 * wv[j * k + c] as f64;
                            s += t;
                            mag += t.abs();
                        }
                        let got = out[i * n + j] as f64;
                        assert!(
                            (got - s).abs() <= 1e-6 * mag + 1e-7,
                            "{} {m}x{n}x{k} ({i},{j}): {got} vs {s}",
                            table.name
                        );
                    }
                }
            }
        }
    }
}
