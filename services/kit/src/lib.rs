//! What every Veilgrid service shares.
//!
//! * [`identity`]: a provider's Ed25519 signing key and X25519 sealing key, kept
//!   in its data directory with owner-only permissions;
//! * [`provider`]: the `Provider` gRPC service every service implements through a
//!   [`provider::Handler`]: dispatch by protocol id, size limits, deadlines,
//!   capacity, signed receipts;
//! * [`chunks`]: the framing of streamed completions (header, data chunks, receipt);
//! * [`server`]: serving on a listener with `grpc.health.v1` and server reflection
//!   until a shutdown token fires;
//! * [`registration`]: register with the router under a lease, renew it, release it
//!   on shutdown;
//! * [`sqlite`]: pragmas and versioned migrations of the embedded store;
//! * [`pg`], [`store_spec`]: the shared PostgreSQL store (worker connections,
//!   versioned migrations under an advisory lock) and `--store` parsing;
//! * [`tls`], [`tls_ca`]: mutual TLS on every hop with certificates from the Veilgrid CA
//!   (opt-in; plaintext by default);
//! * [`auth`], [`auth_owners`]: who is calling (from the peer certificate, or as the
//!   router vouches over mutual TLS) and what belongs to whom;
//! * [`echo`]: the `veilgrid/echo/v1` and `veilgrid/echo/sealed/v1` protocols.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod auth;
pub mod auth_owners;
pub mod chunks;
pub mod clock;
pub mod coalesce;
pub mod echo;
mod error;
pub mod h2_unary;
pub mod identity;
pub mod pg;
mod pg_tls;
pub mod provider;
pub mod registration;
pub mod server;
pub mod shards;
pub mod sqlite;
pub mod store_spec;
pub mod tls;
pub mod tls_ca;
pub mod untrusted;

pub use error::KitError;
pub use tokio_util::sync::CancellationToken as Shutdown;
