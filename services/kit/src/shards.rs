//! Serving gRPC on one single-threaded runtime per core ("shards"), so that a
//! request stays on one thread from the moment its bytes arrive until its answer
//! leaves.
//!
//! Why: on tokio's work-stealing runtime a request that the router forwards hops
//! between tasks (the server connection, the request, the client connection to
//! the provider) and, whenever another worker is idle, between threads: each
//! hop that wakes a parked thread costs a futex wake-up and a context switch.
//! On a current-thread runtime those hops are pushes onto the thread's own run
//! queue. Envoy does the same (one event loop per worker, a connection stays on
//! its worker, and each worker has its own upstream connections).
//!
//! How: the listener stays on the caller's runtime and only accepts. Each
//! accepted connection goes, round robin, to one shard: an OS thread running a
//! current-thread runtime with its own tonic server (same routes, same TLS,
//! same window and frame sizes as [`crate::server::serve_secure`]). Tasks a
//! request spawns, and client connections it opens through
//! [`crate::h2_unary::H2Unary`] (one per shard, see [`current`]), run on that
//! shard. A connection never moves; many connections spread over the shards.
//!
//! Shutdown: when `shutdown` fires, accepting stops, the health service reports
//! NOT_SERVING, and each shard finishes its in-flight requests and stops;
//! [`serve_sharded`] returns when every shard thread has ended.

use std::cell::Cell;

use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;

use crate::{
    KitError, Shutdown,
    coalesce::CoalescedWrites,
    server::{builder, serving, with_health_and_reflection},
    tls::Security,
};

thread_local! {
    static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The shard this thread serves, or `None` off the shards.
pub fn current() -> Option<usize> {
    SHARD.with(Cell::get)
}

/// The default number of shards: one per available core.
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Serve `routes` (plus health and reflection) on `listener` with `shards`
/// single-threaded runtimes (at least one) until `shutdown` fires.
pub async fn serve_sharded(
    listener: TcpListener,
    shutdown: Shutdown,
    routes: RoutesBuilder,
    security: &Security,
    shards: usize,
) -> Result<(), KitError> {
    let (reporter, routes) = with_health_and_reflection(routes).await?;
    let routes = routes.routes();
    // The shards stop with `shutdown`, or when this function returns early (a
    // shard that could not start): none is left running without its listener.
    let stop_all = shutdown.child_token();
    let _stop_on_return = stop_all.clone().drop_guard();
    let mut inboxes = Vec::new();
    let mut threads = Vec::new();
    for i in 0..shards.max(1) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<std::net::TcpStream>();
        let server = builder(security)?.add_routes(routes.clone());
        let stop = stop_all.clone();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("veilgrid-shard-{i}"))
            .spawn(move || {
                SHARD.with(|s| s.set(Some(i)));
                let result = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(async move {
                        // Registered with this shard's reactor when it is polled here.
                        // Writes gathered per scheduler turn (`crate::coalesce`).
                        let incoming =
                            UnboundedReceiverStream::new(rx).map(|s: std::net::TcpStream| {
                                TcpStream::from_std(s).map(CoalescedWrites::new)
                            });
                        server
                            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                            .await
                            .map_err(serving)
                    }),
                    Err(e) => Err(KitError::Transport {
                        what: "starting a shard's runtime",
                        reason: e.to_string(),
                    }),
                };
                let _ = done_tx.send(result);
            })
            .map_err(|e| KitError::Transport {
                what: "starting a shard thread",
                reason: e.to_string(),
            })?;
        inboxes.push(tx);
        threads.push((thread, done_rx));
    }
    let mut next = 0usize;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: the listener itself is fine.
                tracing::warn!(error = %e, "accepting a connection");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        // Disable Nagle: completions are small request/response pairs.
        let _ = stream.set_nodelay(true);
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        // A shard whose server stopped drops its inbox; try the others.
        let mut pending = Some(stream);
        for _ in 0..inboxes.len() {
            let i = next % inboxes.len();
            next = next.wrapping_add(1);
            match pending.take().map(|s| inboxes[i].send(s)) {
                Some(Err(back)) => pending = Some(back.0),
                _ => break,
            }
        }
        if pending.is_some() {
            break;
        }
    }
    drop(listener);
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    drop(inboxes);
    let mut first_error = None;
    for (thread, done) in threads {
        let result = done.await.unwrap_or(Err(KitError::Transport {
            what: "serving gRPC",
            reason: "a shard thread ended without a result".into(),
        }));
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}
