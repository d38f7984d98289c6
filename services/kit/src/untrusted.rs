//! A tonic client of a server the caller does not trust: [`StripStatusDetails`].
//!
//! tonic 0.14 turns a response's `grpc-status-details-bin` into a `Status` with
//! `Status::from_header_map`, which *panics* when the header is not valid base64
//! (upstream: grpc/grpc-rust pull request 2618, open as of this writing). Any
//! server a tonic client calls can therefore panic the calling task with one
//! header. The router calls providers that anyone holding a certificate may run,
//! so its clients wrap their channel in [`StripStatusDetails`], which removes that
//! header from response headers and trailers before tonic reads them. Veilgrid
//! never sends or reads status details; `grpc-status` and `grpc-message` pass
//! unchanged. (Unary calls to providers do not go through tonic at all:
//! [`crate::h2_unary`].) Every other Veilgrid client — the CLI and the services'
//! clients of the router, matching nodes of each other, providers registering —
//! uses [`GrpcChannel`] too: a matching node is one of three parties any of which
//! may be malicious, and a client should not crash because a server misbehaves.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};

/// A tonic channel whose answers cannot panic the caller: what every Veilgrid
/// client uses ([`crate::tls::Security::channel`] returns one).
pub type GrpcChannel = StripStatusDetails<tonic::transport::Channel>;

/// The header removed.
const DETAILS: &str = "grpc-status-details-bin";

/// Wraps a channel (any `tower` HTTP service): responses come back without
/// `grpc-status-details-bin`, in headers and in trailers.
#[derive(Debug, Clone)]
pub struct StripStatusDetails<S>(pub S);

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for StripStatusDetails<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<Stripped<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let fut = self.0.call(req);
        Box::pin(async move {
            let (mut parts, body) = fut.await?.into_parts();
            strip(&mut parts.headers);
            Ok(Response::from_parts(parts, Stripped(body)))
        })
    }
}

fn strip(headers: &mut HeaderMap) {
    headers.remove(DETAILS);
}

/// A response body whose trailers come without `grpc-status-details-bin`.
#[derive(Debug)]
pub struct Stripped<B>(B);

impl<B: Body + Unpin> Body for Stripped<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match Pin::new(&mut self.0).poll_frame(cx) {
            Poll::Ready(Some(Ok(mut frame))) => {
                if let Some(t) = frame.trailers_mut() {
                    strip(t);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}
