//! Ed25519 verification against one key, many times: [`PreparedVerifier`].
#![doc = include_str!("../docs/prepared_verifier.md")]

use core::fmt;

use curve25519_dalek::{
    constants::ED25519_BASEPOINT_TABLE,
    edwards::{CompressedEdwardsY, EdwardsBasepointTable, EdwardsPoint},
    scalar::Scalar,
    traits::BasepointTable,
};
use sha2::{Digest, Sha512};

use crate::{Error, limits, sign::VerifierKey};

/// A public key with its verification tables built: accepts exactly the signatures
/// [`VerifierKey::verify_named`] (`verify_strict`) accepts, faster.
pub struct PreparedVerifier {
    key: VerifierKey,
    /// `A` has small order: every signature is refused.
    small_order: bool,
    /// `A` lies in the prime-order subgroup (every honestly made key does).
    torsion_free: bool,
    /// `[j·16^i](−A)` for `j = 1..=8`, `i = 0..64`: a fixed-base table like the one
    /// for `B` in curve25519-dalek, so `[k](−A)` needs no doublings.
    minus_a: EdwardsBasepointTable,
}

impl PreparedVerifier {
    /// Build the tables for `key` (about a millisecond; do it once per key).
    pub fn new(key: VerifierKey) -> Self {
        let a = CompressedEdwardsY(key.to_bytes()).decompress();
        // `VerifierKey` only holds keys that decompress; a key that did not would
        // refuse everything, like a small-order one.
        let (small_order, torsion_free, minus_a) = match a {
            Some(a) => (a.is_small_order(), a.is_torsion_free(), -a),
            None => (true, false, EdwardsPoint::default()),
        };
        Self {
            key,
            small_order,
            torsion_free,
            minus_a: EdwardsBasepointTable::create(&minus_a),
        }
    }

    /// The key these tables are for.
    pub fn key(&self) -> &VerifierKey {
        &self.key
    }

    /// Verify `sig` over `msg`; `what` names the signed object in the error.
    pub fn verify_named(&self, what: &'static str, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        let sig = limits::fixed::<64>("signature", sig)?;
        let refuse = || Error::BadSignature { what };
        if self.small_order {
            return Err(refuse());
        }
        let mut r_bytes = [0u8; 32];
        let mut s_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&sig[..32]);
        s_bytes.copy_from_slice(&sig[32..]);
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or_else(refuse)?;
        let k = challenge(&r_bytes, &self.key.to_bytes(), msg);
        // `s` and `k` are below ℓ, and both tables compute the integer multiple, so
        // this is the same point `verify_strict` computes, torsion included.
        let expected = ED25519_BASEPOINT_TABLE * &s + &self.minus_a * &k;
        if self.torsion_free {
            // R' lies in the prime-order subgroup, so it has small order only if it
            // is the identity; the byte comparison rejects non-canonical R.
            return if r_bytes != IDENTITY && expected.compress().to_bytes() == r_bytes {
                Ok(())
            } else {
                Err(refuse())
            };
        }
        if !canonical_y(&r_bytes) {
            return Err(refuse());
        }
        let r = CompressedEdwardsY(r_bytes)
            .decompress()
            .ok_or_else(refuse)?;
        if r.is_small_order() {
            return Err(refuse());
        }
        if expected == r { Ok(()) } else { Err(refuse()) }
    }

    /// Verify `sig` over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        self.verify_named("message", msg, sig)
    }
}

impl fmt::Debug for PreparedVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PreparedVerifier").field(&self.key).finish()
    }
}

/// The canonical encoding of the identity (`y = 1`).
const IDENTITY: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 1;
    b
};

/// `k = SHA-512(R ‖ A ‖ M) mod ℓ`.
fn challenge(r: &[u8; 32], a: &[u8; 32], msg: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(msg);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// Whether the 255-bit `y` of a compressed Edwards point (the sign bit masked off)
/// is below `p = 2^255 − 19`, i.e. the encoding is the canonical one.
pub fn canonical_y(bytes: &[u8; 32]) -> bool {
    // y ≥ p  ⇔  bytes 1..=30 are 0xff, byte 31 (sign masked) is 0x7f, byte 0 ≥ 0xed.
    let top = bytes[31] & 0x7f == 0x7f;
    let middle = bytes[1..31].iter().all(|&b| b == 0xff);
    !(top && middle && bytes[0] >= 0xed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_y_boundaries() {
        let mut p_minus_1 = [0xffu8; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        assert!(canonical_y(&p_minus_1));
        for low in 0xed..=0xff {
            let mut b = p_minus_1;
            b[0] = low;
            assert!(!canonical_y(&b), "y = p + {} is not canonical", low - 0xed);
            b[31] |= 0x80;
            assert!(!canonical_y(&b), "the sign bit does not make it canonical");
        }
        let mut b = p_minus_1;
        b[0] = 0xff;
        b[17] = 0xfe;
        assert!(canonical_y(&b));
        assert!(canonical_y(&[0u8; 32]));
    }
}
