//! Registration with the router: a signed lease, renewed in the background,
//! released on shutdown.
//!
//! The registration is the prost encoding of `ProviderInfo` carried verbatim and
//! signed by the provider's Ed25519 key over `"veilgrid/register/v1\0" ‖ bytes`.
//! The router checks that the signer is the provider id named inside, so nobody
//! can register (or re-point) another provider's id.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::task::JoinHandle;
use tonic::{Code, transport::Channel};
use veilgrid_proto::grid::v1::{
    DeregisterRequest, Lease, ProviderInfo, RegisterRequest, RenewRequest,
    router_client::RouterClient,
};

use crate::{
    KitError, Shutdown,
    clock::now_ms,
    identity::Identity,
    provider::ProviderService,
    tls::Security,
    untrusted::{GrpcChannel, StripStatusDetails},
};

/// Domain tag of a registration signature.
pub const REGISTER_TAG: &[u8] = b"veilgrid/register/v1\0";

/// Where and how a provider registers.
#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// The router's URL, e.g. `http://127.0.0.1:7700`.
    pub router: String,
    /// The URL at which the router reaches this provider.
    pub endpoint: String,
    /// Lease length; the lease is renewed every third of it.
    pub ttl: Duration,
}

/// A signed registration for `provider` reachable at `endpoint`.
pub fn signed_registration(
    provider: &ProviderService,
    endpoint: &str,
    ttl: Duration,
) -> RegisterRequest {
    let id: &Identity = provider.identity();
    let info = ProviderInfo {
        provider_id: Bytes::copy_from_slice(&id.provider_id()),
        seal_public_key: Bytes::copy_from_slice(&id.seal_public().to_bytes()),
        endpoint: endpoint.to_owned(),
        asks: provider.asks(),
        currency: provider.config().currency.clone(),
        capacity: provider.config().capacity,
        name: provider.config().name.clone(),
        ttl_ms: ttl.as_millis() as u64,
        signed_at_ms: now_ms(),
    };
    let bytes = info.encode_to_vec();
    let mut msg = REGISTER_TAG.to_vec();
    msg.extend_from_slice(&bytes);
    RegisterRequest {
        provider_info: bytes.into(),
        signature: Bytes::copy_from_slice(&id.signing.sign(&msg)),
    }
}

/// Connect to a router (lazily: the first call connects).
pub fn router_channel(router: &str) -> Result<GrpcChannel, KitError> {
    Ok(StripStatusDetails(
        Channel::from_shared(router.to_owned())
            .map_err(|e| KitError::Transport {
                what: "parsing the router address",
                reason: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect_lazy(),
    ))
}

/// Register now (retrying for up to `patience` while the router comes up), then
/// keep the lease alive in the background until `shutdown`, and deregister then.
pub async fn start(
    provider: ProviderService,
    config: RegistrationConfig,
    shutdown: Shutdown,
    patience: Duration,
) -> Result<JoinHandle<()>, KitError> {
    start_secure(provider, config, &Security::Plaintext, shutdown, patience).await
}

/// [`start`] over a connection secured by `security`: under mutual TLS the router
/// sees this provider's certificate, and accepts the registration only if the
/// certificate's service name is the provider's name.
pub async fn start_secure(
    provider: ProviderService,
    config: RegistrationConfig,
    security: &Security,
    shutdown: Shutdown,
    patience: Duration,
) -> Result<JoinHandle<()>, KitError> {
    let mut client = RouterClient::new(security.channel(&config.router)?);
    let give_up = tokio::time::Instant::now() + patience;
    let mut lease = loop {
        let req = signed_registration(&provider, &config.endpoint, config.ttl);
        match client.register(req).await {
            Ok(l) => break l.into_inner(),
            Err(s) if s.code() == Code::Unavailable && tokio::time::Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => {
                return Err(KitError::Remote {
                    what: "registering with the router",
                    status,
                });
            }
        }
    };
    Ok(tokio::spawn(async move {
        loop {
            let wait = Duration::from_millis((lease.ttl_ms / 3).max(50));
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
            match renew_or_register(&mut client, &provider, &config, &lease).await {
                Ok(l) => lease = l,
                Err(e) => tracing::warn!(error = %e, "lease renewal failed; retrying"),
            }
        }
        let req = DeregisterRequest {
            provider_id: lease.provider_id.clone(),
            lease_id: lease.lease_id.clone(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), client.deregister(req)).await;
    }))
}

async fn renew_or_register(
    client: &mut RouterClient<GrpcChannel>,
    provider: &ProviderService,
    config: &RegistrationConfig,
    lease: &Lease,
) -> Result<Lease, KitError> {
    let req = RenewRequest {
        provider_id: lease.provider_id.clone(),
        lease_id: lease.lease_id.clone(),
    };
    match client.renew(req).await {
        Ok(l) => Ok(l.into_inner()),
        // The lease expired or the router forgot it: register afresh.
        Err(s) if s.code() == Code::NotFound => client
            .register(signed_registration(provider, &config.endpoint, config.ttl))
            .await
            .map(|l| l.into_inner())
            .map_err(|status| KitError::Remote {
                what: "re-registering with the router",
                status,
            }),
        Err(status) => Err(KitError::Remote {
            what: "renewing the lease",
            status,
        }),
    }
}

/// Serve `routes` plus `provider` on `listener` and, when `router` is given, keep
/// `provider` registered there (advertised at `advertise`, else `http://<listen>`)
/// until `shutdown`; the lease is released before returning. The run loop every
/// provider service shares.
pub async fn serve_registered(
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
    routes: tonic::service::RoutesBuilder,
    provider: ProviderService,
    router: Option<String>,
    advertise: Option<String>,
    ttl: Duration,
) -> Result<(), KitError> {
    serve_registered_secure(
        listener,
        shutdown,
        routes,
        provider,
        router,
        advertise,
        ttl,
        &Security::Plaintext,
    )
    .await
}

/// [`serve_registered`] with `security` for the server (mutual TLS: the endpoint is
/// advertised as `https://<listen>`) and for the connection to the router.
#[allow(clippy::too_many_arguments)]
pub async fn serve_registered_secure(
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
    mut routes: tonic::service::RoutesBuilder,
    provider: ProviderService,
    router: Option<String>,
    advertise: Option<String>,
    ttl: Duration,
    security: &Security,
) -> Result<(), KitError> {
    let endpoint = match advertise {
        Some(a) => a,
        None => security.url(listener.local_addr().map_err(|e| KitError::Transport {
            what: "reading the listener's address",
            reason: e.to_string(),
        })?),
    };
    routes.add_service(provider.clone().into_server());
    let sec = security.clone();
    let sd = shutdown.clone();
    let server =
        tokio::spawn(async move { crate::server::serve_secure(listener, sd, routes, &sec).await });
    let keeper = match router {
        Some(router) => Some(
            start_secure(
                provider,
                RegistrationConfig {
                    router,
                    endpoint,
                    ttl,
                },
                security,
                shutdown.clone(),
                Duration::from_secs(10),
            )
            .await?,
        ),
        None => None,
    };
    let served = server.await.map_err(|e| KitError::Transport {
        what: "the server task",
        reason: e.to_string(),
    })?;
    shutdown.cancel();
    if let Some(k) = keeper {
        let _ = k.await;
    }
    served
}
