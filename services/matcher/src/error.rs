//! The one error type of the matching service, and its gRPC status codes.

use tonic::{Code, Status};

/// What can go wrong in a matching node or client.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    /// The request is malformed or out of range.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No such round at this node.
    #[error("unknown round {0}")]
    UnknownRound(String),
    /// A round id that is already in use.
    #[error("round {0} already exists")]
    RoundExists(String),
    /// The round is not in the state the call needs.
    #[error("round {round} is {state}; cannot {action}")]
    WrongState {
        /// Round id (hex).
        round: String,
        /// Its state.
        state: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// A currency id that another issuer registered.
    #[error("currency taken: {0}")]
    CurrencyTaken(String),
    /// A round names a currency nobody registered.
    #[error(
        "currency {0} is not registered; register it first (`veilgrid match currency register`)"
    )]
    UnknownCurrency(String),
    /// The round's deadline has passed.
    #[error("the round's deadline has passed")]
    DeadlinePassed,
    /// The MPC refused an input or failed.
    #[error("mpc: {0}")]
    Mpc(#[from] veilgrid_mpc::Error),
    /// Sealing, opening or signing failed.
    #[error("crypto: {0}")]
    Crypto(#[from] veilgrid_core::Error),
    /// Another node could not be reached or went away.
    #[error("node {party}: {reason}")]
    Peer {
        /// The other node's party index.
        party: u8,
        /// What happened.
        reason: String,
    },
    /// The round was aborted.
    #[error("round aborted: {0}")]
    Aborted(String),
    /// A remote call failed.
    #[error("{what}: {status}")]
    Remote {
        /// The call.
        what: &'static str,
        /// The status it returned.
        status: Status,
    },
    /// A protobuf message did not decode.
    #[error("decoding {what}: {source}")]
    Decode {
        /// What was decoded.
        what: &'static str,
        /// The decoder's error.
        source: prost::DecodeError,
    },
    /// Serving or registering failed.
    #[error("kit: {0}")]
    Kit(#[from] veilgrid_kit::KitError),
    /// The rate system could not be solved.
    #[error("rates: {0}")]
    Rates(String),
    /// Reading or writing the node's files (data directory, keys) failed.
    #[error("{what} {path}: {reason}")]
    Storage {
        /// What was read or written.
        what: &'static str,
        /// The file.
        path: String,
        /// Why it failed.
        reason: String,
    },
}

impl From<MatchError> for Status {
    fn from(e: MatchError) -> Status {
        let code = match &e {
            MatchError::BadRequest(_) | MatchError::Decode { .. } => Code::InvalidArgument,
            MatchError::Mpc(_) | MatchError::Crypto(_) => Code::InvalidArgument,
            MatchError::UnknownRound(_) => Code::NotFound,
            MatchError::RoundExists(_) | MatchError::CurrencyTaken(_) => Code::AlreadyExists,
            MatchError::UnknownCurrency(_) => Code::FailedPrecondition,
            MatchError::WrongState { .. } | MatchError::DeadlinePassed => Code::FailedPrecondition,
            MatchError::Peer { .. } => Code::Unavailable,
            MatchError::Aborted(_) => Code::Aborted,
            MatchError::Remote { status, .. } => status.code(),
            MatchError::Kit(_) | MatchError::Rates(_) | MatchError::Storage { .. } => {
                Code::Internal
            }
        };
        Status::new(code, e.to_string())
    }
}
