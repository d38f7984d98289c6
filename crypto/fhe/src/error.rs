//! The crate's single error type.

/// Everything that can go wrong in model loading, key handling, encryption, evaluation and
/// decryption. Decoders of untrusted bytes return these instead of panicking.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A model file could not be parsed.
    #[error("model file: {0}")]
    ModelFormat(String),
    /// A model parsed but is not usable (inconsistent, too large for the parameter set, ...).
    #[error("model {model}: {reason}")]
    InvalidModel {
        /// Model name.
        model: String,
        /// What is wrong.
        reason: String,
    },
    /// No model of that name.
    #[error("unknown model {0:?}")]
    UnknownModel(String),
    /// The input vector has the wrong number of features.
    #[error("wrong number of inputs: the model expects {expected}, got {got}")]
    InputLength {
        /// Features the model expects.
        expected: usize,
        /// Features given.
        got: usize,
    },
    /// A raw feature value is NaN or infinite (refused; finite values are clamped).
    #[error("input {index} is not a finite number")]
    NonFiniteInput {
        /// Index of the offending feature.
        index: usize,
    },
    /// An already-quantized input is outside the quantizer's range (refused, not clamped).
    #[error("quantized input {index} = {value} is outside 0..={max}")]
    QuantizedInputOutOfRange {
        /// Index of the offending feature.
        index: usize,
        /// The value given.
        value: u64,
        /// Largest allowed value, 2^bits - 1.
        max: u64,
    },
    /// Bytes longer than the limit for what they claim to be.
    #[error("{what} is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Length received.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Bytes that do not decode (garbage, truncated, wrong type or tfhe version).
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// Decoded, but made for other parameters (tfhe conformance check or our own shape check).
    #[error("{what} does not match the parameter set {params}: {reason}")]
    NonConformant {
        /// What was being checked.
        what: &'static str,
        /// The parameter set expected.
        params: &'static str,
        /// What differs.
        reason: String,
    },
    /// The query was encrypted for another model than the one evaluating it.
    #[error("query is for model {query:?}, not {model:?}")]
    ModelMismatch {
        /// Model named in the query.
        query: String,
        /// Model asked to evaluate it.
        model: String,
    },
    /// The query or result names another evaluation key than the one given.
    #[error("query is for key {query}, not {key}")]
    KeyMismatch {
        /// Key id in the query (hex).
        query: String,
        /// Key id offered (hex).
        key: String,
    },
    /// Uploaded key bytes do not hash to the key id announced with them (corrupted upload).
    #[error("key bytes hash to {actual}, not to the announced id {expected}")]
    KeyIdMismatch {
        /// Announced id (hex).
        expected: String,
        /// SHA-256 of the bytes received (hex).
        actual: String,
    },
    /// A key id in text form is not 64 hex digits.
    #[error("key id must be 64 hex digits")]
    BadKeyId,
    /// The embedded data set could not be parsed (a build problem, not a runtime input).
    #[error("dataset: {0}")]
    Dataset(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
