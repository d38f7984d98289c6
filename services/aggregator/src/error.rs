//! The crate's one error type, and how each case maps to a gRPC status code.

use thiserror::Error;
use tonic::{Code, Status};
use veilgrid_aggregation::Error as Math;

/// Everything the aggregation service can refuse or fail on.
#[derive(Debug, Error)]
pub enum AggError {
    /// The round math refused the input (see the variant for which check).
    #[error(transparent)]
    Round(#[from] Math),
    /// No round with this id.
    #[error("no round {0}")]
    NotFound(String),
    /// The operation does not fit the round's state (late client, early member, ...).
    #[error("round {round}: {reason}")]
    State {
        /// Round id (hex prefix).
        round: String,
        /// What does not fit.
        reason: String,
    },
    /// A request that does not decode or has a field of the wrong size.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The embedded store failed.
    #[error("store: {0}")]
    Store(#[from] rusqlite::Error),
    /// A stored record did not decode.
    #[error("store holds a malformed {0}")]
    CorruptStore(&'static str),
    /// The data directory could not be prepared.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Serving, registering or calling a remote service failed.
    #[error(transparent)]
    Kit(#[from] veilgrid_kit::KitError),
    /// A member's report or answer whose signature does not verify under the member's key.
    #[error("member {member}'s {what} is not signed by its key: {reason}")]
    BadSignature {
        /// The member index the message claims.
        member: u16,
        /// Which message.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A second report from the same member.
    #[error("member {0} already reported on its shares")]
    DuplicateCheck(u16),
    /// A remote call returned an error status.
    #[error("{what}: {status}")]
    Remote {
        /// What was being attempted.
        what: &'static str,
        /// The status.
        status: Status,
    },
}

impl AggError {
    /// The gRPC code this error is reported with.
    pub fn code(&self) -> Code {
        match self {
            AggError::Round(m) => match m {
                Math::DuplicateClient(_) | Math::DuplicateMember(_) => Code::AlreadyExists,
                Math::TooManyClients(_) => Code::ResourceExhausted,
                Math::NotEnoughMembers { .. } | Math::TooFewClients { .. } => {
                    Code::FailedPrecondition
                }
                Math::InconsistentMembers(_) | Math::InconsistentRound | Math::Decode(_) => {
                    Code::Aborted
                }
                _ => Code::InvalidArgument,
            },
            AggError::NotFound(_) => Code::NotFound,
            AggError::State { .. } => Code::FailedPrecondition,
            AggError::BadRequest(_) => Code::InvalidArgument,
            AggError::BadSignature { .. } => Code::Unauthenticated,
            AggError::DuplicateCheck(_) => Code::AlreadyExists,
            AggError::Store(_) | AggError::CorruptStore(_) | AggError::DataDir { .. } => {
                Code::Internal
            }
            AggError::Kit(_) => Code::Unavailable,
            AggError::Remote { status, .. } => status.code(),
        }
    }
}

impl AggError {
    /// Whether the store itself failed (the step's transaction is rolled back), rather than
    /// the request being refused.
    pub fn is_store_failure(&self) -> bool {
        matches!(
            self,
            AggError::Store(_) | AggError::Kit(veilgrid_kit::KitError::Postgres(_))
        )
    }
}

impl From<AggError> for Status {
    fn from(e: AggError) -> Self {
        Status::new(e.code(), e.to_string())
    }
}
