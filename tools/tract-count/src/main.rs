//! `tract-count M N K ITERS`: builds tract's int8 matrix product `[M, K] i8 x [K, N] i8 -> i32`
//! (the graph tract-onnx makes of ONNX `MatMulInteger`: an `EinSum` with quantization inputs),
//! with the weights constant so the optimiser packs them once, then runs the plan ITERS times on
//! an i8 activation matrix. The instruction counter takes the difference between two ITERS, so
//! model building, optimisation and weight packing cancel out and one run is left: activation
//! packing plus the kernel (tract picks SMLAL 8x8 on ARMv8.0, SDOT 8x8 with FEAT_DotProd).
use tract_core::internal::*;
use tract_core::ops::einsum::EinSum;

fn main() -> TractResult<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let [m, n, k, iters] = args[..] else {
        eprintln!("usage: tract-count M N K ITERS");
        std::process::exit(2);
    };
    // Deterministic, full-range int8 values (a small LCG; the values do not change the count).
    let mut state = 0x2545_f491_u32;
    let mut next = move || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 24) as u8 as i8
    };
    let weights: Vec<i8> = (0..k * n).map(|_| next()).collect();
    let activations: Vec<i8> = (0..m * k).map(|_| next()).collect();

    let mut model = TypedModel::default();
    let a = model.add_source("a", i8::fact([m, k]))?;
    let b = model.add_const("b", Tensor::from_shape(&[k, n], &weights)?)?;
    let mut inputs = tvec![a, b, model.add_const("bias", tensor0(0i32))?];
    for (name, zero) in [("a", true), ("b", true), ("c", true)] {
        let _ = zero;
        inputs.push(model.add_const(format!("{name}0"), tensor0(0i32))?);
        inputs.push(model.add_const(format!("{name}_scale"), tensor0(1f32))?);
    }
    // Axes as tract-onnx's MatMulInteger: m, k on A; k, n on B; m, n out; the 7 scalars free.
    let axes = AxesMapping::disconnected_for_ranks(&[2, 2, 0, 0, 0, 0, 0, 0, 0], &[2])?
        .renaming((InOut::In(0), 0), 'm')?
        .linking('m', (InOut::Out(0), 0))?
        .renaming((InOut::In(1), 1), 'n')?
        .linking('n', (InOut::Out(0), 1))?
        .renaming((InOut::In(0), 1), 'k')?
        .linking('k', (InOut::In(1), 0))?;
    let out = model.wire_node(
        "matmul",
        EinSum::newq(axes, i32::datum_type(), i32::datum_type()),
        &inputs,
    )?;
    model.select_output_outlets(&out)?;
    let model = model.into_optimized()?;
    for node in model.nodes() {
        eprintln!("tract-count: {} {:?}", node.name, node.op);
    }
    let plan = model.into_runnable()?;
    let input: TValue = Tensor::from_shape(&[m, k], &activations)?.into();
    let mut checksum = 0i64;
    for _ in 0..iters {
        let out = plan.run(tvec![input.clone()])?;
        checksum = checksum.wrapping_add(*out[0].to_plain_array_view::<i32>()?.iter().next().unwrap_or(&0) as i64);
    }
    println!("{checksum}");
    Ok(())
}
