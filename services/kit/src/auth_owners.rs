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

use std::{path::Path, sync::Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use tonic::Status;

use crate::{KitError, auth::Caller};

const MIGRATIONS: &[&str] = &[r"
    CREATE TABLE owners (
        kind TEXT NOT NULL,
        id BLOB NOT NULL,
        owner TEXT,
        PRIMARY KEY (kind, id)
    );
"];

/// Longest resource kind and id.
const MAX_KIND: usize = 64;
const MAX_ID: usize = 256;

/// Resource ownership, in `owners.sqlite3` under a data directory or in memory.
#[derive(Debug)]
pub struct Owners {
    conn: Mutex<Connection>,
}

fn internal(e: rusqlite::Error) -> Status {
    Status::internal(format!("ownership store: {e}"))
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

    /// The owner of a resource: `None` if unknown, `Some(None)` if it belongs to
    /// nobody (claimed without an identity).
    pub fn owner(&self, kind: &str, id: &[u8]) -> Result<Option<Option<String>>, Status> {
        check_key(kind, id)?;
        self.lock()
            .query_row(
                "SELECT owner FROM owners WHERE kind = ?1 AND id = ?2",
                params![kind, id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map_err(internal)
    }

    /// Record that `owner` created resource `id` of `kind`. Claiming again as the
    /// same owner is a no-op (retries); claiming what another owns is refused.
    pub fn claim(&self, kind: &str, id: &[u8], owner: Option<&Caller>) -> Result<(), Status> {
        check_key(kind, id)?;
        let who = owner.map(Caller::to_string);
        let conn = self.lock();
        let n = conn
            .execute(
                "INSERT OR IGNORE INTO owners (kind, id, owner) VALUES (?1, ?2, ?3)",
                params![kind, id, who],
            )
            .map_err(internal)?;
        if n == 1 {
            return Ok(());
        }
        let existing: Option<String> = conn
            .query_row(
                "SELECT owner FROM owners WHERE kind = ?1 AND id = ?2",
                params![kind, id],
                |r| r.get(0),
            )
            .map_err(internal)?;
        if existing == who {
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
