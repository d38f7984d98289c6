//! Round state in SQLite (WAL) under the data directory: the public round description, the
//! server's snapshot (running sum of masked vectors, accepted clients, member answers), the sealed
//! shares to hand to each member, and the result. Nothing stored is secret: shares stay sealed to
//! the members' keys.

use std::{path::Path, sync::Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use crate::AggError;

const MIGRATIONS: &[&str] = &[r"
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
"];

/// A round's row.
#[derive(Debug, Clone)]
pub(crate) struct RoundRow {
    pub(crate) id: [u8; 32],
    pub(crate) round: Vec<u8>,
    pub(crate) deadline_ms: u64,
    pub(crate) state: String,
    pub(crate) snapshot: Vec<u8>,
    pub(crate) submitted: u32,
    pub(crate) result: Option<Vec<u8>>,
    pub(crate) error: Option<String>,
}

/// The SQLite store.
pub(crate) struct Store {
    pub(crate) conn: Mutex<Connection>,
}

impl Store {
    /// Open (creating and migrating) `aggregator.sqlite3` in `dir`, or an in-memory store.
    pub(crate) fn open(dir: Option<&Path>) -> Result<Self, AggError> {
        let conn = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| AggError::DataDir {
                    path: dir.display().to_string(),
                    source,
                })?;
                Connection::open(dir.join("aggregator.sqlite3"))?
            }
            None => Connection::open_in_memory()?,
        };
        let mut conn = conn;
        veilgrid_kit::sqlite::prepare(&mut conn, MIGRATIONS)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Vec<u8>, RoundRowRest)> {
    Ok((
        r.get(0)?,
        (
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ),
    ))
}

type RoundRowRest = (
    Vec<u8>,
    i64,
    String,
    Vec<u8>,
    i64,
    Option<Vec<u8>>,
    Option<String>,
);

fn to_row((id, rest): (Vec<u8>, RoundRowRest)) -> Result<RoundRow, AggError> {
    let (round, deadline, state, snapshot, submitted, result, error) = rest;
    Ok(RoundRow {
        id: id
            .try_into()
            .map_err(|_| AggError::CorruptStore("round id"))?,
        round,
        deadline_ms: deadline.max(0) as u64,
        state,
        snapshot,
        submitted: submitted.clamp(0, i64::from(u32::MAX)) as u32,
        result,
        error,
    })
}

const SELECT: &str =
    "SELECT id, round, deadline_ms, state, snapshot, submitted, result, error FROM rounds";

pub(crate) fn insert(c: &Connection, r: &RoundRow) -> Result<(), AggError> {
    c.execute(
        "INSERT INTO rounds (id, round, deadline_ms, state, snapshot, submitted, result, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            &r.id[..],
            r.round,
            r.deadline_ms as i64,
            r.state,
            r.snapshot,
            i64::from(r.submitted),
            r.result,
            r.error
        ],
    )?;
    Ok(())
}

pub(crate) fn update(c: &Connection, r: &RoundRow) -> Result<(), AggError> {
    c.execute(
        "UPDATE rounds SET state = ?2, snapshot = ?3, submitted = ?4, result = ?5, error = ?6
         WHERE id = ?1",
        params![
            &r.id[..],
            r.state,
            r.snapshot,
            i64::from(r.submitted),
            r.result,
            r.error
        ],
    )?;
    Ok(())
}

pub(crate) fn get(c: &Connection, id: &[u8; 32]) -> Result<Option<RoundRow>, AggError> {
    c.query_row(&format!("{SELECT} WHERE id = ?1"), [&id[..]], row)
        .optional()?
        .map(to_row)
        .transpose()
}

pub(crate) fn in_state(c: &Connection, state: &str) -> Result<Vec<RoundRow>, AggError> {
    let mut st = c.prepare(&format!("{SELECT} WHERE state = ?1"))?;
    let rows = st.query_map([state], row)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(to_row(r?)?);
    }
    Ok(out)
}

pub(crate) fn insert_share(
    c: &Connection,
    round: &[u8; 32],
    client: u64,
    member: u16,
    sealed: &[u8],
) -> Result<(), AggError> {
    c.execute(
        "INSERT INTO shares (round_id, client, member, sealed) VALUES (?1, ?2, ?3, ?4)",
        params![&round[..], client as i64, i64::from(member), sealed],
    )?;
    Ok(())
}

pub(crate) fn shares_for(
    c: &Connection,
    round: &[u8; 32],
    member: u16,
) -> Result<Vec<(u64, Vec<u8>)>, AggError> {
    let mut st = c.prepare(
        "SELECT client, sealed FROM shares WHERE round_id = ?1 AND member = ?2 ORDER BY client",
    )?;
    let rows = st.query_map(params![&round[..], i64::from(member)], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r?);
    }
    Ok(out)
}
