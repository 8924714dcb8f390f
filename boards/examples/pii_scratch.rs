use bertq_runtime::pii::PiiProfile;
use bertq_runtime::*;
fn main() {
    let bytes = ModelBytes::read(std::path::Path::new("models/rampart-pii.bertq")).unwrap();
    let mut model = Model::load(&bytes).unwrap();
    if model.pii.is_none() {
        model.pii = Some(PiiProfile::parse(pii::RAMPART_PROFILE, true).unwrap());
    }
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/pii_labelled.json").unwrap())
            .unwrap();
    let agg = Aggregation::from_name(&std::env::args().nth(1).unwrap_or("pii".into())).unwrap();
    let mut session = Session::with_input_limit(&model, 128, 1024, 1).unwrap();
    let (mut tp, mut ng, mut nf, mut ptp, mut pnf) = (0, 0, 0, 0, 0);
    let mut per: std::collections::BTreeMap<String, (usize, usize, usize)> = Default::default();
    for s in f["sentences"].as_array().unwrap() {
        let text = s["text"].as_str().unwrap();
        let opts = RunOptions {
            aggregation: agg,
            stride: Some(32),
            threshold: std::env::var("THR").ok().map(|t| t.parse().unwrap()),
            ..RunOptions::default()
        };
        let out = session.run_with(text, &opts).unwrap();
        let TaskOutput::Entities(es) = out.task else {
            panic!()
        };
        let found: Vec<(String, u64, u64)> = es
            .iter()
            .map(|e| {
                (
                    model.entity_type(e, agg).to_string(),
                    e.start as u64,
                    e.end as u64,
                )
            })
            .collect();
        let gold: Vec<(String, u64, u64)> = s["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["type"].as_str().unwrap().to_string(),
                    g["start"].as_u64().unwrap(),
                    g["end"].as_u64().unwrap(),
                )
            })
            .collect();
        let pkg: Vec<(String, u64, u64)> = s["package"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["type"].as_str().unwrap().to_string(),
                    g["start"].as_u64().unwrap(),
                    g["end"].as_u64().unwrap(),
                )
            })
            .collect();
        ng += gold.len();
        nf += found.len();
        pnf += pkg.len();
        for g in &gold {
            let e = per.entry(g.0.clone()).or_default();
            e.1 += 1;
            if found.contains(g) {
                tp += 1;
                e.0 += 1
            }
            if pkg.contains(g) {
                ptp += 1;
                e.2 += 1;
            }
        }
        let miss: Vec<_> = gold.iter().filter(|g| !found.contains(g)).collect();
        let extra: Vec<_> = found.iter().filter(|g| !gold.contains(g)).collect();
        if (!miss.is_empty() || !extra.is_empty()) && std::env::var("V").is_ok() {
            println!("{text}\n  miss {:?}\n  extra {:?}", miss, extra);
        }
    }
    let f1 = |tp: usize, nf: usize| {
        let p = tp as f64 / nf as f64;
        let r = tp as f64 / ng as f64;
        2.0 * p * r / (p + r)
    };
    println!(
        "bertq {agg:?} F1 {:.4}  package F1 {:.4}",
        f1(tp, nf),
        f1(ptp, pnf)
    );
    for (t, (a, n, b)) in per {
        println!("  {t}: {a}/{n} pkg {b}/{n}");
    }
}
