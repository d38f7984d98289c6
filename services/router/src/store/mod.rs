//! Durable state of the router: provider leases, the promise ledger and receipts.
//!
//! One trait, so the embedded SQLite store and a PostgreSQL one (for several router
//! replicas) are interchangeable. Ledger writes are group-committed by one writer
//! thread (`crate::ledger`), and a request is answered only after its entry is
//! committed, so a restart loses no ledger entry that a caller has seen the result of.

mod postgres;
pub(crate) mod postgres_replicas;
mod sqlite;

pub use postgres::{MIGRATIONS as POSTGRES_MIGRATIONS, PostgresStore};
pub use sqlite::SqliteStore;

use std::path::Path;

use veilgrid_core::{protocol::ProtocolId, receipt::SignedReceipt};
use veilgrid_kit::store_spec::StoreSpec;

use crate::RouterError;

/// A provider's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The provider id (Ed25519 public key).
    pub provider_id: [u8; 32],
    /// The signed `ProviderInfo` bytes, verbatim.
    pub info: Vec<u8>,
    /// The registration signature.
    pub signature: Vec<u8>,
    /// The lease secret.
    pub lease_id: [u8; 16],
    /// Expiry, ms since the Unix epoch.
    pub expires_at_ms: u64,
}

/// Kept and broken promises of one provider for one protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Promises kept.
    pub kept: u64,
    /// Promises broken (witnessed by the router).
    pub broken: u64,
}

impl Tally {
    /// Count one promise, kept or broken.
    pub fn count(&mut self, kept: bool) {
        if kept {
            self.kept += 1;
        } else {
            self.broken += 1;
        }
    }

    /// `(kept + 1) / (kept + broken + 2)`: a Laplace-smoothed success rate, 1/2 for
    /// a provider never seen.
    pub fn reputation(&self) -> f64 {
        (self.kept as f64 + 1.0) / (self.kept as f64 + self.broken as f64 + 2.0)
    }
}

/// One promise outcome, as the ledger writer hands it to [`Store::record_batch`].
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    /// The provider that made the promise.
    pub provider_id: [u8; 32],
    /// The protocol it was made for.
    pub protocol: ProtocolId,
    /// Kept (a valid receipt) or broken.
    pub kept: bool,
    /// When the router judged it, ms since the Unix epoch.
    pub at_ms: u64,
    /// The receipt of a kept promise.
    pub receipt: Option<SignedReceipt>,
}

/// Where the router keeps its state.
pub trait Store: Send + Sync + 'static {
    /// Insert or replace a provider's lease.
    fn put_lease(&self, lease: &LeaseRecord) -> Result<(), RouterError>;
    /// Extend a lease.
    fn extend_lease(&self, provider_id: &[u8; 32], expires_at_ms: u64) -> Result<(), RouterError>;
    /// Remove a provider's lease.
    fn remove_lease(&self, provider_id: &[u8; 32]) -> Result<(), RouterError>;
    /// Every stored lease.
    fn leases(&self) -> Result<Vec<LeaseRecord>, RouterError>;
    /// Append one promise outcome (and the receipt of a kept promise).
    fn record(
        &self,
        provider_id: &[u8; 32],
        protocol: &ProtocolId,
        kept: bool,
        at_ms: u64,
        receipt: Option<&SignedReceipt>,
    ) -> Result<(), RouterError>;
    /// Append several promise outcomes at once, atomically where the backend can
    /// (the ledger writer's group commit: one transaction for every request that
    /// finished while the previous batch was being written).
    fn record_batch(&self, entries: &[LedgerEntry]) -> Result<(), RouterError> {
        for e in entries {
            self.record(
                &e.provider_id,
                &e.protocol,
                e.kept,
                e.at_ms,
                e.receipt.as_ref(),
            )?;
        }
        Ok(())
    }
    /// Tallies per (provider, protocol), summed over the whole ledger.
    fn tallies(&self) -> Result<Vec<([u8; 32], ProtocolId, Tally)>, RouterError>;
    /// Stored receipts with sequence number above `after`, at most `limit`.
    fn receipts(&self, after: u64, limit: usize) -> Result<Vec<(u64, SignedReceipt)>, RouterError>;
    /// Remove a lease found expired at `now_ms`, unless it was renewed meanwhile
    /// (by another replica, in a shared store). A store only this router writes
    /// to can just remove it.
    fn remove_expired_lease(&self, provider_id: &[u8; 32], now_ms: u64) -> Result<(), RouterError> {
        let _ = now_ms;
        self.remove_lease(provider_id)
    }
    /// Whether other router replicas write to this store too; the router then
    /// re-reads leases and tallies on every lease sweep.
    fn shared(&self) -> bool {
        false
    }
}

/// Open the store named by `spec` (`sqlite:DIR` or `postgres://…`), or without one
/// the embedded SQLite store under `data_dir` (in memory when that is `None`).
/// `sqlite:DIR` keeps `router.sqlite3` in the directory DIR.
pub fn open(spec: Option<&str>, data_dir: Option<&Path>) -> Result<Box<dyn Store>, RouterError> {
    Ok(match StoreSpec::parse(spec)? {
        StoreSpec::Default => match data_dir {
            Some(dir) => Box::new(SqliteStore::open(dir)?),
            None => Box::new(SqliteStore::in_memory()?),
        },
        StoreSpec::Sqlite(dir) => Box::new(SqliteStore::open(&dir)?),
        StoreSpec::Postgres(url) => Box::new(PostgresStore::connect(&url)?),
    })
}
