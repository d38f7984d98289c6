//! The shared store: PostgreSQL (tables `prover_*`). Connections, migrations (component
//! `prover`) and error mapping are `veilgrid_kit::pg`'s.
//!
//! A batch ([`ProverStore::begin`] … [`ProverStore::commit`]) is kept in memory and written in
//! one transaction at commit (reads during the batch see it), so no transaction spans several
//! calls on a pooled connection. Every statement that writes `prover_entries` or
//! `prover_checkpoints`, this store's or anyone's, bumps `prover_writes.version` (statement
//! triggers, TRUNCATE included); the store remembers the version its own last write left, so
//! [`ProverStore::written_by_others`] sees any other writer, as SQLite's `data_version` does.
//! Someone able to drop the triggers escapes that check while the prover runs, not the full
//! rehash at its next start.

use std::cell::{Cell, RefCell};

use veilgrid_kit::pg::{Pool, Transaction, big, pg, unbig};
use veilgrid_zk::{
    Error as ZkError,
    log::{EntryVisitor, LogStore},
};

use super::ProverStore;
use crate::ProverError;

/// Versioned schema of the `prover` component; append, never edit a released entry.
pub const MIGRATIONS: &[&str] = &[r"
    CREATE TABLE prover_entries (idx BIGINT PRIMARY KEY, data BYTEA NOT NULL);
    CREATE TABLE prover_checkpoints (
        seq BIGSERIAL PRIMARY KEY,
        size BIGINT NOT NULL,
        note TEXT NOT NULL
    );
    CREATE INDEX prover_checkpoints_size ON prover_checkpoints (size);
    CREATE TABLE prover_sources (source TEXT PRIMARY KEY, last_seq BIGINT NOT NULL);
    CREATE TABLE prover_proofs (id BIGSERIAL PRIMARY KEY, response BYTEA NOT NULL);
    CREATE TABLE prover_writes (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        version BIGINT NOT NULL
    );
    INSERT INTO prover_writes (one, version) VALUES (TRUE, 0);
    CREATE FUNCTION prover_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE prover_writes SET version = version + 1;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER prover_entries_written
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON prover_entries
        FOR EACH STATEMENT EXECUTE FUNCTION prover_bump();
    CREATE TRIGGER prover_checkpoints_written
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON prover_checkpoints
        FOR EACH STATEMENT EXECUTE FUNCTION prover_bump();
"];

/// Entries read per query while scanning.
const SCAN_PAGE: i64 = 4096;

/// A batch not yet committed.
#[derive(Default)]
struct Pending {
    /// Entries and checkpoints in the database when the batch began.
    base_len: u64,
    base_checkpoints: u64,
    entries: Vec<Vec<u8>>,
    /// (size, note)
    checkpoints: Vec<(i64, String)>,
    sources: Vec<(String, u64)>,
}

/// PostgreSQL-backed [`ProverStore`].
pub struct PostgresLogStore {
    pool: Pool,
    /// `prover_writes.version` as this store's last write (or look) left it.
    seen: Cell<i64>,
    pending: RefCell<Option<Pending>>,
}

impl std::fmt::Debug for PostgresLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLogStore").finish_non_exhaustive()
    }
}

fn zk(e: ProverError) -> ZkError {
    ZkError::Store(e.to_string())
}

fn version(tx: &mut Transaction<'_>) -> Result<i64, ProverError> {
    let rows = tx
        .query("SELECT version FROM prover_writes", &[])
        .map_err(pg("reading the write counter"))?;
    match rows.first() {
        Some(r) => Ok(r.try_get(0).map_err(pg("reading the write counter"))?),
        None => Err(ProverError::Log(ZkError::Store(
            "prover_writes was emptied: the store was altered".into(),
        ))),
    }
}

impl PostgresLogStore {
    /// Connect to `url` and run the prover's pending migrations.
    pub fn connect(url: &str) -> Result<Self, ProverError> {
        let pool = Pool::connect(url, "prover", MIGRATIONS)?;
        let seen = pool.run(|c| {
            let mut tx = c.transaction().map_err(pg("starting a read"))?;
            version(&mut tx)
        })?;
        Ok(Self {
            pool,
            seen: Cell::new(seen),
            pending: RefCell::new(None),
        })
    }

    /// Run `f` in one transaction and remember the write counter it leaves.
    fn write(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<(), ProverError> + Send + 'static,
    ) -> Result<(), ProverError> {
        let v = self.pool.run(move |c| {
            let mut tx = c.transaction().map_err(pg("starting a log write"))?;
            f(&mut tx)?;
            // Our own statement triggers fired above and hold the counter's row lock until
            // the commit: the value read here is ours, and any later writer bumps it.
            let v = version(&mut tx)?;
            tx.commit().map_err(pg("committing a log write"))?;
            Ok::<_, ProverError>(v)
        })?;
        self.seen.set(v);
        Ok(())
    }

    fn db_len(&self) -> Result<u64, ProverError> {
        self.pool.run(|c| {
            let n: i64 = c
                .query_one("SELECT COALESCE(MAX(idx) + 1, 0) FROM prover_entries", &[])
                .map_err(pg("counting entries"))?
                .try_get(0)
                .map_err(pg("counting entries"))?;
            Ok(unbig(n))
        })
    }

    fn db_checkpoints(&self) -> Result<u64, ProverError> {
        self.pool.run(|c| {
            let n: i64 = c
                .query_one("SELECT COUNT(*) FROM prover_checkpoints", &[])
                .map_err(pg("counting checkpoints"))?
                .try_get(0)
                .map_err(pg("counting checkpoints"))?;
            Ok(unbig(n))
        })
    }

    fn one_note(&self, sql: &'static str, arg: Option<i64>) -> Result<Option<String>, ProverError> {
        self.pool.run(move |c| {
            let rows = match arg {
                Some(a) => c.query(sql, &[&a]),
                None => c.query(sql, &[]),
            }
            .map_err(pg("reading a checkpoint"))?;
            Ok(rows
                .first()
                .map(|r| r.try_get::<_, String>(0))
                .transpose()
                .map_err(pg("reading a checkpoint"))?)
        })
    }
}

impl ProverStore for PostgresLogStore {
    fn written_by_others(&self) -> Result<bool, ProverError> {
        let v = self.pool.run(|c| {
            let mut tx = c.transaction().map_err(pg("starting a read"))?;
            version(&mut tx)
        })?;
        Ok(self.seen.replace(v) != v)
    }

    fn begin(&self) -> Result<(), ProverError> {
        let p = Pending {
            base_len: self.db_len()?,
            base_checkpoints: self.db_checkpoints()?,
            ..Pending::default()
        };
        *self.pending.borrow_mut() = Some(p);
        Ok(())
    }

    fn commit(&self) -> Result<(), ProverError> {
        let Some(p) = self.pending.borrow_mut().take() else {
            return Ok(());
        };
        self.write(move |tx| {
            let ins = tx
                .prepare("INSERT INTO prover_entries (idx, data) VALUES ($1, $2)")
                .map_err(pg("appending entries"))?;
            for (i, e) in p.entries.iter().enumerate() {
                // A row another writer added at this index makes the batch fail here.
                tx.execute(&ins, &[&big(p.base_len + i as u64), e])
                    .map_err(pg("appending an entry"))?;
            }
            for (size, note) in &p.checkpoints {
                tx.execute(
                    "INSERT INTO prover_checkpoints (size, note) VALUES ($1, $2)",
                    &[size, note],
                )
                .map_err(pg("storing a checkpoint"))?;
            }
            for (source, seq) in &p.sources {
                tx.execute(
                    "INSERT INTO prover_sources (source, last_seq) VALUES ($1, $2)
                     ON CONFLICT (source) DO UPDATE SET last_seq = EXCLUDED.last_seq",
                    &[source, &big(*seq)],
                )
                .map_err(pg("storing a source cursor"))?;
            }
            Ok(())
        })
    }

    fn rollback(&self) {
        *self.pending.borrow_mut() = None;
    }

    fn source_seq(&self, source: &str) -> Result<u64, ProverError> {
        if let Some(p) = self.pending.borrow().as_ref()
            && let Some((_, seq)) = p.sources.iter().rev().find(|(s, _)| s == source)
        {
            return Ok(*seq);
        }
        let source = source.to_owned();
        self.pool.run(move |c| {
            let rows = c
                .query(
                    "SELECT last_seq FROM prover_sources WHERE source = $1",
                    &[&source],
                )
                .map_err(pg("reading a source cursor"))?;
            let v: Option<i64> = rows
                .first()
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(pg("reading a source cursor"))?;
            Ok(unbig(v.unwrap_or(0)))
        })
    }

    fn set_source_seq(&self, source: &str, seq: u64) -> Result<(), ProverError> {
        if let Some(p) = self.pending.borrow_mut().as_mut() {
            p.sources.push((source.to_owned(), seq));
            return Ok(());
        }
        let source = source.to_owned();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO prover_sources (source, last_seq) VALUES ($1, $2)
                 ON CONFLICT (source) DO UPDATE SET last_seq = EXCLUDED.last_seq",
                &[&source, &big(seq)],
            )
            .map_err(pg("storing a source cursor"))?;
            Ok(())
        })
    }

    fn checkpoint_of_size(&self, size: u64) -> Result<Option<String>, ProverError> {
        if let Some(p) = self.pending.borrow().as_ref()
            && let Some((_, note)) = p.checkpoints.iter().rev().find(|(s, _)| *s == big(size))
        {
            return Ok(Some(note.clone()));
        }
        self.one_note(
            "SELECT note FROM prover_checkpoints WHERE size = $1 ORDER BY seq DESC LIMIT 1",
            Some(big(size)),
        )
    }

    fn oldest_checkpoint(&self) -> Result<Option<String>, ProverError> {
        match self.one_note(
            "SELECT note FROM prover_checkpoints ORDER BY seq LIMIT 1",
            None,
        )? {
            Some(n) => Ok(Some(n)),
            None => Ok(self
                .pending
                .borrow()
                .as_ref()
                .and_then(|p| p.checkpoints.first().map(|(_, n)| n.clone()))),
        }
    }

    fn add_proof(&self, response: &[u8]) -> Result<u64, ProverError> {
        let response = response.to_vec();
        self.pool.run(move |c| {
            let id: i64 = c
                .query_one(
                    "INSERT INTO prover_proofs (response) VALUES ($1) RETURNING id",
                    &[&response],
                )
                .map_err(pg("storing a proof"))?
                .try_get(0)
                .map_err(pg("storing a proof"))?;
            Ok(unbig(id))
        })
    }

    fn proofs(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, ProverError> {
        let (after, limit) = (big(after), big(limit as u64));
        self.pool.run(move |c| {
            let rows = c
                .query(
                    "SELECT id, response FROM prover_proofs WHERE id > $1 ORDER BY id LIMIT $2",
                    &[&after, &limit],
                )
                .map_err(pg("reading proofs"))?;
            let dec = pg("decoding a proof");
            rows.iter()
                .map(|r| {
                    let id: i64 = r.try_get(0).map_err(&dec)?;
                    Ok((unbig(id), r.try_get(1).map_err(&dec)?))
                })
                .collect()
        })
    }
}

impl LogStore for PostgresLogStore {
    fn append(&mut self, entry: &[u8]) -> Result<(), ZkError> {
        if let Some(p) = self.pending.get_mut().as_mut() {
            p.entries.push(entry.to_vec());
            return Ok(());
        }
        let entry = entry.to_vec();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO prover_entries (idx, data)
                 SELECT COALESCE(MAX(idx) + 1, 0), $1 FROM prover_entries",
                &[&entry],
            )
            .map_err(pg("appending an entry"))?;
            Ok(())
        })
        .map_err(zk)
    }

    fn get(&self, index: u64) -> Result<Vec<u8>, ZkError> {
        if let Some(p) = self.pending.borrow().as_ref()
            && index >= p.base_len
        {
            let i = index - p.base_len;
            return p
                .entries
                .get(usize::try_from(i).unwrap_or(usize::MAX))
                .cloned()
                .ok_or(ZkError::IndexOutOfRange {
                    index,
                    size: p.base_len + p.entries.len() as u64,
                });
        }
        let idx = big(index);
        let found = self
            .pool
            .run(move |c| {
                let rows = c
                    .query("SELECT data FROM prover_entries WHERE idx = $1", &[&idx])
                    .map_err(pg("reading an entry"))?;
                Ok::<_, ProverError>(
                    rows.first()
                        .map(|r| r.try_get::<_, Vec<u8>>(0))
                        .transpose()
                        .map_err(pg("reading an entry"))?,
                )
            })
            .map_err(zk)?;
        found.ok_or_else(|| ZkError::IndexOutOfRange {
            index,
            size: self.len().unwrap_or(0),
        })
    }

    fn len(&self) -> Result<u64, ZkError> {
        // Entries are dense from 0: one past the largest index is the length. A removed
        // row in the middle shows up as a missing index when the log rehashes.
        if let Some(p) = self.pending.borrow().as_ref() {
            return Ok(p.base_len + p.entries.len() as u64);
        }
        self.db_len().map_err(zk)
    }

    fn append_checkpoint(&mut self, note: &str) -> Result<(), ZkError> {
        let size = veilgrid_zk::note::SignedNote::parse(note.as_bytes())
            .and_then(|n| veilgrid_zk::note::Checkpoint::from_note_text(n.text()))?
            .size;
        let size = i64::try_from(size)
            .map_err(|_| ZkError::Store(format!("checkpoint size {size} out of range")))?;
        if let Some(p) = self.pending.get_mut().as_mut() {
            p.checkpoints.push((size, note.to_owned()));
            return Ok(());
        }
        let note = note.to_owned();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO prover_checkpoints (size, note) VALUES ($1, $2)",
                &[&size, &note],
            )
            .map_err(pg("storing a checkpoint"))?;
            Ok(())
        })
        .map_err(zk)
    }

    fn checkpoint_count(&self) -> Result<u64, ZkError> {
        if let Some(p) = self.pending.borrow().as_ref() {
            return Ok(p.base_checkpoints + p.checkpoints.len() as u64);
        }
        self.db_checkpoints().map_err(zk)
    }

    fn checkpoint(&self, i: u64) -> Result<String, ZkError> {
        if let Some(p) = self.pending.borrow().as_ref()
            && i >= p.base_checkpoints
        {
            return usize::try_from(i - p.base_checkpoints)
                .ok()
                .and_then(|k| p.checkpoints.get(k))
                .map(|(_, n)| n.clone())
                .ok_or_else(|| ZkError::Store(format!("no stored checkpoint #{i}")));
        }
        self.one_note(
            "SELECT note FROM prover_checkpoints ORDER BY seq LIMIT 1 OFFSET $1",
            Some(big(i)),
        )
        .map_err(zk)?
        .ok_or_else(|| ZkError::Store(format!("no stored checkpoint #{i}")))
    }

    fn scan(&self, from: u64, to: u64, visit: &mut EntryVisitor<'_>) -> Result<(), ZkError> {
        let pending = self.pending.borrow();
        let db_to = match pending.as_ref() {
            Some(p) => to.min(p.base_len),
            None => to,
        };
        let mut expected = from;
        while expected < db_to {
            let (lo, hi) = (big(expected), big(db_to));
            let rows = self
                .pool
                .run(move |c| {
                    c.query(
                        "SELECT idx, data FROM prover_entries WHERE idx >= $1 AND idx < $2
                         ORDER BY idx LIMIT $3",
                        &[&lo, &hi, &SCAN_PAGE],
                    )
                    .map_err(pg("scanning entries"))
                    .map_err(ProverError::from)
                })
                .map_err(zk)?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let i: i64 = r
                    .try_get(0)
                    .map_err(|e| zk(pg("scanning entries")(e).into()))?;
                if i != big(expected) {
                    return Err(ZkError::StoreTruncated {
                        stored: expected,
                        checkpoint: to,
                    });
                }
                let data: &[u8] = r
                    .try_get(1)
                    .map_err(|e| ZkError::Store(format!("entry {i}: {e}")))?;
                visit(expected, data)?;
                expected += 1;
            }
        }
        if expected != db_to {
            return Err(ZkError::StoreTruncated {
                stored: expected,
                checkpoint: to,
            });
        }
        if let Some(p) = pending.as_ref() {
            while expected < to {
                let e = usize::try_from(expected - p.base_len)
                    .ok()
                    .and_then(|k| p.entries.get(k))
                    .ok_or(ZkError::StoreTruncated {
                        stored: expected,
                        checkpoint: to,
                    })?;
                visit(expected, e)?;
                expected += 1;
            }
        }
        Ok(())
    }
}
