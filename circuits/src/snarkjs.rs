//! Export of a Groth16 proof in snarkjs' JSON formats (`verification_key.json`,
//! `proof.json`, `public.json`, protocol `groth16`, curve `bn128`) so that an
//! independent implementation (`snarkjs groth16 verify`) can check it.
//!
//! Conventions (snarkjs / ffjavascript): every number is a decimal string of the
//! canonical integer; G1 points are projective `[x, y, "1"]` (infinity
//! `["0", "1", "0"]`); G2 points are `[[x.c0, x.c1], [y.c0, y.c1], ["1", "0"]]` with
//! `c0` the real part (the Solidity verifier reverses these pairs; JSON does not);
//! `vk_alphabeta_12 = e(α, β)` as `[[c0.c0, c0.c1, c0.c2], [c1.c0, c1.c1, c1.c2]]`
//! of `Fq2` pairs; `IC` holds `nPublic + 1` points.

use crate::field::Fr;
use crate::groth16::{Proof, VerifyingKey};
use crate::{Error, Result};
use ark_bn254::{Bn254, Fq, Fq2, G1Affine, G2Affine};
use ark_ec::{AffineRepr, pairing::Pairing};
use ark_ff::PrimeField;
use serde_json::{Value, json};

fn fq(x: &Fq) -> Value {
    Value::String(x.into_bigint().to_string())
}

fn fq2(x: &Fq2) -> Value {
    json!([fq(&x.c0), fq(&x.c1)])
}

fn g1(p: &G1Affine) -> Value {
    match p.xy() {
        Some((x, y)) => json!([fq(&x), fq(&y), "1"]),
        None => json!(["0", "1", "0"]),
    }
}

fn g2(p: &G2Affine) -> Value {
    match p.xy() {
        Some((x, y)) => json!([fq2(&x), fq2(&y), ["1", "0"]]),
        None => json!([["0", "0"], ["1", "0"], ["0", "0"]]),
    }
}

/// `verification_key.json` as a JSON value.
pub fn verification_key_json(vk: &VerifyingKey) -> Value {
    let ab = Bn254::pairing(vk.alpha_g1, vk.beta_g2).0;
    let fq6 = |c: &ark_bn254::Fq6| json!([fq2(&c.c0), fq2(&c.c1), fq2(&c.c2)]);
    json!({
        "protocol": "groth16",
        "curve": "bn128",
        "nPublic": vk.gamma_abc_g1.len().saturating_sub(1),
        "vk_alpha_1": g1(&vk.alpha_g1),
        "vk_beta_2": g2(&vk.beta_g2),
        "vk_gamma_2": g2(&vk.gamma_g2),
        "vk_delta_2": g2(&vk.delta_g2),
        "vk_alphabeta_12": [fq6(&ab.c0), fq6(&ab.c1)],
        "IC": vk.gamma_abc_g1.iter().map(g1).collect::<Vec<_>>(),
    })
}

/// `proof.json` as a JSON value.
pub fn proof_json(proof: &Proof) -> Value {
    json!({
        "pi_a": g1(&proof.a),
        "pi_b": g2(&proof.b),
        "pi_c": g1(&proof.c),
        "protocol": "groth16",
        "curve": "bn128",
    })
}

/// `public.json` as a JSON value (decimal strings, verifier order).
pub fn public_json(inputs: &[Fr]) -> Value {
    Value::Array(
        inputs
            .iter()
            .map(|x| Value::String(crate::field::fr_to_decimal(x)))
            .collect(),
    )
}

/// The three snarkjs files of one proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnarkjsExport {
    /// Contents of `verification_key.json`.
    pub verification_key: String,
    /// Contents of `proof.json`.
    pub proof: String,
    /// Contents of `public.json`.
    pub public: String,
}

/// Renders the three files.
pub fn export(vk: &VerifyingKey, proof: &Proof, public_inputs: &[Fr]) -> Result<SnarkjsExport> {
    if public_inputs.len() + 1 != vk.gamma_abc_g1.len() {
        return Err(Error::invalid(
            "snarkjs export",
            "public input count does not match the verifying key",
        ));
    }
    let pretty =
        |v: &Value| serde_json::to_string_pretty(v).map_err(|e| Error::Export(e.to_string()));
    Ok(SnarkjsExport {
        verification_key: pretty(&verification_key_json(vk))?,
        proof: pretty(&proof_json(proof))?,
        public: pretty(&public_json(public_inputs))?,
    })
}

impl SnarkjsExport {
    /// Writes `verification_key.json`, `proof.json` and `public.json` into `dir`
    /// (which must exist).
    pub fn write_to_dir(&self, dir: &std::path::Path) -> Result<()> {
        for (name, body) in [
            ("verification_key.json", &self.verification_key),
            ("proof.json", &self.proof),
            ("public.json", &self.public),
        ] {
            std::fs::write(dir.join(name), body)
                .map_err(|e| Error::Export(format!("{name}: {e}")))?;
        }
        Ok(())
    }
}
