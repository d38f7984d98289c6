//! Range check by bit decomposition: `x = Σ b_i·2^i` with `n` boolean `b_i`.
//!
//! Cost: `n` booleanity constraints plus one equality, i.e. `n + 1`.
//! Sound only for `n < 253` (the sum cannot wrap modulo `p`), which is asserted.

use super::{Bit, FrVar};
use crate::field::Fr;
use ark_ff::{BigInteger, PrimeField};
use ark_r1cs_std::{GR1CSVar, alloc::AllocVar, eq::EqGadget, fields::FieldVar};
use ark_relations::gr1cs::SynthesisError;

/// Largest decomposition this gadget accepts.
pub const MAX_BITS: usize = 252;

/// Decomposes `x` into `n` little-endian bits and enforces `x < 2^n`.
///
/// A witness `x >= 2^n` makes the constraint system unsatisfied.
pub fn to_bits_le(x: &FrVar, n: usize) -> Result<Vec<Bit>, SynthesisError> {
    if n > MAX_BITS {
        return Err(SynthesisError::Unsatisfiable);
    }
    let cs = x.cs();
    if let FrVar::Constant(c) = x {
        let big = c.into_bigint();
        if big.num_bits() as usize > n {
            return Err(SynthesisError::Unsatisfiable);
        }
        return Ok((0..n).map(|i| Bit::constant(big.get_bit(i))).collect());
    }
    let mut bits = Vec::with_capacity(n);
    for i in 0..n {
        let b = Bit::new_witness(cs.clone(), || {
            let v = x.value()?;
            Ok(v.into_bigint().get_bit(i))
        })?;
        bits.push(b);
    }
    let recomposed = from_bits_le(&bits);
    recomposed.enforce_equal(x)?;
    Ok(bits)
}

/// `Σ b_i·2^i` as a linear combination (no constraints).
pub fn from_bits_le(bits: &[Bit]) -> FrVar {
    let mut acc = FrVar::zero();
    for (i, b) in bits.iter().enumerate() {
        acc += FrVar::from(b.clone()) * crate::field::pow2(i);
    }
    acc
}

/// Allocates a witness integer and range-checks it to `n` bits; returns the
/// variable and its bits.
pub fn alloc_uint(
    cs: ark_relations::gr1cs::ConstraintSystemRef<Fr>,
    value: u128,
    n: usize,
) -> Result<(FrVar, Vec<Bit>), SynthesisError> {
    let v = FrVar::new_witness(cs, || Ok(Fr::from(value)))?;
    let bits = to_bits_le(&v, n)?;
    Ok((v, bits))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ark_relations::gr1cs::ConstraintSystem;

    fn check(value: Fr, n: usize) -> bool {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let x = FrVar::new_witness(cs.clone(), || Ok(value)).unwrap();
        let bits = to_bits_le(&x, n).unwrap();
        assert_eq!(bits.len(), n);
        assert_eq!(cs.num_constraints(), n + 1);
        cs.is_satisfied().unwrap()
    }

    #[test]
    fn in_range_values_pass() {
        assert!(check(Fr::from(0u64), 8));
        assert!(check(Fr::from(255u64), 8));
        assert!(check(Fr::from(u64::MAX), 64));
    }

    #[test]
    fn out_of_range_values_fail() {
        assert!(!check(Fr::from(256u64), 8));
        assert!(!check(-Fr::from(1u64), 8));
        assert!(!check(Fr::from(1u128 << 64), 64));
    }

    #[test]
    fn constants_decompose_without_constraints() {
        let x = FrVar::constant(Fr::from(5u64));
        let bits = to_bits_le(&x, 3).unwrap();
        assert_eq!(
            bits.iter().map(|b| b.value().unwrap()).collect::<Vec<_>>(),
            vec![true, false, true]
        );
        assert!(to_bits_le(&x, 2).is_err());
    }
}
