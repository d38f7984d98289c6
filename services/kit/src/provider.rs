//! The `Provider` gRPC service, shared by every Veilgrid service.
//!
//! A service implements [`Handler`] for its protocols; [`ProviderService`] does the
//! rest: it dispatches on the 32-byte protocol id, enforces the payload limit, the
//! caller's deadline and the provider's capacity, and signs a receipt over the
//! request and the completion with the provider's Ed25519 key.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use veilgrid_core::{
    protocol::ProtocolId,
    receipt::{self, Receipt},
};
use veilgrid_proto::grid::v1::{
    self as pb, Ask, CompletionChunk, CompletionRequest, CompletionResponse,
    provider_server::{Provider, ProviderServer},
};

use crate::{chunks, clock::now_ms, identity::Identity};

/// What a handler learns about the request besides its payload.
#[derive(Debug, Clone)]
pub struct Context {
    /// The protocol being completed.
    pub protocol: ProtocolId,
    /// Absolute deadline, ms since the Unix epoch.
    pub deadline_ms: u64,
    /// The caller's idempotency id (may be empty).
    pub idempotency_id: Bytes,
    /// Who is calling, when the connection is mutual TLS: the identity the router
    /// vouches for, or the peer itself ([`crate::auth::resolve`]). `None` in plaintext.
    /// Check ownership with [`crate::auth_owners::Owners`].
    pub caller: Option<crate::auth::Caller>,
}

/// The logic of one or more protocols.
#[tonic::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Complete `payload`. Errors are returned to the caller as they are, so use
    /// the status code that tells the caller what to do (`INVALID_ARGUMENT` for
    /// bad input, `UNAVAILABLE` for a transient fault, ...).
    async fn complete(&self, ctx: &Context, payload: Bytes) -> Result<Bytes, Status>;
}

/// Settings of a provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Label for people (appears in `veilgrid providers`).
    pub name: String,
    /// The currency asks are quoted in.
    pub currency: String,
    /// Requests served at once; more get `UNAVAILABLE` so the router picks another provider.
    pub capacity: u32,
    /// Largest payload accepted, in bytes.
    pub max_payload: usize,
    /// Deadline applied when the request names none.
    pub default_deadline: Duration,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            name: "provider".into(),
            currency: "VG".into(),
            capacity: 64,
            max_payload: 256 << 20,
            default_deadline: Duration::from_secs(60),
        }
    }
}

struct Route {
    name: String,
    price: u64,
    handler: Arc<dyn Handler>,
}

struct Inner {
    identity: Arc<Identity>,
    config: ProviderConfig,
    routes: HashMap<ProtocolId, Route>,
    permits: Semaphore,
}

/// A provider: handlers by protocol, plus identity and limits. Cheap to clone.
#[derive(Clone)]
pub struct ProviderService(Arc<Inner>);

/// Builds a [`ProviderService`].
pub struct ProviderBuilder {
    identity: Arc<Identity>,
    config: ProviderConfig,
    routes: HashMap<ProtocolId, Route>,
}

impl ProviderBuilder {
    /// Serve protocol `name` with `handler` at `price` per completion.
    pub fn protocol(mut self, name: &str, price: u64, handler: Arc<dyn Handler>) -> Self {
        self.routes.insert(
            ProtocolId::from_name(name),
            Route {
                name: name.to_owned(),
                price,
                handler,
            },
        );
        self
    }

    /// Finish.
    pub fn build(self) -> ProviderService {
        let permits = Semaphore::new(self.config.capacity.max(1) as usize);
        ProviderService(Arc::new(Inner {
            identity: self.identity,
            config: self.config,
            routes: self.routes,
            permits,
        }))
    }
}

impl ProviderService {
    /// Start building a provider with this identity and configuration.
    pub fn builder(identity: Arc<Identity>, config: ProviderConfig) -> ProviderBuilder {
        ProviderBuilder {
            identity,
            config,
            routes: HashMap::new(),
        }
    }

    /// The provider's identity.
    pub fn identity(&self) -> &Arc<Identity> {
        &self.0.identity
    }

    /// The provider's configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.0.config
    }

    /// The asks to publish in a lease.
    pub fn asks(&self) -> Vec<Ask> {
        let mut asks: Vec<Ask> = self
            .0
            .routes
            .iter()
            .map(|(id, r)| Ask {
                protocol_id: Bytes::copy_from_slice(id.as_bytes()),
                price: r.price,
                protocol_name: r.name.clone(),
            })
            .collect();
        asks.sort_by(|a, b| a.protocol_name.cmp(&b.protocol_name));
        asks
    }

    /// The tonic service, with message limits that fit one data frame of a stream.
    pub fn into_server(self) -> ProviderServer<Self> {
        let max = self.0.config.max_payload.saturating_add(64 << 10);
        ProviderServer::new(self)
            .max_decoding_message_size(max)
            .max_encoding_message_size(max)
    }

    /// Complete one request for an unidentified caller.
    pub async fn handle(&self, req: CompletionRequest) -> Result<CompletionResponse, Status> {
        self.handle_as(req, None).await
    }

    /// Complete one request for `caller` (the unary and the streamed calls both end here).
    pub async fn handle_as(
        &self,
        req: CompletionRequest,
        caller: Option<crate::auth::Caller>,
    ) -> Result<CompletionResponse, Status> {
        let inner = &self.0;
        let started_at_ms = now_ms();
        let protocol = ProtocolId::from_bytes(&req.protocol_id).map_err(|_| {
            Status::invalid_argument(format!(
                "protocol id must be 32 bytes (SHA-256 of the protocol name), got {}",
                req.protocol_id.len()
            ))
        })?;
        let route = inner.routes.get(&protocol).ok_or_else(|| {
            Status::not_found(format!(
                "provider {} does not serve protocol {}",
                inner.config.name, protocol
            ))
        })?;
        if !req.target_provider.is_empty()
            && req.target_provider.as_ref() != inner.identity.provider_id().as_slice()
        {
            return Err(Status::invalid_argument(
                "the request is addressed to another provider",
            ));
        }
        if req.payload.len() > inner.config.max_payload {
            return Err(Status::resource_exhausted(format!(
                "payload of {} bytes exceeds this provider's limit of {} bytes",
                req.payload.len(),
                inner.config.max_payload
            )));
        }
        let terms = req.terms.unwrap_or_default();
        let deadline_ms = match terms.deadline_unix_ms {
            0 => started_at_ms + inner.config.default_deadline.as_millis() as u64,
            d => d,
        };
        let Some(time_left) = crate::clock::until(deadline_ms) else {
            return Err(Status::deadline_exceeded(
                "the request's deadline has passed",
            ));
        };
        let _permit = inner.permits.try_acquire().map_err(|_| {
            Status::unavailable(format!(
                "provider {} is at capacity ({} requests)",
                inner.config.name, inner.config.capacity
            ))
        })?;
        let ctx = Context {
            protocol,
            deadline_ms,
            idempotency_id: req.idempotency_id.clone(),
            caller,
        };
        let completion = match tokio::time::timeout(
            time_left,
            route.handler.complete(&ctx, req.payload.clone()),
        )
        .await
        {
            Ok(r) => r?,
            Err(_) => {
                return Err(Status::deadline_exceeded(format!(
                    "{} did not finish before the deadline",
                    route.name
                )));
            }
        };
        let signed = Receipt {
            request_hash: receipt::request_hash(&protocol, &req.payload),
            response_hash: receipt::response_hash(&completion),
            provider_id: inner.identity.provider_id(),
            protocol_id: protocol,
            price: route.price,
            currency: inner.config.currency.clone(),
            started_at_ms,
            finished_at_ms: now_ms(),
        }
        .sign(&inner.identity.signing)
        .map_err(|e| Status::internal(format!("signing the receipt: {e}")))?;
        Ok(CompletionResponse {
            completion,
            receipt: Some(receipt_to_proto(&signed)),
        })
    }
}

/// The protobuf form of a signed receipt.
pub fn receipt_to_proto(r: &veilgrid_core::receipt::SignedReceipt) -> pb::Receipt {
    pb::Receipt {
        request_hash: Bytes::copy_from_slice(&r.receipt.request_hash),
        response_hash: Bytes::copy_from_slice(&r.receipt.response_hash),
        provider_id: Bytes::copy_from_slice(&r.receipt.provider_id),
        protocol_id: Bytes::copy_from_slice(r.receipt.protocol_id.as_bytes()),
        price: r.receipt.price,
        currency: r.receipt.currency.clone(),
        started_at_ms: r.receipt.started_at_ms,
        finished_at_ms: r.receipt.finished_at_ms,
        signature: Bytes::copy_from_slice(&r.signature),
    }
}

/// A signed receipt from its protobuf form (lengths checked, signature not yet verified).
pub fn receipt_from_proto(
    r: &pb::Receipt,
) -> Result<veilgrid_core::receipt::SignedReceipt, veilgrid_core::Error> {
    use veilgrid_core::limits::{check_len, fixed};
    check_len(
        "receipt currency",
        r.currency.len(),
        veilgrid_core::receipt::MAX_CURRENCY_LEN,
    )?;
    Ok(veilgrid_core::receipt::SignedReceipt {
        receipt: Receipt {
            request_hash: fixed("receipt request hash", &r.request_hash)?,
            response_hash: fixed("receipt response hash", &r.response_hash)?,
            provider_id: fixed("receipt provider id", &r.provider_id)?,
            protocol_id: ProtocolId::from_bytes(&r.protocol_id)?,
            price: r.price,
            currency: r.currency.clone(),
            started_at_ms: r.started_at_ms,
            finished_at_ms: r.finished_at_ms,
        },
        signature: fixed("receipt signature", &r.signature)?,
    })
}

#[tonic::async_trait]
impl Provider for ProviderService {
    async fn complete(
        &self,
        request: Request<CompletionRequest>,
    ) -> Result<Response<CompletionResponse>, Status> {
        let caller = crate::auth::resolve(&request)?;
        self.handle_as(request.into_inner(), caller)
            .await
            .map(Response::new)
    }

    type CompleteStreamStream = ReceiverStream<Result<CompletionChunk, Status>>;

    async fn complete_stream(
        &self,
        request: Request<Streaming<CompletionChunk>>,
    ) -> Result<Response<Self::CompleteStreamStream>, Status> {
        let caller = crate::auth::resolve(&request)?;
        let req = chunks::collect_request(request.into_inner(), self.0.config.max_payload).await?;
        let resp = self.handle_as(req, caller).await?;
        Ok(Response::new(frames_stream(chunks::response_frames(resp))))
    }
}

/// A stream of frames for a streaming response.
pub fn frames_stream(
    frames: Vec<CompletionChunk>,
) -> ReceiverStream<Result<CompletionChunk, Status>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        for f in frames {
            if tx.send(Ok(f)).await.is_err() {
                break;
            }
        }
    });
    ReceiverStream::new(rx)
}
