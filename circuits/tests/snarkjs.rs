//! An independent verifier accepts our proofs: export to snarkjs JSON and run
//! `snarkjs groth16 verify` (Node). Runs when `circuits/snarkjs-check/node_modules`
//! exists (`npm ci` there); ignored otherwise. The JSON shape is checked always.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{small_linear, test_rng};
use veilgrid_circuits::clearing::{BookShape, ClearingCircuit, Order, OrderBook, Side};
use veilgrid_circuits::field::Fr;
use veilgrid_circuits::groth16;
use veilgrid_circuits::inference::{InferenceCircuit, PrivateInput};
use veilgrid_circuits::snarkjs::{self, SnarkjsExport};

fn inference_export(tamper_public: bool) -> SnarkjsExport {
    let model = small_linear();
    let mut rng = test_rng(30);
    let keys = groth16::setup(InferenceCircuit::blank(model.shape()).unwrap(), &mut rng).unwrap();
    let circuit =
        InferenceCircuit::new(model, PrivateInput::new(vec![9, 8, 7, 6], &mut rng)).unwrap();
    let mut public = circuit.public().to_field_elements();
    let proof = groth16::prove(&keys.proving_key, circuit, &mut rng).unwrap();
    if tamper_public {
        public[2] += Fr::from(1u64);
    }
    snarkjs::export(&keys.verifying_key, &proof, &public).unwrap()
}

fn clearing_export() -> SnarkjsExport {
    let mut rng = test_rng(31);
    let shape = BookShape {
        max_orders: 4,
        levels: 4,
    };
    let keys = groth16::setup(ClearingCircuit::blank(shape).unwrap(), &mut rng).unwrap();
    let orders = vec![
        Order {
            side: Side::Sell,
            limit: 0,
            qty: 3,
        },
        Order {
            side: Side::Buy,
            limit: 2,
            qty: 2,
        },
    ];
    let book = OrderBook::with_random_blindings(shape, orders, &mut rng).unwrap();
    let (circuit, _) = ClearingCircuit::new(book).unwrap();
    let public = circuit.public().to_field_elements();
    let proof = groth16::prove(&keys.proving_key, circuit, &mut rng).unwrap();
    snarkjs::export(&keys.verifying_key, &proof, &public).unwrap()
}

#[test]
fn export_has_snarkjs_shape() {
    let e = inference_export(false);
    let vk: serde_json::Value = serde_json::from_str(&e.verification_key).unwrap();
    assert_eq!(vk["protocol"], "groth16");
    assert_eq!(vk["curve"], "bn128");
    assert_eq!(vk["nPublic"], 3);
    assert_eq!(vk["IC"].as_array().unwrap().len(), 4);
    assert_eq!(vk["vk_beta_2"][2], serde_json::json!(["1", "0"]));
    assert_eq!(vk["vk_alphabeta_12"].as_array().unwrap().len(), 2);
    let proof: serde_json::Value = serde_json::from_str(&e.proof).unwrap();
    assert_eq!(proof["pi_a"][2], "1");
    assert_eq!(proof["pi_b"].as_array().unwrap().len(), 3);
    let public: Vec<String> = serde_json::from_str(&e.public).unwrap();
    assert_eq!(public.len(), 3);
    assert!(public.iter().all(|s| s.chars().all(|c| c.is_ascii_digit())));
}

fn snarkjs_verify(e: &SnarkjsExport) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    e.write_to_dir(dir.path()).unwrap();
    let check = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            std::path::PathBuf::from,
        )
        .join("snarkjs-check");
    let out = std::process::Command::new("node")
        .arg(check.join("node_modules/snarkjs/build/cli.cjs"))
        .args(["groth16", "verify"])
        .arg(dir.path().join("verification_key.json"))
        .arg(dir.path().join("public.json"))
        .arg(dir.path().join("proof.json"))
        .output()
        .expect("node must be installed to run the snarkjs check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.contains("OK"), text)
}

#[test]
#[cfg_attr(
    not(snarkjs_installed),
    ignore = "run `npm ci` in circuits/snarkjs-check first"
)]
fn snarkjs_accepts_inference_and_clearing_proofs() {
    let (ok, text) = snarkjs_verify(&inference_export(false));
    eprintln!("snarkjs on the inference proof: {}", text.trim());
    assert!(ok, "snarkjs rejected the inference proof: {text}");
    let (ok, text) = snarkjs_verify(&clearing_export());
    assert!(ok, "snarkjs rejected the clearing proof: {text}");
}

#[test]
#[cfg_attr(
    not(snarkjs_installed),
    ignore = "run `npm ci` in circuits/snarkjs-check first"
)]
fn snarkjs_rejects_a_wrong_public_input() {
    let (ok, text) = snarkjs_verify(&inference_export(true));
    assert!(!ok, "snarkjs accepted a wrong public input: {text}");
}
