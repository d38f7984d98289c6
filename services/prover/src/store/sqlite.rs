//! The embedded store: SQLite (WAL), `log.sqlite3` under the data directory.
//!
//! Tables: `entries(idx, data)` (the log entries, append-only), `checkpoints(seq,
//! size, note)` (every checkpoint the log signed), `sources(source, last_seq)`
//! (how far each router's receipts were appended) and `proofs(id, response)`
//! (the Groth16 proofs this prover produced).

use std::{cell::Cell, path::Path};

use rusqlite::{Connection, OptionalExtension, params};
use veilgrid_zk::{
    Error as ZkError,
    log::{EntryVisitor, LogStore},
};

use super::ProverStore;
use crate::ProverError;

const MIGRATIONS: &[&str] = &[r"
    CREATE TABLE entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);
    CREATE TABLE checkpoints (seq INTEGER PRIMARY KEY, size INTEGER NOT NULL, note TEXT NOT NULL);
    CREATE INDEX checkpoints_size ON checkpoints (size);
    CREATE TABLE sources (source TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
    CREATE TABLE proofs (id INTEGER PRIMARY KEY AUTOINCREMENT, response BLOB NOT NULL);
"];

/// File name of the log database inside the prover's data directory.
pub const DB_FILE: &str = "log.sqlite3";

/// The SQLite store of the transparency log (and of the prover's other records).
#[derive(Debug)]
pub struct SqliteLogStore {
    conn: Connection,
    /// `PRAGMA data_version` when last looked at: it changes only when another
    /// connection (or process) commits to the database.
    data_version: Cell<i64>,
}

fn store_err(e: rusqlite::Error) -> ZkError {
    ZkError::Store(e.to_string())
}

fn idx(i: u64) -> Result<i64, ZkError> {
    i64::try_from(i).map_err(|_| ZkError::Store(format!("index {i} out of range")))
}

impl SqliteLogStore {
    /// Open (creating) `<dir>/log.sqlite3`.
    pub fn open(dir: &Path) -> Result<Self, ProverError> {
        std::fs::create_dir_all(dir).map_err(|source| ProverError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        Self::from_conn(Connection::open(dir.join(DB_FILE))?)
    }

    /// A store in memory (lost on exit).
    pub fn in_memory() -> Result<Self, ProverError> {
        Self::from_conn(Connection::open_in_memory()?)
    }

    fn from_conn(mut conn: Connection) -> Result<Self, ProverError> {
        veilgrid_kit::sqlite::prepare(&mut conn, MIGRATIONS)?;
        let data_version = conn.pragma_query_value(None, "data_version", |r| r.get(0))?;
        Ok(Self {
            conn,
            data_version: Cell::new(data_version),
        })
    }
}

impl ProverStore for SqliteLogStore {
    /// Whether another connection (or process) wrote to the database since we last looked.
    fn written_by_others(&self) -> Result<bool, ProverError> {
        let v: i64 = self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?;
        Ok(self.data_version.replace(v) != v)
    }

    /// Start a transaction (appends of one batch, the source cursor and the checkpoint commit together).
    fn begin(&self) -> Result<(), ProverError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    /// Commit the transaction started by [`begin`](Self::begin).
    fn commit(&self) -> Result<(), ProverError> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// Roll back the transaction started by [`begin`](Self::begin).
    fn rollback(&self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }

    /// The last sequence number appended from `source` (0 = none).
    fn source_seq(&self, source: &str) -> Result<u64, ProverError> {
        let v: Option<i64> = self
            .conn
            .query_row(
                "SELECT last_seq FROM sources WHERE source = ?1",
                params![source],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.unwrap_or(0).max(0) as u64)
    }

    /// Record that `source`'s receipts up to `seq` are appended.
    fn set_source_seq(&self, source: &str, seq: u64) -> Result<(), ProverError> {
        self.conn.execute(
            "INSERT INTO sources (source, last_seq) VALUES (?1, ?2)
             ON CONFLICT(source) DO UPDATE SET last_seq = excluded.last_seq",
            params![source, seq as i64],
        )?;
        Ok(())
    }

    /// The stored checkpoint note of exactly `size` entries (the latest such), if any.
    fn checkpoint_of_size(&self, size: u64) -> Result<Option<String>, ProverError> {
        Ok(self
            .conn
            .query_row(
                "SELECT note FROM checkpoints WHERE size = ?1 ORDER BY seq DESC LIMIT 1",
                params![size as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The oldest stored checkpoint note, if any.
    fn oldest_checkpoint(&self) -> Result<Option<String>, ProverError> {
        Ok(self
            .conn
            .query_row(
                "SELECT note FROM checkpoints ORDER BY seq LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Keep a proof (the encoded `ProveResponse`); returns its id.
    fn add_proof(&self, response: &[u8]) -> Result<u64, ProverError> {
        self.conn.execute(
            "INSERT INTO proofs (response) VALUES (?1)",
            params![response],
        )?;
        Ok(self.conn.last_insert_rowid().max(0) as u64)
    }

    /// Proofs with id > `after`, at most `limit`.
    fn proofs(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, ProverError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, response FROM proofs WHERE id > ?1 ORDER BY id LIMIT ?2")?;
        let rows = st.query_map(params![after as i64, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, Vec<u8>>(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl LogStore for SqliteLogStore {
    fn append(&mut self, entry: &[u8]) -> Result<(), ZkError> {
        let next = idx(self.len()?)?;
        self.conn
            .prepare_cached("INSERT INTO entries (idx, data) VALUES (?1, ?2)")
            .and_then(|mut st| st.execute(params![next, entry]))
            .map_err(store_err)?;
        Ok(())
    }

    fn get(&self, index: u64) -> Result<Vec<u8>, ZkError> {
        self.conn
            .prepare_cached("SELECT data FROM entries WHERE idx = ?1")
            .and_then(|mut st| {
                st.query_row(params![idx(index).unwrap_or(-1)], |r| r.get(0))
                    .optional()
            })
            .map_err(store_err)?
            .ok_or(ZkError::IndexOutOfRange {
                index,
                size: self.len().unwrap_or(0),
            })
    }

    fn len(&self) -> Result<u64, ZkError> {
        // Entries are dense from 0: one past the largest index is the length (an
        // O(log n) lookup). A removed row in the middle shows up as a missing index
        // when the log rehashes; a removed last row as a shorter store.
        let n: i64 = self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(store_err)?;
        Ok(n.max(0) as u64)
    }

    fn append_checkpoint(&mut self, note: &str) -> Result<(), ZkError> {
        let size = veilgrid_zk::note::SignedNote::parse(note.as_bytes())
            .and_then(|n| veilgrid_zk::note::Checkpoint::from_note_text(n.text()))?
            .size;
        self.conn
            .execute(
                "INSERT INTO checkpoints (size, note) VALUES (?1, ?2)",
                params![idx(size)?, note],
            )
            .map_err(store_err)?;
        Ok(())
    }

    fn checkpoint_count(&self) -> Result<u64, ZkError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM checkpoints", [], |r| r.get(0))
            .map_err(store_err)?;
        Ok(n.max(0) as u64)
    }

    fn checkpoint(&self, i: u64) -> Result<String, ZkError> {
        self.conn
            .query_row(
                "SELECT note FROM checkpoints ORDER BY seq LIMIT 1 OFFSET ?1",
                params![idx(i)?],
                |r| r.get(0),
            )
            .optional()
            .map_err(store_err)?
            .ok_or_else(|| ZkError::Store(format!("no stored checkpoint #{i}")))
    }

    fn scan(&self, from: u64, to: u64, visit: &mut EntryVisitor<'_>) -> Result<(), ZkError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT idx, data FROM entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
            )
            .map_err(store_err)?;
        let mut rows = st.query(params![idx(from)?, idx(to)?]).map_err(store_err)?;
        let mut expected = from;
        while let Some(row) = rows.next().map_err(store_err)? {
            let i: i64 = row.get(0).map_err(store_err)?;
            if i != idx(expected)? {
                return Err(ZkError::StoreTruncated {
                    stored: expected,
                    checkpoint: to,
                });
            }
            let data = row.get_ref(1).map_err(store_err)?;
            let bytes = data
                .as_blob()
                .map_err(|e| ZkError::Store(format!("entry {i}: {e}")))?;
            visit(expected, bytes)?;
            expected += 1;
        }
        if expected != to {
            return Err(ZkError::StoreTruncated {
                stored: expected,
                checkpoint: to,
            });
        }
        Ok(())
    }
}
