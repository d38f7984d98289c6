//! The shared store: PostgreSQL (tables `agg_*`), for several aggregation servers on one
//! database. Connections, migrations (component `aggregator`) and error mapping are
//! `veilgrid_kit::pg`'s.
//!
//! Every step runs in one transaction that first locks the rows it works on (`SELECT … FOR
//! UPDATE`: one round, or every active round in id order for a member's poll, so two polls
//! never wait on each other in a cycle). Two servers thus take turns on a round exactly as one
//! server's steps do, and a client accepted at one server is counted by the other.

use veilgrid_kit::pg::{Client, Pool, Row, Transaction, big, pg, unbig};

use super::{
    RoundRow, RoundStore, RoundTx, Step, StoredShare, blob_to_u64s, round_id, u64s_to_blob,
};
use crate::AggError;

/// Versioned schema of the `aggregator` component; append, never edit a released entry.
pub const MIGRATIONS: &[&str] = &[r"
    CREATE TABLE agg_rounds (
        id BYTEA PRIMARY KEY,
        round BYTEA NOT NULL,
        deadline_ms BIGINT NOT NULL,
        state TEXT NOT NULL,
        snapshot BYTEA NOT NULL,
        submitted BIGINT NOT NULL,
        result BYTEA,
        error TEXT,
        signers BYTEA NOT NULL,
        member_deadline_ms BIGINT NOT NULL,
        check_window_ms BIGINT NOT NULL,
        check_deadline_ms BIGINT NOT NULL,
        excluded BYTEA NOT NULL
    );
    CREATE INDEX agg_rounds_by_state ON agg_rounds (state, id);
    CREATE TABLE agg_shares (
        round_id BYTEA NOT NULL,
        client BIGINT NOT NULL,
        member INTEGER NOT NULL,
        sealed BYTEA NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (round_id, member, client)
    );
    CREATE TABLE agg_messages (
        round_id BYTEA NOT NULL,
        client BIGINT NOT NULL,
        message BYTEA NOT NULL,
        PRIMARY KEY (round_id, client)
    );
    CREATE TABLE agg_checks (
        round_id BYTEA NOT NULL,
        member INTEGER NOT NULL,
        bad BYTEA NOT NULL,
        signature BYTEA NOT NULL,
        PRIMARY KEY (round_id, member)
    );
"];

/// PostgreSQL-backed [`RoundStore`], shared by every aggregation server pointed at it.
#[derive(Debug)]
pub struct PostgresRounds {
    pool: Pool,
}

impl PostgresRounds {
    /// Connect to `url`, run the aggregator's pending migrations and start the worker
    /// connections.
    pub fn connect(url: &str) -> Result<Self, AggError> {
        Ok(Self {
            pool: Pool::connect(url, "aggregator", MIGRATIONS)?,
        })
    }

    /// The schema version of the `aggregator` component recorded in the database.
    pub fn schema_version(&self) -> Result<i32, AggError> {
        Ok(self.pool.schema_version("aggregator")?)
    }
}

impl RoundStore for PostgresRounds {
    fn atomically(&self, step: Step) -> Result<(), AggError> {
        self.pool.run(move |c: &mut Client| {
            let mut tx = c.transaction().map_err(pg("starting a round step"))?;
            step(&mut PgTx(&mut tx))?;
            tx.commit().map_err(pg("committing a round step"))?;
            Ok(())
        })
    }

    fn shared(&self) -> bool {
        true
    }
}

/// A step's view of the open transaction.
struct PgTx<'a, 'c>(&'a mut Transaction<'c>);

const SELECT: &str = "SELECT id, round, deadline_ms, state, snapshot, submitted, result, error,
     signers, member_deadline_ms, check_window_ms, check_deadline_ms, excluded FROM agg_rounds";

fn to_row(r: &Row) -> Result<RoundRow, AggError> {
    let dec = pg("decoding a round");
    let id: Vec<u8> = r.try_get(0).map_err(&dec)?;
    let excluded: Vec<u8> = r.try_get(12).map_err(&dec)?;
    let submitted: i64 = r.try_get(5).map_err(&dec)?;
    Ok(RoundRow {
        id: round_id(id)?,
        round: r.try_get(1).map_err(&dec)?,
        deadline_ms: unbig(r.try_get(2).map_err(&dec)?),
        state: r.try_get(3).map_err(&dec)?,
        snapshot: r.try_get(4).map_err(&dec)?,
        submitted: unbig(submitted).min(u64::from(u32::MAX)) as u32,
        result: r.try_get(6).map_err(&dec)?,
        error: r.try_get(7).map_err(&dec)?,
        signers: r.try_get(8).map_err(&dec)?,
        member_deadline_ms: unbig(r.try_get(9).map_err(&dec)?),
        check_window_ms: unbig(r.try_get(10).map_err(&dec)?),
        check_deadline_ms: unbig(r.try_get(11).map_err(&dec)?),
        excluded: blob_to_u64s(&excluded)?,
    })
}

fn to_rows(rows: Vec<Row>) -> Result<Vec<RoundRow>, AggError> {
    rows.iter().map(to_row).collect()
}

impl RoundTx for PgTx<'_, '_> {
    fn get(&mut self, id: &[u8; 32]) -> Result<Option<RoundRow>, AggError> {
        let rows = self
            .0
            .query(&format!("{SELECT} WHERE id = $1 FOR UPDATE"), &[&&id[..]])
            .map_err(pg("reading a round"))?;
        rows.first().map(to_row).transpose()
    }

    fn insert(&mut self, r: &RoundRow) -> Result<(), AggError> {
        self.0
            .execute(
                "INSERT INTO agg_rounds (id, round, deadline_ms, state, snapshot, submitted, result,
                     error, signers, member_deadline_ms, check_window_ms, check_deadline_ms, excluded)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                &[
                    &&r.id[..],
                    &r.round,
                    &big(r.deadline_ms),
                    &r.state,
                    &r.snapshot,
                    &i64::from(r.submitted),
                    &r.result,
                    &r.error,
                    &r.signers,
                    &big(r.member_deadline_ms),
                    &big(r.check_window_ms),
                    &big(r.check_deadline_ms),
                    &u64s_to_blob(&r.excluded),
                ],
            )
            .map_err(pg("storing a round"))?;
        Ok(())
    }

    fn update(&mut self, r: &RoundRow) -> Result<(), AggError> {
        self.0
            .execute(
                "UPDATE agg_rounds SET state = $2, snapshot = $3, submitted = $4, result = $5,
                     error = $6, check_deadline_ms = $7, excluded = $8
                 WHERE id = $1",
                &[
                    &&r.id[..],
                    &r.state,
                    &r.snapshot,
                    &i64::from(r.submitted),
                    &r.result,
                    &r.error,
                    &big(r.check_deadline_ms),
                    &u64s_to_blob(&r.excluded),
                ],
            )
            .map_err(pg("updating a round"))?;
        Ok(())
    }

    fn active(&mut self) -> Result<Vec<RoundRow>, AggError> {
        let rows = self
            .0
            .query(
                &format!(
                    "{SELECT} WHERE state IN ('collecting', 'checking', 'awaiting_members')
                     ORDER BY id FOR UPDATE"
                ),
                &[],
            )
            .map_err(pg("reading active rounds"))?;
        to_rows(rows)
    }

    fn in_state_after(
        &mut self,
        state: &str,
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<RoundRow>, AggError> {
        let limit = big(limit as u64);
        let rows = self
            .0
            .query(
                &format!("{SELECT} WHERE state = $1 AND id > $2 ORDER BY id LIMIT $3"),
                &[&state, &after, &limit],
            )
            .map_err(pg("listing rounds"))?;
        to_rows(rows)
    }

    fn insert_share(
        &mut self,
        round: &[u8; 32],
        client: u64,
        member: u16,
        sealed: &[u8],
        seq: u32,
    ) -> Result<(), AggError> {
        self.0
            .execute(
                "INSERT INTO agg_shares (round_id, client, member, sealed, seq)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &&round[..],
                    &(client as i64),
                    &i32::from(member),
                    &sealed,
                    &i64::from(seq),
                ],
            )
            .map_err(pg("storing a share"))?;
        Ok(())
    }

    fn shares_for(
        &mut self,
        round: &[u8; 32],
        member: u16,
        after: u64,
    ) -> Result<Vec<StoredShare>, AggError> {
        let rows = self
            .0
            .query(
                "SELECT client, sealed, seq FROM agg_shares
                 WHERE round_id = $1 AND member = $2 AND seq > $3 ORDER BY seq, client",
                &[&&round[..], &i32::from(member), &big(after)],
            )
            .map_err(pg("reading shares"))?;
        let dec = pg("decoding a share");
        rows.iter()
            .map(|r| {
                let client: i64 = r.try_get(0).map_err(&dec)?;
                let seq: i64 = r.try_get(2).map_err(&dec)?;
                Ok((client as u64, r.try_get(1).map_err(&dec)?, unbig(seq)))
            })
            .collect()
    }

    fn insert_message(
        &mut self,
        round: &[u8; 32],
        client: u64,
        message: &[u8],
    ) -> Result<(), AggError> {
        self.0
            .execute(
                "INSERT INTO agg_messages (round_id, client, message) VALUES ($1, $2, $3)",
                &[&&round[..], &(client as i64), &message],
            )
            .map_err(pg("storing a client message"))?;
        Ok(())
    }

    fn message(&mut self, round: &[u8; 32], client: u64) -> Result<Option<Vec<u8>>, AggError> {
        let rows = self
            .0
            .query(
                "SELECT message FROM agg_messages WHERE round_id = $1 AND client = $2",
                &[&&round[..], &(client as i64)],
            )
            .map_err(pg("reading a client message"))?;
        Ok(rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(pg("decoding a client message"))?)
    }

    fn messages(&mut self, round: &[u8; 32]) -> Result<Vec<Vec<u8>>, AggError> {
        let rows = self
            .0
            .query(
                "SELECT message FROM agg_messages WHERE round_id = $1 ORDER BY client",
                &[&&round[..]],
            )
            .map_err(pg("reading client messages"))?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(pg("decoding a client message"))?)
    }

    fn delete_messages(&mut self, round: &[u8; 32]) -> Result<(), AggError> {
        self.0
            .execute(
                "DELETE FROM agg_messages WHERE round_id = $1",
                &[&&round[..]],
            )
            .map_err(pg("dropping client messages"))?;
        Ok(())
    }

    fn insert_check(
        &mut self,
        round: &[u8; 32],
        member: u16,
        bad: &[u64],
        signature: &[u8],
    ) -> Result<(), AggError> {
        self.0
            .execute(
                "INSERT INTO agg_checks (round_id, member, bad, signature) VALUES ($1, $2, $3, $4)",
                &[
                    &&round[..],
                    &i32::from(member),
                    &u64s_to_blob(bad),
                    &signature,
                ],
            )
            .map_err(pg("storing a share report"))?;
        Ok(())
    }

    fn checks(&mut self, round: &[u8; 32]) -> Result<Vec<(u16, Vec<u64>)>, AggError> {
        let rows = self
            .0
            .query(
                "SELECT member, bad FROM agg_checks WHERE round_id = $1 ORDER BY member",
                &[&&round[..]],
            )
            .map_err(pg("reading share reports"))?;
        let dec = pg("decoding a share report");
        rows.iter()
            .map(|r| {
                let m: i32 = r.try_get(0).map_err(&dec)?;
                let bad: Vec<u8> = r.try_get(1).map_err(&dec)?;
                let m = u16::try_from(m).map_err(|_| AggError::CorruptStore("member index"))?;
                Ok((m, blob_to_u64s(&bad)?))
            })
            .collect()
    }
}
