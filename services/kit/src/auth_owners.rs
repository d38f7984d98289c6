//! What belongs to whom: a small store, shared by every service, that binds a
//! resource (a kind and an id: an aggregation round, an agent's order, a key
//! registration) to the identity that created it, and refuses anyone else.
//!
//! Use it in a handler with the caller from [`crate::provider::Context::caller`]:
//!
//! ```text
//! create:  owners.claim("agg/round", &round_id, ctx.caller.as_ref())?;
//! read:    owners.check("agg/round", &round_id, ctx.caller.as_ref())?;
//! ```
//!
//! A resource claimed without an identity (a plaintext grid) belongs to nobody and
//! anyone may use it; one claimed by an identity is refused to every other caller,
//! including unauthenticated ones, with `PERMISSION_DENIED`.
//!
//! Behind [`OwnerStore`]: SQLite (`owners.sqlite3` in the service's data directory) or,
//! when several instances of a service share a PostgreSQL database (`--store`), the
//! table `owners_resources` there, so every instance refuses the same callers.

use std::{path::Path, sync::Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use tonic::Status;

use crate::{
    KitError,
    auth::Caller,
    pg::{self, Pool},
    store_spec::StoreSpec,
};

const MIGRATIONS: &[&str] = &[r"
    CREATE TABLE owners (
        kind TEXT NOT NULL,
        id BLOB NOT NULL,
        owner TEXT,
        PRIMARY KEY (kind, id)
    );
"];

/// Versioned schema of the `owners` component in PostgreSQL (one table for every service:
/// kinds are namespaced, `agg/round`, `match/order`, …).
pub const POSTGRES_MIGRATIONS: &[&str] = &[r"
    CREATE TABLE owners_resources (
        kind TEXT NOT NULL,
        id BYTEA NOT NULL,
        owner TEXT,
        PRIMARY KEY (kind, id)
    );
"];

/// Longest resource kind and id.
const MAX_KIND: usize = 64;
const MAX_ID: usize = 256;

/// Where ownership records live.
pub trait OwnerStore: Send + Sync + 'static {
    /// The owner of a resource: `None` if unknown, `Some(None)` if it belongs to nobody.
    fn owner(&self, kind: &str, id: &[u8]) -> Result<Option<Option<String>>, KitError>;
    /// Record `owner` for the resource unless it is recorded already; whether it was new.
    fn insert_if_absent(
        &self,
        kind: &str,
        id: &[u8],
        owner: Option<&str>,
    ) -> Result<bool, KitError>;
}

/// `owners.sqlite3` under a data directory, or in memory.
#[derive(Debug)]
pub struct SqliteOwners {
    conn: Mutex<Connection>,
}

impl SqliteOwners {
    /// Open (creating) `owners.sqlite3` in `dir`, or an in-memory store.
    pub fn open(dir: Option<&Path>) -> Result<Self, KitError> {
        let mut conn = match dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|source| KitError::Io {
                    what: "creating the data directory",
                    path: d.display().to_string(),
                    source,
                })?;
                Connection::open(d.join("owners.sqlite3"))?
            }
            None => Connection::open_in_memory()?,
        };
        crate::sqlite::prepare(&mut conn, MIGRATIONS)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl OwnerStore for SqliteOwners {
    fn owner(&self, kind: &str, id: &[u8]) -> Result<Option<Option<String>>, KitError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT owner FROM owners WHERE kind = ?1 AND id = ?2",
                params![kind, id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?)
    }

    fn insert_if_absent(
        &self,
        kind: &str,
        id: &[u8],
        owner: Option<&str>,
    ) -> Result<bool, KitError> {
        let n = self.lock().execute(
            "INSERT OR IGNORE INTO owners (kind, id, owner) VALUES (?1, ?2, ?3)",
            params![kind, id, owner],
        )?;
        Ok(n == 1)
    }
}

/// The `owners_resources` table of a PostgreSQL database shared by several instances of a
/// service: a resource created at one instance is refused to other callers at all of them.
#[derive(Debug)]
pub struct PostgresOwners {
    pool: Pool,
}

impl PostgresOwners {
    /// Connect to `url` and run the `owners` component's pending migrations.
    pub fn connect(url: &str) -> Result<Self, KitError> {
        Ok(Self {
            pool: Pool::connect(url, "owners", POSTGRES_MIGRATIONS)?,
        })
    }
}

impl OwnerStore for PostgresOwners {
    fn owner(&self, kind: &str, id: &[u8]) -> Result<Option<Option<String>>, KitError> {
        let (kind, id) = (kind.to_owned(), id.to_vec());
        self.pool.run(move |c| {
            let rows = c
                .query(
                    "SELECT owner FROM owners_resources WHERE kind = $1 AND id = $2",
                    &[&kind, &id],
                )
                .map_err(pg::pg("reading an owner"))?;
            rows.first()
                .map(|r| r.try_get::<_, Option<String>>(0))
                .transpose()
                .map_err(pg::pg("decoding an owner"))
        })
    }

    fn insert_if_absent(
        &self,
        kind: &str,
        id: &[u8],
        owner: Option<&str>,
    ) -> Result<bool, KitError> {
        let (kind, id, owner) = (kind.to_owned(), id.to_vec(), owner.map(str::to_owned));
        self.pool.run(move |c| {
            let n = c
                .execute(
                    "INSERT INTO owners_resources (kind, id, owner) VALUES ($1, $2, $3)
                     ON CONFLICT (kind, id) DO NOTHING",
                    &[&kind, &id, &owner],
                )
                .map_err(pg::pg("recording an owner"))?;
            Ok(n == 1)
        })
    }
}

/// Resource ownership, in `owners.sqlite3` under a data directory, in memory, or in a shared
/// PostgreSQL database.
pub struct Owners {
    store: Box<dyn OwnerStore>,
}

impl std::fmt::Debug for Owners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owners").finish_non_exhaustive()
    }
}

fn internal(e: KitError) -> Status {
    match e {
        KitError::Postgres(_) => Status::unavailable(format!("ownership store: {e}")),
        e => Status::internal(format!("ownership store: {e}")),
    }
}

fn check_key(kind: &str, id: &[u8]) -> Result<(), Status> {
    if kind.len() > MAX_KIND || id.len() > MAX_ID {
        return Err(Status::invalid_argument(format!(
            "resource kind (at most {MAX_KIND} bytes) or id (at most {MAX_ID} bytes) too long"
        )));
    }
    Ok(())
}

impl Owners {
    /// Open (creating) `owners.sqlite3` in `dir`, or an in-memory store.
    pub fn open(dir: Option<&Path>) -> Result<Self, KitError> {
        Ok(Self::with_store(Box::new(SqliteOwners::open(dir)?)))
    }

    /// Open the store `--store` names: `owners.sqlite3` in `sqlite:DIR`, a PostgreSQL
    /// database (table `owners_resources`), or by default in `dir` (in memory without one).
    pub fn open_store(spec: &StoreSpec, dir: Option<&Path>) -> Result<Self, KitError> {
        Ok(match spec {
            StoreSpec::Default => Self::open(dir)?,
            StoreSpec::Sqlite(d) => Self::open(Some(d))?,
            StoreSpec::Postgres(url) => Self::with_store(Box::new(PostgresOwners::connect(url)?)),
        })
    }

    /// Ownership kept in `store`.
    pub fn with_store(store: Box<dyn OwnerStore>) -> Self {
        Self { store }
    }

    /// The owner of a resource: `None` if unknown, `Some(None)` if it belongs to
    /// nobody (claimed without an identity).
    pub fn owner(&self, kind: &str, id: &[u8]) -> Result<Option<Option<String>>, Status> {
        check_key(kind, id)?;
        self.store.owner(kind, id).map_err(internal)
    }

    /// Record that `owner` created resource `id` of `kind`. Claiming again as the
    /// same owner is a no-op (retries); claiming what another owns is refused.
    pub fn claim(&self, kind: &str, id: &[u8], owner: Option<&Caller>) -> Result<(), Status> {
        check_key(kind, id)?;
        let who = owner.map(Caller::to_string);
        if self
            .store
            .insert_if_absent(kind, id, who.as_deref())
            .map_err(internal)?
        {
            return Ok(());
        }
        if self.store.owner(kind, id).map_err(internal)? == Some(who) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "this {kind} already exists and belongs to another caller"
            )))
        }
    }

    /// Allow `caller` to use resource `id` of `kind` only if it owns it (or nobody
    /// does, or it is not recorded here: the service reports unknown ids itself).
    pub fn check(&self, kind: &str, id: &[u8], caller: Option<&Caller>) -> Result<(), Status> {
        match self.owner(kind, id)? {
            None | Some(None) => Ok(()),
            Some(Some(owner)) if caller.is_some_and(|c| c.to_string() == owner) => Ok(()),
            Some(Some(_)) => Err(Status::permission_denied(format!(
                "this {kind} belongs to another caller{}",
                match caller {
                    Some(c) => format!(" (you are {c})"),
                    None => ": connect with the certificate of the identity that created it".into(),
                }
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_passes() {
        let o = Owners::open(None).unwrap();
        let alice = Caller::client("alice");
        let bob = Caller::client("bob");
        o.claim("agg/round", b"r1", Some(&alice)).unwrap();
        o.claim("agg/round", b"r1", Some(&alice)).unwrap();
        assert_eq!(
            o.claim("agg/round", b"r1", Some(&bob)).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        o.check("agg/round", b"r1", Some(&alice)).unwrap();
        let e = o.check("agg/round", b"r1", Some(&bob)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(!e.message().contains("alice"), "the owner is not disclosed");
        assert!(o.check("agg/round", b"r1", None).is_err());
        // Another kind with the same id is another resource.
        o.check("match/order", b"r1", Some(&bob)).unwrap();
        // Claimed without identity: anyone.
        o.claim("agg/round", b"r2", None).unwrap();
        o.check("agg/round", b"r2", Some(&bob)).unwrap();
        o.check("agg/round", b"r2", None).unwrap();
        assert!(o.check(&"k".repeat(65), b"r", None).is_err());
    }

    #[test]
    fn ownership_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let alice = Caller::client("alice");
        Owners::open(Some(dir.path()))
            .unwrap()
            .claim("agg/round", b"r", Some(&alice))
            .unwrap();
        let o = Owners::open(Some(dir.path())).unwrap();
        assert!(
            o.check("agg/round", b"r", Some(&Caller::client("bob")))
                .is_err()
        );
        o.check("agg/round", b"r", Some(&alice)).unwrap();
    }
}
