//! The Veilgrid grid router.
//!
//! It routes opaque completion bytes by protocol id to providers under lease, chosen
//! by load, price and reputation, and never parses a payload: it depends on no
//! crate that could read one (`veilgrid-fhe`, `veilgrid-aggregation`,
//! `veilgrid-mpc`). Its state (leases, the promise ledger, receipts) lives in a
//! [`store::Store`]; the embedded default is SQLite under the data directory.
//!
//! Start it with [`run`] on a bound listener (port 0 in tests) and a shutdown token.
#![doc = include_str!("../docs/router.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod error;
mod forward;
mod lease;
mod ledger;
pub mod rates;
pub mod receipt_sink;
pub mod registry;
pub mod select;
mod service;
pub mod store;

use std::{
    path::PathBuf,
    sync::{Arc, RwLock, atomic::Ordering},
    time::Duration,
};

use bytes::Bytes;
pub use error::RouterError;
use prost::Message;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use veilgrid_core::{protocol::ProtocolId, receipt::SignedReceipt};
use veilgrid_kit::{Shutdown, clock::now_ms};
use veilgrid_proto::grid::v1::router_server::RouterServer;

use crate::{rates::RateTable, registry::Registry, store::Store};

/// The health check every provider serves (`grpc.health.v1`).
const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";

/// Sees every payload and completion the router forwards: a wiretap for tests
/// (asserting the router cannot read sealed bytes) and for size accounting.
pub type Observer = Arc<dyn Fn(&ProtocolId, &[u8]) + Send + Sync>;

/// Settings of a router.
#[derive(Clone)]
pub struct RouterConfig {
    /// Where the embedded store lives; `None` = in memory (lost on exit).
    pub data_dir: Option<PathBuf>,
    /// Another store instead (`sqlite:DIR` or `postgres://…`, see [`store::open`]);
    /// a PostgreSQL store is shared by router replicas. May hold a password: never
    /// printed.
    pub store: Option<String>,
    /// Largest payload of a unary `Complete`.
    pub max_unary_payload: usize,
    /// Largest payload (and completion) of a `CompleteStream`.
    pub max_stream_payload: usize,
    /// Deadline for requests that name none.
    pub default_deadline: Duration,
    /// Shortest and longest lease granted.
    pub min_ttl: Duration,
    /// See `min_ttl`.
    pub max_ttl: Duration,
    /// How often providers' `grpc.health.v1` is checked and expired leases swept.
    pub health_interval: Duration,
    /// The router's own currency (the numeraire of the rate table).
    pub currency: String,
    /// Optional wiretap, see [`Observer`].
    pub observer: Option<Observer>,
    /// Plaintext, or mutual TLS with the router's certificate (`CN=router`): callers
    /// and providers must then present certificates from the Veilgrid CA, and the
    /// router reaches each provider over TLS expecting a certificate issued to the
    /// provider's registered name (see `veilgrid_kit::tls`).
    pub security: veilgrid_kit::tls::Security,
    /// Which matching nodes' rate tables the router accepts: `None` = any serving
    /// provider of the rates protocol (in-process grids, whose nodes the same program
    /// started); `Some(ids)` = only answers signed by these pinned provider ids
    /// (`veilgrid serve router --matcher-nodes nodes.json`); `Some(vec![])` = none,
    /// the feed is off. See [`rates`].
    pub rate_sources: Option<Vec<[u8; 32]>>,
    /// How many single-threaded runtimes serve requests (`veilgrid_kit::shards`):
    /// each connection stays on one, so a forwarded request never changes thread.
    /// Default: one per core.
    pub shards: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            data_dir: None,
            store: None,
            max_unary_payload: 4 << 20,
            max_stream_payload: 256 << 20,
            default_deadline: Duration::from_secs(60),
            min_ttl: Duration::from_millis(200),
            max_ttl: Duration::from_secs(600),
            health_interval: Duration::from_secs(2),
            currency: "VG".into(),
            observer: None,
            security: veilgrid_kit::tls::Security::Plaintext,
            rate_sources: None,
            shards: veilgrid_kit::shards::default_count(),
        }
    }
}

impl std::fmt::Debug for RouterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterConfig")
            .field("data_dir", &self.data_dir)
            .field("max_unary_payload", &self.max_unary_payload)
            .field("max_stream_payload", &self.max_stream_payload)
            .field("default_deadline", &self.default_deadline)
            .field("currency", &self.currency)
            .field("rate_sources", &self.rate_sources.as_ref().map(Vec::len))
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

/// Shared state of a running router.
pub struct State {
    config: RouterConfig,
    registry: Registry,
    store: Arc<dyn Store>,
    ledger: ledger::Ledger,
    rates: RwLock<RateTable>,
}

impl State {
    /// Open the store, restore leases that are still alive and the ledger.
    pub fn open(config: RouterConfig) -> Result<Arc<Self>, RouterError> {
        let store: Arc<dyn Store> =
            store::open(config.store.as_deref(), config.data_dir.as_deref())?.into();
        let registry = Registry::default();
        registry.load_tallies(store.tallies()?);
        let now = now_ms();
        for rec in store.leases()? {
            match lease::restore_with(&rec, now, &config.security) {
                Some(e) => registry.insert(e),
                None => store.remove_expired_lease(&rec.provider_id, now)?,
            }
        }
        let rates = RwLock::new(RateTable::new(&config.currency));
        let ledger = ledger::Ledger::start(store.clone())?;
        Ok(Arc::new(Self {
            config,
            registry,
            store,
            ledger,
            rates,
        }))
    }

    fn message_limit(&self) -> usize {
        self.config
            .max_unary_payload
            .max(veilgrid_kit::chunks::CHUNK_SIZE)
            .saturating_mul(2)
            .saturating_add(64 << 10)
    }

    /// Count one promise outcome in the in-memory tallies and queue it for the
    /// ledger's next group commit (durability: the `ledger` module).
    fn record(
        &self,
        provider: &[u8; 32],
        protocol: &ProtocolId,
        kept: bool,
        receipt: Option<SignedReceipt>,
    ) -> Result<(), RouterError> {
        self.ledger.submit(store::LedgerEntry {
            provider_id: *provider,
            protocol: *protocol,
            kept,
            at_ms: now_ms(),
            receipt,
        })?;
        self.registry.count(provider, protocol, kept);
        Ok(())
    }

    /// Wait until every promise outcome recorded so far is committed to the store.
    /// The router calls this when it stops; tests call it before reading the store.
    pub async fn flush_ledger(&self) -> Result<(), RouterError> {
        self.ledger.flush().await
    }

    /// Install a new exchange-rate table (from the matching service).
    pub fn set_rates(&self, table: RateTable) {
        if let Ok(mut r) = self.rates.write() {
            *r = table;
        }
    }

    /// The store (receipts for auditors, diagnostics).
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The in-memory registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The tonic service for this state, with message limits that fit the
    /// configured unary payload and one data frame of a stream.
    pub fn service(self: &Arc<Self>) -> RouterServer<service::RouterService> {
        let max = self.message_limit();
        RouterServer::new(service::RouterService {
            state: self.clone(),
        })
        .max_decoding_message_size(max)
        .max_encoding_message_size(max)
    }
}

/// Run a router on `listener` until `shutdown` fires.
pub async fn run(
    listener: TcpListener,
    shutdown: Shutdown,
    config: RouterConfig,
) -> Result<(), RouterError> {
    let state = State::open(config)?;
    serve(listener, shutdown, state).await
}

/// Run a router over an already opened [`State`] (lets tests and `veilgrid up`
/// keep a handle on it).
pub async fn serve(
    listener: TcpListener,
    shutdown: Shutdown,
    state: Arc<State>,
) -> Result<(), RouterError> {
    let upkeep = tokio::spawn(upkeep(state.clone(), shutdown.clone()));
    // Exchange rates from the matching nodes (providers of `veilgrid/match/rates/v1`),
    // installed when two agree; polled by every router, embedded or standalone.
    let rate_feed = tokio::spawn(rates::follow(
        state.clone(),
        shutdown.clone(),
        state.config.health_interval,
    ));
    let sink = tokio::spawn(receipt_sink::run(state.clone(), shutdown.clone()));
    let mut routes = RoutesBuilder::default();
    routes.add_service(state.service());
    let served = veilgrid_kit::shards::serve_sharded(
        listener,
        shutdown.clone(),
        routes,
        &state.config.security,
        state.config.shards,
    )
    .await;
    shutdown.cancel();
    let _ = upkeep.await;
    let _ = rate_feed.await;
    let _ = sink.await;
    // Commit what the last requests recorded before the process may exit.
    let flushed = state.flush_ledger().await;
    served.map_err(RouterError::from)?;
    flushed
}

/// Sweep expired leases and check providers' health, every `health_interval`
/// (sweeps run four times as often so expiry is prompt).
async fn upkeep(state: Arc<State>, shutdown: Shutdown) {
    let sweep_every = state.config.health_interval / 4;
    let mut tick = 0u64;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(sweep_every.max(Duration::from_millis(10))) => {}
        }
        if state.store.shared() {
            // Network round trips to the shared store: off the async workers.
            let st = state.clone();
            match tokio::task::spawn_blocking(move || store::postgres_replicas::sync(&st, now_ms()))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "re-reading the shared store"),
                Err(err) => tracing::warn!(error = %err, "re-reading the shared store"),
            }
        }
        let now = now_ms();
        for e in state.registry.expire(now) {
            tracing::info!(provider = %hex::encode(&e.id[..8]), name = %e.info.name, "lease expired");
            if let Err(err) = state.store.remove_expired_lease(&e.id, now) {
                tracing::warn!(error = %err, "removing an expired lease");
            }
        }
        tick += 1;
        if tick.is_multiple_of(4) {
            for e in state.registry.all() {
                let timeout = state.config.health_interval.max(Duration::from_millis(200));
                // On the h2 client, not tonic's: a provider's answer must not be
                // able to panic this loop (see `veilgrid_kit::h2_unary`).
                let ok = matches!(
                    e.direct.call::<HealthCheckResponse>(
                        HEALTH_CHECK,
                        vec![Bytes::from(HealthCheckRequest { service: String::new() }.encode_to_vec())],
                        timeout,
                        None,
                        1024,
                    ).await,
                    Ok(r) if r.status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
                );
                e.serving.store(ok, Ordering::Relaxed);
            }
        }
    }
}
