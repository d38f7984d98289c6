//! Round state in SQLite (WAL) under the data directory: the public round description, the
//! server's snapshot (running sum of masked vectors, accepted clients, member answers), the sealed
//! shares to hand to each member, the members' signed share reports, the client messages while
//! an exclusion may still need them (and, in verifiable rounds, for the audit transcript), and the
//! result. Nothing stored is secret: shares stay sealed to the members' keys.

use std::{path::Path, sync::Mutex};

use rusqlite::{Connection, OptionalExtension, params};

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
    /// The members' Ed25519 keys, 32 bytes each, in committee order.
    pub(crate) signers: Vec<u8>,
    pub(crate) member_deadline_ms: u64,
    pub(crate) check_window_ms: u64,
    /// When the share check ends (0 while collecting).
    pub(crate) check_deadline_ms: u64,
    /// Clients excluded after a bad-share report.
    pub(crate) excluded: Vec<u64>,
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

fn u64s_to_blob(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn blob_to_u64s(b: &[u8]) -> Result<Vec<u64>, AggError> {
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
    row.id = id
        .try_into()
        .map_err(|_| AggError::CorruptStore("round id"))?;
    row.excluded = blob_to_u64s(&excluded)?;
    Ok(row)
}

const SELECT: &str = "SELECT id, round, deadline_ms, state, snapshot, submitted, result, error,
     signers, member_deadline_ms, check_window_ms, check_deadline_ms, excluded FROM rounds";

pub(crate) fn insert(c: &Connection, r: &RoundRow) -> Result<(), AggError> {
    c.execute(
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

pub(crate) fn update(c: &Connection, r: &RoundRow) -> Result<(), AggError> {
    c.execute(
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

/// Rows in `state` with an id greater than `after`, by id, at most `limit`.
pub(crate) fn in_state_after(
    c: &Connection,
    state: &str,
    after: &[u8],
    limit: usize,
) -> Result<Vec<RoundRow>, AggError> {
    let mut st = c.prepare(&format!(
        "{SELECT} WHERE state = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
    ))?;
    let rows = st.query_map(params![state, after, limit as i64], row)?;
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
    seq: u32,
) -> Result<(), AggError> {
    c.execute(
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

/// One stored sealed share: client, sealed payload, arrival order in the round.
pub(crate) type StoredShare = (u64, Vec<u8>, u64);

/// The sealed shares for `member` that arrived after share `after` (0: all), in arrival order.
pub(crate) fn shares_for(
    c: &Connection,
    round: &[u8; 32],
    member: u16,
    after: u64,
) -> Result<Vec<StoredShare>, AggError> {
    let mut st = c.prepare(
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

pub(crate) fn insert_message(
    c: &Connection,
    round: &[u8; 32],
    client: u64,
    message: &[u8],
) -> Result<(), AggError> {
    c.execute(
        "INSERT INTO messages (round_id, client, message) VALUES (?1, ?2, ?3)",
        params![&round[..], client as i64, message],
    )?;
    Ok(())
}

pub(crate) fn message(
    c: &Connection,
    round: &[u8; 32],
    client: u64,
) -> Result<Option<Vec<u8>>, AggError> {
    Ok(c.query_row(
        "SELECT message FROM messages WHERE round_id = ?1 AND client = ?2",
        params![&round[..], client as i64],
        |r| r.get(0),
    )
    .optional()?)
}

/// Every stored client message of the round, by client.
pub(crate) fn messages(c: &Connection, round: &[u8; 32]) -> Result<Vec<Vec<u8>>, AggError> {
    let mut st = c.prepare("SELECT message FROM messages WHERE round_id = ?1 ORDER BY client")?;
    let rows = st.query_map([&round[..]], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r?);
    }
    Ok(out)
}

pub(crate) fn delete_messages(c: &Connection, round: &[u8; 32]) -> Result<(), AggError> {
    c.execute("DELETE FROM messages WHERE round_id = ?1", [&round[..]])?;
    Ok(())
}

pub(crate) fn insert_check(
    c: &Connection,
    round: &[u8; 32],
    member: u16,
    bad: &[u64],
    signature: &[u8],
) -> Result<(), AggError> {
    c.execute(
        "INSERT INTO checks (round_id, member, bad, signature) VALUES (?1, ?2, ?3, ?4)",
        params![&round[..], i64::from(member), u64s_to_blob(bad), signature],
    )?;
    Ok(())
}

/// The members that reported, each with the clients it reported as bad.
pub(crate) fn checks(c: &Connection, round: &[u8; 32]) -> Result<Vec<(u16, Vec<u64>)>, AggError> {
    let mut st = c.prepare("SELECT member, bad FROM checks WHERE round_id = ?1 ORDER BY member")?;
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
