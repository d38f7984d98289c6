//! Integer comparisons of field elements known to be small.
//!
//! For `a, b` with `|a - b| < 2^n` (both in `[0, 2^n)`, or both signed in
//! `[-2^(n-1), 2^(n-1))`), `d = a - b + 2^n` lies in `(0, 2^(n+1))`; its bit
//! decomposition into `n + 1` bits is unique and its top bit is `[a >= b]`.
//! Cost: `n + 2` constraints. Callers must guarantee the bound on `|a - b|`
//! (by range checks or by construction); the docs of each circuit say how.

use super::{Bit, FrVar, range};
use crate::field::{Fr, pow2};
use ark_r1cs_std::{GR1CSVar, fields::FieldVar, select::CondSelectGadget};
use ark_relations::gr1cs::SynthesisError;

/// `[a >= b]` for `|a - b| < 2^n`. Cost `n + 2`.
pub fn is_ge(a: &FrVar, b: &FrVar, n: usize) -> Result<Bit, SynthesisError> {
    let d = a - b + pow2(n);
    let bits = range::to_bits_le(&d, n + 1)?;
    Ok(bits[n].clone())
}

/// Enforces `0 <= a - b < 2^n`. Cost `n + 1`.
pub fn enforce_ge(a: &FrVar, b: &FrVar, n: usize) -> Result<(), SynthesisError> {
    let d = a - b;
    range::to_bits_le(&d, n)?;
    Ok(())
}

/// `(min(a, b), [a >= b])` for `|a - b| < 2^n`. Cost `n + 3`.
pub fn min(a: &FrVar, b: &FrVar, n: usize) -> Result<(FrVar, Bit), SynthesisError> {
    let ge = is_ge(a, b, n)?;
    let m = FrVar::conditionally_select(&ge, b, a)?;
    Ok((m, ge))
}

/// `[x == 0]`. Cost 2 (the usual inverse trick, via `ark-r1cs-std`).
pub fn is_zero(x: &FrVar) -> Result<Bit, SynthesisError> {
    use ark_r1cs_std::eq::EqGadget;
    if let FrVar::Constant(c) = x {
        return Ok(Bit::constant(*c == Fr::from(0u64)));
    }
    let _ = x.cs();
    x.is_eq(&FrVar::zero())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::field::fr_from_i64;
    use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget};
    use ark_relations::gr1cs::ConstraintSystem;

    fn ge_case(a: i64, b: i64, n: usize, claimed: bool) -> bool {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let av = FrVar::new_witness(cs.clone(), || Ok(fr_from_i64(a))).unwrap();
        let bv = FrVar::new_witness(cs.clone(), || Ok(fr_from_i64(b))).unwrap();
        let out = Bit::new_input(cs.clone(), || Ok(claimed)).unwrap();
        let ge = is_ge(&av, &bv, n).unwrap();
        ge.enforce_equal(&out).unwrap();
        cs.is_satisfied().unwrap()
    }

    #[test]
    fn unsigned_and_signed_comparisons() {
        for (a, b) in [
            (0, 0),
            (5, 3),
            (3, 5),
            (255, 0),
            (0, 255),
            (-100, 27),
            (27, -100),
            (-5, -5),
        ] {
            assert!(ge_case(a, b, 9, a >= b), "{a} >= {b}");
            assert!(
                !ge_case(a, b, 9, a < b),
                "{a} >= {b} must not accept the wrong answer"
            );
        }
    }

    #[test]
    fn out_of_bound_difference_is_unsatisfied() {
        // |a - b| = 2^9 does not fit n = 8: no claimed answer satisfies the system
        assert!(!ge_case(512, 0, 8, true));
        assert!(!ge_case(512, 0, 8, false));
    }

    #[test]
    fn min_and_enforce_ge() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let a = FrVar::new_witness(cs.clone(), || Ok(Fr::from(70u64))).unwrap();
        let b = FrVar::new_witness(cs.clone(), || Ok(Fr::from(9u64))).unwrap();
        let (m, ge) = min(&a, &b, 8).unwrap();
        assert_eq!(m.value().unwrap(), Fr::from(9u64));
        assert!(ge.value().unwrap());
        enforce_ge(&a, &b, 8).unwrap();
        assert!(cs.is_satisfied().unwrap());
        enforce_ge(&b, &a, 8).unwrap();
        assert!(!cs.is_satisfied().unwrap());
    }

    #[test]
    fn is_zero_works() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let a = FrVar::new_witness(cs.clone(), || Ok(Fr::from(0u64))).unwrap();
        let b = FrVar::new_witness(cs.clone(), || Ok(Fr::from(3u64))).unwrap();
        assert!(is_zero(&a).unwrap().value().unwrap());
        assert!(!is_zero(&b).unwrap().value().unwrap());
        assert!(cs.is_satisfied().unwrap());
    }
}
