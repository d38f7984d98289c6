//! A tonic client behind `StripStatusDetails` gets a status, not a panic, from a
//! server that sends a `grpc-status-details-bin` that is not base64, in the
//! headers (trailers-only answer) or in the trailers after a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use tokio::net::TcpListener;
use tonic::{Code, transport::Endpoint};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use veilgrid_kit::untrusted::StripStatusDetails;

const BAD: &str = "%%% not base64 %%%";

/// A raw HTTP/2 server: trailers-only if `trailers_only`, else one empty message
/// and then the status in trailers; either way status 13 with a bad details header.
async fn server(trailers_only: bool) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    let mut status = HeaderMap::new();
                    status.insert("grpc-status", HeaderValue::from_static("13"));
                    status.insert("grpc-message", HeaderValue::from_static("bad%20day"));
                    status.insert("grpc-status-details-bin", HeaderValue::from_static(BAD));
                    let mut head = Response::new(());
                    head.headers_mut()
                        .insert("content-type", HeaderValue::from_static("application/grpc"));
                    if trailers_only {
                        head.headers_mut().extend(status);
                        let _ = respond.send_response(head, true);
                    } else if let Ok(mut s) = respond.send_response(head, false) {
                        let _ = s.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), false);
                        let _ = s.send_trailers(status);
                    }
                }
            });
        }
    });
    url
}

async fn check(
    url: &str,
    strip: bool,
) -> Result<Result<(), tonic::Status>, tokio::task::JoinError> {
    let ch = Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let req = HealthCheckRequest {
        service: String::new(),
    };
    if strip {
        let mut c = HealthClient::new(StripStatusDetails(ch));
        tokio::spawn(async move { c.check(req).await.map(|_| ()) }).await
    } else {
        let mut c = HealthClient::new(ch);
        tokio::spawn(async move { c.check(req).await.map(|_| ()) }).await
    }
}

#[tokio::test]
async fn a_bad_details_header_is_a_status_not_a_panic() {
    for trailers_only in [true, false] {
        let url = server(trailers_only).await;
        let e = tokio::time::timeout(Duration::from_secs(10), check(&url, true))
            .await
            .unwrap()
            .expect("no panic behind StripStatusDetails")
            .unwrap_err();
        assert_eq!(e.code(), Code::Internal, "{e}");
        assert_eq!(e.message(), "bad day");
        // Without the wrapper, tonic 0.14 panics on this answer. When this starts
        // failing, tonic has fixed it upstream and the wrapper can go.
        let unwrapped = tokio::time::timeout(Duration::from_secs(10), check(&url, false))
            .await
            .unwrap();
        assert!(
            unwrapped.as_ref().is_err_and(|j| j.is_panic()),
            "tonic no longer panics on a bad grpc-status-details-bin: {unwrapped:?}"
        );
    }
}
