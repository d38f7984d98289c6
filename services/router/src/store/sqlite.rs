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
const MIGRATIONS: &[&str] = &[
    r"
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
",
    r"
    -- 2: the ledger's per-row cost. Tallies are kept in their own table, updated
    -- once per provider and protocol per group commit, instead of summed through an
    -- index on every promise row; the two logs drop AUTOINCREMENT (its
    -- sqlite_sequence row was updated on every insert). Rows are never deleted, so
    -- `seq` stays increasing without it; existing `seq` values are kept (the
    -- receipt push to the audit log resumes after one).
    CREATE TABLE tallies (
        provider_id BLOB NOT NULL,
        protocol_id BLOB NOT NULL,
        kept INTEGER NOT NULL,
        broken INTEGER NOT NULL,
        PRIMARY KEY (provider_id, protocol_id)
    ) WITHOUT ROWID;
    INSERT INTO tallies (provider_id, protocol_id, kept, broken)
        SELECT provider_id, protocol_id, SUM(kept), SUM(1 - kept) FROM promises
        GROUP BY provider_id, protocol_id;
    CREATE TABLE promises_log (
        seq INTEGER PRIMARY KEY,
        provider_id BLOB NOT NULL,
        protocol_id BLOB NOT NULL,
        kept INTEGER NOT NULL,
        at_ms INTEGER NOT NULL
    );
    INSERT INTO promises_log (seq, provider_id, protocol_id, kept, at_ms)
        SELECT seq, provider_id, protocol_id, kept, at_ms FROM promises;
    DROP TABLE promises;
    ALTER TABLE promises_log RENAME TO promises;
    CREATE TABLE receipts_log (
        seq INTEGER PRIMARY KEY,
        canonical BLOB NOT NULL,
        signature BLOB NOT NULL
    );
    INSERT INTO receipts_log (seq, canonical, signature)
        SELECT seq, canonical, signature FROM receipts;
    DROP TABLE receipts;
    ALTER TABLE receipts_log RENAME TO receipts;
",
];

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
            let mut tally = tx.prepare_cached(
                "INSERT INTO tallies (provider_id, protocol_id, kept, broken) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (provider_id, protocol_id)
                 DO UPDATE SET kept = kept + excluded.kept, broken = broken + excluded.broken",
            )?;
            // One tally update per provider and protocol in the batch.
            let mut sums: Vec<(&[u8; 32], &ProtocolId, Tally)> = Vec::new();
            for e in entries {
                let i = match sums
                    .iter()
                    .position(|(p, q, _)| *p == &e.provider_id && *q == &e.protocol)
                {
                    Some(i) => i,
                    None => {
                        sums.push((&e.provider_id, &e.protocol, Tally::default()));
                        sums.len() - 1
                    }
                };
                sums[i].2.count(e.kept);
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
            for (provider, protocol, t) in sums {
                tally.execute(params![
                    &provider[..],
                    &protocol.as_bytes()[..],
                    t.kept as i64,
                    t.broken as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn tallies(&self) -> Result<Vec<([u8; 32], ProtocolId, Tally)>, RouterError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT provider_id, protocol_id, kept, broken FROM tallies")?;
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
    fn tallies_follow_the_promise_log_across_batches() {
        let s = SqliteStore::in_memory().unwrap();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let (x, y) = (ProtocolId::from_name("x/v1"), ProtocolId::from_name("y/v1"));
        let entry = |provider_id, protocol, kept| LedgerEntry {
            provider_id,
            protocol,
            kept,
            at_ms: 1,
            receipt: None,
        };
        s.record_batch(&[entry(a, x, true), entry(b, x, false), entry(a, x, true)])
            .unwrap();
        s.record_batch(&[entry(a, y, false), entry(a, x, false)])
            .unwrap();
        s.record_batch(&[]).unwrap();
        let mut got = s.tallies().unwrap();
        got.sort_by_key(|(p, q, _)| (*p, q.0));
        let mut want = vec![
            (a, x, Tally { kept: 2, broken: 1 }),
            (a, y, Tally { kept: 0, broken: 1 }),
            (b, x, Tally { kept: 0, broken: 1 }),
        ];
        want.sort_by_key(|(p, q, _)| (*p, q.0));
        assert_eq!(got, want);
        // The log holds every promise; summing it gives the same tallies.
        let logged: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM promises", [], |r| r.get(0))
            .unwrap();
        assert_eq!(logged, 5);
        let mut summed: Vec<([u8; 32], [u8; 32], Tally)> = {
            let c = s.conn();
            let mut st = c
                .prepare(
                    "SELECT provider_id, protocol_id, SUM(kept), SUM(1 - kept) FROM promises
                     GROUP BY provider_id, protocol_id",
                )
                .unwrap();
            st.query_map([], |r| {
                Ok((
                    id32("p", r.get(0)?).unwrap(),
                    id32("q", r.get(1)?).unwrap(),
                    Tally {
                        kept: r.get::<_, i64>(2)? as u64,
                        broken: r.get::<_, i64>(3)? as u64,
                    },
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        summed.sort_by_key(|(p, q, _)| (*p, *q));
        let want: Vec<_> = want.into_iter().map(|(p, q, t)| (p, q.0, t)).collect();
        assert_eq!(summed, want);
    }

    #[test]
    fn migration_2_keeps_tallies_and_receipt_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("router.sqlite3");
        let p = [5u8; 32];
        let proto = ProtocolId::from_name("veilgrid/echo/v1");
        {
            // A store written by the first schema.
            let mut c = Connection::open(&path).unwrap();
            veilgrid_kit::sqlite::prepare(&mut c, &MIGRATIONS[..1]).unwrap();
            for kept in [true, false, true, true] {
                c.execute(
                    "INSERT INTO promises (provider_id, protocol_id, kept, at_ms) VALUES (?1, ?2, ?3, 7)",
                    params![&p[..], &proto.as_bytes()[..], kept],
                )
                .unwrap();
            }
            for i in 0..3u8 {
                c.execute(
                    "INSERT INTO receipts (canonical, signature) VALUES (?1, ?2)",
                    params![vec![i; 10], vec![i; 64]],
                )
                .unwrap();
            }
            // Receipts 1..=3, then a gap (as if pushed and trimmed elsewhere).
            c.execute("UPDATE receipts SET seq = 10 WHERE seq = 3", [])
                .unwrap();
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(
            s.tallies().unwrap(),
            vec![(p, proto, Tally { kept: 3, broken: 1 })]
        );
        let seqs: Vec<i64> = {
            let c = s.conn();
            let mut st = c.prepare("SELECT seq FROM receipts ORDER BY seq").unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(seqs, vec![1, 2, 10]);
        // New rows continue after the highest sequence number.
        s.record_batch(&[LedgerEntry {
            provider_id: p,
            protocol: proto,
            kept: false,
            at_ms: 8,
            receipt: None,
        }])
        .unwrap();
        s.conn()
            .execute(
                "INSERT INTO receipts (canonical, signature) VALUES (x'00', x'00')",
                [],
            )
            .unwrap();
        let last: i64 = s
            .conn()
            .query_row("SELECT MAX(seq) FROM receipts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(last, 11);
        assert_eq!(
            s.tallies().unwrap(),
            vec![(p, proto, Tally { kept: 3, broken: 2 })]
        );
        let version: i64 = s
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[test]
    fn reputation_formula() {
        assert_eq!(Tally::default().reputation(), 0.5);
        assert_eq!(Tally { kept: 8, broken: 0 }.reputation(), 0.9);
    }
}
