//! PostgreSQL for every service's shared store (`--store postgres://…`).
//!
//! The services' store traits are synchronous (the embedded SQLite store answers in
//! microseconds), while the `postgres` client runs its own small runtime and must not
//! be driven from inside a service's tokio runtime. So a [`Pool`] keeps a few worker
//! threads, each owning one connection; [`Pool::run`] hands a job to a free worker and
//! waits for its answer. A worker whose connection broke reconnects before its next
//! job, so a PostgreSQL restart costs the calls in flight, not the service.
//!
//! Schema changes are versioned per component: entry `i` of a component's migration
//! list is version `i + 1` of that component in `veilgrid_migrations`, applied once, in
//! order, under a transaction-scoped advisory lock so replicas starting together
//! migrate once ([`migrate`]). Each component prefixes its tables (`router_`, `agg_`,
//! `prover_`, …) so the services can share one database.
#![doc = include_str!("../docs/postgres.md")]

use std::{
    str::FromStr,
    sync::{Arc, Mutex, mpsc},
    thread,
    time::Duration,
};

pub use postgres::{Client, Row, Transaction};
use postgres::{Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::pg_tls;

use crate::KitError;

/// Connections (worker threads) per pool.
pub const WORKERS: usize = 4;
/// Connect timeout when the URL names none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// A few worker threads, each with its own connection to one database.
pub struct Pool {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never printed.
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

/// One worker thread's connection, reopened when it breaks.
struct Worker {
    config: Config,
    tls: MakeRustlsConnect,
    client: Option<Client>,
}

impl Worker {
    fn client(&mut self) -> Result<&mut Client, KitError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let client = self
                .config
                .connect(self.tls.clone())
                .map_err(pg("connecting"))
                .map_err(|e| match e {
                    KitError::Postgres(m) => match pg_tls::hint(&m) {
                        Some(hint) => KitError::Postgres(format!("{m} ({hint})")),
                        None => KitError::Postgres(m),
                    },
                    other => other,
                })?;
            self.client = Some(client);
        }
        self.client
            .as_mut()
            .ok_or_else(|| KitError::Postgres("no connection".into()))
    }
}

/// Map a driver error to [`KitError::Postgres`], keeping the server's message and
/// SQLSTATE: `.map_err(pg("storing a lease"))?`.
pub fn pg(doing: &'static str) -> impl Fn(postgres::Error) -> KitError {
    move |e| {
        KitError::Postgres(match e.as_db_error() {
            Some(db) => format!("{doing}: {} (SQLSTATE {})", db.message(), db.code().code()),
            None => match std::error::Error::source(&e) {
                Some(s) => format!("{doing}: {e}: {s}"),
                None => format!("{doing}: {e}"),
            },
        })
    }
}

/// A `u64` (milliseconds, sequence numbers) as PostgreSQL's `BIGINT`, saturating.
pub fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A `BIGINT` read back as a `u64` (negative values, which no Veilgrid writer
/// stores, read as 0).
pub fn unbig(v: i64) -> u64 {
    v.max(0) as u64
}

impl Pool {
    /// Connect to `url` (`postgres://user:password@host:port/database?…`), run
    /// `component`'s pending `migrations` and start the worker connections.
    pub fn connect(
        url: &str,
        component: &'static str,
        migrations: &'static [&'static str],
    ) -> Result<Self, KitError> {
        let prepared = pg_tls::prepare(url);
        let tls = pg_tls::connector(&prepared)?;
        let mut config = Config::from_str(&prepared.url).map_err(|e| {
            KitError::Postgres(format!(
                "--store {:?} is not a PostgreSQL URL: {e}",
                redact(url)
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name(&format!("veilgrid-{component}"));
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..WORKERS {
            let rx = rx.clone();
            let config = config.clone();
            let tls = tls.clone();
            thread::Builder::new()
                .name(format!("{component}-pg-{i}"))
                .spawn(move || {
                    let mut w = Worker {
                        config,
                        tls,
                        client: None,
                    };
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(p) => p.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(&mut w),
                            // The pool was dropped: close the connection and stop.
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| KitError::Postgres(format!("starting a worker thread: {e}")))?;
        }
        let pool = Self { jobs: tx };
        pool.run(move |c| migrate(c, component, migrations))?;
        Ok(pool)
    }

    /// Run `f` on a worker's connection and wait for its answer.
    pub fn run<T, E>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<KitError> + Send + 'static,
    {
        let (done, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |w: &mut Worker| {
            let r = match w.client() {
                Ok(c) => f(c),
                Err(e) => Err(E::from(e)),
            };
            let _ = done.send(r);
        });
        self.jobs
            .send(job)
            .map_err(|_| KitError::Postgres("the store's worker threads stopped".into()))?;
        answer.recv().map_err(|_| {
            E::from(KitError::Postgres(
                "a store worker thread stopped before answering".into(),
            ))
        })?
    }

    /// The schema version of `component` recorded in the database.
    pub fn schema_version(&self, component: &'static str) -> Result<i32, KitError> {
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

/// The URL with any password replaced, for error messages and logs.
pub fn redact(url: &str) -> String {
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
/// versions the first one applied). A database whose `component` schema is newer than
/// `migrations` is refused: an older binary must not write to it.
pub fn migrate(
    client: &mut Client,
    component: &'static str,
    migrations: &[&str],
) -> Result<(), KitError> {
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
        return Err(KitError::Postgres(format!(
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

/// A throw-away database on a server (tests, trials): created by [`ScratchDb::create`] with
/// the rights of `admin_url`'s role (it needs `CREATEDB`), dropped with its connections when
/// this goes out of scope.
pub struct ScratchDb {
    admin: String,
    name: String,
    url: String,
}

impl std::fmt::Debug for ScratchDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScratchDb")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ScratchDb {
    /// Create database `name` (lower-case letters, digits and `_`) on the server `admin_url`
    /// names.
    pub fn create(admin_url: &str, name: &str) -> Result<Self, KitError> {
        let ok = !name.is_empty()
            && name.len() < 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(KitError::StoreSpec(format!(
                "a scratch database name is 1 to 63 of a-z, 0-9 and _, got {name:?}"
            )));
        }
        off_runtime(|| {
            let mut c = Client::connect(admin_url, NoTls).map_err(pg("connecting"))?;
            c.batch_execute(&format!("CREATE DATABASE {name}"))
                .map_err(pg("creating a scratch database"))
        })?;
        let base = admin_url.split('?').next().unwrap_or(admin_url);
        let server = match (base.find("://"), base.rfind('/')) {
            (Some(s), Some(slash)) if slash > s + 2 => &base[..slash],
            _ => base,
        };
        Ok(Self {
            admin: admin_url.to_owned(),
            name: name.to_owned(),
            url: format!("{server}/{name}"),
        })
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let _ = off_runtime(|| {
            let mut c = Client::connect(&self.admin, NoTls).map_err(pg("connecting"))?;
            c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .map_err(pg("dropping a scratch database"))
        });
    }
}

/// Run `f` on a thread of its own: the `postgres` client must not block a tokio worker.
fn off_runtime<T: Send>(f: impl FnOnce() -> Result<T, KitError> + Send) -> Result<T, KitError> {
    thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|_| Err(KitError::Postgres("a database thread panicked".into())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tests against a real server: tests/postgres_*.rs in the root package.

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
        let e = Pool::connect("postgres://vg:s3cret@db:notaport/x", "test", &[]).unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn unreachable_server_is_a_clear_error() {
        // Port 9 (discard) on loopback: nothing listens there in a test sandbox.
        let e = Pool::connect("postgres://vg@127.0.0.1:9/x?connect_timeout=2", "test", &[])
            .unwrap_err();
        assert!(matches!(e, KitError::Postgres(_)), "{e:?}");
        assert!(e.to_string().contains("connecting"), "{e}");
    }
}
