//! Server side: evaluate an encrypted query with a client's evaluation key.
//!
//! * Linear models: leveled, no bootstrap. The result is `sum_i w_i * ct_i + bias * Delta`,
//!   computed directly on the LWE vectors (plaintext-weight multiply-adds mod 2^64).
//! * Tree ensembles: one bootstrap per distinct (feature, threshold) comparison, then one per
//!   internal node with a non-zero leaf child (selecting and outputting its leaves), then a
//!   leveled sum. The bootstraps of each stage run in parallel on the current rayon pool.
//!
//! Keys are passed explicitly; there is no thread-local tfhe state to install, so a batch
//! ([`evaluate_batch`]) simply fans out over the rayon pool with one shared `&ServerKey`.

use rayon::prelude::*;
use tfhe::core_crypto::prelude::{
    CiphertextModulus, ContiguousEntityContainer, LweCiphertext, LweCiphertextListOwned,
    LweCiphertextOwned,
};
use tfhe::shortint::ciphertext::{Degree, NoiseLevel};
use tfhe::shortint::parameters::{CarryModulus, MessageModulus};
use tfhe::shortint::{AtomicPatternKind, Ciphertext};

use crate::error::{Error, Result};
use crate::guard::guarded;
use crate::keys::{KeyId, ServerKey};
use crate::params;
use crate::plan::{FheModel, Plan, TreePlan};
use crate::query::query_ciphertexts;
use crate::wire::{EncryptedPrediction, EncryptedQuery};

/// Evaluate one query. Checks that the query is for this model and this key and has the
/// model's number of inputs; a query actually encrypted under another key cannot be detected
/// and yields a meaningless (but well-formed) prediction. Never panics.
pub fn evaluate(
    key: &ServerKey,
    model: &FheModel,
    query: &EncryptedQuery,
) -> Result<EncryptedPrediction> {
    if query.model != model.name() {
        return Err(Error::ModelMismatch {
            query: query.model.clone(),
            model: model.name().into(),
        });
    }
    if KeyId(query.key_id) != key.id() {
        return Err(Error::KeyMismatch {
            query: KeyId(query.key_id).to_hex(),
            key: key.id().to_hex(),
        });
    }
    let n = model.model().n_features();
    if query.bodies.len() != n {
        return Err(Error::InputLength {
            expected: n,
            got: query.bodies.len(),
        });
    }
    let lwe = guarded("encrypted query", || {
        let inputs = query_ciphertexts(query).decompress_into_lwe_ciphertext_list();
        Ok(match &model.plan {
            Plan::Linear {
                weights,
                bias_encoded,
            } => linear(&inputs, weights, *bias_encoded),
            Plan::Trees(plan) => trees(key, &inputs, plan),
        })
    })?;
    Ok(EncryptedPrediction {
        model: query.model.clone(),
        key_id: query.key_id,
        lwe,
    })
}

/// Evaluate several queries for the same key and model in parallel (rayon). Each query gets
/// its own result, so one bad query does not affect the others.
pub fn evaluate_batch(
    key: &ServerKey,
    model: &FheModel,
    queries: &[EncryptedQuery],
) -> Vec<Result<EncryptedPrediction>> {
    queries
        .par_iter()
        .map(|q| evaluate(key, model, q))
        .collect()
}

fn lwe_size() -> usize {
    params::big_lwe_dimension() + 1
}

fn add_scaled(acc: &mut [u64], ct: &[u64], w: u64) {
    for (a, c) in acc.iter_mut().zip(ct) {
        *a = a.wrapping_add(c.wrapping_mul(w));
    }
}

fn add_to_body(acc: &mut [u64], v: u64) {
    if let Some(body) = acc.last_mut() {
        *body = body.wrapping_add(v);
    }
}

fn linear(inputs: &LweCiphertextListOwned<u64>, weights: &[u64], bias_encoded: u64) -> Vec<u64> {
    let mut acc = vec![0u64; lwe_size()];
    for (ct, &w) in inputs.iter().zip(weights) {
        add_scaled(&mut acc, ct.as_ref(), w);
    }
    add_to_body(&mut acc, bias_encoded);
    acc
}

/// Wrap a big-key LWE ciphertext as a shortint ciphertext in the 2+2-bit bootstrap encoding.
fn shortint(ct: LweCiphertextOwned<u64>, degree: u64) -> Ciphertext {
    let p = params::block_parameters();
    Ciphertext::new(
        ct,
        Degree::new(degree),
        NoiseLevel::NOMINAL,
        MessageModulus(p.message_modulus.0),
        CarryModulus(p.carry_modulus.0),
        AtomicPatternKind::KeySwitch32,
    )
}

fn trees(key: &ServerKey, inputs: &LweCiphertextListOwned<u64>, plan: &TreePlan) -> Vec<u64> {
    let max_input = params::pbs_plaintext_modulus() - 1;
    // Stage 1: every distinct comparison, one bootstrap each.
    let bits: Vec<LweCiphertextOwned<u64>> = plan
        .comparisons
        .par_iter()
        .map(|c| {
            let input = LweCiphertext::from_container(
                inputs.get(c.feature).as_ref().to_vec(),
                CiphertextModulus::new_native(),
            );
            key.sks
                .apply_lookup_table(&shortint(input, max_input), &c.lut)
                .ct
        })
        .collect();
    // Stage 2: per internal node with leaves, u = 2 * (sum of path conditions) + own bit,
    // then one bootstrap mapping u to the selected leaf value at the output scale.
    let one = 1u64 << params::pbs_delta_log2();
    let outputs: Vec<LweCiphertextOwned<u64>> = plan
        .groups
        .par_iter()
        .map(|g| {
            let mut u = vec![0u64; lwe_size()];
            for &(c, went_right) in &g.path {
                if went_right {
                    // condition b
                    add_scaled(&mut u, bits[c].as_ref(), 2);
                } else {
                    // condition 1 - b
                    add_scaled(&mut u, bits[c].as_ref(), 2u64.wrapping_neg());
                    add_to_body(&mut u, 2 * one);
                }
            }
            add_scaled(&mut u, bits[g.comparison].as_ref(), 1);
            let ct = LweCiphertext::from_container(u, CiphertextModulus::new_native());
            key.sks
                .apply_lookup_table(&shortint(ct, g.lut.degree.get()), &g.lut)
                .ct
        })
        .collect();
    // Stage 3: leveled sum and bias.
    let mut acc = vec![0u64; lwe_size()];
    for ct in &outputs {
        add_scaled(&mut acc, ct.as_ref(), 1);
    }
    add_to_body(&mut acc, plan.bias_encoded);
    acc
}
