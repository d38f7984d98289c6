use thiserror::Error;
use tonic::Status;

/// Errors of the router.
#[derive(Debug, Error)]
pub enum RouterError {
    /// The embedded store failed.
    #[error("store: {0}")]
    Store(#[from] rusqlite::Error),
    /// The PostgreSQL store failed (unreachable, refused, or a query error).
    #[error("postgres store: {0}")]
    Postgres(String),
    /// `--store` names no store this router can open.
    #[error("{0}")]
    StoreSpec(String),
    /// The data directory could not be prepared.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A stored record did not decode: the store was altered or is corrupt.
    #[error("store holds a malformed {what}: {reason}")]
    CorruptStore {
        /// The record kind.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The ledger writer could not commit an entry.
    #[error("ledger: {0}")]
    Ledger(String),
    /// The gRPC server failed.
    #[error(transparent)]
    Kit(veilgrid_kit::KitError),
}

impl From<veilgrid_kit::KitError> for RouterError {
    fn from(e: veilgrid_kit::KitError) -> Self {
        use veilgrid_kit::KitError;
        match e {
            // The shared store's errors keep their own variants (UNAVAILABLE, retryable).
            KitError::Postgres(m) => Self::Postgres(m),
            KitError::StoreSpec(m) => Self::StoreSpec(m),
            e => Self::Kit(e),
        }
    }
}

impl From<RouterError> for Status {
    fn from(e: RouterError) -> Self {
        match e {
            // Retryable: the shared store is restarting or unreachable.
            RouterError::Postgres(_) => Status::unavailable(format!("router: {e}")),
            // The ledger's queue is full because the store keeps failing: retry later.
            RouterError::Ledger(_) => Status::unavailable(format!("router: {e}")),
            e => Status::internal(format!("router: {e}")),
        }
    }
}
