//! The crate's single error type.

use thiserror::Error;

/// Everything that can go wrong in this crate.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// A model, order book or witness does not fit the circuit's shape or the
    /// documented value ranges.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was being checked.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// Bytes to decode are longer than the limit for that object.
    #[error("{what} is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `ark-serialize` refused the bytes (wrong length, not on the curve, not in
    /// the prime-order subgroup, non-canonical field element, trailing bytes...).
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's reason.
        reason: String,
    },
    /// Constraint synthesis failed (a bug, or a witness that is not in range).
    #[error("constraint synthesis failed: {0}")]
    Synthesis(String),
    /// The witness does not satisfy the circuit: the statement is false.
    #[error("the witness does not satisfy the {circuit} circuit")]
    Unsatisfied {
        /// Which circuit.
        circuit: &'static str,
    },
    /// A proof did not verify against the verifying key and public inputs.
    #[error("proof rejected: {0}")]
    ProofRejected(&'static str),
    /// The verifying key is not the one the caller pinned.
    #[error("verifying key id mismatch: expected {expected}, got {actual}")]
    WrongVerifyingKey {
        /// The pinned id (hex).
        expected: String,
        /// The id of the key that was given (hex).
        actual: String,
    },
    /// Writing an export failed (file system).
    #[error("export failed: {0}")]
    Export(String),
}

impl Error {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

impl From<ark_relations::gr1cs::SynthesisError> for Error {
    fn from(e: ark_relations::gr1cs::SynthesisError) -> Self {
        Self::Synthesis(e.to_string())
    }
}

/// Result alias for this crate.
pub type Result<T> = core::result::Result<T, Error>;
