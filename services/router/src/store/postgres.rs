//! The shared store: PostgreSQL, for several router replicas behind one address.
//!
//! Connections, versioned migrations (component `router`, tables prefixed `router_`)
//! and error mapping are `veilgrid_kit::pg`'s; this file is the router's schema and
//! queries.

use veilgrid_core::{
    protocol::ProtocolId,
    receipt::{Receipt, SignedReceipt},
};
use veilgrid_kit::pg::{Client, Pool, Transaction, big as ms, pg};

use super::{LeaseRecord, LedgerEntry, Store, Tally};
use crate::RouterError;

/// Versioned schema of the `router` component; append, never edit a released entry.
pub const MIGRATIONS: &[&str] = &[r"
    CREATE TABLE router_leases (
        provider_id BYTEA PRIMARY KEY,
        info BYTEA NOT NULL,
        signature BYTEA NOT NULL,
        lease_id BYTEA NOT NULL,
        expires_at_ms BIGINT NOT NULL
    );
    CREATE TABLE router_promises (
        seq BIGSERIAL PRIMARY KEY,
        provider_id BYTEA NOT NULL,
        protocol_id BYTEA NOT NULL,
        kept BOOLEAN NOT NULL,
        at_ms BIGINT NOT NULL
    );
    CREATE INDEX router_promises_by_provider ON router_promises (provider_id, protocol_id);
    -- Running sums of router_promises, kept in the same transaction, so replicas
    -- re-read a few rows per provider instead of scanning the whole ledger.
    CREATE TABLE router_tallies (
        provider_id BYTEA NOT NULL,
        protocol_id BYTEA NOT NULL,
        kept BIGINT NOT NULL DEFAULT 0,
        broken BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (provider_id, protocol_id)
    );
    CREATE TABLE router_receipts (
        seq BIGSERIAL PRIMARY KEY,
        canonical BYTEA NOT NULL,
        signature BYTEA NOT NULL
    );
"];

/// PostgreSQL-backed [`Store`], shared by every router replica pointed at it.
#[derive(Debug)]
pub struct PostgresStore {
    pool: Pool,
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

impl PostgresStore {
    /// Connect to `url` (`postgres://user:password@host:port/database?…`), run the
    /// router's pending migrations and start the worker connections.
    pub fn connect(url: &str) -> Result<Self, RouterError> {
        Ok(Self {
            pool: Pool::connect(url, "router", MIGRATIONS)?,
        })
    }

    /// Run `f` on a worker's connection and wait for its answer.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, RouterError> + Send + 'static,
    ) -> Result<T, RouterError> {
        self.pool.run(f)
    }

    /// The schema version of `component` recorded in the database.
    pub fn schema_version(&self, component: &'static str) -> Result<i32, RouterError> {
        Ok(self.pool.schema_version(component)?)
    }
}

fn insert_promise(
    tx: &mut Transaction<'_>,
    provider: &[u8],
    protocol: &[u8],
    kept: bool,
    at_ms: i64,
) -> Result<(), RouterError> {
    tx.execute(
        "INSERT INTO router_promises (provider_id, protocol_id, kept, at_ms) VALUES ($1, $2, $3, $4)",
        &[&provider, &protocol, &kept, &at_ms],
    )
    .map_err(pg("recording a promise"))?;
    let (k, b) = if kept { (1i64, 0i64) } else { (0, 1) };
    tx.execute(
        "INSERT INTO router_tallies (provider_id, protocol_id, kept, broken) VALUES ($1, $2, $3, $4)
         ON CONFLICT (provider_id, protocol_id)
         DO UPDATE SET kept = router_tallies.kept + $3, broken = router_tallies.broken + $4",
        &[&provider, &protocol, &k, &b],
    )
    .map_err(pg("counting a promise"))?;
    Ok(())
}

impl Store for PostgresStore {
    fn put_lease(&self, l: &LeaseRecord) -> Result<(), RouterError> {
        let l = l.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO router_leases (provider_id, info, signature, lease_id, expires_at_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (provider_id) DO UPDATE SET info = $2, signature = $3,
                     lease_id = $4, expires_at_ms = $5",
                &[
                    &&l.provider_id[..],
                    &l.info,
                    &l.signature,
                    &&l.lease_id[..],
                    &ms(l.expires_at_ms),
                ],
            )
            .map_err(pg("storing a lease"))?;
            Ok(())
        })
    }

    fn extend_lease(&self, provider_id: &[u8; 32], expires_at_ms: u64) -> Result<(), RouterError> {
        let id = *provider_id;
        self.run(move |c| {
            c.execute(
                "UPDATE router_leases SET expires_at_ms = GREATEST(expires_at_ms, $2)
                 WHERE provider_id = $1",
                &[&&id[..], &ms(expires_at_ms)],
            )
            .map_err(pg("extending a lease"))?;
            Ok(())
        })
    }

    fn remove_lease(&self, provider_id: &[u8; 32]) -> Result<(), RouterError> {
        let id = *provider_id;
        self.run(move |c| {
            c.execute(
                "DELETE FROM router_leases WHERE provider_id = $1",
                &[&&id[..]],
            )
            .map_err(pg("removing a lease"))?;
            Ok(())
        })
    }

    fn remove_expired_lease(&self, provider_id: &[u8; 32], now_ms: u64) -> Result<(), RouterError> {
        // Another replica may have renewed it since this one last looked.
        let id = *provider_id;
        self.run(move |c| {
            c.execute(
                "DELETE FROM router_leases WHERE provider_id = $1 AND expires_at_ms <= $2",
                &[&&id[..], &ms(now_ms)],
            )
            .map_err(pg("removing an expired lease"))?;
            Ok(())
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn leases(&self) -> Result<Vec<LeaseRecord>, RouterError> {
        let rows = self.run(|c| {
            c.query(
                "SELECT provider_id, info, signature, lease_id, expires_at_ms FROM router_leases",
                &[],
            )
            .map_err(pg("reading leases"))
            .map_err(RouterError::from)
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let get = |i| r.try_get::<_, Vec<u8>>(i).map_err(pg("decoding a lease"));
            let lease_id = get(3)?;
            let exp: i64 = r.try_get(4).map_err(pg("decoding a lease"))?;
            out.push(LeaseRecord {
                provider_id: id32("lease provider id", get(0)?)?,
                info: get(1)?,
                signature: get(2)?,
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
        let receipt = match receipt {
            Some(r) => Some((
                r.receipt
                    .canonical_bytes()
                    .map_err(|e| corrupt("receipt", e))?,
                r.signature.to_vec(),
            )),
            None => None,
        };
        let (id, proto) = (*provider_id, *protocol.as_bytes());
        self.run(move |c| {
            let mut tx = c.transaction().map_err(pg("starting a ledger write"))?;
            insert_promise(&mut tx, &id, &proto, kept, ms(at_ms))?;
            if let Some((canonical, signature)) = receipt {
                tx.execute(
                    "INSERT INTO router_receipts (canonical, signature) VALUES ($1, $2)",
                    &[&canonical, &signature],
                )
                .map_err(pg("storing a receipt"))?;
            }
            tx.commit().map_err(pg("committing a ledger write"))?;
            Ok(())
        })
    }

    fn record_batch(&self, entries: &[LedgerEntry]) -> Result<(), RouterError> {
        type Row = ([u8; 32], [u8; 32], bool, i64, Option<(Vec<u8>, Vec<u8>)>);
        let mut rows: Vec<Row> = Vec::with_capacity(entries.len());
        for e in entries {
            let receipt = match &e.receipt {
                Some(r) => Some((
                    r.receipt
                        .canonical_bytes()
                        .map_err(|err| corrupt("receipt", err))?,
                    r.signature.to_vec(),
                )),
                None => None,
            };
            rows.push((
                e.provider_id,
                *e.protocol.as_bytes(),
                e.kept,
                ms(e.at_ms),
                receipt,
            ));
        }
        self.run(move |c| {
            let mut tx = c.transaction().map_err(pg("starting a ledger write"))?;
            for (id, proto, kept, at, receipt) in rows {
                insert_promise(&mut tx, &id, &proto, kept, at)?;
                if let Some((canonical, signature)) = receipt {
                    tx.execute(
                        "INSERT INTO router_receipts (canonical, signature) VALUES ($1, $2)",
                        &[&canonical, &signature],
                    )
                    .map_err(pg("storing a receipt"))?;
                }
            }
            tx.commit().map_err(pg("committing a ledger write"))?;
            Ok(())
        })
    }

    fn tallies(&self) -> Result<Vec<([u8; 32], ProtocolId, Tally)>, RouterError> {
        let rows = self.run(|c| {
            c.query(
                "SELECT provider_id, protocol_id, kept, broken FROM router_tallies",
                &[],
            )
            .map_err(pg("reading tallies"))
            .map_err(RouterError::from)
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let dec = pg("decoding a tally");
            let p: Vec<u8> = r.try_get(0).map_err(&dec)?;
            let proto: Vec<u8> = r.try_get(1).map_err(&dec)?;
            let kept: i64 = r.try_get(2).map_err(&dec)?;
            let broken: i64 = r.try_get(3).map_err(&dec)?;
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
        let (after, limit) = (ms(after), i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = self.run(move |c| {
            c.query(
                "SELECT seq, canonical, signature FROM router_receipts WHERE seq > $1
                 ORDER BY seq LIMIT $2",
                &[&after, &limit],
            )
            .map_err(pg("reading receipts"))
            .map_err(RouterError::from)
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let dec = pg("decoding a receipt");
            let seq: i64 = r.try_get(0).map_err(&dec)?;
            let canonical: Vec<u8> = r.try_get(1).map_err(&dec)?;
            let sig: Vec<u8> = r.try_get(2).map_err(&dec)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    // Tests against a real server: tests/postgres_store.rs and tests/postgres_replicas.rs;
    // redaction and connection errors: veilgrid_kit::pg.

    #[test]
    fn connection_errors_stay_postgres_errors() {
        let e = PostgresStore::connect("postgres://vg:s3cret@db:notaport/x").unwrap_err();
        assert!(matches!(e, RouterError::Postgres(_)), "{e:?}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
