//! Starting a grid in-process on loopback: the router and the providers that
//! exist so far, each on its own port, providers registered under leases.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::{net::TcpListener, task::JoinHandle};
use tonic::service::RoutesBuilder;
use veilgrid_kit::{
    Shutdown,
    echo::{ECHO, ECHO_SEALED, EchoHandler},
    identity::Identity,
    provider::{ProviderConfig, ProviderService},
    registration::{self, RegistrationConfig},
    tls::Security,
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
    /// Mutual TLS on every hop with certificates from this directory (the CA is
    /// created and each service's certificate issued if missing; see
    /// `veilgrid_kit::tls`); `None` = plaintext.
    pub tls: Option<PathBuf>,
}

impl Default for GridOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            router: RouterConfig::default(),
            lease_ttl: Duration::from_secs(30),
            committee: 0,
            tls: None,
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
    /// The TLS directory, when the grid runs mutual TLS.
    pub tls: Option<PathBuf>,
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
    let tls = opts.tls.as_deref();
    if tls.is_some() {
        config.security = service_security(tls, veilgrid_kit::auth::ROUTER)?;
    }
    let (router_url, state, router_task) =
        start_router(opts.listen, config, shutdown.clone()).await?;
    let mut tasks = vec![router_task];
    // `--store` holds the FHE key registry, the audit log and the aggregation rounds
    // too, each service in its own tables (or files under DIR).
    let store = veilgrid_kit::store_spec::StoreSpec::parse(opts.router.store.as_deref())?;
    let cx = ServiceContext::new(
        &router_url,
        opts.data_dir.as_ref(),
        opts.lease_ttl,
        shutdown.clone(),
    )
    .store(store);
    tasks.push(start_fhe(cx.clone().secure(service_security(tls, "fhe")?)).await?);
    tasks.push(start_prover(cx.clone().secure(service_security(tls, "prover")?)).await?);
    let identity = identity_for(opts.data_dir.as_ref(), "echo")?;
    let echo = echo_provider(identity);
    tasks.extend(
        start_provider_secure(
            echo,
            &router_url,
            opts.lease_ttl,
            shutdown.clone(),
            &service_security(tls, "echo")?,
        )
        .await?
        .1,
    );
    if opts.committee > 0 {
        tasks.push(start_aggregator(cx.secure(service_security(tls, "aggregator")?)).await?);
        tasks.extend(
            start_committee_secure(
                &router_url,
                opts.data_dir.as_ref(),
                opts.committee,
                opts.lease_ttl,
                shutdown.clone(),
                tls,
            )
            .await?,
        );
    }
    Ok(LocalGrid {
        router_url,
        state,
        shutdown,
        tls: opts.tls.clone(),
        tasks,
    })
}

/// The security of service `name` in a grid with TLS directory `tls`: mutual TLS
/// with its certificate (the CA created and the certificate issued on first use),
/// or plaintext without a directory.
pub fn service_security(tls: Option<&Path>, name: &str) -> Result<Security, Error> {
    security_for(tls, name, veilgrid_kit::auth::Role::Service)
}

/// Like [`service_security`] for any role (clients of the router use
/// `Role::Client`).
pub fn security_for(
    tls: Option<&Path>,
    name: &str,
    role: veilgrid_kit::auth::Role,
) -> Result<Security, Error> {
    let Some(dir) = tls else {
        return Ok(Security::Plaintext);
    };
    veilgrid_kit::tls_ca::ensure(dir)?;
    veilgrid_kit::tls_ca::ensure_issued(dir, name, role)?;
    Ok(Security::mtls_from_dir(dir, name)?)
}

/// Start a router on `listen`.
pub async fn start_router(
    listen: SocketAddr,
    config: RouterConfig,
    shutdown: Shutdown,
) -> Result<(String, Arc<State>, JoinHandle<()>), Error> {
    let listener = bind(listen).await?;
    let url = config.security.url(local(&listener)?);
    let state = State::open(config)?;
    let st = state.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = veilgrid_router::serve(listener, shutdown, st).await {
            tracing::error!(error = %e, "router stopped");
        }
    });
    Ok((url, state, task))
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
    start_provider_secure(provider, router_url, ttl, shutdown, &Security::Plaintext).await
}

/// [`start_provider`] with `security` for its server and its registration.
pub async fn start_provider_secure(
    provider: ProviderService,
    router_url: &str,
    ttl: Duration,
    shutdown: Shutdown,
    security: &Security,
) -> Result<(String, Vec<JoinHandle<()>>), Error> {
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    serve_provider_secure(
        provider, listener, None, router_url, ttl, shutdown, security,
    )
    .await
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
    serve_provider_secure(
        provider,
        listener,
        advertise,
        router_url,
        ttl,
        shutdown,
        &Security::Plaintext,
    )
    .await
}

/// [`serve_provider`] with `security` for its server and its registration.
pub async fn serve_provider_secure(
    provider: ProviderService,
    listener: TcpListener,
    advertise: Option<String>,
    router_url: &str,
    ttl: Duration,
    shutdown: Shutdown,
    security: &Security,
) -> Result<(String, Vec<JoinHandle<()>>), Error> {
    let endpoint = advertise.unwrap_or(security.url(local(&listener)?));
    let mut routes = RoutesBuilder::default();
    routes.add_service(provider.clone().into_server());
    let sd = shutdown.clone();
    let sec = security.clone();
    let server = tokio::spawn(async move {
        if let Err(e) = veilgrid_kit::server::serve_secure(listener, sd, routes, &sec).await {
            tracing::error!(error = %e, "provider stopped");
        }
    });
    let keeper = registration::start_secure(
        provider,
        RegistrationConfig {
            router: router_url.to_owned(),
            endpoint: endpoint.clone(),
            ttl,
        },
        security,
        shutdown,
        Duration::from_secs(10),
    )
    .await?;
    Ok((endpoint, vec![server, keeper]))
}

/// How a built-in provider service is started by [`start`] and the CLI: the router it
/// registers with, where its state lives, its lease and its transport security.
#[derive(Debug, Clone)]
pub struct ServiceContext<'a> {
    /// The router to register with.
    pub router_url: &'a str,
    /// The grid's data directory; each service keeps its state in its own
    /// subdirectory (`aggregator`, `prover`, `fhe`). `None`: in memory.
    pub data_dir: Option<&'a PathBuf>,
    /// `--store`: where the service's shared state lives instead of the default.
    pub store: veilgrid_kit::store_spec::StoreSpec,
    /// Lease length.
    pub ttl: Duration,
    /// Stops the service.
    pub shutdown: Shutdown,
    /// Its server's and its registration's security (mutual TLS with the service's
    /// own certificate, or plaintext).
    pub security: Security,
}

impl<'a> ServiceContext<'a> {
    /// A plaintext service with the default store, in memory unless `data_dir`.
    pub fn new(
        router_url: &'a str,
        data_dir: Option<&'a PathBuf>,
        ttl: Duration,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            router_url,
            data_dir,
            store: veilgrid_kit::store_spec::StoreSpec::Default,
            ttl,
            shutdown,
            security: Security::Plaintext,
        }
    }

    /// With `security` (the certificate must be issued to the service's name).
    pub fn secure(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// With its state in `store` (`--store`).
    pub fn store(mut self, store: veilgrid_kit::store_spec::StoreSpec) -> Self {
        self.store = store;
        self
    }
}

/// Start the aggregation service (issue 4) and register it with the router; its rounds
/// live under `<data_dir>/aggregator` or in `--store`.
pub async fn start_aggregator(cx: ServiceContext<'_>) -> Result<JoinHandle<()>, Error> {
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let config = veilgrid_aggregator::AggregatorConfig {
        store: cx.store,
        data_dir: cx.data_dir.map(|d| d.join("aggregator")),
        router: Some(cx.router_url.to_owned()),
        ttl: cx.ttl,
        security: cx.security,
        ..Default::default()
    };
    let shutdown = cx.shutdown;
    Ok(tokio::spawn(async move {
        if let Err(e) = veilgrid_aggregator::run(listener, shutdown, config).await {
            tracing::error!(error = %e, "aggregator stopped");
        }
    }))
}

/// Start the prover and audit-log service (issue 6) and register it with the router; the
/// router pushes every completion receipt into its log. Its log lives in `--store` or
/// under `<data_dir>/prover`, its keys under `<data_dir>/prover`; without `veilgrid
/// prover setup`, small development keys are set up on first use. A log that was
/// truncated or altered refuses to start (the error is returned here, not logged and
/// ignored).
pub async fn start_prover(cx: ServiceContext<'_>) -> Result<JoinHandle<()>, Error> {
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let config = veilgrid_prover::ProverConfig {
        store: cx.store,
        data_dir: cx.data_dir.map(|d| d.join("prover")),
        dev_keys: true,
        router: Some(cx.router_url.to_owned()),
        ttl: cx.ttl,
        security: cx.security,
        ..Default::default()
    };
    let cfg = config.clone();
    let prover = tokio::task::spawn_blocking(move || veilgrid_prover::open(&cfg))
        .await
        .map_err(|e| Error::Service(format!("prover: {e}")))?
        .map_err(|e| Error::Service(format!("prover: {e}")))?;
    let shutdown = cx.shutdown;
    Ok(tokio::spawn(async move {
        if let Err(e) = veilgrid_prover::serve(listener, shutdown, config, prover).await {
            tracing::error!(error = %e, "prover stopped");
        }
    }))
}

/// Start the FHE inference service (issue 3) and register it with the router; compressed
/// evaluation keys live in `--store` or under `<data_dir>/fhe/keys`, its identity under
/// `<data_dir>/fhe`.
pub async fn start_fhe(cx: ServiceContext<'_>) -> Result<JoinHandle<()>, Error> {
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let config = veilgrid_fhe_service::FheConfig {
        engine: veilgrid_fhe_service::EngineConfig {
            data_dir: cx.data_dir.map(|d| d.join("fhe")),
            store: cx.store,
            ..Default::default()
        },
        router: Some(cx.router_url.to_owned()),
        ttl: cx.ttl,
        security: cx.security,
        ..Default::default()
    };
    let shutdown = cx.shutdown;
    Ok(tokio::spawn(async move {
        if let Err(e) = veilgrid_fhe_service::run(listener, shutdown, config).await {
            tracing::error!(error = %e, "fhe service stopped");
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
    start_committee_secure(router_url, data_dir, count, ttl, shutdown, None).await
}

/// [`start_committee`] with mutual TLS when `tls` names a TLS directory (member `i`
/// uses the certificate `agg-member-<i>`, issued on first use).
pub async fn start_committee_secure(
    router_url: &str,
    data_dir: Option<&PathBuf>,
    count: usize,
    ttl: Duration,
    shutdown: Shutdown,
    tls: Option<&Path>,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let mut tasks = Vec::new();
    for i in 0..count {
        let name = format!("agg-member-{i}");
        let security = service_security(tls, &name)?;
        let client =
            veilgrid_aggregator::client::AggClient::via_router_secure(router_url, &security)
                .map_err(|e| Error::Service(e.to_string()))?;
        let member =
            veilgrid_aggregator::member::Member::new(identity_for(data_dir, &name)?, client);
        tasks.extend(
            start_provider_secure(
                member.provider(&name),
                router_url,
                ttl,
                shutdown.clone(),
                &security,
            )
            .await?
            .1,
        );
        tasks.push(tokio::spawn(
            member.run(Duration::from_millis(300), shutdown.clone()),
        ));
    }
    Ok(tasks)
}

/// Start the three matching nodes (issue 5) on free loopback ports, registered with the
/// router; identities under `<data_dir>/matcher-<i>`. With a TLS directory node `i` runs
/// mutual TLS with the certificate `matcher-<i>` (issued on first use), on its server,
/// its registration and its links to the two other nodes.
pub async fn start_matching(
    router_url: &str,
    data_dir: Option<&Path>,
    numeraire: &str,
    shutdown: Shutdown,
    tls: Option<&Path>,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let mut security = Vec::with_capacity(3);
    for i in 0..3u8 {
        security.push(service_security(tls, &veilgrid_matcher::party_name(i))?);
    }
    let security: [Security; 3] = security
        .try_into()
        .map_err(|_| Error::Service("three matching nodes".into()))?;
    let tasks =
        veilgrid_matcher::local::start_secure(router_url, data_dir, numeraire, shutdown, security)
            .await
            .map_err(|e| Error::Service(e.to_string()))?;
    Ok(tasks
        .into_iter()
        .map(|t| {
            tokio::spawn(async move {
                match t.await {
                    Ok(Err(e)) => tracing::error!(error = %e, "matching node stopped"),
                    Err(e) => tracing::error!(error = %e, "matching node task"),
                    Ok(Ok(())) => {}
                }
            })
        })
        .collect())
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
