//! arkworks' raw figure: a synthetic circuit of `n` multiplication constraints
//! (a chain of squarings, every witness value a full-size field element — the
//! worst case for the prover's multiscalar multiplications), so benchmarks can
//! report our circuits' constraints per second next to the library's own.

use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, fields::FieldVar, fields::fp::FpVar};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef};

use crate::field::Fr;

/// `x_{i+1} = x_i²` for `n` steps; one public input, the last value.
#[derive(Clone, Debug)]
pub struct Squarings {
    n: usize,
    x0: Fr,
}

impl Squarings {
    /// `n ≥ 1` squarings of `x0`.
    pub fn new(n: usize, x0: Fr) -> Self {
        Self { n: n.max(1), x0 }
    }

    /// Constraints of the circuit (`n`).
    pub fn constraints(&self) -> usize {
        self.n
    }

    /// The public input: `x0^(2^n)`.
    pub fn public(&self) -> Vec<Fr> {
        let mut v = self.x0;
        for _ in 0..self.n {
            v = v * v;
        }
        vec![v]
    }
}

impl ConstraintSynthesizer<Fr> for Squarings {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> ark_relations::gr1cs::Result<()> {
        let out = FpVar::new_input(cs.clone(), || {
            self.public()
                .first()
                .copied()
                .ok_or(ark_relations::gr1cs::SynthesisError::AssignmentMissing)
        })?;
        let mut x = FpVar::new_witness(cs, || Ok(self.x0))?;
        for _ in 0..self.n - 1 {
            x = x.square()?;
        }
        x.square()?.enforce_equal(&out)?;
        Ok(())
    }
}
