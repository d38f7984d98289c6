//! The crate's one error type, and how each case maps to a gRPC status code.

use thiserror::Error;
use tonic::{Code, Status};
use veilgrid_fhe::Error as Fhe;

/// Everything the FHE service can refuse or fail on.
#[derive(Debug, Error)]
pub enum FheServiceError {
    /// The FHE crate refused the input (bytes that do not decode, a key or query for other
    /// parameters, a query for another model or key, ...).
    #[error(transparent)]
    Fhe(#[from] Fhe),
    /// No model of that name.
    #[error("no model named {0:?}; `veilgrid fhe models` lists them")]
    UnknownModel(String),
    /// A query names a key id that was never registered here.
    #[error("key {0} is not registered with this service; run `veilgrid fhe register` first")]
    UnknownKey(String),
    /// A request that does not decode or has a field of the wrong size.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A request or upload over a configured limit.
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length (or announced length).
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The key store on disk failed.
    #[error("key store {path}: {source}")]
    Store {
        /// The file or directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A stored key no longer passes the checks it passed when it was registered (its
    /// file or row was changed behind the service's back).
    #[error("stored key {id} is corrupt ({reason}); register it again")]
    CorruptKey {
        /// The key id (hex).
        id: String,
        /// What check failed.
        reason: String,
    },
    /// The evaluation pool is gone (shutting down) or a task on it died.
    #[error("evaluation pool: {0}")]
    Pool(String),
    /// A call to the service (direct or through the router) returned an error status.
    #[error("{what}: {}", status.message())]
    Remote {
        /// What was being attempted.
        what: &'static str,
        /// The status.
        status: Status,
    },
    /// Serving or registering with the router failed.
    #[error(transparent)]
    Kit(#[from] veilgrid_kit::KitError),
}

impl FheServiceError {
    /// The gRPC code this error is reported with.
    pub fn code(&self) -> Code {
        match self {
            FheServiceError::Fhe(e) => match e {
                Fhe::UnknownModel(_) => Code::NotFound,
                Fhe::TooLarge { .. } => Code::ResourceExhausted,
                Fhe::Dataset(_) | Fhe::ModelFormat(_) | Fhe::InvalidModel { .. } => Code::Internal,
                _ => Code::InvalidArgument,
            },
            FheServiceError::UnknownModel(_) | FheServiceError::UnknownKey(_) => Code::NotFound,
            FheServiceError::BadRequest(_) => Code::InvalidArgument,
            FheServiceError::TooLarge { .. } => Code::ResourceExhausted,
            FheServiceError::Store { .. } => Code::Internal,
            FheServiceError::CorruptKey { .. } => Code::DataLoss,
            FheServiceError::Pool(_) | FheServiceError::Kit(_) => Code::Unavailable,
            FheServiceError::Remote { status, .. } => status.code(),
        }
    }
}

impl From<FheServiceError> for Status {
    fn from(e: FheServiceError) -> Self {
        Status::new(e.code(), e.to_string())
    }
}
