//! `H2Unary` against a real tonic server (plaintext and mutual TLS) and against
//! raw HTTP/2 servers that misbehave: every answer becomes a status, none panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use prost::Message;
use tokio::net::TcpListener;
use tonic::{Code, service::RoutesBuilder};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use veilgrid_kit::{
    Shutdown,
    auth::Role,
    h2_unary::H2Unary,
    server::serve_secure,
    tls::Security,
    tls_ca::{self, IssueRequest},
};

const CHECK: &str = "/grpc.health.v1.Health/Check";

fn check(service: &str) -> Vec<Bytes> {
    vec![Bytes::from(
        HealthCheckRequest {
            service: service.into(),
        }
        .encode_to_vec(),
    )]
}

/// The health check (service "") through `c`, answer limit 1 KiB.
async fn health(c: &H2Unary, within: Duration) -> Result<HealthCheckResponse, tonic::Status> {
    c.call(CHECK, check(""), within, None, 1024).await
}

async fn tonic_server(security: Security) -> (String, Shutdown) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = security.url(l.local_addr().unwrap());
    let shutdown = Shutdown::new();
    let s = shutdown.clone();
    tokio::spawn(async move { serve_secure(l, s, RoutesBuilder::default(), &security).await });
    (url, shutdown)
}

#[tokio::test]
async fn plaintext_calls_answers_and_statuses() {
    let (url, shutdown) = tonic_server(Security::Plaintext).await;
    let c = H2Unary::new(&Security::Plaintext, &url, None).unwrap();
    for _ in 0..3 {
        let r: HealthCheckResponse = health(&c, Duration::from_secs(5)).await.unwrap();
        assert_eq!(r.status, 1, "SERVING");
    }
    let e = c
        .call::<HealthCheckResponse>(CHECK, check("nope"), Duration::from_secs(5), None, 1024)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e}");
    let e = c
        .call::<HealthCheckResponse>(
            "/grpc.health.v1.Health/Nope",
            check(""),
            Duration::from_secs(5),
            None,
            1024,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e}");
    // a message split over several pieces is one message: field 1 (service) with an
    // empty string, written explicitly, split between its key and its length
    let r: HealthCheckResponse = c
        .call(
            CHECK,
            vec![
                Bytes::from_static(&[0x0a]),
                Bytes::new(),
                Bytes::from_static(&[0x00]),
            ],
            Duration::from_secs(5),
            None,
            1024,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 1);
    // an answer over the limit
    let e = c
        .call::<HealthCheckResponse>(CHECK, check(""), Duration::from_secs(5), None, 1)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e}");
    shutdown.cancel();
}

#[tokio::test]
async fn a_lost_connection_is_redialled_on_the_next_call() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let first = Shutdown::new();
    let s = first.clone();
    let server = tokio::spawn(async move {
        serve_secure(l, s, RoutesBuilder::default(), &Security::Plaintext).await
    });
    let c = H2Unary::new(&Security::Plaintext, &format!("http://{addr}"), None).unwrap();
    let ok = |r: Result<HealthCheckResponse, tonic::Status>| r.unwrap().status == 1;
    assert!(ok(health(&c, Duration::from_secs(5)).await));
    first.cancel();
    let _ = server.await;
    // nobody listens now: a clear UNAVAILABLE
    let e = health(&c, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    // a server on the same port again: the next call connects anew
    let l = TcpListener::bind(addr).await.unwrap();
    let second = Shutdown::new();
    let s = second.clone();
    tokio::spawn(async move {
        serve_secure(l, s, RoutesBuilder::default(), &Security::Plaintext).await
    });
    assert!(ok(health(&c, Duration::from_secs(5)).await));
    second.cancel();
}

#[tokio::test]
async fn mutual_tls_checks_the_servers_name_and_ca() {
    let dir = tempfile::tempdir().unwrap();
    tls_ca::init(dir.path()).unwrap();
    for name in ["echo", "router"] {
        tls_ca::issue(
            dir.path(),
            &IssueRequest {
                name: name.into(),
                role: Role::Service,
                extra_sans: vec![],
            },
        )
        .unwrap();
    }
    let server = Security::mtls_from_dir(dir.path(), "echo").unwrap();
    let client = Security::mtls_from_dir(dir.path(), "router").unwrap();
    let (url, shutdown) = tonic_server(server).await;
    let good = H2Unary::new(&client, &url, Some("echo")).unwrap();
    let r: HealthCheckResponse = health(&good, Duration::from_secs(5)).await.unwrap();
    assert_eq!(r.status, 1);
    // the certificate is not issued to "other"
    let wrong = H2Unary::new(&client, &url, Some("other")).unwrap();
    let e = health(&wrong, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert!(e.message().contains("TLS"), "{e}");
    // a client with another CA's certificate is refused by the server, and does
    // not trust the server either
    let other = tempfile::tempdir().unwrap();
    tls_ca::init(other.path()).unwrap();
    tls_ca::issue(
        other.path(),
        &IssueRequest {
            name: "router".into(),
            role: Role::Service,
            extra_sans: vec![],
        },
    )
    .unwrap();
    let stranger = Security::mtls_from_dir(other.path(), "router").unwrap();
    let c = H2Unary::new(&stranger, &url, Some("echo")).unwrap();
    let e = health(&c, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    // scheme mismatches are refused up front
    assert!(H2Unary::new(&client, &url.replace("https", "http"), None).is_err());
    assert!(H2Unary::new(&Security::Plaintext, &url, None).is_err());
    shutdown.cancel();
}

/// A raw HTTP/2 server answering every request with `answer`.
async fn raw_server<F>(answer: F) -> String
where
    F: Fn(&mut h2::server::SendResponse<Bytes>) + Send + Sync + Clone + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                return;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    answer(&mut respond);
                    // keep the stream's handle alive for a while (a server that
                    // never answers keeps it open)
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        drop(respond);
                    });
                }
            });
        }
    });
    url
}

fn grpc_headers() -> Response<()> {
    let mut r = Response::new(());
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    r
}

async fn call_raw(url: &str, timeout: Duration) -> tonic::Status {
    let c = H2Unary::new(&Security::Plaintext, url, None).unwrap();
    c.call::<HealthCheckResponse>(CHECK, check(""), timeout, None, 1 << 20)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn misbehaving_servers_get_statuses_not_panics() {
    // never answers: the deadline holds
    let url = raw_server(|_| {}).await;
    let t = std::time::Instant::now();
    let e = call_raw(&url, Duration::from_millis(300)).await;
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));

    // trailers-only error with a details header that is not base64 (tonic's own
    // decoder would panic on it)
    let url = raw_server(|r| {
        let mut h = grpc_headers();
        h.headers_mut()
            .insert("grpc-status", HeaderValue::from_static("13"));
        h.headers_mut()
            .insert("grpc-message", HeaderValue::from_static("broken%21"));
        h.headers_mut().insert(
            "grpc-status-details-bin",
            HeaderValue::from_static("%%% not base64 %%%"),
        );
        let _ = r.send_response(h, true);
    })
    .await;
    let e = call_raw(&url, Duration::from_secs(5)).await;
    assert_eq!(e.code(), Code::Internal, "{e}");
    assert_eq!(e.message(), "broken!");

    // not gRPC at all
    let url = raw_server(|r| {
        let mut h = Response::new(());
        *h.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        let _ = r.send_response(h, true);
    })
    .await;
    assert_eq!(
        call_raw(&url, Duration::from_secs(5)).await.code(),
        Code::Unavailable
    );

    // a compressed message, a prefix that lies about the length, no status at all,
    // a body larger than the limit
    let bodies: Vec<(Vec<u8>, bool, Code)> = vec![
        (vec![1, 0, 0, 0, 2, 8, 1], true, Code::Internal),
        (vec![0, 0, 0, 0, 9, 8, 1], true, Code::Internal),
        (vec![0, 0, 0, 0, 2, 8, 1], false, Code::Internal),
        (vec![0u8; (1 << 20) + 64], true, Code::OutOfRange),
    ];
    for (body, with_status, want) in bodies {
        let url = raw_server(move |r| {
            let Ok(mut s) = r.send_response(grpc_headers(), false) else {
                return;
            };
            let _ = s.send_data(Bytes::from(body.clone()), false);
            let mut t = HeaderMap::new();
            if with_status {
                t.insert("grpc-status", HeaderValue::from_static("0"));
            }
            let _ = s.send_trailers(t);
        })
        .await;
        let e = call_raw(&url, Duration::from_secs(5)).await;
        assert_eq!(e.code(), want, "{e}");
    }

    // the stream is reset
    let url = raw_server(|r| r.send_reset(h2::Reason::REFUSED_STREAM)).await;
    assert_eq!(
        call_raw(&url, Duration::from_secs(5)).await.code(),
        Code::Unavailable
    );
}

/// A TCP relay to `upstream`. `freeze()` stops it forwarding anything on the
/// connections open so far, without closing them (a peer that vanished: a pulled
/// cable, a dead node); connections made later relay normally.
struct Relay {
    addr: std::net::SocketAddr,
    frozen_below: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    opened: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        use std::sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let frozen_below = Arc::new(AtomicUsize::new(0));
        let opened = Arc::new(AtomicUsize::new(0));
        let (fb, op) = (frozen_below.clone(), opened.clone());
        tokio::spawn(async move {
            while let Ok((down, _)) = l.accept().await {
                let id = op.fetch_add(1, Ordering::SeqCst);
                let Ok(up) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                for (mut r, mut w) in [
                    (
                        Box::new(dr) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                        Box::new(uw) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
                    ),
                    (Box::new(ur) as _, Box::new(dw) as _),
                ] {
                    let fb = fb.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 << 10];
                        loop {
                            let Ok(n) = r.read(&mut buf).await else {
                                return;
                            };
                            if n == 0 {
                                return;
                            }
                            if id < fb.load(Ordering::SeqCst) {
                                // frozen: hold both ends open, forward nothing
                                std::future::pending::<()>().await;
                            }
                            if w.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        });
        Self {
            addr,
            frozen_below,
            opened,
        }
    }

    fn freeze(&self) {
        use std::sync::atomic::Ordering;
        self.frozen_below
            .store(self.opened.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_unanswered_ping_drops_the_connection_and_the_next_call_redials() {
    let (url, shutdown) = tonic_server(Security::Plaintext).await;
    let upstream = url.trim_start_matches("http://").parse().unwrap();
    let relay = Relay::start(upstream).await;
    let via = format!("http://{}", relay.addr);
    let pinging = H2Unary::new(&Security::Plaintext, &via, None)
        .unwrap()
        .with_keepalive(Duration::from_millis(100), Duration::from_millis(100));
    let default = H2Unary::new(&Security::Plaintext, &via, None).unwrap();
    for c in [&pinging, &default] {
        let r: HealthCheckResponse = health(c, Duration::from_secs(5)).await.unwrap();
        assert_eq!(r.status, 1);
    }
    relay.freeze();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // the pinging client noticed and dials anew
    let r: HealthCheckResponse = health(&pinging, Duration::from_secs(2)).await.unwrap();
    assert_eq!(r.status, 1);
    // the other (10 s pings) still sends on the dead connection and times out:
    // what the keep-alive is there to prevent
    let e = health(&default, Duration::from_millis(500))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    shutdown.cancel();
}
