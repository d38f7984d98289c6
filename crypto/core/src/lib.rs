//! Veilgrid's cryptographic core.
//!
//! Everything every other crate needs and nothing that does I/O:
//!
//! * [`Error`]: the one error type of this crate;
//! * [`secret::Secret`]: a zeroize-on-drop wrapper that hides itself in `Debug`;
//! * [`protocol::ProtocolId`]: `SHA-256(name)`, the only thing the router reads;
//! * [`seal`]: HPKE (RFC 9180) sealing of payloads meant for one party only;
//! * [`sign`]: Ed25519 identities of providers;
//! * [`prepared_verifier`]: `verify_strict` against one key many times, with per-key tables;
//! * [`receipt`]: the signed receipt of a completion and its canonical encoding;
//! * [`limits`]: size checks that every decoder of network bytes calls first.
#![doc = include_str!("../docs/core.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod error;
pub mod limits;
pub mod prepared_verifier;
pub mod protocol;
pub mod receipt;
pub mod seal;
pub mod secret;
pub mod sign;

pub use error::Error;
