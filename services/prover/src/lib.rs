//! The prover and audit-log service (issue 6).
//!
//! * [`audit_log::AuditLog`]: the RFC 9162 transparency log of completion receipts
//!   (`veilgrid-zk`) over SQLite under the data directory, with signed C2SP
//!   checkpoints. It refuses to start, and to serve, when a stored entry or
//!   checkpoint was truncated or altered.
//! * [`keys::KeyRing`]: the Groth16 keys (`veilgrid-circuits`) set up by
//!   `veilgrid prover setup`, verifying keys pinned by id.
//! * [`grpc::ProverService`]: the typed API `veilgrid.prover.v1.Prover`;
//!   [`handler::ProverHandler`]: the same calls as byte completions through the
//!   router ([`protocols`]).
//! * [`client::ProverClient`]: auditors' and tools' client, direct or through the router.
//!
//! Receipts reach the log from the router: the router pushes the receipts it
//! records to every provider serving [`protocols::CHECKPOINT`], over
//! `Prover.AppendReceipts` (idempotent, resumable, per-source cursor).
#![doc = include_str!("../docs/service.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod api;
pub mod audit;
pub mod audit_log;
pub mod client;
mod error;
pub mod grpc;
pub mod handler;
pub mod keys;
pub mod protocols;
pub mod store;

use std::{path::PathBuf, sync::Arc, time::Duration};

pub use api::Prover;
pub use error::ProverError;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use veilgrid_kit::{
    Shutdown,
    identity::Identity,
    provider::{ProviderConfig, ProviderService},
    registration,
};
use veilgrid_proto::prover::v1::prover_server::ProverServer;

/// Settings of a prover.
#[derive(Debug, Clone)]
pub struct ProverConfig {
    /// Where the log, its key, the provider identity and the Groth16 keys live
    /// (`<dir>/keys`); `None` = in memory, fresh keys.
    pub data_dir: Option<PathBuf>,
    /// Where the log lives instead (`--store`: `sqlite:DIR`, or a PostgreSQL database, tables
    /// `prover_*`); by default `log.sqlite3` in `data_dir`. Its signing key stays in
    /// `data_dir` either way.
    pub store: veilgrid_kit::store_spec::StoreSpec,
    /// The log's origin (checkpoint first line, note key name).
    pub origin: String,
    /// Without keys in the data directory, set up the small development keys
    /// ([`keys::dev_specs`]) on first use (and store them, with a data directory).
    pub dev_keys: bool,
    /// Register with this router (URL) as the provider of the audit protocols.
    pub router: Option<String>,
    /// The URL the router reaches this server at (default: the listener's address).
    pub advertise: Option<String>,
    /// Lease length when registering.
    pub ttl: Duration,
    /// Label in provider listings.
    pub name: String,
    /// Plaintext, or mutual TLS for this server and its connection to the router
    /// (certificate issued to the service name `prover`).
    pub security: veilgrid_kit::tls::Security,
}

impl Default for ProverConfig {
    fn default() -> Self {
        Self {
            data_dir: None,
            store: veilgrid_kit::store_spec::StoreSpec::Default,
            origin: audit_log::DEFAULT_ORIGIN.into(),
            dev_keys: false,
            router: None,
            advertise: None,
            ttl: Duration::from_secs(30),
            name: "prover".into(),
            security: veilgrid_kit::tls::Security::Plaintext,
        }
    }
}

impl ProverConfig {
    /// Where the Groth16 keys live.
    pub fn keys_dir(&self) -> Option<PathBuf> {
        self.data_dir.as_ref().map(|d| d.join("keys"))
    }
}

/// Open the log and load (or, with `dev_keys`, set up) the keys.
pub fn open(config: &ProverConfig) -> Result<Prover, ProverError> {
    let log = Arc::new(audit_log::AuditLog::open_store(
        &config.store,
        config.data_dir.as_deref(),
        &config.origin,
    )?);
    let keys = match config.keys_dir() {
        Some(dir) => match keys::KeyRing::load(&dir) {
            // Development keys of an older circuit version are simply set up again.
            Err(ProverError::StaleKeys(why)) if config.dev_keys => {
                tracing::warn!("{why}; setting up development keys again");
                keys::KeyRing::setup(&dir, &keys::dev_specs())?;
                keys::KeyRing::load(&dir)?
            }
            other => other?,
        },
        None => None,
    };
    Ok(Prover::new(log, keys, config.dev_keys, config.keys_dir()))
}

/// The provider (byte completions) of a prover.
pub fn provider(prover: Prover, identity: Arc<Identity>, config: &ProverConfig) -> ProviderService {
    let handler = handler::ProverHandler::new(prover);
    let mut b = ProviderService::builder(
        identity,
        ProviderConfig {
            name: config.name.clone(),
            max_payload: handler::MAX_PAYLOAD,
            ..ProviderConfig::default()
        },
    );
    for p in protocols::ALL {
        b = b.protocol(p, 0, handler.clone());
    }
    b.build()
}

/// Run a prover on `listener` until `shutdown` fires: the gRPC API and the
/// `Provider` service on one port, registered with the router if one is configured.
pub async fn run(
    listener: TcpListener,
    shutdown: Shutdown,
    config: ProverConfig,
) -> Result<(), ProverError> {
    let cfg = config.clone();
    let prover = api::blocking(move || open(&cfg)).await?;
    serve(listener, shutdown, config, prover).await
}

/// Like [`run`] over an opened [`Prover`].
pub async fn serve(
    listener: TcpListener,
    shutdown: Shutdown,
    config: ProverConfig,
    prover: Prover,
) -> Result<(), ProverError> {
    let identity = Arc::new(match &config.data_dir {
        Some(dir) => Identity::load_or_create(&dir.join("provider"))?,
        None => Identity::generate(),
    });
    let provider = provider(prover.clone(), identity, &config);
    let api = ProverServer::new(grpc::ProverService { prover })
        .max_decoding_message_size(client::MAX_RESPONSE)
        .max_encoding_message_size(client::MAX_RESPONSE);
    let mut routes = RoutesBuilder::default();
    routes.add_service(api);
    registration::serve_registered_secure(
        listener,
        shutdown,
        routes,
        provider,
        config.router.clone(),
        config.advertise.clone(),
        config.ttl,
        &config.security,
    )
    .await?;
    Ok(())
}
