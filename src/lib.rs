//! Veilgrid: privacy-preserving computation behind one grid router.
//!
//! This crate is the `veilgrid` program (its commands live in [`cli`]) and the
//! library the end-to-end tests and benchmarks drive:
//!
//! * [`grid`]: start a router and providers in-process on loopback;
//! * [`client`]: call a router (unary and streamed completions, provider listings)
//!   and verify what comes back;
//! * [`demo`]: the end-to-end story `veilgrid demo` tells.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
pub mod client;
pub mod demo;
mod error;
pub mod grid;

pub use error::Error;

/// The router address used when neither `--router` nor `VEILGRID_ROUTER` is given:
/// where `veilgrid up` listens by default, with mutual TLS (its CA and the client
/// certificates under `<data dir>/tls`). Against `veilgrid up --insecure` pass
/// `--router http://127.0.0.1:7700`.
pub const DEFAULT_ROUTER: &str = "https://127.0.0.1:7700";
/// The listen address of `veilgrid up` by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";
