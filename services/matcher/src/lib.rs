//! The three matching nodes of issue 5.
//!
//! * [`node`]: one node's rounds; a closed round's MPC phases (from `veilgrid-mpc`)
//!   run in a task that exchanges messages with the two other nodes;
//! * `net`: the direct node-to-node gRPC streams (signed hello, 1 MiB chunks);
//! * [`api`]: the client calls, served through the router as byte completions
//!   under `veilgrid/match/<rpc>/v1`;
//! * [`client`]: what a trader does: share and seal orders, collect the signed
//!   outcome, open and check its fills;
//! * [`rates`]: the exchange-rate table from cleared rounds;
//! * [`currency`]: personal currencies, registered by their issuers;
//! * [`local`]: three nodes in one process;
//! * [`keys`]: the keys of three nodes run as separate processes (`veilgrid match keygen`).
#![doc = include_str!("../docs/service.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod api;
pub mod client;
pub mod currency;
mod error;
pub mod keys;
pub mod local;
mod net;
pub mod node;
pub mod rates;

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use veilgrid_kit::{
    Shutdown,
    provider::{ProviderConfig, ProviderService},
    registration,
};

pub use error::MatchError;
pub use node::{Fault, FaultAction, MatcherConfig, Node, NodeAddress, party_name};
pub use veilgrid_mpc;

/// Price of one matching call, in the node's currency.
pub const PRICE: u64 = 1;

/// The provider (client protocols) of a node.
pub fn provider(node: &Arc<Node>, provider: ProviderConfig) -> ProviderService {
    let mut b = ProviderService::builder(node.config.identity.clone(), provider);
    for rpc in api::Rpc::ALL {
        b = b.protocol(
            rpc.protocol(),
            PRICE,
            Arc::new(api::Api {
                node: node.clone(),
                rpc,
            }),
        );
    }
    b.build()
}

/// Serve one node on `listener` until `shutdown`: the `Provider` service (the client
/// protocols) and the `NodeToNode` service, with `config.security` (under mutual TLS
/// the advertised endpoint must be `https://`); registers with the router when
/// `config.register` is given (its `endpoint` must be this listener's URL).
pub async fn run(
    listener: TcpListener,
    shutdown: Shutdown,
    config: MatcherConfig,
) -> Result<(), MatchError> {
    let register = config.register.clone();
    let security = config.security.clone();
    let node = Node::new(config)?;
    let p = provider(&node, node.config.provider.clone());
    let mut routes = RoutesBuilder::default();
    routes.add_service(net::NodeNet(node.clone()).into_server());
    let (router, advertise, ttl) = match register {
        Some(r) => (Some(r.router), Some(r.endpoint), r.ttl),
        None => (None, None, Duration::from_secs(30)),
    };
    registration::serve_registered_secure(
        listener, shutdown, routes, p, router, advertise, ttl, &security,
    )
    .await
    .map_err(MatchError::from)
}
