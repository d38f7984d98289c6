//! The shared store: PostgreSQL, for several router replicas behind one address.
//!
//! The [`Store`] trait is synchronous (the embedded SQLite store answers in
//! microseconds), while the `postgres` client runs its own small runtime and must
//! not be driven from inside the router's tokio runtime. So a few worker threads
//! each own one connection; a trait call hands a job to a free worker and waits for
//! its answer. A worker whose connection broke reconnects before its next job, so a
//! PostgreSQL restart costs the calls in flight, not the router.
//!
//! Schema changes are versioned: [`MIGRATIONS`] entry `i` is version `i + 1` of the
//! `router` component in `veilgrid_migrations`, applied once, in order, under a
//! transaction-scoped advisory lock so replicas starting together migrate once.
//! Tables are prefixed `router_` so other services can share the database.

use std::{
    str::FromStr,
    sync::{Arc, Mutex, mpsc},
    thread,
    time::Duration,
};

use postgres::{Client, Config, NoTls, Transaction};
use veilgrid_core::{
    protocol::ProtocolId,
    receipt::{Receipt, SignedReceipt},
};

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

/// Connections (worker threads) per store.
const WORKERS: usize = 4;
/// Connect timeout when the URL names none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// PostgreSQL-backed [`Store`], shared by every router replica pointed at it.
pub struct PostgresStore {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never printed.
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

/// One worker thread's connection, reopened when it breaks.
struct Worker {
    config: Config,
    client: Option<Client>,
}

impl Worker {
    fn client(&mut self) -> Result<&mut Client, RouterError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(self.config.connect(NoTls).map_err(pg("connecting"))?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| RouterError::Postgres("no connection".into()))
    }
}

/// Map a driver error to [`RouterError::Postgres`], keeping the server's message.
fn pg(doing: &'static str) -> impl Fn(postgres::Error) -> RouterError {
    move |e| {
        RouterError::Postgres(match e.as_db_error() {
            Some(db) => format!("{doing}: {} (SQLSTATE {})", db.message(), db.code().code()),
            None => match std::error::Error::source(&e) {
                Some(s) => format!("{doing}: {e}: {s}"),
                None => format!("{doing}: {e}"),
            },
        })
    }
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

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user:password@host:port/database?…`), run the
    /// router's pending migrations and start the worker connections.
    pub fn connect(url: &str) -> Result<Self, RouterError> {
        let mut config = Config::from_str(url).map_err(|e| {
            RouterError::Postgres(format!(
                "--store {:?} is not a PostgreSQL URL: {e}",
                redact(url)
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("veilgrid-router");
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..WORKERS {
            let rx = rx.clone();
            let config = config.clone();
            thread::Builder::new()
                .name(format!("router-pg-{i}"))
                .spawn(move || {
                    let mut w = Worker {
                        config,
                        client: None,
                    };
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(p) => p.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(&mut w),
                            // The store was dropped: close the connection and stop.
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| RouterError::Postgres(format!("starting a worker thread: {e}")))?;
        }
        let store = Self { jobs: tx };
        store.run(|c| migrate(c, "router", MIGRATIONS))?;
        Ok(store)
    }

    /// Run `f` on a worker's connection and wait for its answer.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, RouterError> + Send + 'static,
    ) -> Result<T, RouterError> {
        let (done, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |w: &mut Worker| {
            let r = w.client().and_then(f);
            let _ = done.send(r);
        });
        self.jobs
            .send(job)
            .map_err(|_| RouterError::Postgres("the store's worker threads stopped".into()))?;
        answer.recv().map_err(|_| {
            RouterError::Postgres("a store worker thread stopped before answering".into())
        })?
    }

    /// The schema version of `component` recorded in the database.
    pub fn schema_version(&self, component: &'static str) -> Result<i32, RouterError> {
        self.run(move |c| {
            let row = c
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM veilgrid_migrations WHERE component = $1",
                    &[&component],
                )
                .map_err(pg("reading the schema version"))?;
            Ok(row.get::<_, i32>(0))
        })
    }
}

/// The URL with any password replaced, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Apply every migration of `component` not yet recorded, in order, in one
/// transaction holding an advisory lock (so concurrent starters wait, then see the
/// versions the first one applied).
pub(super) fn migrate(
    client: &mut Client,
    component: &'static str,
    migrations: &[&str],
) -> Result<(), RouterError> {
    // Serialize first starts on an advisory lock taken before anything else: two
    // replicas racing on `CREATE TABLE IF NOT EXISTS` otherwise collide in PostgreSQL's
    // catalog (unique violation on pg_type, or "type already exists", 42710).
    let mut tx = client.transaction().map_err(pg("starting the migration"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('veilgrid_migrations'))",
        &[],
    )
    .map_err(pg("locking for migration"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS veilgrid_migrations (
            component TEXT NOT NULL,
            version INTEGER NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (component, version)
        )",
    )
    .map_err(pg("creating veilgrid_migrations"))?;
    let applied: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM veilgrid_migrations WHERE component = $1",
            &[&component],
        )
        .map_err(pg("reading the schema version"))?
        .get(0);
    if applied as usize > migrations.len() {
        return Err(RouterError::Postgres(format!(
            "the database's {component} schema is at version {applied}, newer than this binary's {}: upgrade veilgrid",
            migrations.len()
        )));
    }
    for (i, m) in migrations.iter().enumerate().skip(applied.max(0) as usize) {
        let version = (i + 1) as i32;
        tx.batch_execute(m).map_err(pg("applying a migration"))?;
        tx.execute(
            "INSERT INTO veilgrid_migrations (component, version) VALUES ($1, $2)",
            &[&component, &version],
        )
        .map_err(pg("recording a migration"))?;
        tracing::info!(component, version, "applied PostgreSQL migration");
    }
    tx.commit().map_err(pg("committing the migration"))
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
            tx.commit().map_err(pg("committing a ledger write"))
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
            tx.commit().map_err(pg("committing a ledger write"))
        })
    }

    fn tallies(&self) -> Result<Vec<([u8; 32], ProtocolId, Tally)>, RouterError> {
        let rows = self.run(|c| {
            c.query(
                "SELECT provider_id, protocol_id, kept, broken FROM router_tallies",
                &[],
            )
            .map_err(pg("reading tallies"))
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

    // Tests against a real server: tests/postgres_store.rs and tests/postgres_replicas.rs.

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://vg:s3cret@db:5432/veilgrid"),
            "postgres://vg:***@db:5432/veilgrid"
        );
        assert_eq!(
            redact("postgres://vg@db/veilgrid"),
            "postgres://vg@db/veilgrid"
        );
        let e = PostgresStore::connect("postgres://vg:s3cret@db:notaport/x").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn unreachable_server_is_a_clear_error() {
        // Port 9 (discard) on loopback: nothing listens there in a test sandbox.
        let e =
            PostgresStore::connect("postgres://vg@127.0.0.1:9/x?connect_timeout=2").unwrap_err();
        assert!(matches!(e, RouterError::Postgres(_)), "{e:?}");
        assert!(e.to_string().contains("connecting"), "{e}");
    }
}
