//! Starting a grid in-process on loopback: the router and the providers that
//! exist so far, each on its own port, providers registered under leases.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};
use tonic::service::RoutesBuilder;
use veilgrid_kit::{
    Shutdown,
    echo::{ECHO, ECHO_SEALED, EchoHandler},
    identity::Identity,
    provider::{ProviderConfig, ProviderService},
    registration::{self, RegistrationConfig},
};
use veilgrid_router::{RouterConfig, State};

use crate::Error;

/// What to start.
#[derive(Debug, Clone)]
pub struct GridOptions {
    /// Where the router listens (`127.0.0.1:0` for any free port).
    pub listen: SocketAddr,
    /// Where state is kept; `None` = in memory and fresh identities.
    pub data_dir: Option<PathBuf>,
    /// Router settings (its `data_dir` is set from `data_dir`).
    pub router: RouterConfig,
    /// Lease length for the built-in providers.
    pub lease_ttl: Duration,
    /// Committee members of the aggregation service to run in-process; 0 = no aggregation
    /// service (`veilgrid up` runs it with 5 members).
    pub committee: usize,
}

impl Default for GridOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            router: RouterConfig::default(),
            lease_ttl: Duration::from_secs(30),
            committee: 0,
        }
    }
}

/// A running in-process grid.
pub struct LocalGrid {
    /// The router's URL, e.g. `http://127.0.0.1:7700`.
    pub router_url: String,
    /// The router's state (ledger, registry), for tests and diagnostics.
    pub state: Arc<State>,
    /// Fires to stop everything.
    pub shutdown: Shutdown,
    tasks: Vec<JoinHandle<()>>,
}

impl LocalGrid {
    /// Stop every service, release leases, and wait for them.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Start the router and the built-in providers.
pub async fn start(opts: GridOptions) -> Result<LocalGrid, Error> {
    let shutdown = Shutdown::new();
    let mut config = opts.router.clone();
    config.data_dir = opts.data_dir.as_ref().map(|d| d.join("router"));
    let (router_url, state, router_task) =
        start_router(opts.listen, config, shutdown.clone()).await?;
    let mut tasks = vec![router_task];
    tasks.push(start_rate_feed(
        state.clone(),
        opts.router.health_interval,
        shutdown.clone(),
    ));
    let identity = identity_for(opts.data_dir.as_ref(), "echo")?;
    let echo = echo_provider(identity);
    tasks.extend(
        start_provider(echo, &router_url, opts.lease_ttl, shutdown.clone())
            .await?
            .1,
    );
    if opts.committee > 0 {
        tasks.push(
            start_aggregator(
                &router_url,
                opts.data_dir.as_ref(),
                opts.lease_ttl,
                shutdown.clone(),
            )
            .await?,
        );
        tasks.extend(
            start_committee(
                &router_url,
                opts.data_dir.as_ref(),
                opts.committee,
                opts.lease_ttl,
                shutdown.clone(),
            )
            .await?,
        );
    }
    Ok(LocalGrid {
        router_url,
        state,
        shutdown,
        tasks,
    })
}

/// Start a router on `listen`.
pub async fn start_router(
    listen: SocketAddr,
    config: RouterConfig,
    shutdown: Shutdown,
) -> Result<(String, Arc<State>, JoinHandle<()>), Error> {
    let listener = bind(listen).await?;
    let url = format!("http://{}", local(&listener)?);
    let state = State::open(config)?;
    let st = state.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = veilgrid_router::serve(listener, shutdown, st).await {
            tracing::error!(error = %e, "router stopped");
        }
    });
    Ok((url, state, task))
}

/// Keep the router's exchange-rate table up to date: poll the matching nodes' published
/// table every `every` and install it when two of them agree (issue 5,
/// `veilgrid_router::rates::follow`).
pub fn start_rate_feed(state: Arc<State>, every: Duration, shutdown: Shutdown) -> JoinHandle<()> {
    tokio::spawn(veilgrid_router::rates::follow(state, shutdown, every))
}

/// The identity kept under `<data_dir>/<name>`, or a fresh one without a data dir.
pub fn identity_for(data_dir: Option<&PathBuf>, name: &str) -> Result<Arc<Identity>, Error> {
    Ok(Arc::new(match data_dir {
        Some(d) => Identity::load_or_create(&d.join(name))?,
        None => Identity::generate(),
    }))
}

/// The built-in echo provider (plain and sealed).
pub fn echo_provider(identity: Arc<Identity>) -> ProviderService {
    let handler = EchoHandler::new(identity.clone());
    ProviderService::builder(
        identity,
        ProviderConfig {
            name: "echo".into(),
            ..ProviderConfig::default()
        },
    )
    .protocol(ECHO, 1, handler.clone())
    .protocol(ECHO_SEALED, 2, handler)
    .build()
}

/// Serve `provider` on a free loopback port and register it with the router.
/// Returns its endpoint and its tasks (server, lease keeper).
pub async fn start_provider(
    provider: ProviderService,
    router_url: &str,
    ttl: Duration,
    shutdown: Shutdown,
) -> Result<(String, Vec<JoinHandle<()>>), Error> {
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    serve_provider(provider, listener, None, router_url, ttl, shutdown).await
}

/// Serve `provider` on `listener`, advertise `advertise` (default: the listener's
/// address) and register with the router.
pub async fn serve_provider(
    provider: ProviderService,
    listener: TcpListener,
    advertise: Option<String>,
    router_url: &str,
    ttl: Duration,
    shutdown: Shutdown,
) -> Result<(String, Vec<JoinHandle<()>>), Error> {
    let endpoint = advertise.unwrap_or(format!("http://{}", local(&listener)?));
    let mut routes = RoutesBuilder::default();
    routes.add_service(provider.clone().into_server());
    let sd = shutdown.clone();
    let server = tokio::spawn(async move {
        if let Err(e) = veilgrid_kit::server::serve(listener, sd, routes).await {
            tracing::error!(error = %e, "provider stopped");
        }
    });
    let keeper = registration::start(
        provider,
        RegistrationConfig {
            router: router_url.to_owned(),
            endpoint: endpoint.clone(),
            ttl,
        },
        shutdown,
        Duration::from_secs(10),
    )
    .await?;
    Ok((endpoint, vec![server, keeper]))
}

/// Start the aggregation service (issue 4) and register it with the router; its rounds live
/// under `<data_dir>/aggregator`.
pub async fn start_aggregator(
    router_url: &str,
    data_dir: Option<&PathBuf>,
    ttl: Duration,
    shutdown: Shutdown,
) -> Result<JoinHandle<()>, Error> {
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let config = veilgrid_aggregator::AggregatorConfig {
        data_dir: data_dir.map(|d| d.join("aggregator")),
        router: Some(router_url.to_owned()),
        ttl,
        ..Default::default()
    };
    Ok(tokio::spawn(async move {
        if let Err(e) = veilgrid_aggregator::run(listener, shutdown, config).await {
            tracing::error!(error = %e, "aggregator stopped");
        }
    }))
}

/// Start `count` aggregation committee members, each a provider with its own identity (under
/// `<data_dir>/agg-member-<i>`) registered with the router, polling for rounds to answer.
pub async fn start_committee(
    router_url: &str,
    data_dir: Option<&PathBuf>,
    count: usize,
    ttl: Duration,
    shutdown: Shutdown,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let mut tasks = Vec::new();
    for i in 0..count {
        let name = format!("agg-member-{i}");
        let client = veilgrid_aggregator::client::AggClient::via_router(router_url)
            .map_err(|e| Error::Service(e.to_string()))?;
        let member =
            veilgrid_aggregator::member::Member::new(identity_for(data_dir, &name)?, client);
        tasks.extend(
            start_provider(member.provider(&name), router_url, ttl, shutdown.clone())
                .await?
                .1,
        );
        tasks.push(tokio::spawn(
            member.run(Duration::from_millis(300), shutdown.clone()),
        ));
    }
    Ok(tasks)
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|source| Error::Io {
        path: addr.to_string(),
        source,
    })
}

fn local(l: &TcpListener) -> Result<SocketAddr, Error> {
    l.local_addr().map_err(|source| Error::Io {
        path: "listener".into(),
        source,
    })
}
