//! Calling a router: completions (unary or streamed) whose receipts are verified
//! on arrival, and provider listings.

use std::time::{Duration, Instant};

use bytes::Bytes;
use veilgrid_core::{protocol::ProtocolId, receipt::SignedReceipt};
use veilgrid_kit::tls::Security;
use veilgrid_kit::untrusted::{GrpcChannel, StripStatusDetails};
use veilgrid_kit::{chunks, clock::now_ms, provider::receipt_from_proto};
use veilgrid_proto::grid::v1::{
    CompletionRequest, CompletionResponse, ListProvidersRequest, ProviderStatus, Terms,
    router_client::RouterClient,
};

use crate::Error;

/// Largest completion a client accepts from a stream.
pub const MAX_STREAM_COMPLETION: usize = 256 << 20;

/// Per-call options.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Time allowed for the whole call.
    pub deadline: Option<Duration>,
    /// With an id, the router may retry once on another provider.
    pub idempotency_id: Option<Vec<u8>>,
    /// Only this provider.
    pub target: Option<[u8; 32]>,
    /// Highest acceptable price (0 = any), in `currency`.
    pub max_price: u64,
    /// Currency of `max_price` (empty = the router's).
    pub currency: String,
    /// Lowest acceptable reputation.
    pub min_reputation: f64,
}

/// A completion whose receipt verified.
#[derive(Debug, Clone)]
pub struct Completed {
    /// The completion bytes.
    pub completion: Bytes,
    /// The provider's signed receipt (verified).
    pub receipt: SignedReceipt,
    /// Round-trip time seen by the client.
    pub latency: Duration,
}

/// A client of one router.
#[derive(Debug, Clone)]
pub struct GridClient {
    inner: RouterClient<GrpcChannel>,
    addr: String,
    tls: bool,
}

impl GridClient {
    /// Connect to the router at `addr` (e.g. `http://127.0.0.1:7700`).
    pub async fn connect(addr: &str) -> Result<Self, Error> {
        Self::connect_secure(addr, &Security::Plaintext).await
    }

    /// Connect to the router at `addr` with `security`: under mutual TLS (an
    /// `https://` URL) this client presents its certificate, and what it creates
    /// belongs to that identity.
    pub async fn connect_secure(addr: &str, security: &Security) -> Result<Self, Error> {
        let conn_err = |reason: String| Error::Connect {
            addr: addr.to_owned(),
            reason,
        };
        let channel = security
            .endpoint(addr, None)
            .map_err(|e| conn_err(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| conn_err(connect_hint(&e, security)))?;
        let max = 8 << 20;
        Ok(Self {
            inner: RouterClient::new(StripStatusDetails(channel))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
            addr: addr.to_owned(),
            tls: security.is_tls(),
        })
    }

    /// An RPC error, with a hint when a transport failure looks like a TLS mismatch.
    fn rpc_error(&self, what: impl Into<String>, s: tonic::Status) -> Error {
        let transport = matches!(
            s.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
        ) && (s.message().contains("transport")
            || s.message().contains("h2 protocol"));
        if !transport {
            return Error::rpc(what, s);
        }
        let hint = if self.tls {
            " (TLS connection failed: does the router use a certificate from the same CA?)"
        } else {
            " (the connection failed: if the router runs with TLS, connect to its https:// URL with a client certificate: --tls-dir)"
        };
        Error::rpc(
            what,
            tonic::Status::new(s.code(), format!("{}{hint}", s.message())),
        )
    }

    /// The router's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Every provider the router knows, or those of one protocol.
    pub async fn providers(
        &mut self,
        protocol: Option<&ProtocolId>,
    ) -> Result<Vec<ProviderStatus>, Error> {
        let req = ListProvidersRequest {
            protocol_id: protocol
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .unwrap_or_default(),
        };
        Ok(self
            .inner
            .list_providers(req)
            .await
            .map_err(|s| self.rpc_error("listing providers", s))?
            .into_inner()
            .providers)
    }

    fn request(protocol: &ProtocolId, payload: Bytes, o: &CallOptions) -> CompletionRequest {
        CompletionRequest {
            protocol_id: Bytes::copy_from_slice(protocol.as_bytes()),
            payload,
            terms: Some(Terms {
                deadline_unix_ms: o
                    .deadline
                    .map(|d| now_ms() + d.as_millis() as u64)
                    .unwrap_or(0),
                max_price: o.max_price,
                currency: o.currency.clone(),
                min_reputation: o.min_reputation,
            }),
            idempotency_id: o
                .idempotency_id
                .clone()
                .map(Bytes::from)
                .unwrap_or_default(),
            target_provider: o
                .target
                .map(|t| Bytes::copy_from_slice(&t))
                .unwrap_or_default(),
            stream_length: 0,
        }
    }

    /// Complete `payload` under `protocol` in one message.
    pub async fn complete(
        &mut self,
        protocol: &ProtocolId,
        payload: Bytes,
        o: &CallOptions,
    ) -> Result<Completed, Error> {
        let started = Instant::now();
        let req = Self::request(protocol, payload.clone(), o);
        let resp = self
            .inner
            .complete(req)
            .await
            .map_err(|s| self.rpc_error(format!("completing {protocol}"), s))?
            .into_inner();
        verify(protocol, &payload, resp, o, started)
    }

    /// Complete `payload` under `protocol` as a stream of 1 MiB chunks.
    pub async fn complete_stream(
        &mut self,
        protocol: &ProtocolId,
        payload: Bytes,
        o: &CallOptions,
    ) -> Result<Completed, Error> {
        let started = Instant::now();
        let frames = chunks::request_frames(Self::request(protocol, payload.clone(), o));
        let stream = self
            .inner
            .complete_stream(futures::stream::iter(frames))
            .await
            .map_err(|s| self.rpc_error(format!("streaming {protocol}"), s))?
            .into_inner();
        let resp = chunks::collect_response(stream, MAX_STREAM_COMPLETION)
            .await
            .map_err(|s| Error::rpc(format!("streaming {protocol}"), s))?;
        verify(protocol, &payload, resp, o, started)
    }
}

/// The transport error, with a hint when it looks like a TLS mismatch.
fn connect_hint(e: &tonic::transport::Error, security: &Security) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    if security.is_tls() {
        format!(
            "{msg} (TLS handshake or connection failed: is the router running with TLS and a certificate from the same CA?)"
        )
    } else {
        format!(
            "{msg} (if the router runs with TLS, connect to its https:// URL with a client certificate: --tls-dir)"
        )
    }
}

fn verify(
    protocol: &ProtocolId,
    payload: &[u8],
    resp: CompletionResponse,
    o: &CallOptions,
    started: Instant,
) -> Result<Completed, Error> {
    let latency = started.elapsed();
    let proto = resp
        .receipt
        .as_ref()
        .ok_or_else(|| Error::Verify("the completion came without a receipt".into()))?;
    let receipt = receipt_from_proto(proto)?;
    receipt
        .verify_for(protocol, payload, &resp.completion)
        .map_err(|e| Error::Verify(format!("receipt: {e}")))?;
    if let Some(t) = o.target
        && receipt.receipt.provider_id != t
    {
        return Err(Error::Verify(
            "the receipt is signed by a provider other than the one targeted".into(),
        ));
    }
    Ok(Completed {
        completion: resp.completion,
        receipt,
        latency,
    })
}
