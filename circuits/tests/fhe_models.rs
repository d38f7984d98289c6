//! The circuit and `crypto/fhe` agree on every held-out test row of the shipped
//! breast-cancer models: the converted model reproduces the score and class the
//! FHE crate recorded for each row (`metrics.test_scores`/`test_predictions`, which
//! the FHE crate's own tests check against its encrypted evaluation), and the
//! inference circuit is satisfied with that class and not with the other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use veilgrid_circuits::inference::{
    InferenceCircuit, InferencePublic, Model, ModelKind, PrivateInput, is_satisfied,
};

fn fhe_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            std::path::PathBuf::from,
        )
        .join("../crypto/fhe")
}

#[derive(serde::Deserialize)]
struct Metrics {
    test_predictions: Vec<u8>,
    test_scores: Vec<i64>,
}

#[derive(serde::Deserialize)]
struct File {
    quantizer: Quantizer,
    metrics: Metrics,
}

#[derive(serde::Deserialize)]
struct Quantizer {
    bits: u32,
    min: Vec<f64>,
    scale: Vec<f64>,
}

#[derive(serde::Deserialize)]
struct Split {
    test_rows: Vec<usize>,
}

/// The FHE crate's quantizer: `q = clamp(floor((x - min) / scale + 0.5), 0, 2^bits - 1)`.
fn quantize(q: &Quantizer, raw: &[f64]) -> Vec<u64> {
    let max = ((1u64 << q.bits) - 1) as f64;
    raw.iter()
        .zip(q.min.iter().zip(&q.scale))
        .map(|(&x, (&min, &scale))| ((x - min) / scale + 0.5).floor().clamp(0.0, max) as u64)
        .collect()
}

fn test_rows(q: &Quantizer) -> Vec<Vec<u64>> {
    let csv = std::fs::read_to_string(fhe_dir().join("data/breast_cancer.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            cells[..cells.len() - 1]
                .iter()
                .map(|c| c.parse().unwrap())
                .collect()
        })
        .collect();
    let split: Split =
        serde_json::from_slice(&std::fs::read(fhe_dir().join("models/split.json")).unwrap())
            .unwrap();
    split
        .test_rows
        .iter()
        .map(|&i| quantize(q, &rows[i]))
        .collect()
}

/// Native score and class on every row; the circuit on every `circuit_every`-th row.
fn check(file: &str, expect_trees: bool, circuit_every: usize) {
    let bytes = std::fs::read(fhe_dir().join("models").join(file)).unwrap();
    let model = Model::from_quantized_v1_json(&bytes).unwrap();
    assert_eq!(matches!(model.kind, ModelKind::Trees(_)), expect_trees);
    let meta: File = serde_json::from_slice(&bytes).unwrap();
    let rows = test_rows(&meta.quantizer);
    assert_eq!(rows.len(), meta.metrics.test_scores.len());
    let mut rng = common::test_rng(40);
    for (i, x) in rows.iter().enumerate() {
        let score = model.score(x).unwrap();
        assert_eq!(
            score,
            i128::from(meta.metrics.test_scores[i]),
            "{file} row {i}: score"
        );
        let class = model.predict(x).unwrap();
        assert_eq!(
            class, meta.metrics.test_predictions[i],
            "{file} row {i}: class"
        );
        if i % circuit_every != 0 {
            continue;
        }
        let input = PrivateInput::new(x.clone(), &mut rng);
        let circuit = InferenceCircuit::new(model.clone(), input.clone()).unwrap();
        assert_eq!(circuit.public().class, class);
        assert!(
            is_satisfied(circuit.clone()).unwrap(),
            "{file} row {i}: circuit"
        );
        if i % (4 * circuit_every) == 0 {
            let lie = InferencePublic {
                class: 1 - class,
                ..circuit.public()
            };
            assert!(
                !is_satisfied(InferenceCircuit::with_claim(model.clone(), input, lie)).unwrap()
            );
        }
    }
}

#[test]
fn logistic_regression_agrees_with_fhe_on_every_test_row() {
    check("breast_cancer_logreg.quant.json", false, 4);
}

#[test]
fn gradient_boosted_trees_agree_with_fhe_on_every_test_row() {
    check("breast_cancer_gbt.quant.json", true, 12);
}

/// Every row through the circuit too (about a minute):
/// `cargo test -p veilgrid-circuits --test fhe_models -- --ignored`.
#[test]
#[ignore = "slow: every test row through the circuit"]
fn both_models_agree_with_fhe_on_every_test_row_in_circuit() {
    check("breast_cancer_logreg.quant.json", false, 1);
    check("breast_cancer_gbt.quant.json", true, 1);
}

#[test]
fn malformed_quantized_files_are_refused() {
    assert!(Model::from_quantized_v1_json(b"{}").is_err());
    assert!(Model::from_quantized_v1_json(br#"{"format":"other","kind":"linear","n_features":1,"quantizer":{"bits":8},"linear":{"weights":[1],"bias":0}}"#).is_err());
    let ok = br#"{"format":"veilgrid-quantized-model/v1","kind":"linear","n_features":1,"quantizer":{"bits":8},"linear":{"weights":[1],"bias":0}}"#;
    assert!(Model::from_quantized_v1_json(ok).is_ok());
    let cyclic = br#"{"format":"veilgrid-quantized-model/v1","kind":"tree_ensemble","n_features":1,"quantizer":{"bits":4},"bias":0,"trees":[{"nodes":[{"feature":0,"threshold":1,"left":0,"right":0}]}]}"#;
    assert!(Model::from_quantized_v1_json(cyclic).is_err());
    let too_deep_leaf = br#"{"format":"veilgrid-quantized-model/v1","kind":"linear","n_features":1,"quantizer":{"bits":8},"linear":{"weights":[4294967296],"bias":0}}"#;
    assert!(Model::from_quantized_v1_json(too_deep_leaf).is_err());
}
