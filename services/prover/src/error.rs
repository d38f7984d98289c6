//! The crate's one error type, and how each case maps to a gRPC status code.

use thiserror::Error;
use tonic::{Code, Status};

/// Everything the prover service can refuse or fail on.
#[derive(Debug, Error)]
pub enum ProverError {
    /// The log refused (bad proof request, or its store was truncated/altered).
    #[error("audit log: {0}")]
    Log(#[from] veilgrid_zk::Error),
    /// A circuit, key or proof operation failed.
    #[error("circuit: {0}")]
    Circuit(#[from] veilgrid_circuits::Error),
    /// A request that does not decode or has a field out of range.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Something asked for does not exist (checkpoint of that size, key name, ...).
    #[error("not found: {0}")]
    NotFound(String),
    /// Proving was asked for but no keys are set up.
    #[error("no Groth16 keys: run `veilgrid prover setup` first ({0})")]
    NoKeys(String),
    /// The embedded store failed.
    #[error("store: {0}")]
    Store(#[from] rusqlite::Error),
    /// A file or directory under the data directory could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key manifest or a key file does not match what was pinned.
    #[error("key store: {0}")]
    Keys(String),
    /// Keys set up for another version of a circuit (its constraint count changed).
    #[error("key store: {0}")]
    StaleKeys(String),
    /// Serving, registering or calling a remote service failed.
    #[error(transparent)]
    Kit(#[from] veilgrid_kit::KitError),
    /// A remote call returned an error status.
    #[error("{what}: {status}")]
    Remote {
        /// The call.
        what: &'static str,
        /// The status.
        status: Status,
    },
    /// A blocking task panicked or was cancelled.
    #[error("internal: {0}")]
    Internal(String),
}

impl ProverError {
    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    /// The gRPC status code for this error.
    pub fn code(&self) -> Code {
        use veilgrid_zk::Error as Z;
        match self {
            Self::Log(
                Z::StoreTruncated { .. }
                | Z::StoreDiverged { .. }
                | Z::Store(_)
                | Z::CheckpointsOutOfOrder { .. },
            ) => Code::DataLoss,
            Self::Log(Z::TooLarge { .. }) => Code::ResourceExhausted,
            Self::Log(Z::IndexOutOfRange { .. } | Z::SizeOutOfRange { .. }) => Code::OutOfRange,
            Self::Log(_) | Self::BadRequest(_) => Code::InvalidArgument,
            Self::Circuit(veilgrid_circuits::Error::Unsatisfied { .. }) => Code::FailedPrecondition,
            Self::Circuit(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::NoKeys(_) => Code::FailedPrecondition,
            Self::Keys(_) => Code::DataLoss,
            Self::StaleKeys(_) => Code::FailedPrecondition,
            Self::Store(_) | Self::Io { .. } | Self::Internal(_) => Code::Internal,
            Self::Kit(_) => Code::Unavailable,
            Self::Remote { status, .. } => status.code(),
        }
    }
}

impl From<ProverError> for Status {
    fn from(e: ProverError) -> Self {
        if let ProverError::Remote { status, .. } = e {
            return status;
        }
        Status::new(e.code(), e.to_string())
    }
}
