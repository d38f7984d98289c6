//! Ed25519 identities: a provider's signing key and the verifier others hold.
//!
//! Verification uses `verify_strict` (rejects small-order keys and non-canonical
//! signatures), so one message has one valid signature encoding per key.

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::OsRng;
use zeroize::Zeroizing;

use crate::{Error, limits};

/// A signing identity (Ed25519). The secret key is zeroized on drop and never printed.
pub struct SigningIdentity(SigningKey);

/// The public half of a [`SigningIdentity`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifierKey(VerifyingKey);

impl SigningIdentity {
    /// A fresh identity from the operating system's randomness.
    pub fn generate() -> Self {
        Self(SigningKey::generate(&mut OsRng))
    }

    /// Rebuild an identity from its 32-byte seed (as stored by [`Self::secret_bytes`]).
    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(bytes))
    }

    /// The 32-byte seed, for storing in an owner-only file. Zeroized on drop.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// Sign `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }

    /// The public verifier of this identity.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey(self.0.verifying_key())
    }
}

impl fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("public", &self.verifier())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl VerifierKey {
    /// Parse a 32-byte Ed25519 public key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let arr = limits::fixed::<32>("verifying key", bytes)?;
        VerifyingKey::from_bytes(&arr)
            .map(Self)
            .map_err(|e| Error::Malformed {
                what: "verifying key",
                reason: e.to_string(),
            })
    }

    /// The key as 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Verify `sig` over `msg`; `what` names the signed object in the error.
    pub fn verify_named(&self, what: &'static str, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        let sig = limits::fixed::<64>("signature", sig)?;
        self.0
            .verify_strict(msg, &Signature::from_bytes(&sig))
            .map_err(|_| Error::BadSignature { what })
    }

    /// Verify `sig` over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        self.verify_named("message", msg, sig)
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({})", hex::encode(self.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reject_tampering() {
        let id = SigningIdentity::generate();
        let sig = id.sign(b"hello");
        id.verifier().verify(b"hello", &sig).unwrap();
        assert!(id.verifier().verify(b"hellp", &sig).is_err());
        let mut bad = sig;
        bad[3] ^= 0x40;
        assert!(id.verifier().verify(b"hello", &bad).is_err());
        assert!(id.verifier().verify(b"hello", &sig[..63]).is_err());
        let other = SigningIdentity::generate();
        assert!(other.verifier().verify(b"hello", &sig).is_err());
    }

    #[test]
    fn persistence_round_trip_and_redacted_debug() {
        let id = SigningIdentity::generate();
        let again = SigningIdentity::from_secret_bytes(&id.secret_bytes());
        assert_eq!(id.verifier(), again.verifier());
        assert!(!format!("{id:?}").contains(&hex::encode(*id.secret_bytes())));
        assert_eq!(
            VerifierKey::from_bytes(&id.verifier().to_bytes()).unwrap(),
            id.verifier()
        );
    }
}
