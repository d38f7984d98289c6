//! The matching nodes of issue 5 (in progress).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod error;
pub mod rates;

pub use error::MatchError;
