use thiserror::Error;
use tonic::Status;

/// Errors of the router.
#[derive(Debug, Error)]
pub enum RouterError {
    /// The embedded store failed.
    #[error("store: {0}")]
    Store(#[from] rusqlite::Error),
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
    /// The gRPC server failed.
    #[error(transparent)]
    Kit(#[from] veilgrid_kit::KitError),
}

impl From<RouterError> for Status {
    fn from(e: RouterError) -> Self {
        Status::internal(format!("router: {e}"))
    }
}
