//! Pedersen commitments on Ristretto and Bulletproofs range proofs.
#![doc = include_str!("../../docs/range-proofs.md")]

mod batch;
mod bits;
mod bounded;
mod context;
mod generators;
mod pedersen;
mod proof;

pub use batch::BatchVerifier;
pub use bits::BitSize;
pub use bounded::{BoundedProof, MAX_BOUNDED};
pub use context::{MAX_CONTEXT_FIELD_LEN, RangeContext, domains};
pub use pedersen::{Blinding, Commitment};
pub use proof::{MAX_AGGREGATED, MAX_RANGE_PROOF_BYTES, RangeProof};
