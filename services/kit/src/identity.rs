//! A provider's long-term identity: an Ed25519 signing key (its provider id is the
//! public key) and an X25519 key for payloads sealed to it.
//!
//! Generated on first start and kept in `<dir>/identity.key` (64 bytes: signing
//! seed ‖ sealing secret), created with mode 0600. Later starts load it, so a
//! provider keeps its id, its reputation and its sealed-payload key across restarts.

use std::{fs, io::Write, path::Path};

use veilgrid_core::{
    limits,
    seal::{SealKeyPair, SealPublicKey},
    sign::{SigningIdentity, VerifierKey},
};
use zeroize::{Zeroize, Zeroizing};

use crate::KitError;

/// A provider's keys.
#[derive(Debug)]
pub struct Identity {
    /// Signs receipts and registrations.
    pub signing: SigningIdentity,
    /// Opens payloads sealed to this provider.
    pub sealing: SealKeyPair,
}

const FILE: &str = "identity.key";

impl Identity {
    /// Fresh keys (for tests and in-memory providers).
    pub fn generate() -> Self {
        Self {
            signing: SigningIdentity::generate(),
            sealing: SealKeyPair::generate(),
        }
    }

    /// Load the identity kept in `dir`, creating it (and `dir`) on first start.
    pub fn load_or_create(dir: &Path) -> Result<Self, KitError> {
        let path = dir.join(FILE);
        let io = |what, source| KitError::Io {
            what,
            path: path.display().to_string(),
            source,
        };
        match fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                Self::from_bytes(&bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(|e| io("creating data directory", e))?;
                let id = Self::generate();
                let mut f = open_owner_only(&path).map_err(|e| io("creating identity file", e))?;
                let mut buf = Zeroizing::new([0u8; 64]);
                buf[..32].copy_from_slice(&id.signing.secret_bytes()[..]);
                buf[32..].copy_from_slice(&id.sealing.secret_bytes()[..]);
                let written = f.write_all(&buf[..]).and_then(|()| f.sync_all());
                written.map_err(|e| io("writing identity file", e))?;
                Ok(id)
            }
            Err(e) => Err(io("reading identity file", e)),
        }
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, KitError> {
        let mut all = limits::fixed::<64>("identity file", bytes)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&all[..32]);
        let signing = SigningIdentity::from_secret_bytes(&seed);
        seed.copy_from_slice(&all[32..]);
        let sealing = SealKeyPair::from_secret_bytes(&seed);
        all.zeroize();
        Ok(Self {
            signing,
            sealing: sealing?,
        })
    }

    /// The provider id: the Ed25519 public key.
    pub fn provider_id(&self) -> [u8; 32] {
        self.signing.verifier().to_bytes()
    }

    /// The verifier of this identity.
    pub fn verifier(&self) -> VerifierKey {
        self.signing.verifier()
    }

    /// The public sealing key.
    pub fn seal_public(&self) -> SealPublicKey {
        self.sealing.public()
    }
}

#[cfg(unix)]
fn open_owner_only(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_owner_only(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_persists_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(dir.path()).unwrap();
        let b = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.provider_id(), b.provider_id());
        assert_eq!(a.seal_public(), b.seal_public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn corrupt_identity_file_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE), b"short").unwrap();
        assert!(Identity::load_or_create(dir.path()).is_err());
        // The bad file is left for the operator to inspect, not overwritten.
        assert_eq!(fs::read(dir.path().join(FILE)).unwrap(), b"short");
    }
}
