//! Shared helpers of the end-to-end tests: grids on port 0, test providers.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use tonic::Status;
use veilgrid::{
    client::GridClient,
    grid::{self, GridOptions, LocalGrid},
};
use veilgrid_kit::{
    Shutdown,
    identity::Identity,
    provider::{Context, Handler, ProviderConfig, ProviderService},
};
use veilgrid_router::RouterConfig;

/// A router config with fast upkeep for tests.
pub fn fast_router() -> RouterConfig {
    RouterConfig {
        health_interval: Duration::from_millis(200),
        min_ttl: Duration::from_millis(100),
        ..RouterConfig::default()
    }
}

pub async fn start(router: RouterConfig) -> LocalGrid {
    grid::start(GridOptions {
        router,
        ..GridOptions::default()
    })
    .await
    .expect("grid starts")
}

pub async fn client(g: &LocalGrid) -> GridClient {
    GridClient::connect(&g.router_url).await.expect("connect")
}

/// Sleeps, then echoes.
pub struct Slow(pub Duration);

#[tonic::async_trait]
impl Handler for Slow {
    async fn complete(&self, _: &Context, payload: Bytes) -> Result<Bytes, Status> {
        tokio::time::sleep(self.0).await;
        Ok(payload)
    }
}

/// Echoes.
pub struct Echo;

#[tonic::async_trait]
impl Handler for Echo {
    async fn complete(&self, _: &Context, payload: Bytes) -> Result<Bytes, Status> {
        Ok(payload)
    }
}

/// Tells the test it has the request, then never answers.
pub struct Hang(pub tokio::sync::mpsc::Sender<()>);

#[tonic::async_trait]
impl Handler for Hang {
    async fn complete(&self, _: &Context, _: Bytes) -> Result<Bytes, Status> {
        let _ = self.0.send(()).await;
        std::future::pending::<()>().await;
        Err(Status::internal("unreachable"))
    }
}

pub fn provider(name: &str, protocol: &str, price: u64, h: Arc<dyn Handler>) -> ProviderService {
    ProviderService::builder(
        Arc::new(Identity::generate()),
        ProviderConfig {
            name: name.into(),
            ..ProviderConfig::default()
        },
    )
    .protocol(protocol, price, h)
    .build()
}

/// Serve and register a provider on the test's runtime.
pub async fn add(g: &LocalGrid, p: ProviderService, ttl: Duration) -> Shutdown {
    let sd = g.shutdown.child_token();
    grid::start_provider(p, &g.router_url, ttl, sd.clone())
        .await
        .expect("provider registers");
    sd
}

/// A provider on a runtime of its own, so the test can kill it outright
/// (connections dropped mid-request, no deregistration) with `shutdown_background`.
pub fn add_killable(router_url: &str, p: ProviderService) -> tokio::runtime::Runtime {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let url = router_url.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let r = grid::start_provider(p, &url, Duration::from_secs(30), Shutdown::new()).await;
        let _ = tx.send(r.is_ok());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(10))
            .expect("registered in time")
    );
    rt
}
