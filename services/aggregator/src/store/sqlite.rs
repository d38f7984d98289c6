//! The embedded store: `aggregator.sqlite3` (WAL) in the data directory.

use std::{path::Path, sync::Mutex};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    RoundRow, RoundStore, RoundTx, Step, StoredShare, blob_to_u64s, round_id, u64s_to_blob,
};
use crate::AggError;

const MIGRATIONS: &[&str] = &[
    r"
    CREATE TABLE rounds (
        id BLOB PRIMARY KEY,
        round BLOB NOT NULL,
        deadline_ms INTEGER NOT NULL,
        state TEXT NOT NULL,
        snapshot BLOB NOT NULL,
        submitted INTEGER NOT NULL,
        result BLOB,
        error TEXT
    );
    CREATE TABLE shares (
        round_id BLOB NOT NULL,
        client INTEGER NOT NULL,
        member INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        PRIMARY KEY (round_id, member, client)
    );
",
    // Signed member reports and answers, member deadline, share check, exclusion.
    r"
    ALTER TABLE rounds ADD COLUMN signers BLOB NOT NULL DEFAULT x'';
    ALTER TABLE rounds ADD COLUMN member_deadline_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rounds ADD COLUMN check_window_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rounds ADD COLUMN check_deadline_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rounds ADD COLUMN excluded BLOB NOT NULL DEFAULT x'';
    CREATE TABLE messages (
        round_id BLOB NOT NULL,
        client INTEGER NOT NULL,
        message BLOB NOT NULL,
        PRIMARY KEY (round_id, client)
    );
    CREATE TABLE checks (
        round_id BLOB NOT NULL,
        member INTEGER NOT NULL,
        bad BLOB NOT NULL,
        signature BLOB NOT NULL,
        PRIMARY KEY (round_id, member)
    );
",
    // Arrival order of the shares within their round, so members can open them as they arrive
    // and ask only for later ones (shares of rounds stored before this all count as first).
    r"
    ALTER TABLE shares ADD COLUMN seq INTEGER NOT NULL DEFAULT 1;
",
];

/// SQLite-backed [`RoundStore`]: one connection, one step at a time.
pub struct SqliteRounds {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteRounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteRounds").finish_non_exhaustive()
    }
}

impl SqliteRounds {
    /// Open (creating and migrating) `aggregator.sqlite3` in `dir`, or an in-memory store.
    pub fn open(dir: Option<&Path>) -> Result<Self, AggError> {
        let mut conn = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| AggError::DataDir {
                    path: dir.display().to_string(),
                    source,
                })?;
                Connection::open(dir.join("aggregator.sqlite3"))?
            }
            None => Connection::open_in_memory()?,
        };
        veilgrid_kit::sqlite::prepare(&mut conn, MIGRATIONS)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }
}

impl RoundStore for SqliteRounds {
    fn atomically(&self, step: Step) -> Result<(), AggError> {
        // A panic while holding the lock cannot leave SQLite inconsistent (the transaction
        // rolls back when dropped), so a poisoned lock is usable.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        step(&mut SqliteTx(&tx))?;
        tx.commit()?;
        Ok(())
    }
}

/// A step's view of the open transaction.
struct SqliteTx<'a>(&'a Connection);

fn nonneg(v: i64) -> u64 {
    v.max(0) as u64
}

type Raw = (RoundRow, Vec<u8>, Vec<u8>);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        RoundRow {
            id: [0; 32],
            round: r.get("round")?,
            deadline_ms: nonneg(r.get("deadline_ms")?),
            state: r.get("state")?,
            snapshot: r.get("snapshot")?,
            submitted: nonneg(r.get("submitted")?).min(u64::from(u32::MAX)) as u32,
            result: r.get("result")?,
            error: r.get("error")?,
            signers: r.get("signers")?,
            member_deadline_ms: nonneg(r.get("member_deadline_ms")?),
            check_window_ms: nonneg(r.get("check_window_ms")?),
            check_deadline_ms: nonneg(r.get("check_deadline_ms")?),
            excluded: Vec::new(),
        },
        r.get("id")?,
        r.get("excluded")?,
    ))
}

fn to_row((mut row, id, excluded): Raw) -> Result<RoundRow, AggError> {
    row.id = round_id(id)?;
    row.excluded = blob_to_u64s(&excluded)?;
    Ok(row)
}

const SELECT: &str = "SELECT id, round, deadline_ms, state, snapshot, submitted, result, error,
     signers, member_deadline_ms, check_window_ms, check_deadline_ms, excluded FROM rounds";

impl RoundTx for SqliteTx<'_> {
    fn insert(&mut self, r: &RoundRow) -> Result<(), AggError> {
        self.0.execute(
            "INSERT INTO rounds (id, round, deadline_ms, state, snapshot, submitted, result, error,
                 signers, member_deadline_ms, check_window_ms, check_deadline_ms, excluded)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                &r.id[..],
                r.round,
                r.deadline_ms as i64,
                r.state,
                r.snapshot,
                i64::from(r.submitted),
                r.result,
                r.error,
                r.signers,
                r.member_deadline_ms as i64,
                r.check_window_ms as i64,
                r.check_deadline_ms as i64,
                u64s_to_blob(&r.excluded),
            ],
        )?;
        Ok(())
    }

    fn update(&mut self, r: &RoundRow) -> Result<(), AggError> {
        self.0.execute(
            "UPDATE rounds SET state = ?2, snapshot = ?3, submitted = ?4, result = ?5, error = ?6,
                 check_deadline_ms = ?7, excluded = ?8
             WHERE id = ?1",
            params![
                &r.id[..],
                r.state,
                r.snapshot,
                i64::from(r.submitted),
                r.result,
                r.error,
                r.check_deadline_ms as i64,
                u64s_to_blob(&r.excluded),
            ],
        )?;
        Ok(())
    }

    fn get(&mut self, id: &[u8; 32]) -> Result<Option<RoundRow>, AggError> {
        self.0
            .query_row(&format!("{SELECT} WHERE id = ?1"), [&id[..]], row)
            .optional()?
            .map(to_row)
            .transpose()
    }

    /// Rows in `state` with an id greater than `after`, by id, at most `limit`.
    fn in_state_after(
        &mut self,
        state: &str,
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<RoundRow>, AggError> {
        let mut st = self.0.prepare(&format!(
            "{SELECT} WHERE state = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ))?;
        let rows = st.query_map(params![state, after, limit as i64], row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(to_row(r?)?);
        }
        Ok(out)
    }

    fn insert_share(
        &mut self,
        round: &[u8; 32],
        client: u64,
        member: u16,
        sealed: &[u8],
        seq: u32,
    ) -> Result<(), AggError> {
        self.0.execute(
            "INSERT INTO shares (round_id, client, member, sealed, seq) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                &round[..],
                client as i64,
                i64::from(member),
                sealed,
                i64::from(seq)
            ],
        )?;
        Ok(())
    }

    /// The sealed shares for `member` that arrived after share `after` (0: all), in arrival order.
    fn shares_for(
        &mut self,
        round: &[u8; 32],
        member: u16,
        after: u64,
    ) -> Result<Vec<StoredShare>, AggError> {
        let mut st = self.0.prepare(
            "SELECT client, sealed, seq FROM shares WHERE round_id = ?1 AND member = ?2 AND seq > ?3
             ORDER BY seq, client",
        )?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let rows = st.query_map(params![&round[..], i64::from(member), after], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, Vec<u8>>(1)?,
                nonneg(r.get::<_, i64>(2)?),
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    fn insert_message(
        &mut self,
        round: &[u8; 32],
        client: u64,
        message: &[u8],
    ) -> Result<(), AggError> {
        self.0.execute(
            "INSERT INTO messages (round_id, client, message) VALUES (?1, ?2, ?3)",
            params![&round[..], client as i64, message],
        )?;
        Ok(())
    }

    fn message(&mut self, round: &[u8; 32], client: u64) -> Result<Option<Vec<u8>>, AggError> {
        Ok(self
            .0
            .query_row(
                "SELECT message FROM messages WHERE round_id = ?1 AND client = ?2",
                params![&round[..], client as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every stored client message of the round, by client.
    fn messages(&mut self, round: &[u8; 32]) -> Result<Vec<Vec<u8>>, AggError> {
        let mut st = self
            .0
            .prepare("SELECT message FROM messages WHERE round_id = ?1 ORDER BY client")?;
        let rows = st.query_map([&round[..]], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    fn delete_messages(&mut self, round: &[u8; 32]) -> Result<(), AggError> {
        self.0
            .execute("DELETE FROM messages WHERE round_id = ?1", [&round[..]])?;
        Ok(())
    }

    fn insert_check(
        &mut self,
        round: &[u8; 32],
        member: u16,
        bad: &[u64],
        signature: &[u8],
    ) -> Result<(), AggError> {
        self.0.execute(
            "INSERT INTO checks (round_id, member, bad, signature) VALUES (?1, ?2, ?3, ?4)",
            params![&round[..], i64::from(member), u64s_to_blob(bad), signature],
        )?;
        Ok(())
    }

    /// The members that reported, each with the clients it reported as bad.
    fn checks(&mut self, round: &[u8; 32]) -> Result<Vec<(u16, Vec<u64>)>, AggError> {
        let mut st = self
            .0
            .prepare("SELECT member, bad FROM checks WHERE round_id = ?1 ORDER BY member")?;
        let rows = st.query_map([&round[..]], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (m, bad) = r?;
            let m = u16::try_from(m).map_err(|_| AggError::CorruptStore("member index"))?;
            out.push((m, blob_to_u64s(&bad)?));
        }
        Ok(out)
    }

    fn active(&mut self) -> Result<Vec<RoundRow>, AggError> {
        let mut st = self.0.prepare(&format!(
            "{SELECT} WHERE state IN ('collecting', 'checking', 'awaiting_members') ORDER BY id"
        ))?;
        let rows = st.query_map([], row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(to_row(r?)?);
        }
        Ok(out)
    }
}
