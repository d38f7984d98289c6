//! Every held-out test row through encrypted inference, compared with the quantized plaintext
//! model, the float model and the true label.
//!
//! `cargo run -p veilgrid-fhe --release --example eval_all [-- breast-cancer-gbt]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

use veilgrid_fhe::dataset::BreastCancer;
use veilgrid_fhe::model::{MODEL_NAMES, builtin_float_model};
use veilgrid_fhe::{FheModel, builtin_model, evaluate, evaluate_batch, generate_keys};

fn main() {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = if names.is_empty() {
        MODEL_NAMES.to_vec()
    } else {
        names.iter().map(String::as_str).collect()
    };
    let data = BreastCancer::load().unwrap();
    let t = Instant::now();
    let (client, compressed) = generate_keys().unwrap();
    println!("keygen {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let server = compressed.decompress().unwrap();
    println!("decompress {:.2} s", t.elapsed().as_secs_f64());
    for name in names {
        let model = FheModel::compile(builtin_model(name).unwrap()).unwrap();
        let float = builtin_float_model(name).unwrap();
        let rows: Vec<(usize, &[f64], usize)> = data.test_set().collect();
        let (queries, pendings): (Vec<_>, Vec<_>) = rows
            .iter()
            .map(|(_, x, _)| client.encrypt(&model, x).unwrap())
            .unzip();
        // latency of one query, then throughput of all rows as one batch
        let t = Instant::now();
        evaluate(&server, &model, &queries[0]).unwrap();
        let one = t.elapsed();
        veilgrid_fhe::reset_pbs_count();
        let t = Instant::now();
        let answers = evaluate_batch(&server, &model, &queries);
        let all = t.elapsed();
        let pbs = veilgrid_fhe::pbs_count();
        let (mut agree, mut enc_ok, mut float_ok) = (0, 0, 0);
        for ((((_, x, label), pending), answer), _) in
            rows.iter().zip(pendings).zip(answers).zip(0..)
        {
            let enc = pending.decrypt(&client, &answer.unwrap()).unwrap();
            let plain = model.model().predict(x).unwrap();
            agree += usize::from(
                enc == veilgrid_fhe::Prediction {
                    class: plain.class,
                    score: plain.score,
                },
            );
            enc_ok += usize::from(enc.class == *label);
            float_ok += usize::from(float.predict(x).unwrap() == *label);
        }
        let n = rows.len();
        println!(
            "{name}: {n} rows, encrypted == quantized plaintext on {agree}/{n}; accuracy encrypted \
             {:.2} %, float {:.2} %; bootstraps {} per row ({} counted), one query {:.1} ms, \
             batch {:.1} ms per row",
            100.0 * enc_ok as f64 / n as f64,
            100.0 * float_ok as f64 / n as f64,
            model.bootstraps_per_inference(),
            pbs as usize / n,
            one.as_secs_f64() * 1e3,
            all.as_secs_f64() * 1e3 / n as f64,
        );
        assert_eq!(agree, n, "encrypted and plaintext predictions differ");
    }
}
