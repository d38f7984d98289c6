//! Pedersen commitments on Ristretto: `C = v·B + r·B̃`.
//!
//! `B` is the Ristretto basepoint and `B̃ = RistrettoPoint::hash_from_bytes::<Sha3_512>(B)`
//! (bulletproofs' `PedersenGens::default()`), so nobody knows `log_B B̃`.
//! Commitments are perfectly hiding (for any `v'` some `r'` opens `C` to `v'`)
//! and computationally binding under the discrete-log assumption in the
//! Ristretto group (~126-bit security). They add: `C(v1, r1) + C(v2, r2) = C(v1 + v2, r1 + r2)`.

use core::fmt;
use std::sync::OnceLock;

use bulletproofs::PedersenGens;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::Error;

/// The Pedersen generators `(B, B̃)` (computed once).
pub(crate) fn pedersen_gens() -> &'static PedersenGens {
    static GENS: OnceLock<PedersenGens> = OnceLock::new();
    GENS.get_or_init(PedersenGens::default)
}

/// A commitment's blinding factor `r`: secret, zeroized on drop, never printed.
#[derive(Clone)]
pub struct Blinding(pub(crate) Scalar);

impl Drop for Blinding {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Blinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Blinding(<redacted>)")
    }
}

impl PartialEq for Blinding {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Blinding {}

impl Blinding {
    /// A uniformly random blinding from the thread's CSPRNG.
    pub fn random() -> Self {
        Self::random_with(&mut rand::thread_rng())
    }

    /// A uniformly random blinding from `rng`.
    pub fn random_with<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self(Scalar::random(rng))
    }

    /// The zero blinding (for public constants; never for secrets).
    pub fn zero() -> Self {
        Self(Scalar::ZERO)
    }

    /// Parse a canonical 32-byte little-endian scalar.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        Option::<Scalar>::from(Scalar::from_canonical_bytes(*bytes))
            .map(Self)
            .ok_or_else(|| Error::malformed("blinding", "not a canonical scalar"))
    }

    /// The 32-byte encoding (zeroized when dropped).
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// `Σ r_i`: the blinding of the sum of the commitments.
    pub fn sum<'a>(blindings: impl IntoIterator<Item = &'a Blinding>) -> Self {
        Self(blindings.into_iter().map(|b| b.0).sum())
    }

    /// `-r`.
    pub fn negate(&self) -> Self {
        Self(-self.0)
    }
}

/// A Pedersen commitment, stored compressed (32 bytes; the encoding is canonical,
/// so byte equality is point equality).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Commitment(pub(crate) CompressedRistretto);

impl fmt::Debug for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Commitment(")?;
        for b in self.0.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl Commitment {
    /// `v·B + r·B̃`.
    pub fn commit(value: u64, blinding: &Blinding) -> Self {
        Self::from_point(pedersen_gens().commit(Scalar::from(value), blinding.0))
    }

    /// `v·B + r·B̃` for a value up to 128 bits (e.g. a sum of many 64-bit values).
    pub fn commit_u128(value: u128, blinding: &Blinding) -> Self {
        Self::from_point(pedersen_gens().commit(Scalar::from(value), blinding.0))
    }

    pub(crate) fn from_point(p: RistrettoPoint) -> Self {
        Self(p.compress())
    }

    pub(crate) fn point(&self) -> Result<RistrettoPoint, Error> {
        self.0
            .decompress()
            .ok_or_else(|| Error::malformed("commitment", "not a valid Ristretto point"))
    }

    /// Parse 32 bytes, refusing encodings that are not valid Ristretto points.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| {
            Error::malformed("commitment", format!("{} bytes, expected 32", bytes.len()))
        })?;
        let c = Self(CompressedRistretto(arr));
        c.point()?;
        Ok(c)
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// `Σ C_i` (the commitment to the sum of the values under the sum of the blindings).
    pub fn sum<'a>(commitments: impl IntoIterator<Item = &'a Commitment>) -> Result<Self, Error> {
        let mut acc = RistrettoPoint::identity();
        for c in commitments {
            acc += c.point()?;
        }
        Ok(Self::from_point(acc))
    }

    /// Check that this commitment opens to `value` with `blinding`.
    pub fn verify_opening(&self, value: u128, blinding: &Blinding) -> Result<(), Error> {
        if *self == Self::commit_u128(value, blinding) {
            Ok(())
        } else {
            Err(Error::OpeningFailed)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn commitments_add_and_open() {
        let (r1, r2) = (Blinding::random(), Blinding::random());
        let c1 = Commitment::commit(40, &r1);
        let c2 = Commitment::commit(u64::MAX, &r2);
        let sum = Commitment::sum([&c1, &c2]).unwrap();
        let r = Blinding::sum([&r1, &r2]);
        sum.verify_opening(40 + u128::from(u64::MAX), &r).unwrap();
        assert_eq!(
            sum.verify_opening(41 + u128::from(u64::MAX), &r),
            Err(Error::OpeningFailed)
        );
        assert_eq!(
            sum.verify_opening(40 + u128::from(u64::MAX), &r1),
            Err(Error::OpeningFailed)
        );
    }

    #[test]
    fn same_value_different_blindings_give_unlinkable_commitments() {
        let a = Commitment::commit(7, &Blinding::random());
        let b = Commitment::commit(7, &Blinding::random());
        assert_ne!(a, b);
    }

    #[test]
    fn decoding_rejects_non_points_and_bad_lengths() {
        let c = Commitment::commit(1, &Blinding::random());
        assert_eq!(Commitment::from_bytes(&c.to_bytes()).unwrap(), c);
        assert!(Commitment::from_bytes(&[0xff; 32]).is_err());
        assert!(Commitment::from_bytes(&[0; 31]).is_err());
        assert!(Blinding::from_bytes(&[0xff; 32]).is_err());
    }

    #[test]
    fn blinding_debug_is_redacted() {
        let r = Blinding::random();
        let shown = format!("{r:?}");
        assert_eq!(shown, "Blinding(<redacted>)");
        assert_eq!(Blinding::from_bytes(&r.to_bytes()).unwrap(), r);
    }
}
