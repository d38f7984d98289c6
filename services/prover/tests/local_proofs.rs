//! Proofs made away from the prover (`GetProvingKey` + `SubmitProof`): the
//! institution proves on its own input with the fetched proving key; the prover
//! keeps a proof only if it verifies under the key it names, and recomputes the
//! statement from the public inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use veilgrid_prover::keys::{KeyRing, RemoteKey, dev_specs};

const KEY: &str = "inference-demo-linear";
// score = 3·10 − 7·20 + 12·200 − 20·5 − 20 = 2170 ≥ −1500: class 1.
const ROW: &str = r#"{"features":[10,20,200,5]}"#;

#[test]
fn a_local_proof_is_accepted_and_its_statement_recomputed() {
    let ring = KeyRing::generate(&dev_specs()).unwrap();
    let resp = ring.proving_key(KEY).unwrap();
    let local = RemoteKey::from_response(&resp, None).unwrap();
    let mut record = local.prove(ROW).unwrap();
    // Whatever the submitter claims, the kept statement comes from the public inputs.
    record.statement_json = r#"{"class":0}"#.into();
    let kept = ring.accept(&record).unwrap();
    let statement: serde_json::Value = serde_json::from_str(&kept.statement_json).unwrap();
    assert_eq!(statement["class"], 1);
    assert_eq!(kept.vk_id, resp.key.unwrap().id);
}

#[test]
fn altered_or_misattributed_proofs_are_refused() {
    let ring = KeyRing::generate(&dev_specs()).unwrap();
    let resp = ring.proving_key(KEY).unwrap();
    let record = RemoteKey::from_response(&resp, None)
        .unwrap()
        .prove(ROW)
        .unwrap();
    // The class flipped (public input 2, little-endian): the proof no longer verifies.
    let mut flipped = record.clone();
    let mut p = flipped.public_inputs.to_vec();
    p[64] ^= 1;
    flipped.public_inputs = p.into();
    assert!(ring.accept(&flipped).is_err());
    // One byte of the proof.
    let mut bad = record.clone();
    let mut b = bad.proof.to_vec();
    b[10] ^= 1;
    bad.proof = b.into();
    assert!(ring.accept(&bad).is_err());
    // Filed under another key.
    let mut other = record.clone();
    other.key_name = "clearing-4x4".into();
    assert!(ring.accept(&other).is_err());
    // A proof from a key set up elsewhere (same circuit, other toxic waste).
    let foreign = KeyRing::generate(&dev_specs()).unwrap();
    let foreign_record = RemoteKey::from_response(&foreign.proving_key(KEY).unwrap(), None)
        .unwrap()
        .prove(ROW)
        .unwrap();
    assert!(ring.accept(&foreign_record).is_err());
}

#[test]
fn a_fetched_key_must_match_the_pinned_id() {
    let ring = KeyRing::generate(&dev_specs()).unwrap();
    let resp = ring.proving_key(KEY).unwrap();
    let other = KeyRing::generate(&dev_specs()).unwrap();
    let other_id = other.proving_key(KEY).unwrap().key.unwrap().id;
    assert!(RemoteKey::from_response(&resp, Some(&other_id)).is_err());
    // A proving key swapped for another one under the same verifying key.
    let mut swapped = resp.clone();
    swapped.proving_key = other.proving_key(KEY).unwrap().proving_key;
    assert!(RemoteKey::from_response(&swapped, None).is_err());
    // The model is part of the key: an input out of its range is refused.
    let local = RemoteKey::from_response(&resp, None).unwrap();
    assert!(local.prove(r#"{"features":[10,20,300,5]}"#).is_err());
}

#[test]
fn keys_of_another_circuit_version_are_refused_at_load() {
    let t = tempfile::tempdir().unwrap();
    KeyRing::setup(t.path(), &dev_specs()).unwrap();
    assert!(KeyRing::load(t.path()).unwrap().is_some());
    // As if the clearing circuit had changed since the setup (its count differs).
    let p = t.path().join("keys.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    for k in manifest.as_array_mut().unwrap() {
        if k["circuit"] == "clearing" {
            k["constraints"] = serde_json::json!(25_687);
        }
    }
    std::fs::write(&p, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let err = KeyRing::load(t.path()).unwrap_err();
    assert!(
        matches!(err, veilgrid_prover::ProverError::StaleKeys(_)),
        "{err}"
    );
    assert!(err.to_string().contains("prover setup"), "{err}");
}
