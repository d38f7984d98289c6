//! Sealing payloads to one party: HPKE (RFC 9180) in base mode with
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305.
//!
//! A sealed payload is `enc ‖ ct`: the 32-byte encapsulated X25519 key followed by
//! the AEAD ciphertext (plaintext length + 16-byte tag). `info` binds the context
//! (protocol and round), `aad` binds public data the ciphertext travels with; a payload
//! opened under a different `info` or `aad` fails. Only the holder of the recipient's
//! secret key can open it: the router that carries it sees uniform-looking bytes.

use core::fmt;

use hpke::{
    Deserializable, Kem as _, OpModeR, OpModeS, Serializable, aead::ChaCha20Poly1305,
    kdf::HkdfSha256, kem::X25519HkdfSha256,
};
use rand_core_09::{OsRng, UnwrapErr};
use zeroize::Zeroizing;

use crate::{Error, limits};

type Kem = X25519HkdfSha256;

/// Length of the encapsulated key that starts every sealed payload.
pub const ENCAPSULATED_KEY_LEN: usize = 32;
/// Bytes that sealing adds to a plaintext (encapsulated key + AEAD tag).
pub const SEAL_OVERHEAD: usize = ENCAPSULATED_KEY_LEN + 16;

/// The public half of a sealing key: anyone may seal to it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealPublicKey(<Kem as hpke::Kem>::PublicKey);

/// A sealing key pair. The secret half is zeroized on drop and never printed.
pub struct SealKeyPair {
    secret: <Kem as hpke::Kem>::PrivateKey,
    public: SealPublicKey,
}

impl SealKeyPair {
    /// A fresh key pair from the operating system's randomness.
    pub fn generate() -> Self {
        let (secret, public) = Kem::gen_keypair(&mut UnwrapErr(OsRng));
        Self {
            secret,
            public: SealPublicKey(public),
        }
    }

    /// Rebuild a key pair from its 32 secret bytes (as stored by [`Self::secret_bytes`]).
    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        let secret =
            <Kem as hpke::Kem>::PrivateKey::from_bytes(bytes).map_err(|e| Error::Malformed {
                what: "sealing secret key",
                reason: e.to_string(),
            })?;
        let public = SealPublicKey(Kem::sk_to_pk(&secret));
        Ok(Self { secret, public })
    }

    /// The secret key bytes, for storing in an owner-only file. Zeroized on drop.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.secret.to_bytes());
        out
    }

    /// The public key to publish.
    pub fn public(&self) -> SealPublicKey {
        self.public.clone()
    }

    /// Open a payload sealed to this key under the same `info` and `aad`.
    pub fn open(
        &self,
        info: &[u8],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(Error::Malformed {
                what: "sealed payload",
                reason: format!(
                    "{} bytes is shorter than the {SEAL_OVERHEAD}-byte minimum",
                    sealed.len()
                ),
            });
        }
        let (enc, ct) = sealed.split_at(ENCAPSULATED_KEY_LEN);
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| Error::Open)?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.secret,
            &enc,
            info,
            ct,
            aad,
        )
        .map(Zeroizing::new)
        .map_err(|_| Error::Open)
    }
}

impl fmt::Debug for SealKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealKeyPair")
            .field("public", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SealPublicKey {
    /// Parse a 32-byte X25519 public key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        limits::fixed::<32>("sealing public key", bytes)?;
        <Kem as hpke::Kem>::PublicKey::from_bytes(bytes)
            .map(Self)
            .map_err(|e| Error::Malformed {
                what: "sealing public key",
                reason: e.to_string(),
            })
    }

    /// The key as 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.0.to_bytes());
        out
    }

    /// Seal `plaintext` to this key, bound to `info` and `aad`.
    pub fn seal(&self, info: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
            &OpModeS::Base,
            &self.0,
            info,
            plaintext,
            aad,
            &mut UnwrapErr(OsRng),
        )
        .map_err(|e| Error::Seal(e.to_string()))?;
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        out.extend_from_slice(&enc.to_bytes());
        out.extend_from_slice(&ct);
        Ok(out)
    }
}

impl fmt::Debug for SealPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealPublicKey({})", hex::encode(self.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_context_binding() {
        let kp = SealKeyPair::generate();
        let sealed = kp
            .public()
            .seal(b"info", b"aad", b"attack at dawn")
            .unwrap();
        assert_eq!(sealed.len(), SEAL_OVERHEAD + 14);
        assert_eq!(
            &kp.open(b"info", b"aad", &sealed).unwrap()[..],
            b"attack at dawn"
        );
        assert_eq!(kp.open(b"other", b"aad", &sealed), Err(Error::Open));
        assert_eq!(kp.open(b"info", b"other", &sealed), Err(Error::Open));
    }

    #[test]
    fn another_key_cannot_open_and_ciphertext_hides_plaintext() {
        let kp = SealKeyPair::generate();
        let other = SealKeyPair::generate();
        let msg = b"the plaintext must not appear in the sealed bytes";
        let sealed = kp.public().seal(b"i", b"", msg).unwrap();
        assert_eq!(other.open(b"i", b"", &sealed), Err(Error::Open));
        assert!(!sealed.windows(8).any(|w| msg.windows(8).any(|m| m == w)));
        // Two seals of the same message differ (fresh ephemeral key each time).
        assert_ne!(sealed, kp.public().seal(b"i", b"", msg).unwrap());
    }

    #[test]
    fn tampering_and_truncation_fail() {
        let kp = SealKeyPair::generate();
        let mut sealed = kp.public().seal(b"i", b"", b"hello").unwrap();
        for i in [0, 31, 32, sealed.len() - 1] {
            sealed[i] ^= 1;
            assert!(kp.open(b"i", b"", &sealed).is_err(), "flip at {i} accepted");
            sealed[i] ^= 1;
        }
        assert!(matches!(
            kp.open(b"i", b"", &sealed[..SEAL_OVERHEAD - 1]),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn secret_bytes_round_trip_and_debug_redacts() {
        let kp = SealKeyPair::generate();
        let again = SealKeyPair::from_secret_bytes(&kp.secret_bytes()).unwrap();
        assert_eq!(kp.public(), again.public());
        let shown = format!("{kp:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&hex::encode(*kp.secret_bytes())));
        assert_eq!(
            SealPublicKey::from_bytes(&kp.public().to_bytes()).unwrap(),
            kp.public()
        );
        assert!(SealPublicKey::from_bytes(&[1u8; 31]).is_err());
    }
}
