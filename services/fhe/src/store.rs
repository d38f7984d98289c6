//! Compressed evaluation keys, stored by key id: one file per key under
//! `<data_dir>/keys/<hex id>.csk` (written to a temporary file and renamed, so a crash never
//! leaves a half-written key under its id), or in memory without a data directory.
//!
//! Only keys that passed [`veilgrid_fhe::CompressedServerKey::from_bytes_with_id`] (size limit,
//! conformance, id = SHA-256 of the bytes) are ever stored; a key read back is checked again.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Mutex,
};

use veilgrid_fhe::{CompressedServerKey, KeyId};

use crate::FheServiceError;

/// Where compressed keys live.
#[derive(Debug)]
pub(crate) enum KeyStore {
    /// Files under this directory.
    Dir(PathBuf),
    /// In memory (tests, no data directory).
    Memory(Mutex<HashMap<KeyId, Vec<u8>>>),
}

fn io(path: &Path, source: std::io::Error) -> FheServiceError {
    FheServiceError::Store {
        path: path.display().to_string(),
        source,
    }
}

impl KeyStore {
    /// Open (creating) `<data_dir>/keys`, or an in-memory store.
    pub(crate) fn open(data_dir: Option<&Path>) -> Result<Self, FheServiceError> {
        match data_dir {
            Some(d) => {
                let dir = d.join("keys");
                std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
                Ok(KeyStore::Dir(dir))
            }
            None => Ok(KeyStore::Memory(Mutex::new(HashMap::new()))),
        }
    }

    fn path(dir: &Path, id: &KeyId) -> PathBuf {
        dir.join(format!("{}.csk", id.to_hex()))
    }

    /// Whether a key with this id is stored.
    pub(crate) fn contains(&self, id: &KeyId) -> bool {
        match self {
            KeyStore::Dir(d) => Self::path(d, id).is_file(),
            KeyStore::Memory(m) => m.lock().map(|m| m.contains_key(id)).unwrap_or(false),
        }
    }

    /// Store the serialized key `bytes` (already checked) under `id`. Returns false if it was
    /// already there (idempotent).
    pub(crate) fn put(&self, id: &KeyId, bytes: &[u8]) -> Result<bool, FheServiceError> {
        if self.contains(id) {
            return Ok(false);
        }
        match self {
            KeyStore::Dir(d) => {
                let path = Self::path(d, id);
                let tmp = d.join(format!("{}.tmp-{}", id.to_hex(), std::process::id()));
                std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
                std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
            }
            KeyStore::Memory(m) => {
                m.lock()
                    .map_err(|_| FheServiceError::Pool("key store lock poisoned".into()))?
                    .insert(*id, bytes.to_vec());
            }
        }
        Ok(true)
    }

    /// Load and re-check the key stored under `id`.
    pub(crate) fn get(&self, id: &KeyId) -> Result<CompressedServerKey, FheServiceError> {
        let bytes = match self {
            KeyStore::Dir(d) => {
                let path = Self::path(d, id);
                match std::fs::metadata(&path) {
                    Ok(m)
                        if m.len()
                            > veilgrid_fhe::params::MAX_COMPRESSED_SERVER_KEY_BYTES as u64 =>
                    {
                        return Err(FheServiceError::TooLarge {
                            what: "stored key file",
                            len: m.len(),
                            max: veilgrid_fhe::params::MAX_COMPRESSED_SERVER_KEY_BYTES as u64,
                        });
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(FheServiceError::UnknownKey(id.to_hex()));
                    }
                    Err(e) => return Err(io(&path, e)),
                }
                std::fs::read(&path).map_err(|e| io(&path, e))?
            }
            KeyStore::Memory(m) => m
                .lock()
                .map_err(|_| FheServiceError::Pool("key store lock poisoned".into()))?
                .get(id)
                .cloned()
                .ok_or_else(|| FheServiceError::UnknownKey(id.to_hex()))?,
        };
        Ok(CompressedServerKey::from_bytes_with_id(&bytes, *id)?)
    }
}
