//! Selection of `values[index]` by the little-endian bits of `index`
//! (a binary tree of 2-to-1 multiplexers).
//!
//! Cost: `values.len() - 1` constraints (`values.len()` must be `2^bits.len()`;
//! pad with zeros).

use super::{Bit, FrVar};
use ark_r1cs_std::select::CondSelectGadget;
use ark_relations::gr1cs::SynthesisError;

/// `values[Σ bits_le[i]·2^i]`. Errors if `values.len() != 2^bits_le.len()`.
pub fn select_by_bits(values: &[FrVar], bits_le: &[Bit]) -> Result<FrVar, SynthesisError> {
    if values.len() != 1usize << bits_le.len() {
        return Err(SynthesisError::Unsatisfiable);
    }
    let mut layer: Vec<FrVar> = values.to_vec();
    for bit in bits_le {
        let mut next = Vec::with_capacity(layer.len() / 2);
        for pair in layer.chunks(2) {
            next.push(FrVar::conditionally_select(bit, &pair[1], &pair[0])?);
        }
        layer = next;
    }
    layer.pop().ok_or(SynthesisError::Unsatisfiable)
}

/// Pads `values` with zeros to the next power of two `>= 2^min_bits`; returns the
/// padded vector and the number of index bits.
pub fn pad_pow2(values: &[FrVar], min_bits: usize) -> (Vec<FrVar>, usize) {
    use ark_r1cs_std::fields::FieldVar;
    let mut bits = min_bits;
    while (1usize << bits) < values.len() {
        bits += 1;
    }
    let mut out = values.to_vec();
    out.resize(1usize << bits, FrVar::zero());
    (out, bits)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::field::Fr;
    use ark_r1cs_std::{GR1CSVar, alloc::AllocVar, eq::EqGadget};
    use ark_relations::gr1cs::ConstraintSystem;

    #[test]
    fn selects_every_index_and_rejects_wrong_claims() {
        for idx in 0..8usize {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let vals: Vec<FrVar> = (0..8u64)
                .map(|v| FrVar::new_witness(cs.clone(), || Ok(Fr::from(100 + v))).unwrap())
                .collect();
            let bits: Vec<Bit> = (0..3)
                .map(|i| Bit::new_witness(cs.clone(), || Ok((idx >> i) & 1 == 1)).unwrap())
                .collect();
            let out = select_by_bits(&vals, &bits).unwrap();
            assert_eq!(out.value().unwrap(), Fr::from(100 + idx as u64));
            let before = cs.num_constraints();
            assert_eq!(before, 3 + 7);
            let claim = FrVar::new_input(cs.clone(), || Ok(Fr::from(100 + ((idx as u64 + 1) % 8))))
                .unwrap();
            out.enforce_equal(&claim).unwrap();
            assert!(!cs.is_satisfied().unwrap());
        }
    }

    #[test]
    fn wrong_length_is_an_error() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let v = FrVar::new_witness(cs.clone(), || Ok(Fr::from(1u64))).unwrap();
        let b = Bit::new_witness(cs.clone(), || Ok(true)).unwrap();
        assert!(select_by_bits(&[v.clone(), v.clone(), v], &[b]).is_err());
    }
}
