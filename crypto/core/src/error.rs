use thiserror::Error as ThisError;

/// Errors of the cryptographic core. Messages never contain secret material.
#[derive(Debug, ThisError, Clone, PartialEq, Eq)]
pub enum Error {
    /// An input was longer than the limit that applies to it.
    #[error("{what} is {actual} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Its length.
        actual: usize,
        /// The limit.
        limit: usize,
    },
    /// Bytes did not decode as the expected value.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// Sealing a payload failed.
    #[error("sealing failed: {0}")]
    Seal(String),
    /// A sealed payload could not be opened: wrong recipient, wrong context or tampered bytes.
    #[error(
        "sealed payload could not be opened (wrong recipient key, wrong context, or tampered bytes)"
    )]
    Open,
    /// A signature did not verify.
    #[error("signature does not verify for {what}")]
    BadSignature {
        /// What was signed.
        what: &'static str,
    },
}
