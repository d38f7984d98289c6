use thiserror::Error;
use tonic::{Code, Status};

/// Errors of the service kit.
#[derive(Debug, Error)]
pub enum KitError {
    /// A file in the data directory could not be read or written.
    #[error("{what} at {path}: {source}")]
    Io {
        /// What was being accessed.
        what: &'static str,
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Cryptographic material was malformed or did not verify.
    #[error(transparent)]
    Crypto(#[from] veilgrid_core::Error),
    /// A remote call failed.
    #[error("{what}: {status}")]
    Remote {
        /// What was being attempted.
        what: &'static str,
        /// The gRPC status returned.
        status: Status,
    },
    /// A certificate or key (TLS, the Veilgrid CA) is missing, malformed or names
    /// the wrong identity.
    #[error("{what}: {reason}")]
    Certificate {
        /// What was being attempted.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// The embedded store failed.
    #[error("embedded store: {0}")]
    Store(#[from] rusqlite::Error),
    /// The PostgreSQL store failed (unreachable, refused, a query error, or a schema
    /// newer than this binary).
    #[error("postgres store: {0}")]
    Postgres(String),
    /// `--store` names no store a service can open.
    #[error("{0}")]
    StoreSpec(String),
    /// A gRPC transport could not be set up.
    #[error("{what}: {reason}")]
    Transport {
        /// What was being attempted.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
}

impl From<KitError> for Status {
    fn from(e: KitError) -> Self {
        match e {
            KitError::Io { .. } => Status::internal(e.to_string()),
            KitError::Crypto(c) => Status::invalid_argument(c.to_string()),
            KitError::Remote { what, status } => {
                Status::new(status.code(), format!("{what}: {}", status.message()))
            }
            KitError::Transport { .. } => Status::new(Code::Unavailable, e.to_string()),
            KitError::Certificate { .. } => Status::unauthenticated(e.to_string()),
            KitError::Store(_) => Status::internal(e.to_string()),
            // Retryable: the shared store is restarting or unreachable.
            KitError::Postgres(_) => Status::unavailable(e.to_string()),
            KitError::StoreSpec(_) => Status::invalid_argument(e.to_string()),
        }
    }
}
