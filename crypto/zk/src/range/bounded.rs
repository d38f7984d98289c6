//! Proofs that committed values lie in `[min, max]` for public bounds.
//!
//! For `C = v·B + r·B̃`, both the verifier and the prover derive
//! `C_lo = C − min·B` (opens to `v − min` with `r`) and
//! `C_hi = max·B − C` (opens to `max − v` with `−r`), and one aggregated
//! Bulletproof shows both in `[0, 2^n)`. Since `(v − min) + (max − v) = max − min`
//! and both summands are below `2^n ≤ 2^64`, their sum does not wrap modulo the
//! group order `ℓ ≈ 2^252`, so `min ≤ v ≤ max` as integers. Requires `max − min < 2^n`.

use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, RngCore};

use super::bits::BitSize;
use super::context::{RangeContext, StatementKind};
use super::pedersen::{Blinding, Commitment, pedersen_gens};
use super::proof::{
    MAX_AGGREGATED, RangeProof, check_count, padded_commitments, prove_padded, verify_padded,
};
use crate::Error;

/// Most values one bounded proof covers (each uses two slots of an aggregated proof).
pub const MAX_BOUNDED: usize = MAX_AGGREGATED / 2;

/// A proof that each committed value lies in `[min, max]`.
#[derive(Clone, Debug)]
pub struct BoundedProof {
    inner: RangeProof,
}

fn check_bounds(bits: BitSize, min: u64, max: u64) -> Result<(), Error> {
    if min > max || !bits.fits(max - min) {
        return Err(Error::InvalidRange {
            min,
            max,
            bits: bits.bits() as u64,
        });
    }
    Ok(())
}

/// `[C_0 − min·B, max·B − C_0, C_1 − min·B, max·B − C_1, …]`.
pub(crate) fn derived_commitments(
    min: u64,
    max: u64,
    commitments: &[Commitment],
) -> Result<Vec<Commitment>, Error> {
    let b = pedersen_gens().B;
    let (min_b, max_b) = (Scalar::from(min) * b, Scalar::from(max) * b);
    let mut out = Vec::with_capacity(commitments.len() * 2);
    for c in commitments {
        let p = c.point()?;
        out.push(Commitment::from_point(p - min_b));
        out.push(Commitment::from_point(max_b - p));
    }
    Ok(out)
}

impl BoundedProof {
    /// Commit to `values` and prove each lies in `[min, max]`, bound to `ctx`.
    /// Returns the proof and the commitments `v_i·B + r_i·B̃`.
    pub fn prove(
        ctx: &RangeContext,
        bits: BitSize,
        min: u64,
        max: u64,
        values: &[u64],
        blindings: &[Blinding],
    ) -> Result<(Self, Vec<Commitment>), Error> {
        Self::prove_with_rng(
            ctx,
            bits,
            min,
            max,
            values,
            blindings,
            &mut rand::thread_rng(),
        )
    }

    /// [`prove`](Self::prove) with a caller-supplied CSPRNG.
    pub fn prove_with_rng<R: RngCore + CryptoRng>(
        ctx: &RangeContext,
        bits: BitSize,
        min: u64,
        max: u64,
        values: &[u64],
        blindings: &[Blinding],
        rng: &mut R,
    ) -> Result<(Self, Vec<Commitment>), Error> {
        check_bounds(bits, min, max)?;
        check_count(values.len() * 2)?;
        if blindings.len() != values.len() {
            return Err(Error::CountMismatch {
                what: "blindings",
                expected: values.len(),
                actual: blindings.len(),
            });
        }
        if !values.iter().all(|&v| (min..=max).contains(&v)) {
            return Err(Error::ValueOutOfRange);
        }
        let commitments: Vec<Commitment> = values
            .iter()
            .zip(blindings)
            .map(|(&v, r)| Commitment::commit(v, r))
            .collect();
        let mut split_values = Vec::with_capacity(values.len() * 2);
        let mut split_blindings = Vec::with_capacity(values.len() * 2);
        for (&v, r) in values.iter().zip(blindings) {
            split_values.push(v - min);
            split_blindings.push(r.0);
            split_values.push(max - v);
            split_blindings.push(-r.0);
        }
        let mut transcript = ctx.transcript(
            StatementKind::Bounded { min, max },
            bits.bits(),
            &commitments,
        );
        let result = prove_padded(&mut transcript, bits, &split_values, &split_blindings, rng);
        zeroize::Zeroize::zeroize(&mut split_values);
        zeroize::Zeroize::zeroize(&mut split_blindings);
        let (inner, _) = result?;
        Ok((
            Self {
                inner: RangeProof::from_parts(bits, values.len() * 2, inner),
            },
            commitments,
        ))
    }

    /// Verify that each commitment opens to a value in `[min, max]`, for this `ctx`.
    pub fn verify(
        &self,
        ctx: &RangeContext,
        bits: BitSize,
        min: u64,
        max: u64,
        commitments: &[Commitment],
    ) -> Result<(), Error> {
        check_bounds(bits, min, max)?;
        self.inner.check_shape(bits, commitments.len() * 2)?;
        let derived = derived_commitments(min, max, commitments)?;
        let mut transcript = ctx.transcript(
            StatementKind::Bounded { min, max },
            bits.bits(),
            commitments,
        );
        verify_padded(
            &self.inner.inner,
            &mut transcript,
            bits,
            &padded_commitments(&derived),
        )
    }

    pub(crate) fn inner(&self) -> &RangeProof {
        &self.inner
    }

    /// How many values it covers.
    pub fn count(&self) -> usize {
        self.inner.count() / 2
    }

    /// Encoding (that of the underlying aggregated [`RangeProof`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.to_bytes()
    }

    /// Decode (size-limited).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let inner = RangeProof::from_bytes(bytes)?;
        if inner.count() % 2 != 0 {
            return Err(Error::malformed(
                "bounded proof",
                "odd number of aggregated values",
            ));
        }
        Ok(Self { inner })
    }
}
