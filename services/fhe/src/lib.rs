//! The FHE inference service (issue 3) over the math of `veilgrid-fhe` (tfhe-rs 1.8).
//!
//! * [`engine::Engine`]: models, the compressed-key store under the data directory, the LRU of
//!   decompressed keys ([`cache::KeyCache`]) and the dedicated evaluation pool.
//! * [`grpc::FheService`]: the typed gRPC API `veilgrid.fhe.v1.Fhe`.
//! * [`handler::FheHandler`]: the same API as byte completions through the router, protocols
//!   [`protocols`] (`veilgrid/fhe/<rpc>/v1`); key registration as a streaming completion.
//! * [`client`]: the institution's side, direct or through the router: register a key (chunked,
//!   with progress), list models, encrypt and send queries, decrypt answers.
//!
//! Start a server with [`run`] on a bound listener (port 0 in tests) and a shutdown token.
#![doc = include_str!("../docs/service.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cache;
pub mod client;
pub mod engine;
mod error;
pub mod grpc;
pub mod handler;
pub mod protocols;
mod store;

use std::{sync::Arc, time::Duration};

pub use error::FheServiceError;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use veilgrid_kit::{
    Shutdown,
    identity::Identity,
    provider::{ProviderConfig, ProviderService},
    registration,
};
use veilgrid_proto::fhe::v1::fhe_server::FheServer;

pub use engine::{Engine, EngineConfig};

/// Largest gRPC message or completion payload: a whole compressed key (40 MiB limit) in one
/// `RegisterKeyRequest` through the router's streaming completion, plus framing.
pub const MAX_MESSAGE: usize = veilgrid_fhe::params::MAX_COMPRESSED_SERVER_KEY_BYTES + (1 << 20);

/// Settings of an FHE server.
#[derive(Debug, Clone)]
pub struct FheConfig {
    /// Keys, cache and pool.
    pub engine: EngineConfig,
    /// Register with this router (URL) as the provider of the `veilgrid/fhe/...` protocols.
    pub router: Option<String>,
    /// The URL the router reaches this server at (default: the listener's address).
    pub advertise: Option<String>,
    /// Lease length when registering.
    pub ttl: Duration,
    /// Label in provider listings.
    pub name: String,
    /// Queries evaluated at once (more get `UNAVAILABLE` through the router, so it can pick
    /// another provider).
    pub capacity: u32,
    /// Deadline applied to completions that name none (a tree batch takes seconds).
    pub default_deadline: Duration,
    /// Plaintext, or mutual TLS for this server and its connection to the router
    /// (certificate issued to the service name `fhe`).
    pub security: veilgrid_kit::tls::Security,
}

impl Default for FheConfig {
    fn default() -> Self {
        Self {
            engine: EngineConfig::default(),
            router: None,
            advertise: None,
            ttl: Duration::from_secs(30),
            name: "fhe".into(),
            capacity: 16,
            default_deadline: Duration::from_secs(600),
            security: veilgrid_kit::tls::Security::Plaintext,
        }
    }
}

/// The provider (byte completions) of an FHE server over `engine`.
pub fn provider(
    engine: Arc<Engine>,
    identity: Arc<Identity>,
    config: &FheConfig,
) -> ProviderService {
    let handler = handler::FheHandler::new(engine);
    let mut b = ProviderService::builder(
        identity,
        ProviderConfig {
            name: config.name.clone(),
            max_payload: MAX_MESSAGE,
            capacity: config.capacity,
            default_deadline: config.default_deadline,
            ..ProviderConfig::default()
        },
    );
    for p in protocols::PROTOCOLS {
        b = b.protocol(p, 0, handler.clone());
    }
    b.build()
}

/// Run an FHE server on `listener` until `shutdown` fires: the gRPC API and the `Provider`
/// service on the same port, registered with the router if one is configured. The provider
/// identity lives in `<data_dir>/identity` when a data directory is configured.
pub async fn run(
    listener: TcpListener,
    shutdown: Shutdown,
    config: FheConfig,
) -> Result<(), FheServiceError> {
    let engine = Arc::new(Engine::new(&config.engine)?);
    run_with_engine(engine, listener, shutdown, config).await
}

/// [`run`] over an existing engine (tests inspect its cache).
pub async fn run_with_engine(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: Shutdown,
    config: FheConfig,
) -> Result<(), FheServiceError> {
    let identity = Arc::new(match &config.engine.data_dir {
        Some(dir) => Identity::load_or_create(dir)?,
        None => Identity::generate(),
    });
    let provider = provider(engine.clone(), identity, &config);
    let api = FheServer::new(grpc::FheService::new(engine))
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
