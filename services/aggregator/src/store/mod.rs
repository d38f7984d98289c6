//! Round state: the public round description, the server's snapshot (running sum of masked
//! vectors, accepted clients, member answers), the sealed shares to hand to each member, the
//! members' signed share reports, the client messages while an exclusion may still need them
//! (and, in verifiable rounds, for the audit transcript), and the result. Nothing stored is
//! secret: shares stay sealed to the members' keys.
//!
//! One trait, [`RoundStore`], with the embedded SQLite store ([`SqliteRounds`], the default,
//! `aggregator.sqlite3` in the data directory) and PostgreSQL ([`PostgresRounds`], tables
//! `agg_*`, shared by several aggregation servers), chosen by `--store`. Every step of a round
//! runs in one transaction ([`RoundStore::atomically`]) that, on PostgreSQL, holds the round's
//! row lock: two servers on one database take turns on a round and never lose a write.

mod postgres;
mod sqlite;

pub use postgres::{MIGRATIONS as POSTGRES_MIGRATIONS, PostgresRounds};
pub use sqlite::SqliteRounds;

use std::path::Path;

use veilgrid_kit::store_spec::StoreSpec;

use crate::AggError;

/// A round's row.
#[derive(Debug, Clone)]
pub struct RoundRow {
    /// The round id.
    pub id: [u8; 32],
    /// The public round description (`Round::to_bytes`).
    pub round: Vec<u8>,
    /// The clients' deadline, ms since the Unix epoch.
    pub deadline_ms: u64,
    /// One of `rounds::state`.
    pub state: String,
    /// The server's snapshot for the current state.
    pub snapshot: Vec<u8>,
    /// Clients accepted so far.
    pub submitted: u32,
    /// The encoded `ResultResponse` of a finished round.
    pub result: Option<Vec<u8>>,
    /// Why a failed round failed.
    pub error: Option<String>,
    /// The members' Ed25519 keys, 32 bytes each, in committee order.
    pub signers: Vec<u8>,
    /// The members' deadline, ms since the Unix epoch.
    pub member_deadline_ms: u64,
    /// The share-check window, ms.
    pub check_window_ms: u64,
    /// When the share check ends (0 while collecting).
    pub check_deadline_ms: u64,
    /// Clients excluded after a bad-share report.
    pub excluded: Vec<u64>,
}

/// One stored sealed share: client, sealed payload, arrival order in the round.
pub type StoredShare = (u64, Vec<u8>, u64);

/// What one step of a round may read and write, inside its transaction.
pub trait RoundTx {
    /// The round's row (on PostgreSQL locked until the transaction ends).
    fn get(&mut self, id: &[u8; 32]) -> Result<Option<RoundRow>, AggError>;
    /// Store a new round.
    fn insert(&mut self, r: &RoundRow) -> Result<(), AggError>;
    /// Store a round's new state, snapshot, progress and outcome.
    fn update(&mut self, r: &RoundRow) -> Result<(), AggError>;
    /// Every round not yet ended (collecting, checking, awaiting members), by id (on
    /// PostgreSQL locked, in id order, until the transaction ends).
    fn active(&mut self) -> Result<Vec<RoundRow>, AggError>;
    /// Rows in `state` with an id greater than `after`, by id, at most `limit`.
    fn in_state_after(
        &mut self,
        state: &str,
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<RoundRow>, AggError>;
    /// Keep a client's share sealed to `member`, the round's `seq`-th arrival.
    fn insert_share(
        &mut self,
        round: &[u8; 32],
        client: u64,
        member: u16,
        sealed: &[u8],
        seq: u32,
    ) -> Result<(), AggError>;
    /// The sealed shares for `member` that arrived after share `after` (0: all), in arrival
    /// order.
    fn shares_for(
        &mut self,
        round: &[u8; 32],
        member: u16,
        after: u64,
    ) -> Result<Vec<StoredShare>, AggError>;
    /// Keep a client's message (until the set is declared; in verifiable rounds, to the end).
    fn insert_message(
        &mut self,
        round: &[u8; 32],
        client: u64,
        message: &[u8],
    ) -> Result<(), AggError>;
    /// A client's stored message.
    fn message(&mut self, round: &[u8; 32], client: u64) -> Result<Option<Vec<u8>>, AggError>;
    /// Every stored client message of the round, by client.
    fn messages(&mut self, round: &[u8; 32]) -> Result<Vec<Vec<u8>>, AggError>;
    /// Drop the round's client messages.
    fn delete_messages(&mut self, round: &[u8; 32]) -> Result<(), AggError>;
    /// Keep a member's signed share report.
    fn insert_check(
        &mut self,
        round: &[u8; 32],
        member: u16,
        bad: &[u64],
        signature: &[u8],
    ) -> Result<(), AggError>;
    /// The members that reported, each with the clients it reported as bad.
    fn checks(&mut self, round: &[u8; 32]) -> Result<Vec<(u16, Vec<u64>)>, AggError>;
}

/// One step, run inside a transaction.
pub type Step = Box<dyn FnOnce(&mut dyn RoundTx) -> Result<(), AggError> + Send>;

/// Where an aggregation server keeps its rounds.
pub trait RoundStore: Send + Sync + 'static {
    /// Run `step` in one transaction: committed when it returns `Ok`, rolled back on `Err`.
    fn atomically(&self, step: Step) -> Result<(), AggError>;
    /// Whether other aggregation servers may use this store at the same time.
    fn shared(&self) -> bool {
        false
    }
}

/// Open the store named by `spec`: `sqlite:DIR` (`aggregator.sqlite3` in DIR), a PostgreSQL
/// URL, or by default `aggregator.sqlite3` in `data_dir` (in memory without one).
pub fn open(spec: &StoreSpec, data_dir: Option<&Path>) -> Result<Box<dyn RoundStore>, AggError> {
    Ok(match spec {
        StoreSpec::Default => Box::new(SqliteRounds::open(data_dir)?),
        StoreSpec::Sqlite(dir) => Box::new(SqliteRounds::open(Some(dir))?),
        StoreSpec::Postgres(url) => Box::new(PostgresRounds::connect(url)?),
    })
}

pub(crate) fn u64s_to_blob(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn blob_to_u64s(b: &[u8]) -> Result<Vec<u64>, AggError> {
    if !b.len().is_multiple_of(8) {
        return Err(AggError::CorruptStore("client list"));
    }
    Ok(b.chunks_exact(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            u64::from_le_bytes(a)
        })
        .collect())
}

pub(crate) fn round_id(id: Vec<u8>) -> Result<[u8; 32], AggError> {
    id.try_into()
        .map_err(|_| AggError::CorruptStore("round id"))
}
