//! The embedded store: SQLite in WAL mode under the data directory.

use std::{path::Path, sync::Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use veilgrid_core::{
    protocol::ProtocolId,
    receipt::{Receipt, SignedReceipt},
};

use super::{LeaseRecord, LedgerEntry, Store, Tally};
use crate::RouterError;

/// Versioned schema; each entry runs once, in order, recorded in `user_version`.
const MIGRATIONS: &[&str] = &[r"
    CREATE TABLE leases (
        provider_id BLOB PRIMARY KEY,
        info BLOB NOT NULL,
        signature BLOB NOT NULL,
        lease_id BLOB NOT NULL,
        expires_at_ms INTEGER NOT NULL
    );
    CREATE TABLE promises (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        provider_id BLOB NOT NULL,
        protocol_id BLOB NOT NULL,
        kept INTEGER NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX promises_by_provider ON promises (provider_id, protocol_id);
    CREATE TABLE receipts (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        canonical BLOB NOT NULL,
        signature BLOB NOT NULL
    );
"];

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn corrupt(what: &'static str, reason: impl ToString) -> RouterError {
    RouterError::CorruptStore {
        what,
        reason: reason.to_string(),
    }
}

fn id32(what: &'static str, v: Vec<u8>) -> Result<[u8; 32], RouterError> {
    v.try_into().map_err(|_| corrupt(what, "not 32 bytes"))
}

impl SqliteStore {
    /// Open (creating and migrating) `router.sqlite3` in `dir`.
    pub fn open(dir: &Path) -> Result<Self, RouterError> {
        std::fs::create_dir_all(dir).map_err(|source| RouterError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        Self::from_connection(Connection::open(dir.join("router.sqlite3"))?)
    }

    /// An in-memory store (tests, throw-away grids).
    pub fn in_memory() -> Result<Self, RouterError> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut conn: Connection) -> Result<Self, RouterError> {
        veilgrid_kit::sqlite::prepare(&mut conn, MIGRATIONS)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (every
        // write is one statement or one transaction), so a poisoned lock is usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for SqliteStore {
    fn put_lease(&self, l: &LeaseRecord) -> Result<(), RouterError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO leases (provider_id, info, signature, lease_id, expires_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                &l.provider_id[..],
                l.info,
                l.signature,
                &l.lease_id[..],
                l.expires_at_ms as i64
            ],
        )?;
        Ok(())
    }

    fn extend_lease(&self, provider_id: &[u8; 32], expires_at_ms: u64) -> Result<(), RouterError> {
        self.conn().execute(
            "UPDATE leases SET expires_at_ms = ?2 WHERE provider_id = ?1",
            params![&provider_id[..], expires_at_ms as i64],
        )?;
        Ok(())
    }

    fn remove_lease(&self, provider_id: &[u8; 32]) -> Result<(), RouterError> {
        self.conn().execute(
            "DELETE FROM leases WHERE provider_id = ?1",
            params![&provider_id[..]],
        )?;
        Ok(())
    }

    fn leases(&self) -> Result<Vec<LeaseRecord>, RouterError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT provider_id, info, signature, lease_id, expires_at_ms FROM leases")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, info, signature, lease_id, exp) = row?;
            out.push(LeaseRecord {
                provider_id: id32("lease provider id", id)?,
                info,
                signature,
                lease_id: lease_id
                    .try_into()
                    .map_err(|_| corrupt("lease id", "not 16 bytes"))?,
                expires_at_ms: exp.max(0) as u64,
            });
        }
        Ok(out)
    }

    fn record(
        &self,
        provider_id: &[u8; 32],
        protocol: &ProtocolId,
        kept: bool,
        at_ms: u64,
        receipt: Option<&SignedReceipt>,
    ) -> Result<(), RouterError> {
        self.record_batch(&[LedgerEntry {
            provider_id: *provider_id,
            protocol: *protocol,
            kept,
            at_ms,
            receipt: receipt.cloned(),
        }])
    }

    fn record_batch(&self, entries: &[LedgerEntry]) -> Result<(), RouterError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            // Cached statements: parsing the SQL once per connection, not per row.
            let mut promise = tx.prepare_cached(
                "INSERT INTO promises (provider_id, protocol_id, kept, at_ms) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut receipt_row =
                tx.prepare_cached("INSERT INTO receipts (canonical, signature) VALUES (?1, ?2)")?;
            for e in entries {
                promise.execute(params![
                    &e.provider_id[..],
                    &e.protocol.as_bytes()[..],
                    e.kept,
                    e.at_ms as i64
                ])?;
                if let Some(r) = &e.receipt {
                    let canonical = r
                        .receipt
                        .canonical_bytes()
                        .map_err(|err| corrupt("receipt", err))?;
                    receipt_row.execute(params![canonical, &r.signature[..]])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn tallies(&self) -> Result<Vec<([u8; 32], ProtocolId, Tally)>, RouterError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT provider_id, protocol_id, SUM(kept), SUM(1 - kept) FROM promises
             GROUP BY provider_id, protocol_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (p, proto, kept, broken) = row?;
            out.push((
                id32("ledger provider id", p)?,
                ProtocolId(id32("ledger protocol id", proto)?),
                Tally {
                    kept: kept.max(0) as u64,
                    broken: broken.max(0) as u64,
                },
            ));
        }
        Ok(out)
    }

    fn receipts(&self, after: u64, limit: usize) -> Result<Vec<(u64, SignedReceipt)>, RouterError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT seq, canonical, signature FROM receipts WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after as i64, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, canonical, sig) = row?;
            let receipt =
                Receipt::from_canonical_bytes(&canonical).map_err(|e| corrupt("receipt", e))?;
            let signature = sig
                .try_into()
                .map_err(|_| corrupt("receipt signature", "not 64 bytes"))?;
            out.push((seq.max(0) as u64, SignedReceipt { receipt, signature }));
        }
        Ok(out)
    }
}

impl SqliteStore {
    /// Whether a lease exists (used by tests and diagnostics).
    pub fn has_lease(&self, provider_id: &[u8; 32]) -> Result<bool, RouterError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM leases WHERE provider_id = ?1",
                params![&provider_id[..]],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = [1u8; 32];
        let proto = ProtocolId::from_name("veilgrid/echo/v1");
        {
            let s = SqliteStore::open(dir.path()).unwrap();
            for kept in [true, true, false] {
                s.record(&p, &proto, kept, 1, None).unwrap();
            }
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        let t = s.tallies().unwrap();
        assert_eq!(t, vec![(p, proto, Tally { kept: 2, broken: 1 })]);
        assert!((t[0].2.reputation() - 0.6).abs() < 1e-12);
    }

    #[test]
    fn leases_round_trip() {
        let s = SqliteStore::in_memory().unwrap();
        let l = LeaseRecord {
            provider_id: [2; 32],
            info: vec![1, 2, 3],
            signature: vec![4; 64],
            lease_id: [9; 16],
            expires_at_ms: 42,
        };
        s.put_lease(&l).unwrap();
        s.extend_lease(&l.provider_id, 99).unwrap();
        let got = s.leases().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].expires_at_ms, 99);
        s.remove_lease(&l.provider_id).unwrap();
        assert!(!s.has_lease(&l.provider_id).unwrap());
    }

    #[test]
    fn reputation_formula() {
        assert_eq!(Tally::default().reputation(), 0.5);
        assert_eq!(Tally { kept: 8, broken: 0 }.reputation(), 0.9);
    }
}
