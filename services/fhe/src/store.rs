//! Compressed evaluation keys, stored by key id, in one of three places (`--store`):
//!
//! * files: one per key, `<dir>/<hex id>.csk`, written to a temporary file and renamed
//!   so a crash never leaves a half-written key under its id. `<dir>` is
//!   `<data_dir>/keys` by default, `DIR/fhe-keys` with `--store sqlite:DIR`: a 30 MB
//!   blob is better a file than a row of an embedded database;
//! * PostgreSQL (`--store postgres://…`): table `fhe_keys`, shared by every FHE
//!   replica on the database, so a key registered through one is usable at all;
//! * memory, without a data directory (tests).
//!
//! Only keys that passed [`veilgrid_fhe::CompressedServerKey::from_bytes_with_id`] (size
//! limit, conformance, id = SHA-256 of the bytes) are ever stored. A key read back is
//! checked again, and its size before it is read: a row or file changed behind the
//! service's back is refused as corrupt (`DATA_LOSS`), never used.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Mutex,
};

use veilgrid_fhe::{CompressedServerKey, KeyId, params::MAX_COMPRESSED_SERVER_KEY_BYTES};
use veilgrid_kit::{
    pg::{Pool, big, pg},
    store_spec::StoreSpec,
};

use crate::FheServiceError;

/// The `fhe` component's PostgreSQL schema, one entry per version (append only).
/// `STORAGE EXTERNAL`: keys are stored out of line and not compressed (a compressed
/// tfhe key is high-entropy; PostgreSQL's compression would only spend CPU on it).
const MIGRATIONS: &[&str] = &["CREATE TABLE fhe_keys (
        id BYTEA PRIMARY KEY CHECK (octet_length(id) = 32),
        key BYTEA NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    ALTER TABLE fhe_keys ALTER COLUMN key SET STORAGE EXTERNAL;"];

/// Where compressed keys live.
#[derive(Debug)]
pub(crate) enum KeyStore {
    /// Files under this directory.
    Dir(PathBuf),
    /// A PostgreSQL database shared by replicas.
    Postgres(Pool),
    /// In memory (tests, no data directory).
    Memory(Mutex<HashMap<KeyId, Vec<u8>>>),
}

fn io(path: &Path, source: std::io::Error) -> FheServiceError {
    FheServiceError::Store {
        path: path.display().to_string(),
        source,
    }
}

fn corrupt(id: &KeyId, reason: impl std::fmt::Display) -> FheServiceError {
    FheServiceError::CorruptKey {
        id: id.to_hex(),
        reason: reason.to_string(),
    }
}

fn too_large(len: u64) -> FheServiceError {
    FheServiceError::TooLarge {
        what: "stored key",
        len,
        max: MAX_COMPRESSED_SERVER_KEY_BYTES as u64,
    }
}

impl KeyStore {
    /// Open the store `spec` names; by default `<data_dir>/keys`, or memory without a
    /// data directory.
    pub(crate) fn open(spec: &StoreSpec, data_dir: Option<&Path>) -> Result<Self, FheServiceError> {
        let dir = match (spec, data_dir) {
            (StoreSpec::Postgres(url), _) => {
                return Ok(KeyStore::Postgres(Pool::connect(url, "fhe", MIGRATIONS)?));
            }
            (StoreSpec::Sqlite(d), _) => d.join("fhe-keys"),
            (StoreSpec::Default, Some(d)) => d.join("keys"),
            (StoreSpec::Default, None) => return Ok(KeyStore::Memory(Mutex::new(HashMap::new()))),
        };
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        Ok(KeyStore::Dir(dir))
    }

    fn path(dir: &Path, id: &KeyId) -> PathBuf {
        dir.join(format!("{}.csk", id.to_hex()))
    }

    fn memory(
        m: &Mutex<HashMap<KeyId, Vec<u8>>>,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<KeyId, Vec<u8>>>, FheServiceError> {
        m.lock()
            .map_err(|_| FheServiceError::Pool("key store lock poisoned".into()))
    }

    /// Whether a key with this id is stored.
    pub(crate) fn contains(&self, id: &KeyId) -> Result<bool, FheServiceError> {
        match self {
            KeyStore::Dir(d) => Ok(Self::path(d, id).is_file()),
            KeyStore::Memory(m) => Ok(Self::memory(m)?.contains_key(id)),
            KeyStore::Postgres(pool) => {
                let id = id.0.to_vec();
                Ok(pool.run(move |c| {
                    c.query_opt("SELECT 1 FROM fhe_keys WHERE id = $1", &[&id])
                        .map(|r| r.is_some())
                        .map_err(pg("looking up a key"))
                })?)
            }
        }
    }

    /// Store the serialized key `bytes` (already checked) under `id`. Returns false if it was
    /// already there (idempotent; two replicas storing one key at once both succeed).
    pub(crate) fn put(&self, id: &KeyId, bytes: &[u8]) -> Result<bool, FheServiceError> {
        match self {
            KeyStore::Dir(d) => {
                let path = Self::path(d, id);
                if path.is_file() {
                    return Ok(false);
                }
                let tmp = d.join(format!("{}.tmp-{}", id.to_hex(), std::process::id()));
                std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
                std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
                Ok(true)
            }
            KeyStore::Memory(m) => Ok(Self::memory(m)?.insert(*id, bytes.to_vec()).is_none()),
            KeyStore::Postgres(pool) => {
                let (id, bytes) = (id.0.to_vec(), bytes.to_vec());
                let n = pool.run(move |c| {
                    c.execute(
                        "INSERT INTO fhe_keys (id, key) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                        &[&id, &bytes],
                    )
                    .map_err(pg("storing a key"))
                })?;
                Ok(n == 1)
            }
        }
    }

    /// Load and re-check the key stored under `id`.
    pub(crate) fn get(&self, id: &KeyId) -> Result<CompressedServerKey, FheServiceError> {
        let max = MAX_COMPRESSED_SERVER_KEY_BYTES as u64;
        let bytes = match self {
            KeyStore::Dir(d) => {
                let path = Self::path(d, id);
                match std::fs::metadata(&path) {
                    Ok(m) if m.len() > max => return Err(too_large(m.len())),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(FheServiceError::UnknownKey(id.to_hex()));
                    }
                    Err(e) => return Err(io(&path, e)),
                }
                std::fs::read(&path).map_err(|e| io(&path, e))?
            }
            KeyStore::Memory(m) => Self::memory(m)?
                .get(id)
                .cloned()
                .ok_or_else(|| FheServiceError::UnknownKey(id.to_hex()))?,
            KeyStore::Postgres(pool) => {
                let key = id.0.to_vec();
                // The length first, in the same statement: an oversized row is never sent.
                let row = pool.run(move |c| {
                    c.query_opt(
                        "SELECT octet_length(key)::BIGINT,
                                CASE WHEN octet_length(key) <= $2::BIGINT THEN key END
                         FROM fhe_keys WHERE id = $1",
                        &[&key, &big(max)],
                    )
                    .map_err(pg("reading a key"))
                })?;
                let Some(row) = row else {
                    return Err(FheServiceError::UnknownKey(id.to_hex()));
                };
                let len: i64 = row.get(0);
                let bytes: Option<Vec<u8>> = row.get(1);
                bytes.ok_or_else(|| too_large(len.max(0) as u64))?
            }
        };
        CompressedServerKey::from_bytes_with_id(&bytes, *id).map_err(|e| corrupt(id, e))
    }
}
