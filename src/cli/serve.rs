//! `veilgrid serve <service>`: one service alone.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use tokio::{io::AsyncReadExt, net::TcpListener};
use veilgrid_kit::Shutdown;
use veilgrid_router::{RouterConfig, State};

use crate::{Error, grid};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Service {
    /// The grid router.
    Router,
    /// The echo provider (veilgrid/echo/v1 and veilgrid/echo/sealed/v1).
    Echo,
    /// The FHE inference service (veilgrid/fhe/...); keys under <data-dir>/fhe.
    Fhe,
    /// The prover and audit log (veilgrid/audit/..., veilgrid/prove/v1); log and keys under
    /// <data-dir>/prover. The router pushes its receipts to it.
    Prover,
    /// The one-shot secure aggregation server (veilgrid/agg/...); rounds under <data-dir>/aggregator.
    Aggregator,
    /// One aggregation committee member (identity under <data-dir>/agg-member-0).
    CommitteeMember,
    /// One of the three matching nodes (veilgrid/match/...), as its own process: --party,
    /// --peers, keys from --matcher-keys (`veilgrid match keygen`); registered
    /// currencies kept under <data-dir>/matcher-<party>.
    MatcherNode,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Which service.
    service: Service,
    /// Where to listen (default: the router's default address for the router,
    /// any free loopback port for providers).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The router to register with (providers only).
    #[arg(long, env = "VEILGRID_ROUTER", default_value = crate::DEFAULT_ROUTER)]
    router: String,
    /// The URL the router should use to reach this provider (default: http://<listen>,
    /// https://<listen> with --tls-dir).
    #[arg(long)]
    advertise: Option<String>,
    /// Where state and identities are kept.
    #[arg(long, env = "VEILGRID_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Where the router, the aggregator, the prover and the FHE key registry keep their
    /// state: `sqlite:DIR`, or `postgres://user:password@host:port/database` (shared by
    /// replicas, each service in its own tables; TLS as libpq: add
    /// `?sslmode=verify-full&sslrootcert=CA.pem`); default: SQLite (FHE keys: files)
    /// under <data-dir>/<service>.
    #[arg(long, env = "VEILGRID_STORE", hide_env_values = true)]
    store: Option<String>,
    /// Lease length in seconds (providers only).
    #[arg(long, default_value_t = 30)]
    lease_ttl_secs: u64,
    /// Mutual TLS: the CA and this service's certificate (`<name>.pem`, `<name>.key`,
    /// name `router`, `echo`, `fhe`, `prover`, `aggregator`, `agg-member` or
    /// `matcher-<party>`) from this directory (`veilgrid ca issue --service NAME`); URLs
    /// (router, --peers, --advertise) are then https://. Without it: plaintext.
    #[arg(long, env = "VEILGRID_TLS_DIR")]
    tls_dir: Option<PathBuf>,
    /// Matcher node: which party, 0, 1 or 2, or a StatefulSet pod name ending in -0, -1, -2.
    #[arg(long, env = "VEILGRID_MATCHER_PARTY")]
    party: Option<String>,
    /// Matcher node: the three nodes' URLs by party index, comma-separated (this node's
    /// own entry is what it registers with the router unless --advertise is given).
    #[arg(long, env = "VEILGRID_MATCHER_PEERS", value_delimiter = ',')]
    peers: Vec<String>,
    /// Matcher node: the directory `veilgrid match keygen` wrote (this party's
    /// party-<i>/ and nodes.json); default <data-dir>/matcher-keys.
    #[arg(long, env = "VEILGRID_MATCHER_KEYS")]
    matcher_keys: Option<PathBuf>,
    /// Router: the matching nodes' nodes.json; the router's exchange-rate feed accepts
    /// tables only from these three nodes (signed by their pinned keys). Without it a
    /// standalone router takes no rates.
    #[arg(long, env = "VEILGRID_MATCHER_NODES")]
    matcher_nodes: Option<PathBuf>,
    /// Router: how many threads serve requests, each with its own single-threaded
    /// runtime; a connection stays on one (default: one per core).
    #[arg(long, env = "VEILGRID_ROUTER_SHARDS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    shards: Option<u16>,
    /// Stop when standard input closes (used by `veilgrid up --separate`).
    #[arg(long, hide = true)]
    stop_on_stdin_eof: bool,
}

/// Mutual TLS with `name`'s certificate from `dir`, or plaintext without one.
fn tls_security(
    dir: Option<&std::path::Path>,
    name: &str,
) -> Result<veilgrid_kit::tls::Security, Error> {
    match dir {
        Some(d) => Ok(veilgrid_kit::tls::Security::mtls_from_dir(d, name)?),
        None => Ok(veilgrid_kit::tls::Security::Plaintext),
    }
}

pub(crate) async fn run(a: ServeArgs) -> Result<(), Error> {
    let data_dir = a.data_dir.clone().unwrap_or_else(super::default_data_dir);
    let shutdown = Shutdown::new();
    {
        let sd = shutdown.clone();
        let stdin_watch = a.stop_on_stdin_eof;
        tokio::spawn(async move {
            if stdin_watch {
                let mut buf = [0u8; 64];
                let mut stdin = tokio::io::stdin();
                tokio::select! {
                    () = super::interrupted() => {}
                    () = async { while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {} } => {}
                }
            } else {
                super::interrupted().await;
            }
            sd.cancel();
        });
    }
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|source| Error::Io {
            path: addr.to_string(),
            source,
        })
    };
    match a.service {
        Service::Router => {
            let listen = a.listen.unwrap_or(
                crate::DEFAULT_LISTEN
                    .parse()
                    .map_err(|_| Error::Service("bad default listen address".into()))?,
            );
            let listener = bind(listen).await?;
            let security = tls_security(a.tls_dir.as_deref(), veilgrid_kit::auth::ROUTER)?;
            let scheme = security.scheme();
            let rate_sources = match &a.matcher_nodes {
                Some(f) => veilgrid_matcher::keys::load_public(f)
                    .map_err(|e| Error::Service(e.to_string()))?
                    .iter()
                    .map(|n| n.provider_id)
                    .collect(),
                None => Vec::new(),
            };
            let state = State::open(RouterConfig {
                data_dir: Some(data_dir.join("router")),
                security,
                store: a.store.clone(),
                rate_sources: Some(rate_sources),
                shards: a
                    .shards
                    .map_or_else(veilgrid_kit::shards::default_count, usize::from),
                ..RouterConfig::default()
            })?;
            // the bound address: --listen may name port 0
            let bound = listener.local_addr().unwrap_or(listen);
            println!("router listening on {scheme}://{bound}");
            veilgrid_router::serve(listener, shutdown, state).await?;
        }
        Service::Fhe => {
            let listener = bind(a.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))).await?;
            let local = listener.local_addr().map_err(|source| Error::Io {
                path: "listener".into(),
                source,
            })?;
            let config = veilgrid_fhe_service::FheConfig {
                engine: veilgrid_fhe_service::EngineConfig {
                    data_dir: Some(data_dir.join("fhe")),
                    store: veilgrid_kit::store_spec::StoreSpec::parse(a.store.as_deref())?,
                    ..Default::default()
                },
                router: Some(a.router.clone()),
                advertise: a.advertise.clone(),
                ttl: Duration::from_secs(a.lease_ttl_secs),
                security: tls_security(a.tls_dir.as_deref(), "fhe")?,
                ..Default::default()
            };
            println!(
                "fhe service at {}, registering with {}",
                config.security.url(local),
                a.router
            );
            veilgrid_fhe_service::run(listener, shutdown, config)
                .await
                .map_err(|e| Error::Service(e.to_string()))?;
        }
        Service::Prover => {
            let listener = bind(a.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))).await?;
            let config = veilgrid_prover::ProverConfig {
                data_dir: Some(data_dir.join("prover")),
                store: veilgrid_kit::store_spec::StoreSpec::parse(a.store.as_deref())?,
                dev_keys: true,
                router: Some(a.router.clone()),
                advertise: a.advertise,
                ttl: Duration::from_secs(a.lease_ttl_secs),
                security: tls_security(a.tls_dir.as_deref(), "prover")?,
                ..Default::default()
            };
            println!(
                "prover at {}, registering with {}",
                config
                    .security
                    .url(listener.local_addr().map_err(|source| Error::Io {
                        path: "listener".into(),
                        source,
                    })?),
                a.router
            );
            veilgrid_prover::run(listener, shutdown, config)
                .await
                .map_err(|e| Error::Service(e.to_string()))?;
        }
        Service::Echo => {
            let listener = bind(a.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))).await?;
            let identity = grid::identity_for(Some(&data_dir), "echo")?;
            let provider = grid::echo_provider(identity);
            let (endpoint, tasks) = grid::serve_provider_secure(
                provider,
                listener,
                a.advertise,
                &a.router,
                Duration::from_secs(a.lease_ttl_secs),
                shutdown,
                &tls_security(a.tls_dir.as_deref(), "echo")?,
            )
            .await?;
            println!("echo provider at {endpoint}, registered with {}", a.router);
            for t in tasks {
                let _ = t.await;
            }
        }
        Service::Aggregator => {
            let listener = bind(a.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))).await?;
            let local = listener.local_addr().map_err(|source| Error::Io {
                path: "listener".into(),
                source,
            })?;
            let config = veilgrid_aggregator::AggregatorConfig {
                data_dir: Some(data_dir.join("aggregator")),
                store: veilgrid_kit::store_spec::StoreSpec::parse(a.store.as_deref())?,
                router: Some(a.router.clone()),
                advertise: a.advertise,
                ttl: Duration::from_secs(a.lease_ttl_secs),
                security: tls_security(a.tls_dir.as_deref(), "aggregator")?,
                ..Default::default()
            };
            println!(
                "aggregation server at {}, registering with {}",
                config.security.url(local),
                a.router
            );
            veilgrid_aggregator::run(listener, shutdown, config)
                .await
                .map_err(|e| Error::Service(e.to_string()))?;
        }
        Service::MatcherNode => {
            let party =
                veilgrid_matcher::keys::parse_party(a.party.as_deref().ok_or_else(|| {
                    Error::Service("serve matcher-node needs --party (0, 1 or 2)".into())
                })?)
                .map_err(|e| Error::Service(e.to_string()))?;
            let peers: [String; 3] = a.peers.clone().try_into().map_err(|_| {
                Error::Service(format!(
                    "--peers needs the three nodes' URLs by party index, got {}",
                    a.peers.len()
                ))
            })?;
            let keys_dir = a
                .matcher_keys
                .clone()
                .unwrap_or_else(|| data_dir.join("matcher-keys"));
            let (identity, keys, public) = veilgrid_matcher::keys::load_party(&keys_dir, party)
                .map_err(|e| Error::Service(e.to_string()))?;
            let listener = bind(a.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))).await?;
            let local = listener.local_addr().map_err(|source| Error::Io {
                path: "listener".into(),
                source,
            })?;
            let security =
                tls_security(a.tls_dir.as_deref(), &veilgrid_matcher::party_name(party))?;
            let me = a.advertise.clone().unwrap_or_else(|| security.url(local));
            let nodes = [0, 1, 2].map(|i| veilgrid_matcher::NodeAddress {
                url: if i == party as usize {
                    me.clone()
                } else {
                    peers[i].clone()
                },
                provider_id: public[i].provider_id,
            });
            let config = veilgrid_matcher::MatcherConfig {
                identity: std::sync::Arc::new(identity),
                keys,
                nodes,
                peer_timeout: Duration::from_secs(30),
                provider: veilgrid_kit::provider::ProviderConfig {
                    name: veilgrid_matcher::party_name(party),
                    ..Default::default()
                },
                register: Some(veilgrid_kit::registration::RegistrationConfig {
                    router: a.router.clone(),
                    endpoint: me.clone(),
                    ttl: Duration::from_secs(a.lease_ttl_secs),
                }),
                numeraire: "VG".into(),
                data_dir: Some(data_dir.join(format!("matcher-{party}"))),
                fault: None,
                security,
            };
            println!(
                "matching node {party} at {me} (listening on {local}), registering with {}",
                a.router
            );
            veilgrid_matcher::run(listener, shutdown, config)
                .await
                .map_err(|e| Error::Service(e.to_string()))?;
        }
        Service::CommitteeMember => {
            let listener = bind(a.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))).await?;
            let identity = grid::identity_for(Some(&data_dir), "agg-member-0")?;
            let security = tls_security(a.tls_dir.as_deref(), "agg-member")?;
            let client =
                veilgrid_aggregator::client::AggClient::via_router_secure(&a.router, &security)
                    .map_err(|e| Error::Service(e.to_string()))?;
            let member = veilgrid_aggregator::member::Member::new(identity, client);
            let (endpoint, mut tasks) = grid::serve_provider_secure(
                member.provider("agg-member"),
                listener,
                a.advertise,
                &a.router,
                Duration::from_secs(a.lease_ttl_secs),
                shutdown.clone(),
                &security,
            )
            .await?;
            tasks.push(tokio::spawn(
                member.run(Duration::from_millis(300), shutdown),
            ));
            println!(
                "committee member at {endpoint}, registered with {}",
                a.router
            );
            for t in tasks {
                let _ = t.await;
            }
        }
    }
    Ok(())
}
