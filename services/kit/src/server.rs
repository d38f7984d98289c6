//! Serving gRPC on a listener until shutdown, with `grpc.health.v1` and server
//! reflection (v1) added to every service, so `grpcurl` and any language's
//! generated client can discover and probe it.

use futures::StreamExt;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{service::RoutesBuilder, transport::Server};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{KitError, Shutdown, tls::Security};

/// HTTP/2 flow-control window per stream. hyper's server default (1 MiB) is
/// smaller than one unary message near the 1 MiB chunk size, which costs a
/// WINDOW_UPDATE round trip per message; 8 MiB lets a whole message through.
pub const STREAM_WINDOW: u32 = 8 << 20;
/// HTTP/2 flow-control window per connection (several streams in flight).
pub const CONNECTION_WINDOW: u32 = 32 << 20;
/// Largest HTTP/2 DATA frame this side accepts (`SETTINGS_MAX_FRAME_SIZE`). The
/// default, 16 KiB, cuts a 1 MiB message into 64 frames, each parsed, flow-controlled
/// and woken for on its own; 1 MiB frames cut the router's CPU per 1 MiB request by
/// about 19 % (`benches/results/router_overhead.md`). Peers still send smaller frames
/// when they like; a connection buffers at most one frame while reading it.
pub const MAX_FRAME: u32 = 1 << 20;

/// Serve `routes` (plus health and reflection) on `listener` until `shutdown` fires.
/// In-flight requests finish; new connections are refused once shutdown starts.
pub async fn serve(
    listener: TcpListener,
    shutdown: Shutdown,
    routes: RoutesBuilder,
) -> Result<(), KitError> {
    serve_secure(listener, shutdown, routes, &Security::Plaintext).await
}

/// [`serve`] with `security`: under mutual TLS only clients with a certificate from
/// the Veilgrid CA get through the handshake.
pub async fn serve_secure(
    listener: TcpListener,
    shutdown: Shutdown,
    routes: RoutesBuilder,
    security: &Security,
) -> Result<(), KitError> {
    let (reporter, routes) = with_health_and_reflection(routes).await?;
    // Disable Nagle: completions are small request/response pairs.
    let incoming = TcpListenerStream::new(listener).map(|s| {
        if let Ok(s) = &s {
            let _ = s.set_nodelay(true);
        }
        s
    });
    let signal = {
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            reporter
                .set_service_status("", ServingStatus::NotServing)
                .await;
        }
    };
    builder(security)?
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, signal)
        .await
        .map_err(serving)
}

/// `routes` plus `grpc.health.v1` (reporting SERVING for the whole server) and
/// server reflection; the reporter sets NOT_SERVING at shutdown.
pub(crate) async fn with_health_and_reflection(
    mut routes: RoutesBuilder,
) -> Result<(HealthReporter, RoutesBuilder), KitError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(veilgrid_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| KitError::Transport {
            what: "building the reflection service",
            reason: e.to_string(),
        })?;
    routes.add_service(health).add_service(reflection);
    Ok((reporter, routes))
}

/// A server with the kit's HTTP/2 windows and frame size, under `security`.
pub(crate) fn builder(security: &Security) -> Result<Server, KitError> {
    let mut server = Server::builder()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(Some(MAX_FRAME));
    if let Some(tls) = security.server_tls() {
        server = server.tls_config(tls).map_err(|e| KitError::Transport {
            what: "setting up TLS",
            reason: e.to_string(),
        })?;
    }
    Ok(server)
}

/// The error of a server that stopped serving.
pub(crate) fn serving(e: tonic::transport::Error) -> KitError {
    KitError::Transport {
        what: "serving gRPC",
        reason: e.to_string(),
    }
}
