//! `serve_sharded`: connections spread over the shards and stay on theirs, calls
//! a shard makes through a shared `H2Unary` use that shard's own connection, and
//! shutdown ends every shard.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::net::TcpListener;
use tonic::{
    Code, Status, body::Body, server::NamedService, service::RoutesBuilder,
    transport::server::TcpConnectInfo,
};
use veilgrid_kit::{Shutdown, h2_unary::H2Unary, shards, tls::Security};

type Reply = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

/// Answers every call with an error whose message says where it ran: the shard
/// (`shard=Some(i)`) and, when it has an upstream, what the upstream said.
#[derive(Clone)]
struct WhereAmI {
    upstream: Option<Arc<H2Unary>>,
}

impl NamedService for WhereAmI {
    const NAME: &'static str = "test.WhereAmI";
}

impl tower_service::Service<http::Request<Body>> for WhereAmI {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Reply;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Reply {
        let upstream = self.upstream.clone();
        let peer_port = req
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr)
            .map(|a| a.port());
        Box::pin(async move {
            let mut said = format!("shard={:?} peer_port={peer_port:?}", shards::current());
            if let Some(up) = upstream {
                let answer = up
                    .call::<()>(PATH, vec![], Duration::from_secs(5), None, 1024)
                    .await;
                let upstream_said = answer.err().map(|s| s.message().to_owned());
                said.push_str(&format!(
                    " upstream=[{}]",
                    upstream_said.unwrap_or_default()
                ));
            }
            Ok(Status::failed_precondition(said).into_http())
        })
    }
}

const PATH: &str = "/test.WhereAmI/Call";

fn routes(upstream: Option<Arc<H2Unary>>) -> RoutesBuilder {
    let mut r = RoutesBuilder::default();
    r.add_service(WhereAmI { upstream });
    r
}

/// Start a sharded server; returns its URL, its shutdown and its join handle.
async fn sharded(
    n: usize,
    upstream: Option<Arc<H2Unary>>,
) -> (
    String,
    Shutdown,
    tokio::task::JoinHandle<Result<(), veilgrid_kit::KitError>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = Shutdown::new();
    let sd = shutdown.clone();
    let task = tokio::spawn(async move {
        shards::serve_sharded(listener, sd, routes(upstream), &Security::Plaintext, n).await
    });
    (url, shutdown, task)
}

/// Fire `shutdown` and wait for `serve_sharded` to return `Ok` (every shard ended).
async fn stop(
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<Result<(), veilgrid_kit::KitError>>,
) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("every shard stops")
        .unwrap()
        .unwrap();
}

/// What the server said about the call (its error message).
async fn ask(client: &H2Unary) -> String {
    let err = client
        .call::<()>(PATH, vec![], Duration::from_secs(5), None, 1024)
        .await
        .expect_err("the test service always answers with an error status");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    err.message().to_owned()
}

fn shard_of(said: &str) -> String {
    said.split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn connections_spread_over_the_shards_and_stay_on_theirs() {
    let (url, shutdown, task) = sharded(2, None).await;
    let mut seen = Vec::new();
    // Four clients, four connections (each client off the shards uses one).
    for _ in 0..4 {
        let client = H2Unary::new(&Security::Plaintext, &url, None).unwrap();
        let first = shard_of(&ask(&client).await);
        assert!(
            first.starts_with("shard=Some("),
            "served off the shards: {first}"
        );
        for _ in 0..3 {
            assert_eq!(shard_of(&ask(&client).await), first, "a connection moved");
        }
        seen.push(first);
    }
    assert_eq!(
        seen,
        [
            "shard=Some(0)",
            "shard=Some(1)",
            "shard=Some(0)",
            "shard=Some(1)"
        ],
        "connections are handed out round robin"
    );
    stop(shutdown, task).await;
}

#[tokio::test]
async fn a_shard_calls_upstream_on_its_own_connection() {
    // The upstream (not sharded) reports the source port of the connection each
    // call came in on.
    let up_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_url = format!("http://{}", up_listener.local_addr().unwrap());
    let up_stop = Shutdown::new();
    let sd = up_stop.clone();
    tokio::spawn(async move { veilgrid_kit::server::serve(up_listener, sd, routes(None)).await });
    // One client to the upstream, shared by both shards of the front server.
    let upstream = Arc::new(H2Unary::new(&Security::Plaintext, &up_url, None).unwrap());
    let (url, shutdown, task) = sharded(2, Some(upstream.clone())).await;
    let mut port_of_shard = std::collections::HashMap::new();
    for _ in 0..3 {
        for _ in 0..2 {
            let client = H2Unary::new(&Security::Plaintext, &url, None).unwrap();
            let said = ask(&client).await;
            let shard = shard_of(&said);
            let port = said
                .split("upstream=[")
                .nth(1)
                .and_then(|s| s.split("peer_port=").nth(1))
                .and_then(|s| s.split(']').next())
                .unwrap_or_else(|| panic!("no upstream port in {said:?}"))
                .to_owned();
            assert!(port.starts_with("Some("), "{said}");
            let known = port_of_shard.entry(shard.clone()).or_insert(port.clone());
            assert_eq!(*known, port, "{shard} used another upstream connection");
        }
    }
    assert_eq!(port_of_shard.len(), 2, "{port_of_shard:?}");
    let ports: std::collections::HashSet<_> = port_of_shard.values().collect();
    assert_eq!(ports.len(), 2, "the shards shared one upstream connection");
    // A call from off the shards uses yet another connection.
    let off = upstream
        .call::<()>(PATH, vec![], Duration::from_secs(5), None, 1024)
        .await
        .unwrap_err();
    let off_port = off.message().split("peer_port=").nth(1).unwrap().to_owned();
    assert!(
        !ports.contains(&off_port),
        "{off_port} is a shard's connection"
    );
    up_stop.cancel();
    stop(shutdown, task).await;
}

#[tokio::test]
async fn after_shutdown_new_connections_are_refused() {
    let (url, shutdown, task) = sharded(3, None).await;
    let client = H2Unary::new(&Security::Plaintext, &url, None).unwrap();
    assert!(shard_of(&ask(&client).await).starts_with("shard=Some("));
    stop(shutdown, task).await;
    let late = H2Unary::new(&Security::Plaintext, &url, None).unwrap();
    let err = late
        .call::<()>(PATH, vec![], Duration::from_secs(2), None, 1024)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
}
