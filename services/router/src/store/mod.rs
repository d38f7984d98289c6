//! Durable state of the router: provider leases, the promise ledger and receipts.
//!
//! One trait, so the embedded SQLite store and a PostgreSQL one (for several router
//! replicas) are interchangeable. Writes happen before the router answers, so a
//! restart loses no ledger entry that a caller has seen the result of.

mod sqlite;

pub use sqlite::SqliteStore;

use veilgrid_core::{protocol::ProtocolId, receipt::SignedReceipt};

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
    /// `(kept + 1) / (kept + broken + 2)`: a Laplace-smoothed success rate, 1/2 for
    /// a provider never seen.
    pub fn reputation(&self) -> f64 {
        (self.kept as f64 + 1.0) / (self.kept as f64 + self.broken as f64 + 2.0)
    }
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
    /// Tallies per (provider, protocol), summed over the whole ledger.
    fn tallies(&self) -> Result<Vec<([u8; 32], ProtocolId, Tally)>, RouterError>;
    /// Stored receipts with sequence number above `after`, at most `limit`.
    fn receipts(&self, after: u64, limit: usize) -> Result<Vec<(u64, SignedReceipt)>, RouterError>;
}
