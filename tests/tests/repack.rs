//! Converting the encoder's int8 weights to a kernel table's own layout at load
//! (`Model::repacked`, what `bertq` does for an i8mm core given the default K4N16 file) changes
//! the order of the weights and nothing else: every hidden state is bit-identical, for every
//! table this CPU has, whichever layout the weights end up in.

use bertq_runtime::format::Layout;
use bertq_runtime::kernels::{self, Kernels, Weights};
use bertq_runtime::{LoadError, Model, Session};
use bertq_tests::default_model;

/// The last hidden states' bits for each input.
fn hidden(model: &Model<'_>, table: &'static Kernels, inputs: &[Vec<u32>]) -> Vec<Vec<u32>> {
    let mut session = Session::with_threads(model, 128, 1).unwrap();
    session.set_kernels(table);
    inputs
        .iter()
        .map(|ids| {
            let h = session.run_ids(ids, None).unwrap();
            h.iter().map(|x| x.to_bits()).collect()
        })
        .collect()
}

fn layouts(model: &Model<'_>) -> Vec<Layout> {
    model
        .encoder
        .layers
        .iter()
        .flat_map(|l| l.linears().map(|lin| lin.weight))
        .filter_map(|w| match w {
            Weights::I8(w) => Some(w.layout),
            _ => None,
        })
        .collect()
}

#[test]
fn repacked_weights_give_bit_identical_hidden_states() {
    let bytes = default_model();
    let model = Model::load(&bytes).unwrap();
    let file_layouts = layouts(&model);
    assert!(!file_layouts.is_empty());
    assert!(file_layouts.iter().all(|&l| l == Layout::K4N16));
    // Lengths around the kernels' row blocks (1, 4, 8, 16) and a longer one.
    let vocab = model.config().vocab_size;
    let inputs: Vec<Vec<u32>> = [1usize, 3, 5, 17, 64]
        .iter()
        .map(|&n| (0..n as u32).map(|i| (i * 7919 + 101) % vocab).collect())
        .collect();
    for name in kernels::ALL_NAMES {
        let Some(table) = kernels::by_name(name) else {
            continue;
        };
        let want = hidden(&model, table, &inputs);
        for to in [Layout::K4N16, Layout::K8N8, Layout::RowMajor] {
            // The table as it would be if `to` were its own layout: the plan follows it.
            let planner = Kernels {
                native_layout: to,
                ..*table
            };
            let Some((layout, len)) = model.repack_plan(&planner) else {
                assert!(
                    to == Layout::K4N16 || to == Layout::RowMajor,
                    "{name} {to:?}"
                );
                continue;
            };
            assert_eq!(layout, to);
            let mut short = vec![0i8; len - 1];
            assert!(matches!(
                model.repacked(&planner, &mut short),
                Err(LoadError::RepackBuffer { .. })
            ));
            let mut buf = vec![0x55i8; len];
            let repacked = model.repacked(&planner, &mut buf).unwrap();
            assert!(layouts(&repacked).iter().all(|&l| l == to));
            assert!(
                hidden(&repacked, table, &inputs) == want,
                "{name}: K4N16 -> {to:?}"
            );
        }
    }
}
