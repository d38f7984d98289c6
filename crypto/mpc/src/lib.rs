//! Three-party replicated secret sharing over Z_2^64, comparisons and the sealed-bid
//! auction circuit. No I/O.
//!
//! * [`order`]: what a client does — validate an order, share it into one payload per
//!   node (the caller seals each with `veilgrid_core::seal`), reconstruct its fill;
//! * [`node`]: what a matching node does, as typestates [`node::Collecting`] →
//!   [`node::Checked`] → [`node::Cleared`] → [`node::Filled`]; every phase is a
//!   [`Running`] state machine that emits [`Message`]s for the two other nodes and
//!   consumes theirs, so the same code runs in process and over gRPC streams;
//! * [`binding`]: the range proofs of quantities and limits (client), their batch
//!   verification and the commitment check that binds them to the shares (nodes);
//! * [`outcome`]: the public result and its canonical bytes for signing;
//! * [`plain`]: the auction rule in the clear, the reference for tests;
//! * [`sim`]: all three nodes in one process.
//!
//! The documents below explain the math.
#![doc = include_str!("../docs/sharing.md")]
#![doc = include_str!("../docs/multiplication.md")]
#![doc = include_str!("../docs/adder.md")]
#![doc = include_str!("../docs/auction.md")]
#![doc = include_str!("../docs/binding.md")]
#![doc = include_str!("../docs/security.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod binding;
mod clearing;
mod compare;
mod convert;
mod ctx;
mod engine;
mod error;
pub mod message;
pub mod node;
pub mod order;
pub mod outcome;
mod party;
pub mod plain;
mod prf;
mod share;
pub mod sim;
mod transpose;
mod verify;

#[cfg(test)]
mod binding_tests;
#[cfg(test)]
mod tests;

pub use binding::{OrderStatement, verify_round_record};
pub use clearing::comparison_width;
pub use compare::{and_gates_per_comparison, steps_per_comparison};
pub use ctx::SecurityMode;
pub use engine::{Running, Step};
pub use error::Error;
pub use message::{Message, Phase};
pub use node::{
    Checked, Cleared, Collecting, DropReason, Filled, NodeKeys, ProofVerdict, RoundConfig,
};
pub use order::{FillShare, Order, OrderId, OrderPayload, Side, reconstruct_fill, share_order};
pub use outcome::{ClearingResult, RoundOutcome};
pub use party::PartyId;
pub use prf::PairSeed;
pub use verify::{STAT_SECURITY, bucket_parameters};

/// Benchmark hooks: raw batched comparisons outside an auction.
pub mod bench_api {
    pub use crate::tests_support::{
        ComparisonRun, PreparedCommitmentCheck, PreparedComparisons, prepare_commitment_check,
        prepare_comparisons, run_comparisons,
    };
}
mod tests_support;
