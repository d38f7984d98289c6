//! The log's persistent store, behind [`ProverStore`]: SQLite ([`SqliteLogStore`], the
//! default, `log.sqlite3` under the data directory) or PostgreSQL ([`PostgresLogStore`],
//! tables `prover_*`), chosen by `--store`.
//!
//! Nothing here is trusted by the log: [`veilgrid_zk::log::TransparencyLog::open`] rehashes
//! every entry and compares the tree with every stored checkpoint, so a store that was
//! truncated or altered refuses to start on either backend; while running,
//! [`ProverStore::written_by_others`] tells the log to audit the store again before it
//! answers.

mod postgres;
mod sqlite;

pub use postgres::{MIGRATIONS as POSTGRES_MIGRATIONS, PostgresLogStore};
pub use sqlite::{DB_FILE, SqliteLogStore};

use std::path::Path;

use veilgrid_kit::store_spec::StoreSpec;
use veilgrid_zk::{
    Error as ZkError,
    log::{EntryVisitor, LogStore},
};

use crate::ProverError;

/// What the audit log keeps besides its entries and checkpoints, and how its batches
/// commit.
pub trait ProverStore: LogStore + Send {
    /// Whether anything other than this store wrote entries or checkpoints since it last
    /// looked (another process, a person with SQL access).
    fn written_by_others(&self) -> Result<bool, ProverError>;
    /// Start a batch: the appends, the source cursor and the checkpoint up to
    /// [`commit`](Self::commit) are kept together or not at all.
    fn begin(&self) -> Result<(), ProverError>;
    /// Keep the batch started by [`begin`](Self::begin).
    fn commit(&self) -> Result<(), ProverError>;
    /// Drop the batch started by [`begin`](Self::begin).
    fn rollback(&self);
    /// The last sequence number appended from `source` (0 = none).
    fn source_seq(&self, source: &str) -> Result<u64, ProverError>;
    /// Record that `source`'s receipts up to `seq` are appended.
    fn set_source_seq(&self, source: &str, seq: u64) -> Result<(), ProverError>;
    /// The stored checkpoint note of exactly `size` entries (the latest such), if any.
    fn checkpoint_of_size(&self, size: u64) -> Result<Option<String>, ProverError>;
    /// The oldest stored checkpoint note, if any.
    fn oldest_checkpoint(&self) -> Result<Option<String>, ProverError>;
    /// Keep a proof (the encoded `ProveResponse`); returns its id.
    fn add_proof(&self, response: &[u8]) -> Result<u64, ProverError>;
    /// Proofs with id > `after`, at most `limit`.
    fn proofs(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, ProverError>;
}

impl LogStore for Box<dyn ProverStore> {
    fn append(&mut self, entry: &[u8]) -> Result<(), ZkError> {
        (**self).append(entry)
    }

    fn get(&self, index: u64) -> Result<Vec<u8>, ZkError> {
        (**self).get(index)
    }

    fn len(&self) -> Result<u64, ZkError> {
        (**self).len()
    }

    fn is_empty(&self) -> Result<bool, ZkError> {
        (**self).is_empty()
    }

    fn append_checkpoint(&mut self, note: &str) -> Result<(), ZkError> {
        (**self).append_checkpoint(note)
    }

    fn checkpoint_count(&self) -> Result<u64, ZkError> {
        (**self).checkpoint_count()
    }

    fn checkpoint(&self, i: u64) -> Result<String, ZkError> {
        (**self).checkpoint(i)
    }

    fn scan(&self, from: u64, to: u64, visit: &mut EntryVisitor<'_>) -> Result<(), ZkError> {
        (**self).scan(from, to, visit)
    }
}

/// Open the store `spec` names: `log.sqlite3` in `sqlite:DIR`, a PostgreSQL database, or by
/// default `log.sqlite3` in `dir` (in memory without one).
pub fn open(spec: &StoreSpec, dir: Option<&Path>) -> Result<Box<dyn ProverStore>, ProverError> {
    Ok(match (spec, dir) {
        (StoreSpec::Default, Some(d)) => Box::new(SqliteLogStore::open(d)?),
        (StoreSpec::Default, None) => Box::new(SqliteLogStore::in_memory()?),
        (StoreSpec::Sqlite(d), _) => Box::new(SqliteLogStore::open(d)?),
        (StoreSpec::Postgres(url), _) => Box::new(PostgresLogStore::connect(url)?),
    })
}
