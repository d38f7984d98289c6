//! The `Router` gRPC service.

use std::sync::{Arc, atomic::Ordering};

use bytes::Bytes;
use rand::RngCore;
use subtle::ConstantTimeEq;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use veilgrid_core::protocol::ProtocolId;
use veilgrid_kit::{auth, chunks, clock::now_ms, provider::frames_stream};
use veilgrid_proto::grid::v1::{
    CompletionChunk, CompletionRequest, CompletionResponse, DeregisterRequest, DeregisterResponse,
    Lease, ListProvidersRequest, ListProvidersResponse, ProtocolStats, ProviderStatus,
    RegisterRequest, RenewRequest, router_server::Router,
};

use crate::{
    State,
    forward::{self, Outcome},
    lease,
    registry::Entry,
    select::{self, Candidate, Limits},
    store::LeaseRecord,
};

/// Longest idempotency id.
const MAX_IDEMPOTENCY_ID: usize = 64;

/// The router's gRPC service.
#[derive(Clone)]
pub struct RouterService {
    pub(crate) state: Arc<State>,
}

impl RouterService {
    fn validate(&self, req: &CompletionRequest, limit: usize) -> Result<ProtocolId, Status> {
        let protocol = ProtocolId::from_bytes(&req.protocol_id).map_err(|_| {
            Status::invalid_argument(format!(
                "protocol_id must be the 32-byte SHA-256 of a protocol name, got {} bytes",
                req.protocol_id.len()
            ))
        })?;
        if req.idempotency_id.len() > MAX_IDEMPOTENCY_ID {
            return Err(Status::invalid_argument(format!(
                "idempotency_id is at most {MAX_IDEMPOTENCY_ID} bytes"
            )));
        }
        if !(req.target_provider.is_empty() || req.target_provider.len() == 32) {
            return Err(Status::invalid_argument(
                "target_provider must be empty or a 32-byte provider id",
            ));
        }
        if let Some(t) = &req.terms
            && !(0.0..=1.0).contains(&t.min_reputation)
        {
            return Err(Status::invalid_argument(
                "min_reputation must be within [0, 1]",
            ));
        }
        if req.payload.len() > limit {
            return Err(Status::resource_exhausted(format!(
                "payload of {} bytes exceeds the router's limit of {limit} bytes{}",
                req.payload.len(),
                if limit == self.state.config.max_unary_payload {
                    "; use CompleteStream for large payloads"
                } else {
                    ""
                }
            )));
        }
        Ok(protocol)
    }

    /// The request's deadline, ms since the Unix epoch (the router's default if none).
    fn deadline_ms(&self, req: &CompletionRequest) -> u64 {
        match req.terms.as_ref().map_or(0, |t| t.deadline_unix_ms) {
            0 => now_ms() + self.state.config.default_deadline.as_millis() as u64,
            d => d,
        }
    }

    /// Route one validated request: select, forward, judge, retry once if allowed.
    async fn route(
        &self,
        protocol: ProtocolId,
        req: CompletionRequest,
        stream: bool,
        caller: Option<&auth::Caller>,
    ) -> Result<CompletionResponse, Status> {
        let deadline_ms = self.deadline_ms(&req);
        if let Some(obs) = &self.state.config.observer {
            obs(&protocol, &req.payload);
        }
        let attempts = if req.idempotency_id.is_empty() { 1 } else { 2 };
        self.attempts(
            protocol,
            req,
            stream,
            caller,
            deadline_ms,
            Vec::new(),
            attempts,
        )
        .await
        .map_err(|e| e.unwrap_or_else(|| Status::unavailable("no provider completed the request")))
    }

    /// Up to `attempts` tries on providers not in `failed`. `Err(None)` when no
    /// attempt was made.
    #[allow(clippy::too_many_arguments)]
    async fn attempts(
        &self,
        protocol: ProtocolId,
        req: CompletionRequest,
        stream: bool,
        caller: Option<&auth::Caller>,
        deadline_ms: u64,
        mut failed: Vec<[u8; 32]>,
        attempts: usize,
    ) -> Result<CompletionResponse, Option<Status>> {
        let st = &self.state;
        let terms = req.terms.clone().unwrap_or_default();
        let mut last_error = None;
        for _attempt in 0..attempts {
            let Some(time_left) = veilgrid_kit::clock::until(deadline_ms) else {
                return Err(Some(last_error.unwrap_or_else(|| {
                    Status::deadline_exceeded("the request's deadline passed before routing")
                })));
            };
            let entry = self
                .select(&protocol, &req, &terms, &failed)
                .map_err(Some)?;
            let mut fwd = req.clone();
            if let Some(t) = fwd.terms.as_mut() {
                t.deadline_unix_ms = deadline_ms;
            }
            let outcome = forward::call(
                &entry,
                &protocol,
                fwd,
                stream,
                time_left,
                st.message_limit(),
                st.config.max_stream_payload,
                caller,
            )
            .await;
            match self.settle(&entry, &protocol, outcome).map_err(Some)? {
                Ok(resp) => return Ok(resp),
                Err(s) => {
                    failed.push(entry.id);
                    last_error = Some(s);
                }
            }
        }
        Err(last_error)
    }

    /// Count a call's outcome. `Ok(Ok(response))` for a kept promise,
    /// `Ok(Err(status))` for a broken one (another provider may be tried),
    /// `Err(status)` for an answer to pass on as it is.
    fn settle(
        &self,
        entry: &Entry,
        protocol: &ProtocolId,
        outcome: Outcome,
    ) -> Result<Result<CompletionResponse, Status>, Status> {
        let st = &self.state;
        match outcome {
            Outcome::Kept(kept) => {
                let (resp, receipt) = *kept;
                st.record(&entry.id, protocol, true, Some(receipt))?;
                if let Some(obs) = &st.config.observer {
                    obs(protocol, &resp.completion);
                }
                Ok(Ok(resp))
            }
            Outcome::Refused(s) => Err(s),
            Outcome::Broken(s) => {
                st.record(&entry.id, protocol, false, None)?;
                if s.code() == tonic::Code::Unavailable {
                    entry.serving.store(false, Ordering::Relaxed);
                }
                tracing::info!(provider = %hex::encode(&entry.id[..8]), status = %s, "promise broken");
                Ok(Err(s))
            }
        }
    }

    /// Route a streamed request while it arrives: the payload's frames go on to the
    /// first selected provider as they come in (cut-through), hashed on the way; the
    /// completion is collected and judged before anything is sent back, so a
    /// broken promise can still be retried (with an idempotency id) from the frames
    /// kept meanwhile, exactly like a buffered request.
    async fn route_stream(
        &self,
        protocol: ProtocolId,
        header: CompletionRequest,
        frames: Streaming<CompletionChunk>,
        caller: Option<&auth::Caller>,
    ) -> Result<CompletionResponse, Status> {
        let st = &self.state;
        let deadline_ms = self.deadline_ms(&header);
        let terms = header.terms.clone().unwrap_or_default();
        let retry = !header.idempotency_id.is_empty();
        let Some(time_left) = veilgrid_kit::clock::until(deadline_ms) else {
            return Err(Status::deadline_exceeded(
                "the request's deadline passed before routing",
            ));
        };
        let entry = self.select(&protocol, &header, &terms, &[])?;
        let mut fwd = header.clone();
        if let Some(t) = fwd.terms.as_mut() {
            t.deadline_unix_ms = deadline_ms;
        }
        let upload = forward::Upload {
            frames,
            declared: header.stream_length,
            max: st.config.max_stream_payload,
            keep: retry,
            observer: st.config.observer.clone(),
        };
        let (outcome, kept) = forward::call_streaming(
            &entry,
            &protocol,
            fwd,
            upload,
            time_left,
            st.message_limit(),
            st.config.max_stream_payload,
            caller,
        )
        .await?;
        let broken = match self.settle(&entry, &protocol, outcome)? {
            Ok(resp) => return Ok(resp),
            Err(s) => s,
        };
        let Some(kept) = kept.filter(|_| retry) else {
            return Err(broken);
        };
        let mut req = header;
        req.payload = kept.assemble();
        self.attempts(protocol, req, true, caller, deadline_ms, vec![entry.id], 1)
            .await
            .map_err(|e| e.unwrap_or(broken))
    }

    fn select(
        &self,
        protocol: &ProtocolId,
        req: &CompletionRequest,
        terms: &veilgrid_proto::grid::v1::Terms,
        failed: &[[u8; 32]],
    ) -> Result<Arc<Entry>, Status> {
        let st = &self.state;
        let entries = st.registry.serving(protocol, now_ms());
        if entries.is_empty() {
            return Err(if st.registry.is_known(protocol) {
                Status::unavailable(format!(
                    "no provider is serving protocol {protocol} right now (all leases expired); retry later"
                ))
            } else {
                Status::not_found(format!(
                    "unknown protocol id {protocol}: no provider has registered it"
                ))
            });
        }
        // Read the table in place: cloning its map per request showed up in profiles.
        let rates = st.rates.read().unwrap_or_else(|p| p.into_inner());
        let cands: Vec<Candidate> = entries
            .iter()
            .map(|e| {
                let ask = e.asks.get(protocol).copied().unwrap_or(0) as f64;
                Candidate {
                    serving: e.serving.load(Ordering::Relaxed),
                    excluded: failed.contains(&e.id)
                        || (!req.target_provider.is_empty()
                            && req.target_provider.as_ref() != e.id.as_slice()),
                    price: rates.convert(ask, &e.info.currency, &terms.currency),
                    reputation: st.registry.tally(&e.id, protocol).reputation(),
                    ewma_ms: e.ewma_ms(),
                    in_flight: e.in_flight.load(Ordering::Relaxed),
                }
            })
            .collect();
        let limits = Limits {
            max_price: terms.max_price,
            min_reputation: terms.min_reputation,
        };
        let ok = select::eligible(&cands, limits).map_err(|why| {
            Status::unavailable(format!(
                "{} provider(s) registered for protocol {protocol}, none eligible: {why}",
                cands.len()
            ))
        })?;
        let i = select::pick(&cands, &ok, &mut rand::thread_rng())
            .ok_or_else(|| Status::unavailable("no eligible provider"))?;
        Ok(entries[i].clone())
    }

    fn find_lease(&self, provider_id: &[u8], lease_id: &[u8]) -> Result<Arc<Entry>, Status> {
        let not_found = || {
            Status::not_found(
                "no such lease (expired, released, or wrong lease id); register again",
            )
        };
        let id: [u8; 32] = provider_id.try_into().map_err(|_| not_found())?;
        let e = self.state.registry.get(&id).ok_or_else(not_found)?;
        if !bool::from(e.lease_id.ct_eq(lease_id))
            || e.expires_at_ms.load(Ordering::Relaxed) <= now_ms()
        {
            return Err(not_found());
        }
        Ok(e)
    }
}

#[tonic::async_trait]
impl Router for RouterService {
    async fn complete(
        &self,
        request: Request<CompletionRequest>,
    ) -> Result<Response<CompletionResponse>, Status> {
        let caller = auth::peer(&request)?;
        let req = request.into_inner();
        let protocol = self.validate(&req, self.state.config.max_unary_payload)?;
        self.route(protocol, req, false, caller.as_ref())
            .await
            .map(Response::new)
    }

    type CompleteStreamStream = ReceiverStream<Result<CompletionChunk, Status>>;

    async fn complete_stream(
        &self,
        request: Request<Streaming<CompletionChunk>>,
    ) -> Result<Response<Self::CompleteStreamStream>, Status> {
        let caller = auth::peer(&request)?;
        let limit = self.state.config.max_stream_payload;
        let mut frames = request.into_inner();
        let mut header = chunks::read_header(&mut frames, limit).await?;
        let protocol = self.validate(&header, limit)?;
        let resp = if header.stream_length == 0 {
            // No declared length: a cut-short stream could not be told from a
            // complete one downstream, so buffer it all first.
            header.payload = chunks::collect_payload(frames, 0, limit).await?;
            self.route(protocol, header, true, caller.as_ref()).await?
        } else {
            self.route_stream(protocol, header, frames, caller.as_ref())
                .await?
        };
        Ok(Response::new(frames_stream(chunks::response_frames(resp))))
    }

    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<Lease>, Status> {
        let st = &self.state;
        let caller = auth::peer(&request)?;
        let req = request.into_inner();
        let now = now_ms();
        let checked = lease::check(
            &req.provider_info,
            &req.signature,
            now,
            (st.config.min_ttl, st.config.max_ttl),
        )?;
        let holder = st.registry.get(&checked.id).map(|e| e.info.name.clone());
        auth::check_registrant(caller.as_ref(), &checked.info.name, holder.as_deref())?;
        let mut lease_id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut lease_id);
        let ttl_ms = checked.ttl_ms;
        let expires = now + ttl_ms;
        let id = checked.id;
        st.store
            .put_lease(&LeaseRecord {
                provider_id: id,
                info: req.provider_info.to_vec(),
                signature: req.signature.to_vec(),
                lease_id,
                expires_at_ms: expires,
            })
            .map_err(Status::from)?;
        let entry = lease::entry_with(checked, lease_id, expires, &st.config.security)?;
        tracing::info!(provider = %hex::encode(&id[..8]), name = %entry.info.name, endpoint = %entry.info.endpoint, "registered");
        st.registry.insert(entry);
        Ok(Response::new(Lease {
            provider_id: Bytes::copy_from_slice(&id),
            lease_id: Bytes::copy_from_slice(&lease_id),
            expires_at_ms: expires,
            ttl_ms,
        }))
    }

    async fn renew(&self, request: Request<RenewRequest>) -> Result<Response<Lease>, Status> {
        let caller = auth::peer(&request)?;
        let req = request.into_inner();
        let e = self.find_lease(&req.provider_id, &req.lease_id)?;
        auth::check_registrant(caller.as_ref(), &e.info.name, Some(&e.info.name))?;
        let ttl_ms = e.info.ttl_ms.clamp(
            self.state.config.min_ttl.as_millis() as u64,
            self.state.config.max_ttl.as_millis() as u64,
        );
        let expires = now_ms() + ttl_ms;
        self.state
            .store
            .extend_lease(&e.id, expires)
            .map_err(Status::from)?;
        e.expires_at_ms.store(expires, Ordering::Relaxed);
        Ok(Response::new(Lease {
            provider_id: req.provider_id,
            lease_id: req.lease_id,
            expires_at_ms: expires,
            ttl_ms,
        }))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let caller = auth::peer(&request)?;
        let req = request.into_inner();
        let e = self.find_lease(&req.provider_id, &req.lease_id)?;
        auth::check_registrant(caller.as_ref(), &e.info.name, Some(&e.info.name))?;
        self.state.store.remove_lease(&e.id).map_err(Status::from)?;
        self.state.registry.remove(&e.id);
        tracing::info!(provider = %hex::encode(&e.id[..8]), "deregistered");
        Ok(Response::new(DeregisterResponse {}))
    }

    async fn list_providers(
        &self,
        request: Request<ListProvidersRequest>,
    ) -> Result<Response<ListProvidersResponse>, Status> {
        let req = request.into_inner();
        let filter =
            if req.protocol_id.is_empty() {
                None
            } else {
                Some(ProtocolId::from_bytes(&req.protocol_id).map_err(|_| {
                    Status::invalid_argument("protocol_id must be empty or 32 bytes")
                })?)
            };
        let mut providers: Vec<ProviderStatus> = self
            .state
            .registry
            .all()
            .into_iter()
            .filter(|e| filter.is_none_or(|p| e.asks.contains_key(&p)))
            .map(|e| {
                let stats = e
                    .info
                    .asks
                    .iter()
                    .filter_map(|a| {
                        let p = ProtocolId::from_bytes(&a.protocol_id).ok()?;
                        let t = self.state.registry.tally(&e.id, &p);
                        Some(ProtocolStats {
                            protocol_id: a.protocol_id.clone(),
                            protocol_name: a.protocol_name.clone(),
                            kept: t.kept,
                            broken: t.broken,
                            reputation: t.reputation(),
                            price: a.price,
                        })
                    })
                    .collect();
                ProviderStatus {
                    info: Some(e.info.clone()),
                    serving: e.serving.load(Ordering::Relaxed),
                    lease_expires_at_ms: e.expires_at_ms.load(Ordering::Relaxed),
                    ewma_latency_ms: e.ewma_ms(),
                    in_flight: e.in_flight.load(Ordering::Relaxed),
                    stats,
                }
            })
            .collect();
        providers.sort_by(|a, b| {
            let n =
                |p: &ProviderStatus| p.info.as_ref().map(|i| i.name.clone()).unwrap_or_default();
            n(a).cmp(&n(b))
        });
        Ok(Response::new(ListProvidersResponse { providers }))
    }
}
