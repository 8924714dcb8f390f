//! Runs one aarch64 kernel table's activation quantization + int8 GEMM `iters` times, for
//! instruction counting under qemu (`scripts/count_instructions.sh`).
//!
//! Usage: `gemm_count TABLE[/LAYOUT] M N K ITERS [gemm]` (TABLE: neon, dotprod, i8mm; weights
//! packed in the table's native layout, or LAYOUT: k4n16, k8n8, rowmajor). Everything is allocated before the loop; each iteration calls the
//! table's `quantize_rows` and `gemm_i8` (with `gemm`: only `gemm_i8`, the activations being
//! quantized once before the loop).

#[cfg(target_arch = "aarch64")]
fn main() {
    use bertq_runtime::kernels::{aarch64, pack, GemmI8, MatMut, PackedI8};

    let args: Vec<String> = std::env::args().collect();
    if !(6..=7).contains(&args.len()) || args.get(6).is_some_and(|a| a != "gemm") {
        eprintln!("usage: {} TABLE[/LAYOUT] M N K ITERS [gemm]", args[0]);
        std::process::exit(2);
    }
    let num = |i: usize| -> usize {
        args[i].parse().unwrap_or_else(|_| {
            eprintln!("not a number: {}", args[i]);
            std::process::exit(2)
        })
    };
    let (m, n, k, iters) = (num(2), num(3), num(4), num(5));
    let (table, layout) = args[1].split_once('/').unwrap_or((&args[1], ""));
    let Some(t) = aarch64::by_name(table) else {
        eprintln!("kernel table {table:?} unknown or not supported by this CPU");
        std::process::exit(3);
    };
    let layout = match layout {
        "" => t.native_layout,
        "k4n16" => pack::Layout::K4N16,
        "k8n8" => pack::Layout::K8N8,
        "rowmajor" => pack::Layout::RowMajor,
        other => {
            eprintln!("layout {other:?} unknown (k4n16, k8n8, rowmajor)");
            std::process::exit(2);
        }
    };

    // Deterministic pseudo-random inputs (an LCG: no dependency).
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (s >> 40) as u32
    };
    let x: Vec<f32> = (0..m * k)
        .map(|_| next() as f32 / 8_388_608.0 - 1.0)
        .collect();
    let w: Vec<i8> = (0..n * k)
        .map(|_| ((next() % 255) as i32 - 127) as i8)
        .collect();
    let w_scales: Vec<f32> = (0..n).map(|_| 1e-3 + next() as f32 * 1e-9).collect();
    let bias: Vec<f32> = (0..n).map(|_| next() as f32 * 1e-8).collect();
    let packed = pack::pack(layout, &w, n, k);
    let mut q = vec![0i8; m * k];
    let mut a_scales = vec![0f32; m];
    let mut out = vec![0f32; m * n];

    let gemm_only = args.len() == 7;
    if gemm_only {
        (t.quantize_rows)(&x, k, &mut q, &mut a_scales, false);
    }
    let mut checksum = 0.0f64;
    for _ in 0..iters {
        if !gemm_only {
            (t.quantize_rows)(std::hint::black_box(&x), k, &mut q, &mut a_scales, false);
        }
        let p = GemmI8 {
            m,
            a: &q,
            a_scales: &a_scales,
            w: PackedI8 {
                layout,
                data: &packed,
                scales: &w_scales,
                row_sums: None,
                n,
                k,
            },
            bias: Some(&bias),
        };
        (t.gemm_i8)(&p, &mut MatMut::new(&mut out, m, n));
        checksum += std::hint::black_box(&out)[0] as f64;
    }
    println!(
        "{} m={m} n={n} k={k} iters={iters} checksum={checksum}",
        t.name
    );
}

#[cfg(not(target_arch = "aarch64"))]
fn main() {
    eprintln!("gemm_count runs the aarch64 kernel tables: build it for an aarch64 target");
    std::process::exit(2);
}
