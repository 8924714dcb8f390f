//! Splitting a run over threads changes nothing: every output is bit-identical to one thread
//! (rows and heads are computed by the same code, only by different threads).

use bertq_runtime::{Model, Session, TaskOutput};
use bertq_tests::default_model;

fn outputs(model: &Model<'_>, threads: usize, texts: &[String]) -> Vec<Vec<u32>> {
    let mut session = Session::with_threads(model, 256, threads).unwrap();
    assert_eq!(session.threads(), threads);
    texts
        .iter()
        .map(|t| {
            let out = session.run(t).unwrap();
            let TaskOutput::Entities(es) = out.task else {
                panic!("token classification")
            };
            es.iter()
                .flat_map(|e| [e.label, e.start, e.end, e.score.to_bits()])
                .collect()
        })
        .collect()
}

#[test]
fn threads_give_bit_identical_results() {
    let bytes = default_model();
    let model = Model::load(&bytes).unwrap();
    let texts: Vec<String> = (1..40)
        .map(|n| {
            "Maria Gonzalez lives at 42 Elm Street, Springfield; call 555-0100 or mail maria@example.com. "
                .repeat(n)
                .chars()
                .take(n * 23)
                .collect()
        })
        .collect();
    let one = outputs(&model, 1, &texts);
    for threads in [2, 3, 4] {
        assert_eq!(outputs(&model, threads, &texts), one, "{threads} threads");
    }
}
