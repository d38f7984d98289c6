//! One-shot secure aggregation math (after IACR ePrint 2024/723, OPA): a seed-homomorphic PRG
//! from ring-LWR, Shamir sharing of the seeds, the three roles as typestate, canonical messages,
//! and a verifiable mode with Pedersen commitments and Bulletproofs. No I/O.
//!
//! ```text
//! client:  x ──encode──▶ Δ·x + G(s) mod p ──mask──▶ ClientMessage { masked, seal_i(share_i(s)) }
//! member:  open shares ─▶ Σ_{i ∈ declared} share(s_i) ──respond──▶ MemberMessage (once)
//! server:  Σ masked ─close─▶ PresentSet ─▶ t+1 member sums ─▶ Σ s_i ─▶ G(Σ s_i) ─▶ decode Σ x
//! ```
//!
//! A round in code (see `tests/round.rs` for more):
//!
//! ```
//! # use veilgrid_aggregation::*;
//! # use veilgrid_core::seal::SealKeyPair;
//! let keys: Vec<SealKeyPair> = (0..3).map(|_| SealKeyPair::generate()).collect();
//! let params = RoundParams::new(4, 8, 10, 3, 1)?;
//! let round = Round::new([1; 32], params, [2; 32], keys.iter().map(|k| k.public()).collect())?;
//! let mut rng = rand_core::OsRng;
//! let msgs = vec![
//!     Client::new(&round, 1).encode(&[1, 2, 3, 4])?.mask(&mut rng)?,
//!     Client::new(&round, 2).encode(&[10, 20, 30, 40])?.mask(&mut rng)?,
//! ];
//! let mut server = ServerCollecting::new(&round);
//! for m in &msgs { server.accept(m)?; }
//! let mut server = server.close()?;
//! for (i, kp) in keys.iter().enumerate().take(2) {
//!     let mut member = CommitteeMember::new(&round, i as u16 + 1, kp)?;
//!     for m in &msgs { member.accept_share(m.client(), m.sealed_share(i as u16 + 1).unwrap())?; }
//!     server.accept_member(&member.respond(server.present())?)?;
//! }
//! assert_eq!(server.finish()?.sum, vec![11, 22, 33, 44]);
//! # Ok::<(), veilgrid_aggregation::Error>(())
//! ```
#![doc = include_str!("../docs/protocol.md")]
#![doc = include_str!("../docs/benchmarks.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accumulator;
pub mod client;
pub mod error;
pub mod member;
pub mod messages;
pub mod modarith;
pub mod ntt;
pub mod params;
pub mod prg;
pub mod round;
pub mod server;
pub mod shamir;
pub mod verifiable;
pub mod wire;
pub mod xof;

pub use client::{Client, EncodedInput};
pub use error::Error;
pub use member::{CommitteeMember, HeldShares};
pub use messages::{ClientId, ClientMessage, MemberMessage, PresentSet};
pub use params::{RingSet, RoundParams};
pub use prg::{PlainLwrPrg, RlwrPrg, Seed, SeedHomomorphicPrg};
pub use round::Round;
pub use server::{AggregateResult, ServerAwaitingMembers, ServerCollecting};
pub use verifiable::{Attachment, AuditTranscript, RangeStatement, range_statement, verify_client};
