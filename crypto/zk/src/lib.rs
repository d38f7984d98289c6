//! Pedersen commitments, Bulletproofs range proofs, receipts and the RFC 6962 Merkle audit log. No I/O.
//!
//! * [`merkle`]: RFC 6962 / RFC 9162 hashing, an append-only tree of any size,
//!   inclusion and consistency proofs and their verification;
//! * [`note`]: C2SP signed notes and checkpoints (Ed25519), log signer and verifier keys;
//! * [`log`]: the transparency log of receipts over a [`log::LogStore`], which
//!   refuses to start or to sign over a truncated or altered store, and
//!   offline-verifiable proof bundles in the C2SP `tlog-proof` format;
//! * [`range`]: Pedersen commitments on Ristretto and Bulletproofs range proofs
//!   (single, aggregated, bounded `[min, max]`, batch-verified), every public
//!   value bound into the transcript.
#![doc = include_str!("../docs/overview.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod log;
pub mod merkle;
pub mod note;
pub mod range;

pub use error::{BundleItem, Error};
