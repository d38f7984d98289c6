//! Client key (secret, never leaves the client), compressed and decompressed server
//! (evaluation) keys, and key ids.
//!
//! * [`generate_keys`] makes a [`ClientKey`] and the matching [`CompressedServerKey`].
//! * The compressed server key travels and is stored as bytes ([`CompressedServerKey::to_bytes`],
//!   30.1 MB). [`CompressedServerKey::from_bytes`] is the only way back: a size limit, tfhe's
//!   header/version checks, `safe_deserialize_conformant` against [`params::config`], and a check
//!   that no byte is left over. Its [`KeyId`] is the SHA-256 of exactly those bytes.
//! * [`CompressedServerKey::decompress`] gives the [`ServerKey`] used for evaluation (~90 MB:
//!   keep it in a size-bounded cache, decompress lazily).

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tfhe::conformance::ParameterSetConformant;
use tfhe::core_crypto::prelude::{DynamicDistribution, LweSecretKeyView};
use tfhe::named::Named;
use tfhe::safe_serialization::{safe_deserialize, safe_deserialize_conformant, safe_serialize};
use tfhe_versionable::{Versionize, VersionsDispatch};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::guard::guarded;
use crate::params::{self, MAX_CLIENT_KEY_BYTES, MAX_COMPRESSED_SERVER_KEY_BYTES};

/// Identifier of an evaluation key: SHA-256 of its serialized compressed form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| Error::BadKeyId)?;
        Ok(Self(out))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", &self.to_hex()[..16])
    }
}

/// Generate a fresh client key and its compressed evaluation key (~1-3 s on one core).
pub fn generate_keys() -> Result<(ClientKey, CompressedServerKey)> {
    let client = tfhe::ClientKey::generate(params::config());
    let compressed = tfhe::CompressedServerKey::new(&client);
    let bytes = serialize(
        "compressed server key",
        &compressed,
        MAX_COMPRESSED_SERVER_KEY_BYTES,
    )?;
    let id = KeyId::of(&bytes);
    Ok((
        ClientKey {
            inner: Some(client),
            key_id: id,
        },
        CompressedServerKey {
            key: compressed,
            id,
            serialized_len: bytes.len(),
        },
    ))
}

fn serialize<T: Serialize + Versionize + Named>(
    what: &'static str,
    value: &T,
    limit: usize,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    safe_serialize(value, &mut out, limit as u64).map_err(|e| Error::Decode {
        what,
        reason: format!("serialization failed: {e}"),
    })?;
    Ok(out)
}

fn check_len(what: &'static str, bytes: &[u8], max: usize) -> Result<()> {
    if bytes.len() > max {
        return Err(Error::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    Ok(())
}

fn fully_consumed(what: &'static str, cursor: &Cursor<&[u8]>) -> Result<()> {
    let used = cursor.position();
    let len = cursor.get_ref().len() as u64;
    if used != len {
        return Err(Error::Decode {
            what,
            reason: format!("{} trailing bytes", len - used),
        });
    }
    Ok(())
}

// ------------------------------------------------------------------------------- client key

/// The client's secret key. Encrypts queries and decrypts predictions. Never sent anywhere;
/// `Debug` hides it and dropping it overwrites the secret key material.
pub struct ClientKey {
    inner: Option<tfhe::ClientKey>,
    key_id: KeyId,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// What a serialized client key file holds: the tfhe key and the id of its evaluation key.
#[derive(Serialize, Deserialize, Versionize)]
#[versionize(ClientKeyFileVersions)]
struct ClientKeyFile {
    key_id: [u8; 32],
    key: tfhe::ClientKey,
}

#[derive(VersionsDispatch)]
#[allow(dead_code)]
enum ClientKeyFileVersions {
    V0(ClientKeyFile),
}

impl Named for ClientKeyFile {
    const NAME: &'static str = "veilgrid_fhe::ClientKeyFile";
}

impl ClientKey {
    /// Id of the evaluation key generated with this client key.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    fn tfhe(&self) -> Result<&tfhe::ClientKey> {
        // `inner` is only `None` during `drop`.
        self.inner.as_ref().ok_or(Error::Decode {
            what: "client key",
            reason: "dropped".into(),
        })
    }

    /// The shortint client key (KS32 atomic pattern).
    pub(crate) fn shortint(&self) -> Result<&tfhe::shortint::ClientKey> {
        let integer: &tfhe::integer::ClientKey = self.tfhe()?.as_ref();
        Ok(integer.as_ref())
    }

    /// The LWE key that encrypts queries and decrypts results (the big key, dimension k*N)
    /// and the noise distribution of fresh encryptions under it.
    pub(crate) fn encryption_key(
        &self,
    ) -> Result<(LweSecretKeyView<'_, u64>, DynamicDistribution<u64>)> {
        Ok(self.shortint()?.encryption_key_and_noise())
    }

    /// Serialize for local storage (owner-only file: that is the caller's job). The returned
    /// buffer is zeroized when dropped.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        let file = ClientKeyFile {
            key_id: self.key_id.0,
            key: self.tfhe()?.clone(),
        };
        let bytes = serialize("client key", &file, MAX_CLIENT_KEY_BYTES);
        wipe_tfhe_client_key(file.key);
        Ok(Zeroizing::new(bytes?))
    }

    /// Parse a client key written by [`ClientKey::to_bytes`] (size-limited; the key must be for
    /// this crate's parameter set).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "client key";
        check_len(WHAT, bytes, MAX_CLIENT_KEY_BYTES)?;
        let mut cursor = Cursor::new(bytes);
        let file: ClientKeyFile = guarded(WHAT, || {
            safe_deserialize(&mut cursor, MAX_CLIENT_KEY_BYTES as u64)
                .map_err(|reason| Error::Decode { what: WHAT, reason })
        })?;
        fully_consumed(WHAT, &cursor)?;
        let key = ClientKey {
            inner: Some(file.key),
            key_id: KeyId(file.key_id),
        };
        let expected =
            tfhe::shortint::parameters::AtomicPatternParameters::from(params::block_parameters());
        if key.tfhe()?.computation_parameters() != expected {
            return Err(Error::NonConformant {
                what: WHAT,
                params: params::PARAMETER_SET_NAME,
                reason: "client key made for other parameters".into(),
            });
        }
        Ok(key)
    }
}

impl Drop for ClientKey {
    fn drop(&mut self) {
        if let Some(key) = self.inner.take() {
            wipe_tfhe_client_key(key);
        }
    }
}

/// Take a tfhe client key apart and overwrite its secret key containers.
fn wipe_tfhe_client_key(key: tfhe::ClientKey) {
    let (integer, ..) = key.into_raw_parts();
    let shortint = integer.into_raw_parts();
    match shortint.atomic_pattern {
        tfhe::shortint::client_key::atomic_pattern::AtomicPatternClientKey::KeySwitch32(ap) => {
            let (glwe, lwe, ..) = ap.into_raw_parts();
            glwe.into_container().zeroize();
            lwe.into_container().zeroize();
        }
        tfhe::shortint::client_key::atomic_pattern::AtomicPatternClientKey::Standard(ap) => {
            let (glwe, lwe, ..) = ap.into_raw_parts();
            glwe.into_container().zeroize();
            lwe.into_container().zeroize();
        }
    }
}

// ------------------------------------------------------------------- compressed server key

/// The evaluation key in compressed (seeded) form, as uploaded by a client and stored by the
/// service. Holds no secret.
#[derive(Clone)]
pub struct CompressedServerKey {
    key: tfhe::CompressedServerKey,
    id: KeyId,
    serialized_len: usize,
}

impl fmt::Debug for CompressedServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompressedServerKey")
            .field("id", &self.id)
            .field("serialized_len", &self.serialized_len)
            .finish_non_exhaustive()
    }
}

impl CompressedServerKey {
    /// The key id (SHA-256 of the serialized bytes).
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Length of the serialized form in bytes.
    pub fn serialized_len(&self) -> usize {
        self.serialized_len
    }

    /// Serialize (tfhe `safe_serialize`: versioned, with a header naming the type).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serialize(
            "compressed server key",
            &self.key,
            MAX_COMPRESSED_SERVER_KEY_BYTES,
        )
    }

    /// Decode an uploaded key: refused when over [`MAX_COMPRESSED_SERVER_KEY_BYTES`], when it does
    /// not decode (garbage, truncated, other tfhe type or version), when tfhe's conformance check
    /// against [`params::config`] fails (a key for other parameters, or with extra keys such as an
    /// OPRF or compression key), or when bytes are left over. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "compressed server key";
        check_len(WHAT, bytes, MAX_COMPRESSED_SERVER_KEY_BYTES)?;
        let conformance = <tfhe::CompressedServerKey as ParameterSetConformant>::ParameterSet::from(
            params::config(),
        );
        let mut cursor = Cursor::new(bytes);
        let key: tfhe::CompressedServerKey = guarded(WHAT, || {
            safe_deserialize_conformant(
                &mut cursor,
                MAX_COMPRESSED_SERVER_KEY_BYTES as u64,
                &conformance,
            )
            .map_err(|reason| {
                if reason.contains("not conformant") {
                    Error::NonConformant {
                        what: WHAT,
                        params: params::PARAMETER_SET_NAME,
                        reason,
                    }
                } else {
                    Error::Decode { what: WHAT, reason }
                }
            })
        })?;
        fully_consumed(WHAT, &cursor)?;
        Ok(Self {
            key,
            id: KeyId::of(bytes),
            serialized_len: bytes.len(),
        })
    }

    /// [`CompressedServerKey::from_bytes`], after checking that the bytes hash to `expected`,
    /// the id the client computed before uploading. This is what detects an upload corrupted
    /// inside the key material, which no format check can see (every u64 is a valid key word).
    pub fn from_bytes_with_id(bytes: &[u8], expected: KeyId) -> Result<Self> {
        check_len(
            "compressed server key",
            bytes,
            MAX_COMPRESSED_SERVER_KEY_BYTES,
        )?;
        let actual = KeyId::of(bytes);
        if actual != expected {
            return Err(Error::KeyIdMismatch {
                expected: expected.to_hex(),
                actual: actual.to_hex(),
            });
        }
        Self::from_bytes(bytes)
    }

    /// Expand the seeded key material and convert the bootstrapping key to the Fourier domain.
    pub fn decompress(&self) -> Result<ServerKey> {
        let key = guarded("compressed server key", || Ok(self.key.decompress()))?;
        let (integer, ..) = key.into_raw_parts();
        Ok(ServerKey {
            sks: integer.into_raw_parts(),
            id: self.id,
        })
    }
}

// ------------------------------------------------------------------------------- server key

/// The decompressed evaluation key (key-switching key + Fourier bootstrapping key). Holds no
/// secret. Evaluation takes it explicitly: no thread-local tfhe state is involved, so any
/// thread (or rayon worker) can use a shared `&ServerKey`.
pub struct ServerKey {
    pub(crate) sks: tfhe::shortint::ServerKey,
    id: KeyId,
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ServerKey {
    /// The id of the compressed key this was decompressed from.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Memory held by the decompressed key, in bytes (for cache accounting): the Fourier
    /// bootstrapping key (n * (k+1)^2 * l * N/2 complex f64) plus the 32-bit key-switching key
    /// (k*N * l_ks * (n+1) u32).
    pub fn size_bytes() -> usize {
        let p = params::block_parameters();
        let (n, k1, n_poly) = (
            p.lwe_dimension.0,
            p.glwe_dimension.0 + 1,
            p.polynomial_size.0,
        );
        let bsk = n * k1 * k1 * p.pbs_level.0 * (n_poly / 2) * 16;
        let ksk = params::big_lwe_dimension() * p.ks_level.0 * (n + 1) * 4;
        bsk + ksk
    }
}
