//! A provider is untrusted: nothing it answers may panic the router.
//!
//! tonic 0.14 `expect()`s that a `grpc-status-details-bin` header is base64
//! (grpc/grpc-rust#2618), so a provider that sends a malformed one would panic
//! the router's task for the request if the router read it with bare tonic.
//! Here a raw HTTP/2 "provider" registers with a real router and answers every
//! completion, unary and streamed, with such a header: the caller gets the
//! provider's error, the router counts the broken promises and keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::{sync::Arc, time::Duration};

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use http::{HeaderMap, HeaderValue, Response};
use tokio::net::TcpListener;
use tonic::Code;
use veilgrid::client::CallOptions;
use veilgrid_core::protocol::ProtocolId;
use veilgrid_kit::echo::ECHO;
use veilgrid_proto::grid::v1::router_client::RouterClient;

const PROTOCOL: &str = "test/malformed-details/v1";

/// A raw HTTP/2 server: `grpc.health.v1` checks get SERVING; every other call a
/// trailers-only INTERNAL with a `grpc-status-details-bin` that is not base64.
async fn malformed_details_provider() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((req, mut respond))) = conn.accept().await {
                    let mut head = Response::new(());
                    head.headers_mut()
                        .insert("content-type", HeaderValue::from_static("application/grpc"));
                    if req.uri().path() == "/grpc.health.v1.Health/Check" {
                        // HealthCheckResponse { status: SERVING }, one gRPC message.
                        let Ok(mut body) = respond.send_response(head, false) else {
                            continue;
                        };
                        let mut msg = BytesMut::new();
                        msg.put_u8(0);
                        msg.put_u32(2);
                        msg.put_slice(&[0x08, 0x01]);
                        let _ = body.send_data(msg.freeze(), false);
                        let mut trailers = HeaderMap::new();
                        trailers.insert("grpc-status", HeaderValue::from_static("0"));
                        let _ = body.send_trailers(trailers);
                    } else {
                        let h = head.headers_mut();
                        h.insert("grpc-status", HeaderValue::from_static("13"));
                        h.insert(
                            "grpc-message",
                            HeaderValue::from_static("mallory%20says%20no"),
                        );
                        h.insert(
                            "grpc-status-details-bin",
                            HeaderValue::from_static("!!!not-base64!!!"),
                        );
                        let _ = respond.send_response(head, true);
                    }
                }
            });
        }
    });
    url
}

fn opts() -> CallOptions {
    CallOptions {
        deadline: Some(Duration::from_secs(5)),
        ..CallOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_status_details_fail_the_call_not_the_router() {
    let g = start(fast_router()).await;
    let url = malformed_details_provider().await;
    let mallory = provider("mallory", PROTOCOL, 1, Arc::new(Echo));
    let mut raw = RouterClient::connect(g.router_url.clone()).await.unwrap();
    raw.register(veilgrid_kit::registration::signed_registration(
        &mallory,
        &url,
        Duration::from_secs(30),
    ))
    .await
    .unwrap();
    let mut c = client(&g).await;
    let id = ProtocolId::from_name(PROTOCOL);
    let unary = c
        .complete(&id, Bytes::from_static(b"x"), &opts())
        .await
        .unwrap_err();
    let streamed = c
        .complete_stream(&id, Bytes::from_static(b"x"), &opts())
        .await
        .unwrap_err();
    for (path, e) in [("unary", unary), ("streamed", streamed)] {
        assert_eq!(e.code(), Some(Code::Internal), "{path}: {e}");
        assert!(e.to_string().contains("mallory says no"), "{path}: {e}");
    }
    // Both broken promises are on record.
    let ps = c.providers(Some(&id)).await.unwrap();
    assert_eq!(ps.len(), 1);
    assert_eq!((ps[0].stats[0].kept, ps[0].stats[0].broken), (0, 2));
    // The router still serves, and its maintenance loop (which health-checks the
    // provider through the same kind of connection) still runs: the provider is
    // still listed as serving after a few health intervals.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let echo = c
        .complete(
            &ProtocolId::from_name(ECHO),
            Bytes::from_static(b"ping"),
            &opts(),
        )
        .await
        .unwrap();
    assert_eq!(&echo.completion[..], b"ping");
    let ps = c.providers(Some(&id)).await.unwrap();
    assert!(ps[0].serving, "health checks kept running");
    g.stop().await;
}
