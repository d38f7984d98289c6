//! Poseidon permutation and fixed-length sponge hash as constraints.
//!
//! Cost: 3 constraints per S-box (x², x⁴, x⁵); `3·(R_F·t + R_P) = 3·(8·3 + 57) = 243`
//! constraints per permutation; ARK and MDS are linear and free. A hash of `m`
//! elements costs `243·⌈m/2⌉` (one permutation if `m = 0`).

use super::FrVar;
use crate::poseidon::{Domain, FULL_ROUNDS, PARTIAL_ROUNDS, WIDTH, mds, round_constants};
use ark_r1cs_std::fields::FieldVar;
use ark_relations::gr1cs::SynthesisError;

fn sbox(x: &FrVar) -> Result<FrVar, SynthesisError> {
    let x2 = x.square()?;
    let x4 = x2.square()?;
    Ok(x4 * x)
}

/// Applies the Poseidon permutation to `state` in place (same rounds as
/// [`crate::poseidon::permute`]).
pub fn permute_var(state: &mut [FrVar; WIDTH]) -> Result<(), SynthesisError> {
    let ark = round_constants();
    let m = mds();
    let half = FULL_ROUNDS / 2;
    for (r, rc) in ark.iter().enumerate() {
        for (s, c) in state.iter_mut().zip(rc) {
            *s = &*s + *c;
        }
        let full = r < half || r >= half + PARTIAL_ROUNDS;
        if full {
            for s in state.iter_mut() {
                *s = sbox(s)?;
            }
        } else {
            state[0] = sbox(&state[0])?;
        }
        let old = state.clone();
        for (i, out) in state.iter_mut().enumerate() {
            let mut acc = FrVar::zero();
            for (coef, v) in m[i].iter().zip(old.iter()) {
                acc += v * *coef;
            }
            *out = acc;
        }
    }
    Ok(())
}

/// The fixed-length sponge hash of [`crate::poseidon::hash`] as constraints.
pub fn hash_var(domain: Domain, inputs: &[FrVar]) -> Result<FrVar, SynthesisError> {
    let mut state = [
        FrVar::constant(domain.iv(inputs.len())),
        FrVar::zero(),
        FrVar::zero(),
    ];
    if inputs.is_empty() {
        permute_var(&mut state)?;
    }
    for block in inputs.chunks(2) {
        for (lane, x) in block.iter().enumerate() {
            state[1 + lane] = &state[1 + lane] + x;
        }
        permute_var(&mut state)?;
    }
    let [_, out, _] = state;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::field::Fr;
    use crate::poseidon::hash;
    use ark_r1cs_std::{GR1CSVar, alloc::AllocVar, eq::EqGadget};
    use ark_relations::gr1cs::ConstraintSystem;

    fn run(inputs: &[u64], tamper: bool) -> (bool, usize) {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let xs: Vec<Fr> = inputs.iter().map(|&v| Fr::from(v)).collect();
        let mut expected = hash(Domain::ModelHash, &xs);
        if tamper {
            expected += Fr::from(1u64);
        }
        let vars: Vec<FrVar> = xs
            .iter()
            .map(|x| FrVar::new_witness(cs.clone(), || Ok(*x)).unwrap())
            .collect();
        let public = FrVar::new_input(cs.clone(), || Ok(expected)).unwrap();
        let out = hash_var(Domain::ModelHash, &vars).unwrap();
        if !tamper {
            assert_eq!(out.value().unwrap(), expected);
        }
        out.enforce_equal(&public).unwrap();
        (cs.is_satisfied().unwrap(), cs.num_constraints())
    }

    #[test]
    fn gadget_matches_native_and_costs_243_per_block() {
        let (ok, n) = run(&[1, 2, 3], false);
        assert!(ok);
        // two permutations (3 elements, rate 2) plus one equality constraint, minus
        // the 3 constraints of the first S-box on lane 0, which holds a constant (the IV)
        assert_eq!(n, 2 * 243 - 3 + 1);
    }

    #[test]
    fn wrong_digest_is_unsatisfied() {
        let (ok, _) = run(&[1, 2, 3], true);
        assert!(!ok);
    }
}
