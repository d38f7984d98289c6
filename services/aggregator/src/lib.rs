//! The one-shot secure aggregation service (issue 4) over the math of `veilgrid-aggregation`.
//!
//! * [`rounds::Rounds`]: the logic. Each call runs one typestate step of the math crate on the
//!   round's state loaded from the store and stores the new snapshot in the same transaction,
//!   so rounds survive a restart of the service.
//! * [`store`]: where rounds live, SQLite (default) or PostgreSQL (`--store postgres://…`,
//!   shared by several servers).
//! * [`grpc::AggregationService`]: the typed gRPC API `veilgrid.aggregation.v1.Aggregation`.
//! * [`handler::AggregationHandler`]: the same API as byte completions through the router,
//!   protocols [`protocols`] (`veilgrid/agg/<rpc>/v1`).
//! * [`member::Member`]: a committee member, a provider of its own whose lease publishes the
//!   X25519 key clients seal its shares to and the Ed25519 key its reports and answers are
//!   signed with ([`signing`]).
//! * [`client`]: callers (round owners, clients, members), direct or through the router.
//!
//! Start a server with [`run`] on a bound listener (port 0 in tests) and a shutdown token.
#![doc = include_str!("../docs/service.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod client;
mod error;
pub mod grpc;
pub mod handler;
pub mod member;
pub mod protocols;
pub mod rounds;
pub mod signing;
pub mod store;

/// The math crate the service runs (`veilgrid-aggregation`), for callers that build messages
/// themselves (benchmarks, auditors).
pub use veilgrid_aggregation as math;

use std::{path::PathBuf, sync::Arc, time::Duration};

pub use error::AggError;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use veilgrid_kit::{
    Shutdown,
    identity::Identity,
    provider::{ProviderConfig, ProviderService},
    registration::{self, RegistrationConfig},
};
use veilgrid_proto::aggregation::v1::aggregation_server::AggregationServer;

/// Settings of an aggregation server.
#[derive(Debug, Clone)]
pub struct AggregatorConfig {
    /// Where rounds (and the provider identity) live; `None` = in memory, fresh identity.
    pub data_dir: Option<PathBuf>,
    /// Where rounds live instead (`--store`: `sqlite:DIR`, or a PostgreSQL database shared
    /// by several aggregation servers); by default `aggregator.sqlite3` in `data_dir`.
    pub store: veilgrid_kit::store_spec::StoreSpec,
    /// Largest request accepted (gRPC message or completion payload), bytes.
    pub max_message: usize,
    /// Register with this router (URL) as the provider of the `veilgrid/agg/...` protocols.
    pub router: Option<String>,
    /// The URL the router reaches this server at (default: the listener's address).
    pub advertise: Option<String>,
    /// Lease length when registering.
    pub ttl: Duration,
    /// Label in provider listings.
    pub name: String,
    /// Plaintext, or mutual TLS with this server's certificate for its server and its
    /// registration (`veilgrid_kit::tls`).
    pub security: veilgrid_kit::tls::Security,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        Self {
            data_dir: None,
            store: veilgrid_kit::store_spec::StoreSpec::Default,
            max_message: 64 << 20,
            router: None,
            advertise: None,
            ttl: Duration::from_secs(30),
            name: "aggregator".into(),
            security: veilgrid_kit::tls::Security::Plaintext,
        }
    }
}

/// The provider (byte completions) of an aggregation server over `rounds`.
pub fn provider(
    rounds: Arc<rounds::Rounds>,
    identity: Arc<Identity>,
    config: &AggregatorConfig,
) -> ProviderService {
    provider_with(
        handler::AggregationHandler::new(rounds, config.max_message),
        identity,
        config,
    )
}

/// The provider over `handler` (e.g. one that tracks round owners).
pub fn provider_with(
    handler: Arc<handler::AggregationHandler>,
    identity: Arc<Identity>,
    config: &AggregatorConfig,
) -> ProviderService {
    let mut b = ProviderService::builder(
        identity,
        ProviderConfig {
            name: config.name.clone(),
            max_payload: config.max_message,
            ..ProviderConfig::default()
        },
    );
    for p in protocols::SERVER_PROTOCOLS {
        b = b.protocol(p, 0, handler.clone());
    }
    b.build()
}

/// Run an aggregation server on `listener` until `shutdown` fires: the gRPC API and the
/// `Provider` service on the same port, registered with the router if one is configured.
pub async fn run(
    listener: TcpListener,
    shutdown: Shutdown,
    config: AggregatorConfig,
) -> Result<(), AggError> {
    let rounds = Arc::new(rounds::Rounds::open_store(
        &config.store,
        config.data_dir.as_deref(),
    )?);
    let identity = Arc::new(match &config.data_dir {
        Some(dir) => Identity::load_or_create(dir)?,
        None => Identity::generate(),
    });
    // With a shared store, ownership is shared too: a round created at one server is
    // refused to other callers at every server.
    let owners = Arc::new(veilgrid_kit::auth_owners::Owners::open_store(
        &config.store,
        config.data_dir.as_deref(),
    )?);
    let provider = provider_with(
        handler::AggregationHandler::with_owners(rounds.clone(), config.max_message, owners),
        identity,
        &config,
    );
    let api = AggregationServer::new(grpc::AggregationService { rounds })
        .max_decoding_message_size(config.max_message)
        .max_encoding_message_size(config.max_message);
    let endpoint = match &config.advertise {
        Some(a) => a.clone(),
        None => config
            .security
            .url(listener.local_addr().map_err(|source| AggError::DataDir {
                path: "listener".into(),
                source,
            })?),
    };
    let mut routes = RoutesBuilder::default();
    routes.add_service(api);
    routes.add_service(provider.clone().into_server());
    let security = config.security.clone();
    let sd = shutdown.clone();
    let server = tokio::spawn(async move {
        veilgrid_kit::server::serve_secure(listener, sd, routes, &security).await
    });
    let keeper = match &config.router {
        Some(router) => Some(
            registration::start_secure(
                provider,
                RegistrationConfig {
                    router: router.clone(),
                    endpoint,
                    ttl: config.ttl,
                },
                &config.security,
                shutdown.clone(),
                Duration::from_secs(10),
            )
            .await?,
        ),
        None => None,
    };
    let served = server
        .await
        .map_err(|e| AggError::BadRequest(format!("server task: {e}")))?;
    shutdown.cancel();
    if let Some(k) = keeper {
        let _ = k.await;
    }
    Ok(served?)
}
