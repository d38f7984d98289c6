//! Arkworks R1CS circuits (BN254) and Groth16 setup/prove/verify for Veilgrid.
#![doc = include_str!("../docs/overview.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod field;
pub mod poseidon;

pub use error::{Error, Result};
pub mod clearing;
pub mod gadgets;
pub mod groth16;
pub mod inference;
pub mod reference;
pub mod snarkjs;
